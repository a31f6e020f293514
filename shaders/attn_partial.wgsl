// attn_partial: causal grouped-query attention, split along the sequence
// (flash-decoding). Workgroup (c, h, t) takes query head h of token t (at
// position p = pos+t) against cache positions [c·CHUNK, min((c+1)·CHUNK, p+1))
// and writes the chunk's unnormalised output o = Σ exp(s_j − m)·v_j, its max
// score m and its sum l = Σ exp(s_j − m); attn_reduce combines the chunks.
// Scores are s_j = (q·k_j)·(1/sqrt(HEAD_DIM)) as in the CPU engine. Serves
// decode (T = 1) and prefill (T tokens, causal).
//
// Bindings (group 0):
//   0 qkv     array<f32>  read  [T][QKV_STRIDE], q of head h at h·HEAD_DIM
//   1 kcache  array<f32>  read  [context][KV_DIM]
//   2 vcache  array<f32>  read  [context][KV_DIM]
//   3 part    array<f32>  rw    [T][N_HEADS][MAX_CHUNKS][HEAD_DIM + 2] (o, m, l)
//   4 step    Step        uniform (pos)
// Overrides: N_HEADS, N_KV_HEADS, HEAD_DIM (≤ 4·CHUNK), QKV_STRIDE, CHUNK
//   (= workgroup size, power of two), MAX_CHUNKS ≥ ceil(context/CHUNK).
// Dispatch: (ceil((pos+T)/CHUNK), N_HEADS, T).

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> kcache: array<f32>;
@group(0) @binding(2) var<storage, read> vcache: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;

override N_HEADS: u32;
override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override KV_DIM: u32 = N_KV_HEADS * HEAD_DIM;
override QKV_STRIDE: u32 = (N_HEADS + 2u * N_KV_HEADS) * HEAD_DIM;
override CHUNK: u32 = 128u;
override MAX_CHUNKS: u32;

const NEG = -3.402823e38;

var<workgroup> qs: array<f32, HEAD_DIM>;
var<workgroup> sc: array<f32, CHUNK>;
var<workgroup> red: array<f32, CHUNK>;

@compute @workgroup_size(CHUNK)
fn attn_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let c = wid.x;
  let h = wid.y;
  let t = wid.z;
  let p = step.pos + t;
  let kvh = h / (N_HEADS / N_KV_HEADS);
  let out = ((t * N_HEADS + h) * MAX_CHUNKS + c) * (HEAD_DIM + 2u);
  let j0 = c * CHUNK;
  if (j0 > p) {
    // beyond the causal horizon of this token: an empty chunk
    for (var d = tid; d < HEAD_DIM; d += CHUNK) {
      part[out + d] = 0.0;
    }
    if (tid == 0u) {
      part[out + HEAD_DIM] = NEG;
      part[out + HEAD_DIM + 1u] = 0.0;
    }
    return;
  }
  let n = min(CHUNK, p + 1u - j0);
  for (var d = tid; d < HEAD_DIM; d += CHUNK) {
    qs[d] = qkv[t * QKV_STRIDE + h * HEAD_DIM + d];
  }
  workgroupBarrier();
  let scale = 1.0 / sqrt(f32(HEAD_DIM));
  var s = NEG;
  if (tid < n) {
    let kb = (j0 + tid) * KV_DIM + kvh * HEAD_DIM;
    var dot = 0.0;
    for (var d = 0u; d < HEAD_DIM; d++) {
      dot += qs[d] * kcache[kb + d];
    }
    s = dot * scale;
  }
  red[tid] = s;
  workgroupBarrier();
  for (var off = CHUNK / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] = max(red[tid], red[tid + off]);
    }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  var e = 0.0;
  if (tid < n) {
    e = exp(s - m);
  }
  sc[tid] = e;
  red[tid] = e;
  workgroupBarrier();
  for (var off = CHUNK / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] += red[tid + off];
    }
    workgroupBarrier();
  }
  for (var d = tid; d < HEAD_DIM; d += CHUNK) {
    var o = 0.0;
    let vb = j0 * KV_DIM + kvh * HEAD_DIM + d;
    for (var j = 0u; j < n; j++) {
      o += sc[j] * vcache[vb + j * KV_DIM];
    }
    part[out + d] = o;
  }
  if (tid == 0u) {
    part[out + HEAD_DIM] = m;
    part[out + HEAD_DIM + 1u] = red[0];
  }
}
