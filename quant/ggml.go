package quant

import (
	"encoding/binary"
	"fmt"
)

// Q8_0BlockBytes is the size of one ggml block_q8_0: an f16 scale followed by
// 32 int8 values.
const Q8_0BlockBytes = 2 + GroupSize

// Q8_0Bytes is the size of a GGUF Q8_0 tensor of shape [rows][cols] (cols a
// multiple of 32), or -1 when the shape is impossible or overflows.
func Q8_0Bytes(rows, cols int64) int64 {
	if rows < 0 || cols < 0 || cols%GroupSize != 0 {
		return -1
	}
	blocks := cols / GroupSize
	if blocks != 0 && rows > (1<<62)/blocks/Q8_0BlockBytes {
		return -1
	}
	return rows * blocks * Q8_0BlockBytes
}

// DecodeQ8_0 splits GGUF/ggml Q8_0 blocks (34 bytes each, rows*cols/32 of
// them, row-major) into the Ember layout: q [rows][PadQ8(cols)] (= cols,
// since Q8_0 rows are whole blocks) and scales [rows][cols/32] f16 bits.
// Values are kept bit for bit. A scale that is Inf or NaN is an ErrNonFinite
// error naming the row and group.
func DecodeQ8_0(src []byte, rows, cols int) (q []int8, scales []uint16, err error) {
	if rows < 0 || cols <= 0 || cols%GroupSize != 0 {
		return nil, nil, fmt.Errorf("%w: Q8_0 needs a row length that is a positive multiple of 32, got [%d, %d]", ErrShape, rows, cols)
	}
	if n := Q8_0Bytes(int64(rows), int64(cols)); n < 0 || int64(len(src)) != n {
		return nil, nil, fmt.Errorf("%w: Q8_0 [%d, %d] needs %d bytes, have %d", ErrShape, rows, cols, n, len(src))
	}
	g := cols / GroupSize
	q = make([]int8, rows*cols)
	scales = make([]uint16, rows*g)
	qb := Int8Bytes(q)
	for i := range scales {
		blk := src[i*Q8_0BlockBytes : (i+1)*Q8_0BlockBytes]
		d := binary.LittleEndian.Uint16(blk)
		if d&0x7c00 == 0x7c00 {
			return nil, nil, fmt.Errorf("%w: Q8_0 row %d group %d has scale bits %#04x", ErrNonFinite, i/g, i%g, d)
		}
		scales[i] = d
		copy(qb[i*GroupSize:], blk[2:])
	}
	return q, scales, nil
}

// EncodeQ8_0 is the inverse of DecodeQ8_0 (for tests and fixtures): it
// writes rows*cols/32 ggml blocks.
func EncodeQ8_0(q []int8, scales []uint16, rows, cols int) ([]byte, error) {
	if rows < 0 || cols <= 0 || cols%GroupSize != 0 || len(q) != rows*cols || len(scales) != rows*cols/GroupSize {
		return nil, fmt.Errorf("%w: Q8_0 [%d, %d] with %d values and %d scales", ErrShape, rows, cols, len(q), len(scales))
	}
	out := make([]byte, 0, len(scales)*Q8_0BlockBytes)
	qb := Int8Bytes(q)
	for i, d := range scales {
		out = binary.LittleEndian.AppendUint16(out, d)
		out = append(out, qb[i*GroupSize:(i+1)*GroupSize]...)
	}
	return out, nil
}
