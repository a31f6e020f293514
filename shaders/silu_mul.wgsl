// silu_mul: SwiGLU's elementwise step, out = silu(gate)·up with
// silu(g) = g / (1 + exp(−g)), as the CPU engine computes it.
//
// The input holds, per token, the gate and up projections as matmul_q8 writes
// them from a w13 matrix split into chunks of CHUNK hidden rows: for the
// chunk of rows [a, a+n) (a a multiple of CHUNK, n = min(CHUNK, H−a)) the gate
// rows [a, a+n) at offset 2a, then the up rows [a, a+n) at 2a+n. With
// CHUNK = H (one chunk) that is all of the gate, then all of the up.
//
// Bindings (group 0):
//   0 gu   array<f32>  read  [T][2·H], chunk blocks as above
//   1 out  array<f32>  rw    [T][H]
// Overrides: H, CHUNK (default H).
// Dispatch: (ceil(H/256), T, 1).

@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

override H: u32;
override CHUNK: u32 = H;

@compute @workgroup_size(256)
fn silu_mul(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= H) {
    return;
  }
  let a = i / CHUNK * CHUNK;
  let n = min(CHUNK, H - a);
  // gate row i is at 2a + (i − a) = a + i, its up row n further
  let g = gu[t * 2u * H + a + i];
  let u = gu[t * 2u * H + a + i + n];
  out[t * H + i] = g / (1.0 + exp(-g)) * u;
}
