// Package quant holds Ember's int8 weight schemes and the number formats
// around them:
//
//   - per-channel int8 (bundle scheme q8_channel): one f32 scale per output
//     row, scale = maxabs/127, q = round(x/scale);
//   - Q8_0-compatible int8 (bundle scheme q8_block32): one f16 scale per group
//     of 32 inputs, bit-identical to ggml's quantize_row_q8_0_ref, so GGUF
//     Q8_0 tensors import without requantizing (DecodeQ8_0);
//   - packing (4 int8 per little-endian u32, rows zero-padded to
//     bundle.PadQ8(cols)), f32↔f16 and bf16→f32 conversion, and error
//     statistics (max abs error, RMSE, SNR).
//
// In memory a quantized matrix is row-major [rows][PadQ8(cols)] int8 plus its
// scales: []float32 (one per row) or []uint16 f16 bits ([rows][Groups(cols)]).
// The bytes of that int8 slice, in order, are exactly the packed u32 words
// that WGSL reads (element 0 in the low byte), so Int8Bytes is all the
// packing a writer needs.
//
// Quantizers refuse NaN and ±Inf (ErrNonFinite) and Q8_0 scales that do not
// fit f16 (ErrRange); they never panic on data. The package is pure Go and
// must stay so: no I/O, no file formats, no syscall/js.
package quant
