// quantize_q8: f32 activations → int8 in groups of 32 (the CPU engine's
// runq-style activation quantization): scale = maxabs/127, q = round(x/scale)
// half away from zero, rows zero-padded to KP = PadQ8(COLS).
//
// Bindings (group 0):
//   0 x   array<f32>  read  input [T][X_STRIDE] at X_OFFSET
//   1 xq  array<u32>  rw    output [T][KP/4] int8 packed 4 per u32
//   2 xs  array<f32>  rw    output scales [T][G]
// Overrides: COLS, X_STRIDE, X_OFFSET.
// Dispatch: (ceil(G/64), T, 1); one invocation per group of 32.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> xs: array<f32>;

override COLS: u32;
override X_STRIDE: u32 = COLS;
override X_OFFSET: u32 = 0u;
override G: u32 = (COLS + 31u) / 32u;

// round half away from zero, like Go's math.Round
fn q8(v: f32) -> u32 {
  let r = sign(v) * floor(abs(v) + 0.5);
  return u32(bitcast<u32>(i32(r)) & 0xffu);
}

@compute @workgroup_size(64)
fn quantize_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let t = gid.y;
  if (g >= G) {
    return;
  }
  let base = t * X_STRIDE + X_OFFSET + g * 32u;
  let n = min(32u, COLS - g * 32u);
  var v: array<f32, 32>;
  var amax = 0.0;
  for (var j = 0u; j < 32u; j++) {
    if (j < n) {
      v[j] = x[base + j];
    } else {
      v[j] = 0.0;
    }
    amax = max(amax, abs(v[j]));
  }
  let scale = amax / 127.0;
  xs[t * G + g] = scale;
  var inv = 0.0;
  if (scale != 0.0) {
    inv = 1.0 / scale;
  }
  for (var j = 0u; j < 8u; j++) {
    let p = q8(v[4u * j] * inv) | (q8(v[4u * j + 1u] * inv) << 8u) |
            (q8(v[4u * j + 2u] * inv) << 16u) | (q8(v[4u * j + 3u] * inv) << 24u);
    xq[(t * G + g) * 8u + j] = p;
  }
}
