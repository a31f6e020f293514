// attn_reduce_q8: attn_reduce fused with the int8 quantization of its
// consumer (the wo matvec/matmul): combines attn_partial's chunks,
// out = Σ_c exp(m_c − M)·o_c / Σ_c exp(m_c − M)·l_c with M = max m_c, and
// writes the attention output only as int8 groups of 32 with scales, as
// quantize_q8 would. Groups run over the flattened N_HEADS·HEAD_DIM output
// and may straddle heads; the row is zero-padded to a multiple of 32.
// The chunks are combined in parallel: M and the denominator by all 128
// invocations striding over the chunks (attn_combine), the numerators by 4 slices of 32
// (one invocation per element) taking every 4th chunk, so that the loads of
// a long context are not one dependent chain per invocation.
//
// Bindings (group 0):
//   0 part  array<f32>  read  [T][N_HEADS][MAX_CHUNKS][HEAD_DIM + 2]
//   1 xq    array<u32>  rw    [T][G·8] int8 packed 4 per u32
//   2 xs    array<f32>  rw    [T][G]
//   3 step  Step        uniform (pos)
// Overrides: N_HEADS, HEAD_DIM, CHUNK, MAX_CHUNKS (as for attn_partial).
// Dispatch: (G, T, 1) with G = ceil(N_HEADS·HEAD_DIM / 32); a workgroup of
//   128 takes one group.

@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> xs: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;

override N_HEADS: u32;
override HEAD_DIM: u32;
override CHUNK: u32 = 128u;
override MAX_CHUNKS: u32;
override QDIM: u32 = N_HEADS * HEAD_DIM;
override G: u32 = (QDIM + 31u) / 32u;

var<workgroup> red: array<f32, 128>;
var<workgroup> vals: array<f32, 32>;
var<workgroup> osum: array<f32, 128>;

@compute @workgroup_size(128)
fn attn_reduce_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let g = wid.x;
  let t = wid.y;
  let lane = tid % 32u;
  let sl = tid / 32u;
  let d = g * 32u + lane;
  let nc = (step.pos + t) / CHUNK + 1u;
  // the group's first and last heads (the same unless HEAD_DIM % 32 != 0)
  let h0 = (g * 32u) / HEAD_DIM;
  let h1 = min(g * 32u + 31u, QDIM - 1u) / HEAD_DIM;
  var o = 0.0;
  var inv = 0.0;
  for (var h = h0; h <= h1; h++) {
    let base = (t * N_HEADS + h) * MAX_CHUNKS * (HEAD_DIM + 2u);
    let ml = attn_combine(base, nc, tid);
    if (d < QDIM && d / HEAD_DIM == h) {
      for (var c = sl; c < nc; c += 4u) {
        let b = base + c * (HEAD_DIM + 2u);
        o += exp(part[b + HEAD_DIM] - ml.x) * part[b + d - h * HEAD_DIM];
      }
      inv = 1.0 / ml.y;
    }
  }
  osum[tid] = o;
  workgroupBarrier();
  var v = 0.0;
  if (tid < 32u) {
    v = (osum[tid] + osum[tid + 32u] + osum[tid + 64u] + osum[tid + 96u]) * inv;
    red[tid] = abs(v);
  }
  workgroupBarrier();
  for (var off = 16u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] = max(red[tid], red[tid + off]);
    }
    workgroupBarrier();
  }
  let scale = red[0] / 127.0;
  if (tid < 32u) {
    vals[tid] = v;
  }
  workgroupBarrier();
  if (tid < 8u) {
    let w = vec4<f32>(vals[4u * tid], vals[4u * tid + 1u], vals[4u * tid + 2u], vals[4u * tid + 3u]);
    xq[(t * G + g) * 8u + tid] = act_q8_pack(w, act_q8_inv(scale));
  }
  if (tid == 0u) {
    xs[t * G + g] = scale;
  }
}
