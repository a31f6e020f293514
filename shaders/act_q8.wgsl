// Activation quantization (prelude of quantize_q8, rmsnorm_q8 and
// attn_reduce_q8): int8 in groups of 32 like the CPU engine's runq path,
// scale = maxabs/127, q = round(x/scale) half away from zero (Go's
// math.Round), packed 4 per u32 (element 0 in the low byte).

// act_q8 rounds v to int8, as the low byte of a u32.
fn act_q8(v: f32) -> u32 {
  let r = sign(v) * floor(abs(v) + 0.5);
  return u32(bitcast<u32>(i32(r)) & 0xffu);
}

// act_q8_pack quantizes 4 values with inv = 1/scale into one word.
fn act_q8_pack(v: vec4<f32>, inv: f32) -> u32 {
  return act_q8(v.x * inv) | (act_q8(v.y * inv) << 8u) | (act_q8(v.z * inv) << 16u) | (act_q8(v.w * inv) << 24u);
}

// act_q8_inv is 1/scale, 0 for an all-zero group.
fn act_q8_inv(scale: f32) -> f32 {
  if (scale == 0.0) {
    return 0.0;
  }
  return 1.0 / scale;
}

// act_q8_word quantizes word wi (its 4 values v) of token t's row into the
// kernel's xq [T][G·8] and xs [T][G]. The word's group of 8 is held by
// invocations tid&~7 .. (tid&~7)+7, which combine their maxabs in the
// kernel's workgroup array red; words past the row (wi ≥ G·8) take part but
// store nothing. Call from uniform control flow.
fn act_q8_word(v: vec4<f32>, wi: u32, t: u32, tid: u32) {
  let a = abs(v);
  red[tid] = max(max(a.x, a.y), max(a.z, a.w));
  workgroupBarrier();
  let g0 = tid & ~7u;
  var m = red[g0];
  for (var k = 1u; k < 8u; k++) {
    m = max(m, red[g0 + k]);
  }
  workgroupBarrier();
  if (wi < G * 8u) {
    let scale = m / 127.0;
    xq[t * G * 8u + wi] = act_q8_pack(v, act_q8_inv(scale));
    if ((wi & 7u) == 0u) {
      xs[t * G + wi / 8u] = scale;
    }
  }
}
