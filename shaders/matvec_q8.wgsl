// matvec_q8: y = W·x for int8 weights and int8-quantized activations
// (decode; also T > 1 tokens through the z dimension).
//
// Bindings (group 0):
//   0 w   array<vec4<u32>>  read   weight rows, int8 packed 4 per u32, each
//                                   row padded to KP = PadQ8(COLS) values
//   1 s   array<u32>        read   scales: q8_channel f32 [rows] (as bits);
//                                   q8_block32 f16 pairs [rows][G]
//   2 xq  array<vec4<u32>>  read   activations [T][KP] int8 packed (quantize_q8)
//   3 xs  array<f32>        read   activation scales [T][G], one per 32 inputs
//   4 y   array<f32>        rw     output [T][Y_STRIDE] at Y_OFFSET
// Overrides: COLS (K), ROWS (N outputs), BLOCK32, MODE (0 store, 1 add into
//   y: the residual, 2 SwiGLU: weight rows [0,ROWS) are the gate, [ROWS,2·ROWS)
//   the up projection, y = silu(gate)·up), RPW rows per workgroup (1..4),
//   WG workgroup size (power of two), Y_STRIDE, Y_OFFSET.
// Dispatch: (bx, by, T) workgroups with bx·by ≥ ceil(ROWS/RPW) (by > 1 only
//   beyond 65535), one workgroup per RPW output rows.
// Each thread walks the row in 16-byte steps (half a scale group): integer
// dot of 16 int8 pairs (exact), scaled by the activation group's scale (and
// the weight group's scale for q8_block32); the per-thread sums are reduced
// in workgroup memory. q8_channel applies the row scale once at the end.

@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> s: array<u32>;
@group(0) @binding(2) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> xs: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override COLS: u32;
override ROWS: u32;
override BLOCK32: bool = false;
override MODE: u32 = 0u;
override RPW: u32 = 4u;
override WG: u32 = 256u;
override Y_STRIDE: u32 = ROWS;
override Y_OFFSET: u32 = 0u;

override G: u32 = (COLS + 31u) / 32u;   // scale groups per row
override KV: u32 = G * 2u;             // vec4<u32> per row

// per-invocation partial sums of the RPW rows (a) and, for SwiGLU, of the
// matching up-projection rows (b); vectors, not indexed private arrays, so
// that they stay in registers
var<workgroup> pa: array<vec4<f32>, WG>;
var<workgroup> pb: array<vec4<f32>, WG>;

fn wscale(row: u32, g: u32) -> f32 {
  if (BLOCK32) {
    let e = row * G + g;
    let h = unpack2x16float(s[e >> 1u]);
    return select(h.x, h.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(s[row]);
}

// one row's contribution for the 16 inputs of vec4 k (half of group g)
fn term(r: u32, k: u32, g: u32, xv: vec4<u32>, xsc: f32) -> f32 {
  let wv = w[r * KV + k];
  let d = idot4(wv.x, xv.x) + idot4(wv.y, xv.y) + idot4(wv.z, xv.z) + idot4(wv.w, xv.w);
  if (BLOCK32) {
    return f32(d) * (xsc * wscale(r, g));
  }
  return f32(d) * xsc;
}

@compute @workgroup_size(WG)
fn matvec_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
  let row0 = (wid.x + wid.y * nwg.x) * RPW;
  if (row0 >= ROWS) {
    return;
  }
  let t = wid.z;
  // rows past the end repeat the last one (their sums are not stored)
  let r1 = min(row0 + 1u, ROWS - 1u);
  let r2 = min(row0 + 2u, ROWS - 1u);
  let r3 = min(row0 + 3u, ROWS - 1u);
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  for (var k = tid; k < KV; k += WG) {
    let xv = xq[t * KV + k];
    let g = k >> 1u;
    let xsc = xs[t * G + g];
    a.x += term(row0, k, g, xv, xsc);
    if (RPW > 1u) {
      a.y += term(r1, k, g, xv, xsc);
    }
    if (RPW > 2u) {
      a.z += term(r2, k, g, xv, xsc);
    }
    if (RPW > 3u) {
      a.w += term(r3, k, g, xv, xsc);
    }
    if (MODE == 2u) {
      b.x += term(ROWS + row0, k, g, xv, xsc);
      if (RPW > 1u) {
        b.y += term(ROWS + r1, k, g, xv, xsc);
      }
      if (RPW > 2u) {
        b.z += term(ROWS + r2, k, g, xv, xsc);
      }
      if (RPW > 3u) {
        b.w += term(ROWS + r3, k, g, xv, xsc);
      }
    }
  }
  pa[tid] = a;
  pb[tid] = b;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      pa[tid] += pa[tid + off];
      if (MODE == 2u) {
        pb[tid] += pb[tid + off];
      }
    }
    workgroupBarrier();
  }
  if (tid < RPW && row0 + tid < ROWS) {
    let row = row0 + tid;
    var v = pa[0][tid];
    if (!BLOCK32) {
      v = v * wscale(row, 0u);
    }
    let o = t * Y_STRIDE + Y_OFFSET + row;
    if (MODE == 1u) {
      y[o] = y[o] + v;
    } else if (MODE == 2u) {
      var u = pb[0][tid];
      if (!BLOCK32) {
        u = u * wscale(ROWS + row, 0u);
      }
      y[o] = v / (1.0 + exp(-v)) * u;
    } else {
      y[o] = v;
    }
  }
}
