// add: x += y elementwise (the residual connection when it is not fused
// into a matvec).
//
// Bindings (group 0):
//   0 x  array<f32>  rw    [N]
//   1 y  array<f32>  read  [N]
// Overrides: N.
// Dispatch: (ceil(N/256), 1, 1).

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;

override N: u32;

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < N) {
    x[i] = x[i] + y[i];
  }
}
