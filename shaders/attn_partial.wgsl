// attn_partial: RoPE, the KV-cache store and causal grouped-query attention,
// split along the sequence (flash-decoding), in one dispatch. Workgroup
// (c, h, t) takes query head h of token t (at position p = pos+t) against
// positions [c·CHUNK, min((c+1)·CHUNK, p+1)) and writes the chunk's
// unnormalised output o = Σ exp(s_j − m)·v_j, its max score m and its sum
// l = Σ exp(s_j − m); attn_reduce combines the chunks. Scores are
// s_j = (q·k_j)·(1/sqrt(HEAD_DIM)) as in the CPU engine. Serves decode (T = 1)
// and prefill (T tokens, causal).
//
// RoPE rotates the interleaved pairs (2i, 2i+1) of q and k by the host's
// (cos, sin) table. The pass's own tokens are read straight from qkv: q is
// rotated as it is loaded, and keys and values of positions ≥ pos (this
// pass's tokens) come from qkv (k rotated on the fly), older ones from the
// caches. The workgroups with c = 0 and h the first query head of a KV head
// store that head's rotated k and plain v of token t into cache row pos+t;
// nothing in this dispatch reads those rows, so there is no race.
// Keys and values are read as vec4: TPK = WG/CHUNK invocations per key for
// the scores (each takes every TPK-th vec4 of the key, so that they read
// adjacent bytes; their partial dots are summed in workgroup memory), and
// WG/(HEAD_DIM/4) slices of the positions for the output.
//
// Bindings (group 0):
//   0 qkv     array<vec4<f32>>  read  [T][QKV] = q (N_HEADS·HEAD_DIM) | k | v (KV_DIM each), not rotated
//   1 cs      array<vec4<f32>>  read  [T][HEAD_DIM/4] (cos, sin) pairs of (pos+t)·inv_freq[i]
//   2 kcache  array<vec4<f32>>  rw    [context][KV_DIM] f32, rotated keys
//   3 vcache  array<vec4<f32>>  rw    [context][KV_DIM] f32
//   4 part    array<f32>        rw    [T][N_HEADS][MAX_CHUNKS][HEAD_DIM + 2] (o, m, l)
//   5 step    Step              uniform (pos)
// With CACHED (prefill passes), kv_store has already stored the pass's keys
// and values: every position is read from the caches and nothing is stored.
//
// Overrides: N_HEADS, N_KV_HEADS, HEAD_DIM (multiple of 4, ≤ 4·WG), CACHED,
//   CHUNK positions per workgroup and WG invocations (powers of two,
//   CHUNK ≤ WG), MAX_CHUNKS ≥ ceil(context/CHUNK).
// Dispatch: (ceil((pos+T)/CHUNK), N_HEADS, T).

@group(0) @binding(0) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> cs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> kcache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vcache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<uniform> step: Step;

override N_HEADS: u32;
override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override CACHED: bool = false;
override CHUNK: u32 = 32u;
override WG: u32 = 128u;
override MAX_CHUNKS: u32;
override HD4: u32 = HEAD_DIM / 4u;
override KV4: u32 = N_KV_HEADS * HD4;
override Q4: u32 = N_HEADS * HD4;
override QKV4: u32 = Q4 + 2u * KV4;
override TPK: u32 = WG / CHUNK;
override SLICES: u32 = max(1u, WG / HD4);

const NEG = -3.402823e38;

var<workgroup> qs: array<vec4<f32>, HD4>;
var<workgroup> sc: array<f32, CHUNK>;
var<workgroup> red: array<f32, WG>;
var<workgroup> ov: array<vec4<f32>, WG>;

// key returns vec4 d4 of KV head kvh's key at position j (rotated).
fn key(j: u32, kvh: u32, d4: u32) -> vec4<f32> {
  if (CACHED || j < step.pos) {
    return kcache[j * KV4 + kvh * HD4 + d4];
  }
  let tt = j - step.pos;
  return rope_rot(qkv[tt * QKV4 + Q4 + kvh * HD4 + d4], cs[tt * HD4 + d4]);
}

// value returns vec4 d4 of KV head kvh's value at position j.
fn value(j: u32, kvh: u32, d4: u32) -> vec4<f32> {
  if (CACHED || j < step.pos) {
    return vcache[j * KV4 + kvh * HD4 + d4];
  }
  return qkv[(j - step.pos) * QKV4 + Q4 + KV4 + kvh * HD4 + d4];
}

@compute @workgroup_size(WG)
fn attn_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let c = wid.x;
  let h = wid.y;
  let t = wid.z;
  let p = step.pos + t;
  let kvh = h / (N_HEADS / N_KV_HEADS);
  if (!CACHED && c == 0u && h % (N_HEADS / N_KV_HEADS) == 0u) {
    for (var d4 = tid; d4 < HD4; d4 += WG) {
      kcache[p * KV4 + kvh * HD4 + d4] = key(p, kvh, d4);
      vcache[p * KV4 + kvh * HD4 + d4] = value(p, kvh, d4);
    }
  }
  let out = ((t * N_HEADS + h) * MAX_CHUNKS + c) * (HEAD_DIM + 2u);
  let j0 = c * CHUNK;
  if (j0 > p) {
    // beyond the causal horizon of this token: an empty chunk
    for (var d = tid; d < HEAD_DIM; d += WG) {
      part[out + d] = 0.0;
    }
    if (tid == 0u) {
      part[out + HEAD_DIM] = NEG;
      part[out + HEAD_DIM + 1u] = 0.0;
    }
    return;
  }
  let n = min(CHUNK, p + 1u - j0);
  for (var d4 = tid; d4 < HD4; d4 += WG) {
    qs[d4] = rope_rot(qkv[t * QKV4 + h * HD4 + d4], cs[t * HD4 + d4]);
  }
  workgroupBarrier();
  let scale = 1.0 / sqrt(f32(HEAD_DIM));
  // scores: invocations kk·TPK .. kk·TPK+TPK-1 take key kk
  let kk = tid / TPK;
  let kp = tid % TPK;
  var dot4 = vec4<f32>(0.0);
  if (kk < n) {
    let j = j0 + kk;
    if (CACHED || j < step.pos) {
      let kb = j * KV4 + kvh * HD4;
      for (var d4 = kp; d4 < HD4; d4 += TPK) {
        dot4 += qs[d4] * kcache[kb + d4];
      }
    } else {
      for (var d4 = kp; d4 < HD4; d4 += TPK) {
        dot4 += qs[d4] * key(j, kvh, d4);
      }
    }
  }
  red[tid] = dot4.x + dot4.y + dot4.z + dot4.w;
  workgroupBarrier();
  for (var off = TPK / 2u; off > 0u; off >>= 1u) {
    if (kp < off) {
      red[tid] += red[tid + off];
    }
    workgroupBarrier();
  }
  var s = NEG;
  if (tid < n) {
    s = red[tid * TPK] * scale;
  }
  workgroupBarrier();
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
  if (tid < CHUNK) {
    sc[tid] = e;
  }
  red[tid] = e;
  workgroupBarrier();
  for (var off = CHUNK / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      red[tid] += red[tid + off];
    }
    workgroupBarrier();
  }
  // output: invocation (slice, d4) sums positions j ≡ slice (mod SLICES);
  // cached positions first, then this pass's own tokens
  let d4 = tid % HD4;
  let sl = tid / HD4;
  var o = vec4<f32>(0.0);
  if (sl < SLICES) {
    // positions j0 .. j0+cached-1 are in the cache
    let cached = select(min(n, max(step.pos, j0) - j0), n, CACHED);
    let vb = j0 * KV4 + kvh * HD4 + d4;
    var j = sl;
    for (; j < cached; j += SLICES) {
      o += sc[j] * vcache[vb + j * KV4];
    }
    for (; j < n; j += SLICES) {
      o += sc[j] * value(j0 + j, kvh, d4);
    }
  }
  ov[tid] = o;
  workgroupBarrier();
  for (var d = tid; d < HD4; d += WG) {
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
