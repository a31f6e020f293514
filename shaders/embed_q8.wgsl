// embed_q8: token embedding rows of an int8 table, dequantized as the CPU
// engine does: f32(q) · scale (per row for q8_channel, per 32 for q8_block32).
//
// Bindings (group 0):
//   0 tokens  array<u32>  read  [T]
//   1 table   array<u32>  read  [vocab][KP/4] int8 packed, rows padded to KP = PadQ8(DIM)
//   2 s       array<u32>  read  scales: f32 [vocab] (q8_channel) or f16 [vocab][G] (q8_block32)
//   3 x       array<f32>  rw    [T][DIM]
// Overrides: DIM, BLOCK32.
// Dispatch: (ceil(DIM/64), T, 1).

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> s: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

override DIM: u32;
override BLOCK32: bool = false;
override G: u32 = (DIM + 31u) / 32u;

@compute @workgroup_size(64)
fn embed_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let t = gid.y;
  if (d >= DIM) {
    return;
  }
  let row = tokens[t];
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
