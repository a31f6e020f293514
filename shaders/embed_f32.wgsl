// embed_f32: token embedding rows of an f32 table.
//
// Bindings (group 0):
//   0 tokens  array<u32>  read  [T]
//   1 table   array<f32>  read  [vocab][DIM]
//   2 x       array<f32>  rw    [T][DIM]
// Overrides: DIM.
// Dispatch: (ceil(DIM/64), T, 1).

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

override DIM: u32;

@compute @workgroup_size(64)
fn embed_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let t = gid.y;
  if (d >= DIM) {
    return;
  }
  x[t * DIM + d] = table[tokens[t] * DIM + d];
}
