// rmsnorm_q8: rmsnorm fused with the activation quantization of its consumer
// (the int8 matvec/matmul): y = w ⊙ x / sqrt(mean(x²) + EPS), written only as
// int8 groups of 32 with scales, exactly as quantize_q8 would.
//
// Bindings (group 0):
//   0 x   array<f32>  read  [T][COLS]
//   1 w   array<f32>  read  [COLS]
//   2 xq  array<u32>  rw    [T][KP/4]
//   3 xs  array<f32>  rw    [T][G]
// Overrides: COLS, EPS, WG (power of two, ≥ 8).
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
  workgroupBarrier(); // everyone has read red[0] before it is reused
  // quantize: one invocation per packed word (4 values), 8 words per group;
  // the group's maxabs is combined in workgroup memory
  let NW = G * 8u;
  for (var w0 = 0u; w0 < NW; w0 += WG) {
    let wi = w0 + tid;
    let i0 = wi * 4u;
    var v = vec4<f32>(0.0);
    if (i0 < COLS) {
      v.x = w[i0] * (inv * x[base + i0]);
    }
    if (i0 + 1u < COLS) {
      v.y = w[i0 + 1u] * (inv * x[base + i0 + 1u]);
    }
    if (i0 + 2u < COLS) {
      v.z = w[i0 + 2u] * (inv * x[base + i0 + 2u]);
    }
    if (i0 + 3u < COLS) {
      v.w = w[i0 + 3u] * (inv * x[base + i0 + 3u]);
    }
    act_q8_word(v, wi, t, tid);
  }
}
