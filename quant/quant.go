package quant

import (
	"errors"
	"fmt"
	"math"

	"github.com/ember-llm/ember/llama/bundle"
)

// GroupSize is the number of inputs sharing one scale in the Q8_0 scheme.
const GroupSize = 32

// QMax is the largest magnitude of a quantized value (symmetric: -127..127).
const QMax = 127

// Sentinel errors; every error of this package wraps one of them.
var (
	ErrNonFinite = errors.New("quant: value is NaN or infinite")
	ErrRange     = errors.New("quant: value out of range")
	ErrShape     = errors.New("quant: slice lengths disagree with the shape")
)

// Groups is the number of 32-input groups of a row of cols values.
func Groups(cols int) int { return (cols + GroupSize - 1) / GroupSize }

// PaddedCols is the stored row length of an int8 row of cols values.
func PaddedCols(cols int) int { return bundle.PadQ8(cols) }

func checkFinite(x []float32) error {
	for i, v := range x {
		if b := math.Float32bits(v); b&0x7f800000 == 0x7f800000 {
			return fmt.Errorf("%w: element %d is %v", ErrNonFinite, i, v)
		}
	}
	return nil
}

// q8 rounds half away from zero (C roundf) and clamps to ±QMax, without
// data-dependent branches: for |v| < 2^29, adding ±0.5 in float64 is exact,
// so truncating gives roundf's result.
func q8(v float32) int8 {
	f := float64(v)
	if f != f { // NaN cannot come from finite inputs; keep the output defined.
		return 0
	}
	f = math.Trunc(f + math.Copysign(0.5, f))
	return int8(min(max(f, -QMax), QMax))
}

func maxAbs(x []float32) float32 {
	var m float32
	for _, v := range x {
		if v < 0 {
			v = -v
		}
		if v > m {
			m = v
		}
	}
	return m
}

// maxAbsFinite is maxAbs that also refuses NaN and ±Inf, in one pass.
func maxAbsFinite(x []float32) (float32, error) {
	var m float32
	for _, v := range x {
		a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
		if a > m {
			m = a
		} else if !(a <= m) { // NaN
			return 0, checkFinite(x)
		}
	}
	if m > math.MaxFloat32 {
		return 0, checkFinite(x)
	}
	return m, nil
}

// QuantizeRowChannel quantizes one row with a single scale. dst must hold
// at least len(x) values; dst[len(x):] is zeroed (row padding). An all-zero
// row gets scale 0 and all-zero q. For maxabs near MaxFloat32 the scale is
// one ulp below maxabs/127 so that 127*scale stays finite.
func QuantizeRowChannel(dst []int8, x []float32) (scale float32, err error) {
	if len(dst) < len(x) {
		return 0, fmt.Errorf("%w: dst holds %d values, row has %d", ErrShape, len(dst), len(x))
	}
	amax, err := maxAbsFinite(x)
	if err != nil {
		return 0, err
	}
	scale = amax / QMax
	if scale == 0 { // all zero, or maxabs so small that the scale underflows
		clear(dst)
		return 0, nil
	}
	if math.IsInf(float64(QMax*scale), 0) {
		// maxabs near MaxFloat32: keep 127*scale finite so dequantizing
		// cannot overflow.
		scale = math.Nextafter32(scale, 0)
	}
	for i, v := range x {
		dst[i] = q8(v / scale)
	}
	clear(dst[len(x):])
	return scale, nil
}

// DequantizeRowChannel writes q[i]*scale into dst[i] for i < len(dst).
func DequantizeRowChannel(dst []float32, q []int8, scale float32) {
	q = q[:len(dst)]
	for i, v := range q {
		dst[i] = float32(v) * scale
	}
}

// QuantizeRowBlock32 quantizes one row exactly as ggml's
// quantize_row_q8_0_ref: per group of 32, d = amax/127 (f32), stored as f16,
// q = roundf(x * (1/d)). A short last group is padded with zeros. dstQ must
// hold PadQ8(len(x)) values and dstScales Groups(len(x)).
//
// A group whose scale overflows f16 (amax > 65504*127) is an ErrRange error.
// A group so small that 1/d overflows (ggml is undefined there) gets
// q = round(127*x/amax) computed in float64; its f16 scale is 0 anyway.
func QuantizeRowBlock32(dstQ []int8, dstScales []uint16, x []float32) error {
	n := len(x)
	g := Groups(n)
	if len(dstQ) < g*GroupSize || len(dstScales) < g {
		return fmt.Errorf("%w: row of %d needs %d values and %d scales, have %d and %d",
			ErrShape, n, g*GroupSize, g, len(dstQ), len(dstScales))
	}
	for b := 0; b < g; b++ {
		lo, hi := b*GroupSize, min((b+1)*GroupSize, n)
		xs, qs := x[lo:hi], dstQ[b*GroupSize:(b+1)*GroupSize]
		amax, err := maxAbsFinite(xs)
		if err != nil {
			return fmt.Errorf("columns %d..%d: %w", lo, hi-1, err)
		}
		d := amax / QMax
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dh := F32ToF16(d)
		if dh == 0x7c00 {
			return fmt.Errorf("%w: group %d (columns %d..%d): max |x| %g needs scale %g, beyond f16's 65504",
				ErrRange, b, lo, hi-1, amax, d)
		}
		dstScales[b] = dh
		if math.IsInf(float64(id), 0) {
			for j, v := range xs {
				qs[j] = q8(float32(float64(v) * QMax / float64(amax)))
			}
		} else {
			for j, v := range xs {
				qs[j] = q8(v * id)
			}
		}
		clear(qs[len(xs):])
	}
	return nil
}

// DequantizeRowBlock32 writes q*f16(scale) of each group into dst (len(dst)
// values), as ggml's dequantize_row_q8_0.
func DequantizeRowBlock32(dst []float32, q []int8, scales []uint16) {
	n := len(dst)
	q = q[:n]
	_ = scales[:Groups(n)]
	for b := 0; b*GroupSize < n; b++ {
		d := F16ToF32(scales[b])
		lo, hi := b*GroupSize, min((b+1)*GroupSize, n)
		for j, v := range q[lo:hi] {
			dst[lo+j] = float32(v) * d
		}
	}
}

func checkMatrix(x []float32, rows, cols int) error {
	if rows < 0 || cols < 0 || (cols > 0 && rows > math.MaxInt/PaddedCols(cols)) {
		return fmt.Errorf("%w: impossible shape [%d, %d]", ErrShape, rows, cols)
	}
	if x != nil && len(x) != rows*cols {
		return fmt.Errorf("%w: %d values for shape [%d, %d]", ErrShape, len(x), rows, cols)
	}
	return nil
}

// QuantizeChannel quantizes a row-major [rows][cols] matrix with one scale
// per row. q is [rows][PadQ8(cols)].
func QuantizeChannel(x []float32, rows, cols int) (q []int8, scales []float32, err error) {
	if err := checkMatrix(x, rows, cols); err != nil {
		return nil, nil, err
	}
	pc := PaddedCols(cols)
	q = make([]int8, rows*pc)
	scales = make([]float32, rows)
	for r := 0; r < rows; r++ {
		s, err := QuantizeRowChannel(q[r*pc:(r+1)*pc], x[r*cols:(r+1)*cols])
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", r, err)
		}
		scales[r] = s
	}
	return q, scales, nil
}

// DequantizeChannel expands a per-channel matrix back to [rows][cols] f32.
func DequantizeChannel(q []int8, scales []float32, rows, cols int) ([]float32, error) {
	if err := checkMatrix(nil, rows, cols); err != nil {
		return nil, err
	}
	pc := PaddedCols(cols)
	if len(q) != rows*pc || len(scales) != rows {
		return nil, fmt.Errorf("%w: [%d, %d] needs %d values and %d scales, have %d and %d",
			ErrShape, rows, cols, rows*pc, rows, len(q), len(scales))
	}
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		DequantizeRowChannel(out[r*cols:(r+1)*cols], q[r*pc:], scales[r])
	}
	return out, nil
}

// QuantizeBlock32 quantizes a row-major [rows][cols] matrix with ggml's Q8_0
// rule. q is [rows][PadQ8(cols)], scales [rows][Groups(cols)] f16 bits.
func QuantizeBlock32(x []float32, rows, cols int) (q []int8, scales []uint16, err error) {
	if err := checkMatrix(x, rows, cols); err != nil {
		return nil, nil, err
	}
	pc, g := PaddedCols(cols), Groups(cols)
	q = make([]int8, rows*pc)
	scales = make([]uint16, rows*g)
	for r := 0; r < rows; r++ {
		if err := QuantizeRowBlock32(q[r*pc:(r+1)*pc], scales[r*g:(r+1)*g], x[r*cols:(r+1)*cols]); err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", r, err)
		}
	}
	return q, scales, nil
}

// DequantizeBlock32 expands a Q8_0-style matrix back to [rows][cols] f32.
func DequantizeBlock32(q []int8, scales []uint16, rows, cols int) ([]float32, error) {
	if err := checkMatrix(nil, rows, cols); err != nil {
		return nil, err
	}
	pc, g := PaddedCols(cols), Groups(cols)
	if len(q) != rows*pc || len(scales) != rows*g {
		return nil, fmt.Errorf("%w: [%d, %d] needs %d values and %d scales, have %d and %d",
			ErrShape, rows, cols, rows*pc, rows*g, len(q), len(scales))
	}
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		DequantizeRowBlock32(out[r*cols:(r+1)*cols], q[r*pc:], scales[r*g:])
	}
	return out, nil
}

// DequantizeGroups expands a flat int8 stream whose consecutive groups of
// groupSize values share one f32 scale (llama2.c's "version 2" Q8_0 layout,
// where groups may straddle rows) into dst (len(dst) values).
func DequantizeGroups(dst []float32, q []int8, scales []float32, groupSize int) error {
	if groupSize <= 0 || len(q) < len(dst) || len(scales) < (len(dst)+groupSize-1)/groupSize {
		return fmt.Errorf("%w: %d values with group size %d need as many q and %d scales, have %d and %d",
			ErrShape, len(dst), groupSize, (len(dst)+max(groupSize, 1)-1)/max(groupSize, 1), len(q), len(scales))
	}
	for i := range dst {
		dst[i] = float32(q[i]) * scales[i/groupSize]
	}
	return nil
}
