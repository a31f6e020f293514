// kv_store: the KV-cache store of a prefill pass: the RoPE-rotated k and the
// plain v of each of the pass's T tokens go to cache row pos+t, so that
// attn_partial (with CACHED) reads every position from the caches. Decode
// passes skip this dispatch: attn_partial stores their one token itself.
//
// Bindings (group 0):
//   0 qkv     array<vec4<f32>>  read  [T][QKV] = q | k | v, not rotated
//   1 cs      array<vec4<f32>>  read  [T][HEAD_DIM/4] (cos, sin) pairs of (pos+t)·inv_freq[i]
//   2 kcache  array<vec4<f32>>  rw    [context][KV_DIM]
//   3 vcache  array<vec4<f32>>  rw    [context][KV_DIM]
//   4 step    Step              uniform (pos)
// Overrides: N_HEADS, N_KV_HEADS, HEAD_DIM (multiple of 4).
// Dispatch: (ceil(N_KV_HEADS·HEAD_DIM/4 / 64), T, 1); one invocation per vec4.

@group(0) @binding(0) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> cs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> kcache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vcache: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> step: Step;

override N_HEADS: u32;
override N_KV_HEADS: u32;
override HEAD_DIM: u32;
override HD4: u32 = HEAD_DIM / 4u;
override KV4: u32 = N_KV_HEADS * HD4;
override Q4: u32 = N_HEADS * HD4;
override QKV4: u32 = Q4 + 2u * KV4;

@compute @workgroup_size(64)
fn kv_store(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= KV4) {
    return;
  }
  let c = cs[t * HD4 + i % HD4];
  let k = qkv[t * QKV4 + Q4 + i];
  let row = (step.pos + t) * KV4;
  kcache[row + i] = rope_rot(k, c);
  vcache[row + i] = qkv[t * QKV4 + Q4 + KV4 + i];
}
