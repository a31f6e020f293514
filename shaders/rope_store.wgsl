// rope_store: RoPE on the interleaved pairs (2i, 2i+1) of every q and k head
// of the fused qkv activations, and the KV-cache store: rotated k and plain v
// of token t go to row pos+t of the caches. q is rotated in place.
//
// Bindings (group 0):
//   0 qkv     array<f32>        rw    [T][QKV] = q (N_HEADS·HEAD_DIM) | k | v (KV_DIM each)
//   1 cs      array<vec2<f32>>  read  [T][HEAD_DIM/2] (cos, sin) of (pos+t)·inv_freq[i],
//                                     computed on the host like the CPU engine's tables
//   2 kcache  array<f32>        rw    [context][KV_DIM]
//   3 vcache  array<f32>        rw    [context][KV_DIM]
//   4 step    Step              uniform (pos)
// Overrides: N_HEADS, N_KV_HEADS, HEAD_DIM.
// Dispatch: (ceil((N_HEADS + 2·N_KV_HEADS)·HEAD_DIM/2 / 64), T, 1); one
//   invocation per pair.

@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(3) var<storage, read_write> vcache: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;

override N_HEADS: u32;
override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override Q_DIM: u32 = N_HEADS * HEAD_DIM;
override KV_DIM: u32 = N_KV_HEADS * HEAD_DIM;
override QKV: u32 = Q_DIM + 2u * KV_DIM;

@compute @workgroup_size(64)
fn rope_store(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = gid.x;
  let t = gid.y;
  let e = 2u * p;
  if (e >= QKV) {
    return;
  }
  let base = t * QKV;
  let v0 = qkv[base + e];
  let v1 = qkv[base + e + 1u];
  let crow = (step.pos + t) * KV_DIM;
  if (e >= Q_DIM + KV_DIM) {
    let o = e - Q_DIM - KV_DIM;
    vcache[crow + o] = v0;
    vcache[crow + o + 1u] = v1;
    return;
  }
  let c = cs[t * (HEAD_DIM / 2u) + (e % HEAD_DIM) / 2u];
  let r0 = v0 * c.x - v1 * c.y;
  let r1 = v0 * c.y + v1 * c.x;
  if (e < Q_DIM) {
    qkv[base + e] = r0;
    qkv[base + e + 1u] = r1;
  } else {
    let o = e - Q_DIM;
    kcache[crow + o] = r0;
    kcache[crow + o + 1u] = r1;
  }
}
