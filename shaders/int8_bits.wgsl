// idot4, variant "bits": no language extension needed; sign-extends each
// byte with shifts (core WGSL).
fn idot4(a: u32, b: u32) -> i32 {
  let sh = vec4<u32>(24u, 16u, 8u, 0u);
  let x = bitcast<vec4<i32>>(vec4<u32>(a) << sh) >> vec4<u32>(24u);
  let y = bitcast<vec4<i32>>(vec4<u32>(b) << sh) >> vec4<u32>(24u);
  return dot(x, y);
}
