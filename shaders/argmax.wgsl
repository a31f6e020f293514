// argmax: index of the largest logit, the lowest index on ties (greedy
// decoding reads back this one u32, not the logits).
//
// Bindings (group 0):
//   0 x    array<f32>  read  [N]
//   1 out  array<u32>  rw    [OUT_INDEX + 1]; out[OUT_INDEX] = argmax
// Overrides: N, WG (power of two), OUT_INDEX.
// Dispatch: (1, 1, 1).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

override N: u32;
override WG: u32 = 256u;
override OUT_INDEX: u32 = 0u;

var<workgroup> bv: array<f32, WG>;
var<workgroup> bi: array<u32, WG>;

@compute @workgroup_size(WG)
fn argmax(@builtin(local_invocation_index) tid: u32) {
  var best = -3.402823e38;
  var idx = 0xffffffffu;
  for (var i = tid; i < N; i += WG) {
    let v = x[i];
    if (idx == 0xffffffffu || v > best) {
      best = v;
      idx = i;
    }
  }
  bv[tid] = best;
  bi[tid] = idx;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      let v = bv[tid + off];
      let i = bi[tid + off];
      if (i != 0xffffffffu && (bi[tid] == 0xffffffffu || v > bv[tid] || (v == bv[tid] && i < bi[tid]))) {
        bv[tid] = v;
        bi[tid] = i;
      }
    }
    workgroupBarrier();
  }
  if (tid == 0u) {
    out[OUT_INDEX] = bi[0];
  }
}
