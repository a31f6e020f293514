// attn_reduce: combines attn_partial's chunks: with M = max m_c,
// out = Σ_c exp(m_c − M)·o_c / Σ_c exp(m_c − M)·l_c. M and the denominator
// are reduced across the workgroup (attn_combine); each invocation then sums
// the numerators of its output dimensions.
//
// Bindings (group 0):
//   0 part  array<f32>  read  [T][N_HEADS][MAX_CHUNKS][HEAD_DIM + 2]
//   1 out   array<f32>  rw    [T][N_HEADS·HEAD_DIM]
//   2 step  Step        uniform (pos)
// Overrides: N_HEADS, HEAD_DIM, CHUNK, MAX_CHUNKS (as for attn_partial).
// Dispatch: (N_HEADS, T, 1); workgroup of 128.

@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> step: Step;

override N_HEADS: u32;
override HEAD_DIM: u32;
override CHUNK: u32 = 128u;
override MAX_CHUNKS: u32;

var<workgroup> red: array<f32, 128>;

@compute @workgroup_size(128)
fn attn_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wid.x;
  let t = wid.y;
  let nc = (step.pos + t) / CHUNK + 1u;
  let base = (t * N_HEADS + h) * MAX_CHUNKS * (HEAD_DIM + 2u);
  let ml = attn_combine(base, nc, tid);
  let inv = 1.0 / ml.y;
  for (var d = tid; d < HEAD_DIM; d += 128u) {
    var o = 0.0;
    for (var c = 0u; c < nc; c++) {
      let b = base + c * (HEAD_DIM + 2u);
      o += exp(part[b + HEAD_DIM] - ml.x) * part[b + d];
    }
    out[(t * N_HEADS + h) * HEAD_DIM + d] = o * inv;
  }
}
