// matmul_q8: Y = X·Wᵀ for T tokens (prefill), int8 weights × int8-quantized
// activations, tiled in workgroup memory: a workgroup computes a 64-token ×
// 64-row tile, each invocation 4 tokens × 4 rows (strided by 16, so that a
// warp's workgroup-memory reads are conflict-free 16-byte loads), stepping
// through K two scale groups (64 values) at a time. Per group the integer
// dot is exact and is scaled as the CPU engine does: q8_channel
// acc += f32(dot)·xs, times the row scale at the end; q8_block32
// acc += f32(dot)·(xs·ws).
//
// Bindings (group 0):
//   0 w     array<vec4<u32>>  read  [rows][KP/16] int8 packed, rows padded to KP
//   1 s     array<u32>        read  scales (f32 [rows] or f16 [rows][G])
//   2 xq    array<vec4<u32>>  read  [T][KP/16]
//   3 xs    array<f32>        read  [T][G]
//   4 y     array<f32>        rw    [T][Y_STRIDE] at Y_OFFSET
//   5 step  Step              uniform (n_tokens = T)
// Overrides: COLS, ROWS, BLOCK32, MODE (0 store, 1 add into y), Y_STRIDE, Y_OFFSET.
// Dispatch: (ceil(ROWS/64), ceil(T/64), 1); workgroup 16×16.

@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> s: array<u32>;
@group(0) @binding(2) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> xs: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> step: Step;

override COLS: u32;
override ROWS: u32;
override BLOCK32: bool = false;
override MODE: u32 = 0u;
override Y_STRIDE: u32 = ROWS;
override Y_OFFSET: u32 = 0u;
override G: u32 = (COLS + 31u) / 32u;
override KV: u32 = G * 2u; // vec4<u32> per row

const TILE = 64u;
const KS = 2u; // scale groups per stage

// [h][row]: h = vec4 index within the stage (2 per group)
var<workgroup> wt: array<vec4<u32>, 256>;
var<workgroup> xt: array<vec4<u32>, 256>;
var<workgroup> wsc: array<f32, 128>; // [k][row]
var<workgroup> xsc: array<f32, 128>; // [k][token]

fn wscale(row: u32, g: u32) -> f32 {
  if (BLOCK32) {
    let e = row * G + g;
    let h = unpack2x16float(s[e >> 1u]);
    return select(h.x, h.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(s[row]);
}

fn dot16(a: vec4<u32>, b: vec4<u32>) -> i32 {
  return idot4(a.x, b.x) + idot4(a.y, b.y) + idot4(a.z, b.z) + idot4(a.w, b.w);
}

// the 4 rows' integer dots of one token for one group (32 values = a|b halves)
fn rowdots(xa: vec4<u32>, xb: vec4<u32>, w: array<vec4<u32>, 8>) -> vec4<f32> {
  return vec4<f32>(vec4<i32>(dot16(xa, w[0]) + dot16(xb, w[1]), dot16(xa, w[2]) + dot16(xb, w[3]),
                             dot16(xa, w[4]) + dot16(xb, w[5]), dot16(xa, w[6]) + dot16(xb, w[7])));
}

@compute @workgroup_size(16, 16)
fn matmul_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
  let T = step.n_tokens;
  let row0 = wid.x * TILE;
  let tok0 = wid.y * TILE;
  // acc<i>: token lid.y + 16·i, components: rows lid.x + 16·j (no dynamically
  // indexed private arrays: they can land in local memory)
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  // global → workgroup copy: 4 consecutive invocations read 64 contiguous bytes of one row
  let lr = tid / 4u;
  let lh = tid % 4u;
  for (var g0 = 0u; g0 < G; g0 += KS) {
    let kv = g0 * 2u + lh;
    var wv = vec4<u32>(0u);
    if (row0 + lr < ROWS && kv < KV) {
      wv = w[(row0 + lr) * KV + kv];
    }
    wt[lh * TILE + lr] = wv;
    var xv = vec4<u32>(0u);
    if (tok0 + lr < T && kv < KV) {
      xv = xq[(tok0 + lr) * KV + kv];
    }
    xt[lh * TILE + lr] = xv;
    if (tid < 128u) {
      let k = tid / TILE;
      let t = tid % TILE;
      var sv = 0.0;
      if (tok0 + t < T && g0 + k < G) {
        sv = xs[(tok0 + t) * G + g0 + k];
      }
      xsc[tid] = sv;
    } else if (BLOCK32) {
      let k = (tid - 128u) / TILE;
      let r = (tid - 128u) % TILE;
      var sv = 0.0;
      if (row0 + r < ROWS && g0 + k < G) {
        sv = wscale(row0 + r, g0 + k);
      }
      wsc[tid - 128u] = sv;
    }
    workgroupBarrier();
    for (var k = 0u; k < KS; k++) {
      let a = 2u * k * TILE;
      let b = a + TILE;
      let r = lid.x;
      let wv = array<vec4<u32>, 8>(wt[a + r], wt[b + r], wt[a + r + 16u], wt[b + r + 16u],
                                   wt[a + r + 32u], wt[b + r + 32u], wt[a + r + 48u], wt[b + r + 48u]);
      let t = lid.y;
      let xs4 = vec4<f32>(xsc[k * TILE + t], xsc[k * TILE + t + 16u], xsc[k * TILE + t + 32u], xsc[k * TILE + t + 48u]);
      var ws4 = vec4<f32>(1.0);
      if (BLOCK32) {
        ws4 = vec4<f32>(wsc[k * TILE + r], wsc[k * TILE + r + 16u], wsc[k * TILE + r + 32u], wsc[k * TILE + r + 48u]);
      }
      acc0 += rowdots(xt[a + t], xt[b + t], wv) * (xs4.x * ws4);
      acc1 += rowdots(xt[a + t + 16u], xt[b + t + 16u], wv) * (xs4.y * ws4);
      acc2 += rowdots(xt[a + t + 32u], xt[b + t + 32u], wv) * (xs4.z * ws4);
      acc3 += rowdots(xt[a + t + 48u], xt[b + t + 48u], wv) * (xs4.w * ws4);
    }
    workgroupBarrier();
  }
  let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let t = tok0 + lid.y + 16u * i;
    if (t >= T) {
      continue;
    }
    for (var j = 0u; j < 4u; j++) {
      let row = row0 + lid.x + 16u * j;
      if (row >= ROWS) {
        continue;
      }
      var v = accs[i][j];
      if (!BLOCK32) {
        v = v * wscale(row, 0u);
      }
      let o = t * Y_STRIDE + Y_OFFSET + row;
      if (MODE == 1u) {
        y[o] = y[o] + v;
      } else {
        y[o] = v;
      }
    }
  }
}
