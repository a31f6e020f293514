// quantize_q8: f32 activations → int8 in groups of 32 (the CPU engine's
// runq-style activation quantization): scale = maxabs/127, q = round(x/scale)
// half away from zero, rows zero-padded to KP = PadQ8(COLS).
//
// Bindings (group 0):
//   0 x   array<f32>  read  input [T][X_STRIDE] at X_OFFSET
//   1 xq  array<u32>  rw    output [T][KP/4] int8 packed 4 per u32
//   2 xs  array<f32>  rw    output scales [T][G]
// Overrides: COLS, X_STRIDE, X_OFFSET.
// Dispatch: (ceil(G/64), T, 1); a workgroup covers 64 groups of 32.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> xs: array<f32>;

override COLS: u32;
override X_STRIDE: u32 = COLS;
override X_OFFSET: u32 = 0u;
override G: u32 = (COLS + 31u) / 32u;

var<workgroup> red: array<f32, 256>;

// A workgroup of 256 covers 64 groups (512 packed words) in two rounds; one
// invocation per word (4 values), the group's maxabs combined in workgroup
// memory across its 8 words.
@compute @workgroup_size(256)
fn quantize_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wid.y;
  let xb = t * X_STRIDE + X_OFFSET;
  for (var r = 0u; r < 2u; r++) {
    let wi = wid.x * 512u + r * 256u + tid;
    let i0 = wi * 4u;
    var v = vec4<f32>(0.0);
    if (i0 < COLS) {
      v.x = x[xb + i0];
    }
    if (i0 + 1u < COLS) {
      v.y = x[xb + i0 + 1u];
    }
    if (i0 + 2u < COLS) {
      v.z = x[xb + i0 + 2u];
    }
    if (i0 + 3u < COLS) {
      v.w = x[xb + i0 + 3u];
    }
    act_q8_word(v, wi, t, tid);
  }
}
