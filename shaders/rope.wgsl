// rope_rot (prelude of attn_partial and kv_store): RoPE on the two
// interleaved pairs (x, y) and (z, w) of v, by the (cos, sin) pairs in c.
fn rope_rot(v: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(v.x * c.x - v.y * c.y, v.x * c.y + v.y * c.x,
                   v.z * c.z - v.w * c.w, v.z * c.w + v.w * c.z);
}
