// embed_q8: token embedding rows of an int8 table, dequantized as the CPU
// engine does: f32(q) · scale (per row for q8_channel, per 32 for q8_block32).
// The table and scale bindings may hold one chunk of the table, rows
// [ROW0, ROW0+ROWS): tokens outside it are left to the other chunks' dispatches.
//
// Bindings (group 0):
//   0 tokens  array<u32>  read  [T]
//   1 table   array<u32>  read  [ROWS][KP/4] int8 packed, rows padded to KP = PadQ8(DIM)
//   2 s       array<u32>  read  scales: f32 [ROWS] (q8_channel) or f16 [ROWS][G] (q8_block32)
//   3 x       array<f32>  rw    [T][DIM]
// Overrides: DIM, BLOCK32, ROW0 (default 0), ROWS (default: unbounded).
// Dispatch: (ceil(DIM/64), T, 1), once per chunk.

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> s: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

override DIM: u32;
override BLOCK32: bool = false;
override ROW0: u32 = 0u;
override ROWS: u32 = 0xffffffffu;
override G: u32 = (DIM + 31u) / 32u;

@compute @workgroup_size(64)
fn embed_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let t = gid.y;
  // u32 wrap-around: tokens below ROW0 fail the test too
  let row = tokens[t] - ROW0;
  if (d >= DIM || row >= ROWS) {
    return;
  }
  let word = table[row * G * 8u + d / 4u];
  let q = bitcast<i32>(word << (24u - 8u * (d % 4u))) >> 24u;
  var scale: f32;
  if (BLOCK32) {
    let e = row * G + d / 32u;
    let h = unpack2x16float(s[e >> 1u]);
    scale = select(h.x, h.y, (e & 1u) == 1u);
  } else {
    scale = bitcast<f32>(s[row]);
  }
  x[t * DIM + d] = f32(q) * scale;
}
