// embed_f32: token embedding rows of an f32 table, or of one chunk of it:
// the table binding holds rows [ROW0, ROW0+ROWS) and tokens outside that
// range are left to the other chunks' dispatches.
//
// Bindings (group 0):
//   0 tokens  array<u32>  read  [T]
//   1 table   array<f32>  read  [ROWS][DIM], vocabulary rows ROW0..ROW0+ROWS-1
//   2 x       array<f32>  rw    [T][DIM]
// Overrides: DIM, ROW0 (default 0), ROWS (default: unbounded).
// Dispatch: (ceil(DIM/64), T, 1), once per chunk.

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

override DIM: u32;
override ROW0: u32 = 0u;
override ROWS: u32 = 0xffffffffu;

@compute @workgroup_size(64)
fn embed_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let t = gid.y;
  // u32 wrap-around: tokens below ROW0 fail the test too
  let row = tokens[t] - ROW0;
  if (d >= DIM || row >= ROWS) {
    return;
  }
  x[t * DIM + d] = table[row * DIM + d];
}
