// matvec_f32: y = W·x for f32 weights (f32 bundles), T tokens through z.
//
// Bindings (group 0):
//   0 w  array<f32>  read  weight rows [rows][COLS]
//   1 x  array<f32>  read  input [T][X_STRIDE] at X_OFFSET
//   2 y  array<f32>  rw    output [T][Y_STRIDE] at Y_OFFSET
// Overrides: COLS, ROWS, MODE (0 store, 1 add into y, 2 SwiGLU over weight
//   rows [0,ROWS) gate and [ROWS,2·ROWS) up), RPW (1..8), WG (power of two),
//   X_STRIDE, X_OFFSET, Y_STRIDE, Y_OFFSET.
// Dispatch: (bx, by, T), bx·by ≥ ceil(ROWS/RPW).

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override COLS: u32;
override ROWS: u32;
override MODE: u32 = 0u;
override RPW: u32 = 4u;
override WG: u32 = 256u;
override X_STRIDE: u32 = COLS;
override X_OFFSET: u32 = 0u;
override Y_STRIDE: u32 = ROWS;
override Y_OFFSET: u32 = 0u;
override NACC: u32 = select(RPW, 2u * RPW, MODE == 2u);

const MAXACC = 16u;
var<workgroup> part: array<f32, NACC * WG>;

fn wrow(row0: u32, j: u32) -> u32 {
  if (MODE == 2u && j >= RPW) {
    return ROWS + row0 + j - RPW;
  }
  return row0 + j;
}

@compute @workgroup_size(WG)
fn matvec_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) tid: u32) {
  let row0 = (wid.x + wid.y * nwg.x) * RPW;
  if (row0 >= ROWS) {
    return;
  }
  let t = wid.z;
  var acc: array<f32, MAXACC>;
  for (var k = tid; k < COLS; k += WG) {
    let xv = x[t * X_STRIDE + X_OFFSET + k];
    for (var j = 0u; j < NACC; j++) {
      if (row0 + (j % RPW) < ROWS) {
        acc[j] += w[wrow(row0, j) * COLS + k] * xv;
      }
    }
  }
  for (var j = 0u; j < NACC; j++) {
    part[j * WG + tid] = acc[j];
  }
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      for (var j = 0u; j < NACC; j++) {
        part[j * WG + tid] += part[j * WG + tid + off];
      }
    }
    workgroupBarrier();
  }
  if (tid < RPW && row0 + tid < ROWS) {
    let v = part[tid * WG];
    let o = t * Y_STRIDE + Y_OFFSET + row0 + tid;
    if (MODE == 1u) {
      y[o] = y[o] + v;
    } else if (MODE == 2u) {
      y[o] = v / (1.0 + exp(-v)) * part[(tid + RPW) * WG];
    } else {
      y[o] = v;
    }
  }
}
