// attn_combine (prelude of attn_reduce and attn_reduce_q8): the softmax
// denominators of attn_partial's chunks for one head of one token.
// Returns (M, L): M = max_c m_c and L = Σ_c exp(m_c − M)·l_c over the nc
// chunks at part[base + c·(HEAD_DIM + 2)], reduced across a workgroup of 128
// invocations (each strides over the chunks) in the kernel's workgroup array
// red (≥ 128 floats). Call from uniform control flow.
fn attn_combine(base: u32, nc: u32, tid: u32) -> vec2<f32> {
  var m = -3.402823e38;
  for (var c = tid; c < nc; c += 128u) {
    m = max(m, part[base + c * (HEAD_DIM + 2u) + HEAD_DIM]);
  }
  red[tid] = m;
  workgroupBarrier();
  for (var off = 64u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] = max(red[tid], red[tid + off]);
    }
    workgroupBarrier();
  }
  let mm = red[0];
  workgroupBarrier();
  var l = 0.0;
  for (var c = tid; c < nc; c += 128u) {
    let b = base + c * (HEAD_DIM + 2u);
    l += exp(part[b + HEAD_DIM] - mm) * part[b + HEAD_DIM + 1u];
  }
  red[tid] = l;
  workgroupBarrier();
  for (var off = 64u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] += red[tid + off];
    }
    workgroupBarrier();
  }
  let ll = red[0];
  workgroupBarrier();
  return vec2<f32>(mm, ll);
}
