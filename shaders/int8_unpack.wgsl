// idot4, variant "unpack": unpack4xI8 (also from the
// packed_4x8_integer_dot_product extension) and an i32 vector dot.
fn idot4(a: u32, b: u32) -> i32 { return dot(unpack4xI8(a), unpack4xI8(b)); }
