// silu_mul: SwiGLU's elementwise step, out = silu(gate)·up with
// silu(g) = g / (1 + exp(−g)), as the CPU engine computes it.
//
// Bindings (group 0):
//   0 gu   array<f32>  read  [T][IN_STRIDE]: gate at 0, up at U_OFFSET
//   1 out  array<f32>  rw    [T][H]
// Overrides: H, IN_STRIDE (default 2·H), U_OFFSET (default H).
// Dispatch: (ceil(H/256), T, 1).

@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

override H: u32;
override IN_STRIDE: u32 = 2u * H;
override U_OFFSET: u32 = H;

@compute @workgroup_size(256)
fn silu_mul(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= H) {
    return;
  }
  let g = gu[t * IN_STRIDE + i];
  let u = gu[t * IN_STRIDE + U_OFFSET + i];
  out[t * H + i] = g / (1.0 + exp(-g)) * u;
}
