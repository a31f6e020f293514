// matmul_q8: Y = X·Wᵀ for T tokens (prefill), int8 weights × int8-quantized
// activations, tiled in workgroup memory: a workgroup computes a 64-token ×
// 64-row tile, each invocation a 4×4 block, stepping through K one scale
// group (32 values) at a time. Per group the integer dot is exact and is
// scaled as the CPU engine does: q8_channel acc += f32(dot)·xs, times the
// row scale at the end; q8_block32 acc += f32(dot)·(xs·ws).
//
// Bindings (group 0):
//   0 w     array<u32>  read  [rows][KP/4] int8 packed, rows padded to KP
//   1 s     array<u32>  read  scales (f32 [rows] or f16 [rows][G])
//   2 xq    array<u32>  read  [T][KP/4]
//   3 xs    array<f32>  read  [T][G]
//   4 y     array<f32>  rw    [T][Y_STRIDE] at Y_OFFSET
//   5 step  Step        uniform (n_tokens = T)
// Overrides: COLS, ROWS, BLOCK32, MODE (0 store, 1 add into y), Y_STRIDE, Y_OFFSET.
// Dispatch: (ceil(ROWS/64), ceil(T/64), 1); workgroup 16×16.

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> s: array<u32>;
@group(0) @binding(2) var<storage, read> xq: array<u32>;
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

const TILE = 64u;
const LD = 9u; // padded row of 8 words: avoids bank conflicts

var<workgroup> wt: array<u32, 576>;  // TILE × LD
var<workgroup> xt: array<u32, 576>;
var<workgroup> wsc: array<f32, 64>;
var<workgroup> xsc: array<f32, 64>;

fn wscale(row: u32, g: u32) -> f32 {
  if (BLOCK32) {
    let e = row * G + g;
    let h = unpack2x16float(s[e >> 1u]);
    return select(h.x, h.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(s[row]);
}

@compute @workgroup_size(16, 16)
fn matmul_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
  let T = step.n_tokens;
  let row0 = wid.x * TILE;
  let tok0 = wid.y * TILE;
  var acc: array<array<f32, 4>, 4>; // [token i][row j]
  for (var g = 0u; g < G; g++) {
    // 512 words of each tile, two per invocation
    for (var k = tid; k < TILE * 8u; k += 256u) {
      let r = k / 8u;
      let c = k % 8u;
      var wv = 0u;
      if (row0 + r < ROWS) {
        wv = w[(row0 + r) * G * 8u + g * 8u + c];
      }
      wt[r * LD + c] = wv;
      var xv = 0u;
      if (tok0 + r < T) {
        xv = xq[(tok0 + r) * G * 8u + g * 8u + c];
      }
      xt[r * LD + c] = xv;
    }
    if (tid < TILE) {
      var sv = 0.0;
      if (tok0 + tid < T) {
        sv = xs[(tok0 + tid) * G + g];
      }
      xsc[tid] = sv;
    } else if (tid < 2u * TILE) {
      let r = tid - TILE;
      var sv = 0.0;
      if (BLOCK32 && row0 + r < ROWS) {
        sv = wscale(row0 + r, g);
      }
      wsc[r] = sv;
    }
    workgroupBarrier();
    for (var i = 0u; i < 4u; i++) {
      let tr = (lid.y * 4u + i) * LD;
      let xscale = xsc[lid.y * 4u + i];
      for (var j = 0u; j < 4u; j++) {
        let wr = (lid.x * 4u + j) * LD;
        var d = 0;
        for (var c = 0u; c < 8u; c++) {
          d += idot4(xt[tr + c], wt[wr + c]);
        }
        if (BLOCK32) {
          acc[i][j] += f32(d) * (xscale * wsc[lid.x * 4u + j]);
        } else {
          acc[i][j] += f32(d) * xscale;
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let t = tok0 + lid.y * 4u + i;
    if (t >= T) {
      continue;
    }
    for (var j = 0u; j < 4u; j++) {
      let row = row0 + lid.x * 4u + j;
      if (row >= ROWS) {
        continue;
      }
      var v = acc[i][j];
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
