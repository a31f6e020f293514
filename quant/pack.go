package quant

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Int8Bytes views q as bytes without copying. Because the packed format puts
// element 0 in the low byte of a little-endian u32, these bytes are already
// the packed stream WGSL reads as array<u32>.
func Int8Bytes(q []int8) []byte {
	if len(q) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&q[0])), len(q))
}

// BytesInt8 views b as int8 values without copying.
func BytesInt8(b []byte) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}

// Pack packs q (len a multiple of 4) into u32 words, 4 values per word,
// element 0 in the low byte.
func Pack(q []int8) ([]uint32, error) {
	if len(q)%4 != 0 {
		return nil, fmt.Errorf("%w: %d int8 values do not fill whole u32 words", ErrShape, len(q))
	}
	w := make([]uint32, len(q)/4)
	b := Int8Bytes(q)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w, nil
}

// Unpack is the inverse of Pack.
func Unpack(w []uint32) []int8 {
	b := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return BytesInt8(b)
}

// PadRows copies an unpadded row-major [rows][cols] int8 matrix into the
// stored layout [rows][PadQ8(cols)], zero-filling each row's tail.
func PadRows(q []int8, rows, cols int) ([]int8, error) {
	if err := checkMatrix(nil, rows, cols); err != nil {
		return nil, err
	}
	if len(q) != rows*cols {
		return nil, fmt.Errorf("%w: %d values for shape [%d, %d]", ErrShape, len(q), rows, cols)
	}
	pc := PaddedCols(cols)
	out := make([]int8, rows*pc)
	for r := 0; r < rows; r++ {
		copy(out[r*pc:], q[r*cols:(r+1)*cols])
	}
	return out, nil
}
