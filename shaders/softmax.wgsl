// softmax: in place over each row of x, numerically stable
// (exp(x − max) / Σ).
//
// Bindings (group 0):
//   0 x  array<f32>  rw  [ROWS][N]
// Overrides: N, WG (power of two).
// Dispatch: (ROWS, 1, 1); one workgroup per row.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;

override N: u32;
override WG: u32 = 256u;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let base = wid.x * N;
  var m = -3.402823e38;
  for (var i = tid; i < N; i += WG) {
    m = max(m, x[base + i]);
  }
  red[tid] = m;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] = max(red[tid], red[tid + off]);
    }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var i = tid; i < N; i += WG) {
    let e = exp(x[base + i] - m);
    x[base + i] = e;
    s += e;
  }
  red[tid] = s;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] += red[tid + off];
    }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var i = tid; i < N; i += WG) {
    x[base + i] = x[base + i] * inv;
  }
}
