// rmsnorm: y = w ⊙ x / sqrt(mean(x²) + EPS), per token (as the CPU engine:
// w[i] * (inv * x[i])).
//
// Bindings (group 0):
//   0 x  array<f32>  read  [T][COLS]
//   1 w  array<f32>  read  [COLS]
//   2 y  array<f32>  rw    [T][COLS]
// Overrides: COLS, EPS, WG (power of two).
// Dispatch: (T, 1, 1); one workgroup per token.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override COLS: u32;
override EPS: f32 = 1e-5;
override WG: u32 = 256u;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn rmsnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let base = wid.x * COLS;
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
  for (var i = tid; i < COLS; i += WG) {
    y[base + i] = w[i] * (inv * x[base + i]);
  }
}
