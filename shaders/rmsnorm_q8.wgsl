// rmsnorm_q8: rmsnorm fused with the activation quantization of its consumer
// (the int8 matvec/matmul): y = w ⊙ x / sqrt(mean(x²) + EPS), written only as
// int8 groups of 32 with scales, exactly as quantize_q8 would.
//
// Bindings (group 0):
//   0 x   array<f32>  read  [T][COLS]
//   1 w   array<f32>  read  [COLS]
//   2 xq  array<u32>  rw    [T][KP/4]
//   3 xs  array<f32>  rw    [T][G]
// Overrides: COLS, EPS, WG (power of two).
// Dispatch: (T, 1, 1); one workgroup per token.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<storage, read_write> xs: array<f32>;

override COLS: u32;
override EPS: f32 = 1e-5;
override WG: u32 = 256u;
override G: u32 = (COLS + 31u) / 32u;

var<workgroup> red: array<f32, WG>;

fn q8(v: f32) -> u32 {
  let r = sign(v) * floor(abs(v) + 0.5);
  return u32(bitcast<u32>(i32(r)) & 0xffu);
}

@compute @workgroup_size(WG)
fn rmsnorm_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wid.x;
  let base = t * COLS;
  var ss = 0.0;
  for (var i = tid; i < COLS; i += WG) {
    let v = x[base + i];
    ss += v * v;
  }
  red[tid] = ss;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] += red[tid + off];
    }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(red[0] / f32(COLS) + EPS);
  for (var g = tid; g < G; g += WG) {
    var v: array<f32, 32>;
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
      let i = g * 32u + j;
      if (i < COLS) {
        v[j] = w[i] * (inv * x[base + i]);
      } else {
        v[j] = 0.0;
      }
      amax = max(amax, abs(v[j]));
    }
    let scale = amax / 127.0;
    xs[t * G + g] = scale;
    var iv = 0.0;
    if (scale != 0.0) {
      iv = 1.0 / scale;
    }
    for (var j = 0u; j < 8u; j++) {
      xq[(t * G + g) * 8u + j] = q8(v[4u * j] * iv) | (q8(v[4u * j + 1u] * iv) << 8u) |
                                 (q8(v[4u * j + 2u] * iv) << 16u) | (q8(v[4u * j + 3u] * iv) << 24u);
    }
  }
}
