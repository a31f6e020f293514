// attn_reduce_q8: attn_reduce fused with the int8 quantization of its
// consumer (the wo matvec/matmul): combines attn_partial's chunks,
// out = Σ_c exp(m_c − M)·o_c / Σ_c exp(m_c − M)·l_c with M = max m_c, and
// writes the attention output only as int8 groups of 32 with scales, exactly
// as attn_reduce followed by quantize_q8 would (same arithmetic, bit for bit).
// Groups run over the flattened N_HEADS·HEAD_DIM output and may straddle
// heads; the row is zero-padded to a multiple of 32.
//
// Bindings (group 0):
//   0 part  array<f32>  read  [T][N_HEADS][MAX_CHUNKS][HEAD_DIM + 2]
//   1 xq    array<u32>  rw    [T][G·8] int8 packed 4 per u32
//   2 xs    array<f32>  rw    [T][G]
//   3 step  Step        uniform (pos)
// Overrides: N_HEADS, HEAD_DIM, CHUNK, MAX_CHUNKS (as for attn_partial).
// Dispatch: (G, T, 1) with G = ceil(N_HEADS·HEAD_DIM / 32); a workgroup of
//   32 takes one group, one invocation per element.

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

var<workgroup> red: array<f32, 32>;
var<workgroup> qv: array<u32, 32>;

// round half away from zero, like Go's math.Round (as quantize_q8)
fn q8(v: f32) -> u32 {
  let r = sign(v) * floor(abs(v) + 0.5);
  return u32(bitcast<u32>(i32(r)) & 0xffu);
}

@compute @workgroup_size(32)
fn attn_reduce_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let g = wid.x;
  let t = wid.y;
  let d = g * 32u + tid;
  var v = 0.0;
  if (d < QDIM) {
    let h = d / HEAD_DIM;
    let nc = (step.pos + t) / CHUNK + 1u;
    let base = (t * N_HEADS + h) * MAX_CHUNKS * (HEAD_DIM + 2u);
    var m = -3.402823e38;
    for (var c = 0u; c < nc; c++) {
      m = max(m, part[base + c * (HEAD_DIM + 2u) + HEAD_DIM]);
    }
    var l = 0.0;
    for (var c = 0u; c < nc; c++) {
      let b = base + c * (HEAD_DIM + 2u);
      l += exp(part[b + HEAD_DIM] - m) * part[b + HEAD_DIM + 1u];
    }
    let inv = 1.0 / l;
    var o = 0.0;
    for (var c = 0u; c < nc; c++) {
      let b = base + c * (HEAD_DIM + 2u);
      o += exp(part[b + HEAD_DIM] - m) * part[b + d - h * HEAD_DIM];
    }
    v = o * inv;
  }
  red[tid] = abs(v);
  workgroupBarrier();
  for (var off = 16u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] = max(red[tid], red[tid + off]);
    }
    workgroupBarrier();
  }
  let scale = red[0] / 127.0;
  var iv = 0.0;
  if (scale != 0.0) {
    iv = 1.0 / scale;
  }
  qv[tid] = q8(v * iv);
  workgroupBarrier();
  if (tid < 8u) {
    xq[(t * G + g) * 8u + tid] = qv[4u * tid] | (qv[4u * tid + 1u] << 8u) | (qv[4u * tid + 2u] << 16u) | (qv[4u * tid + 3u] << 24u);
  }
  if (tid == 0u) {
    xs[t * G + g] = scale;
  }
}
