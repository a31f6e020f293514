// attn_partial: causal grouped-query attention, split along the sequence
// (flash-decoding). Workgroup (c, h, t) takes query head h of token t (at
// position p = pos+t) against cache positions [c·CHUNK, min((c+1)·CHUNK, p+1))
// and writes the chunk's unnormalised output o = Σ exp(s_j − m)·v_j, its max
// score m and its sum l = Σ exp(s_j − m); attn_reduce combines the chunks.
// Scores are s_j = (q·k_j)·(1/sqrt(HEAD_DIM)) as in the CPU engine. Serves
// decode (T = 1) and prefill (T tokens, causal). Keys and values are read as
// vec4: one invocation per key for the scores, CHUNK/(HEAD_DIM/4) slices of
// the positions for the output, summed in workgroup memory.
//
// Bindings (group 0):
//   0 qkv     array<f32>        read  [T][QKV_STRIDE], q of head h at h·HEAD_DIM
//   1 kcache  array<vec4<f32>>  read  [context][KV_DIM] f32
//   2 vcache  array<vec4<f32>>  read  [context][KV_DIM] f32
//   3 part    array<f32>        rw    [T][N_HEADS][MAX_CHUNKS][HEAD_DIM + 2] (o, m, l)
//   4 step    Step              uniform (pos)
// Overrides: N_HEADS, N_KV_HEADS, HEAD_DIM (multiple of 4, ≤ 4·CHUNK), QKV_STRIDE,
//   CHUNK (= workgroup size, power of two; 128 was fastest on an H100),
//   MAX_CHUNKS ≥ ceil(context/CHUNK).
// Dispatch: (ceil((pos+T)/CHUNK), N_HEADS, T).

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> kcache: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vcache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;

override N_HEADS: u32;
override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override KV_DIM: u32 = N_KV_HEADS * HEAD_DIM;
override QKV_STRIDE: u32 = (N_HEADS + 2u * N_KV_HEADS) * HEAD_DIM;
override CHUNK: u32 = 128u;
override MAX_CHUNKS: u32;
override HD4: u32 = HEAD_DIM / 4u;
override KV4: u32 = KV_DIM / 4u;
override SLICES: u32 = max(1u, CHUNK / HD4);

const NEG = -3.402823e38;

var<workgroup> qs: array<vec4<f32>, HD4>;
var<workgroup> sc: array<f32, CHUNK>;
var<workgroup> red: array<f32, CHUNK>;
var<workgroup> ov: array<vec4<f32>, CHUNK>;

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
  let qb = t * QKV_STRIDE + h * HEAD_DIM;
  for (var d4 = tid; d4 < HD4; d4 += CHUNK) {
    qs[d4] = vec4<f32>(qkv[qb + 4u * d4], qkv[qb + 4u * d4 + 1u], qkv[qb + 4u * d4 + 2u], qkv[qb + 4u * d4 + 3u]);
  }
  workgroupBarrier();
  let scale = 1.0 / sqrt(f32(HEAD_DIM));
  var s = NEG;
  if (tid < n) {
    let kb = (j0 + tid) * KV4 + kvh * HD4;
    var dot4 = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < HD4; d4++) {
      dot4 += qs[d4] * kcache[kb + d4];
    }
    s = (dot4.x + dot4.y + dot4.z + dot4.w) * scale;
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
  // output: invocation (slice, d4) sums positions j ≡ slice (mod SLICES)
  let d4 = tid % HD4;
  let sl = tid / HD4;
  var o = vec4<f32>(0.0);
  if (sl < SLICES) {
    let vb = j0 * KV4 + kvh * HD4 + d4;
    for (var j = sl; j < n; j += SLICES) {
      o += sc[j] * vcache[vb + j * KV4];
    }
  }
  ov[tid] = o;
  workgroupBarrier();
  for (var d = tid; d < HD4; d += CHUNK) {
    var acc = ov[d];
    for (var k = 1u; k < SLICES; k++) {
      acc += ov[k * HD4 + d];
    }
    part[out + 4u * d] = acc.x;
    part[out + 4u * d + 1u] = acc.y;
    part[out + 4u * d + 2u] = acc.z;
    part[out + 4u * d + 3u] = acc.w;
  }
  if (tid == 0u) {
    part[out + HEAD_DIM] = m;
    part[out + HEAD_DIM + 1u] = red[0];
  }
}
