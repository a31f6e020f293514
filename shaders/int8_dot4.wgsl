// idot4: dot product of two u32 words each packing four int8 (element 0 in
// the low byte). Variant "dot4": the packed_4x8_integer_dot_product
// built-in, one instruction on hardware with DP4A.
fn idot4(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }
