package convert

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/quant"
)

// Q8RowSource is optionally implemented by a Source that holds some
// matrices already quantized as Q8_0 (GGUF). Convert asks it first for every
// tensor, so that such a matrix streams into q8_block32 a few rows at a
// time, bit for bit, and is dequantized row by row under the other schemes.
type Q8RowSource interface {
	// TensorQ8Rows reports whether the named tensor is a matrix stored as
	// Q8_0 blocks. When it is, it returns the canonical shape [rows, cols]
	// and a function that fills q (n rows of bundle.PadQ8(cols) values,
	// padding zeroed) and scales (n rows of quant.Groups(cols) f16 bits)
	// with the next n rows, in order from row 0. ok is false, with no
	// error, for a tensor stored otherwise: read it with TensorRows or
	// Tensor.
	TensorQ8Rows(name string) (shape []int, next func(q []int8, scales []uint16) error, ok bool, err error)
}

// q8ChunkRows is how many pre-quantized rows to copy per step: about 256
// KiB of int8 values (as many values as chunkRows' 1 MiB of f32).
func q8ChunkRows(paddedCols int) int { return max(1, (1<<18)/paddedCols) }

// checkQ8Scales refuses a NaN or infinite f16 scale in rows row0… of a
// tensor with groups scales per row.
func checkQ8Scales(name string, scales []uint16, row0, groups int) error {
	for i, s := range scales {
		if s&0x7c00 == 0x7c00 {
			return fmt.Errorf("%w: tensor %q: row %d group %d has a NaN or infinite scale", ErrInput, name, row0+i/groups, i%groups)
		}
	}
	return nil
}

// dequantRows turns a Q8 row stream into an f32 one (for schemes other
// than q8_block32, and for sources asked for f32 rows of Q8_0 data).
func dequantRows(name string, cols int, next func([]int8, []uint16) error) func([]float32) error {
	pc, g := bundle.PadQ8(cols), quant.Groups(cols)
	var q []int8
	var scales []uint16
	row := 0
	return func(dst []float32) error {
		if cols <= 0 || len(dst)%cols != 0 {
			return fmt.Errorf("convert: tensor %q: read of %d values is not a whole number of %d-value rows", name, len(dst), cols)
		}
		n := len(dst) / cols
		if cap(q) < n*pc {
			q, scales = make([]int8, n*pc), make([]uint16, n*g)
		}
		q, scales = q[:n*pc], scales[:n*g]
		if err := next(q, scales); err != nil {
			return err
		}
		if err := checkQ8Scales(name, scales, row, g); err != nil {
			return err
		}
		for r := range n {
			quant.DequantizeRowBlock32(dst[r*cols:(r+1)*cols], q[r*pc:(r+1)*pc], scales[r*g:(r+1)*g])
		}
		row += n
		return nil
	}
}

// q8Rows stores a pre-quantized matrix read a chunk of rows at a time: its
// values and scales as they are under q8_block32 (only the f16 scales, 1/16
// of the values' size, are held until the values are written), otherwise
// dequantized and re-encoded row by row.
func (c *converter) q8Rows(name string, shape []int, next func([]int8, []uint16) error) error {
	if len(shape) != 2 {
		return fmt.Errorf("%w: tensor %q: Q8_0 data of shape %v is not a matrix", ErrInput, name, shape)
	}
	rows, cols := shape[0], shape[1]
	if c.scheme != bundle.SchemeQ8Block32 {
		return c.f32Tensor(name, shape, dequantRows(name, cols, next))
	}
	pc, g := bundle.PadQ8(cols), quant.Groups(cols)
	r := &q8Reader{name: name, rows: rows, pc: pc, g: g, next: next, bar: c.bar,
		q: make([]int8, min(q8ChunkRows(pc), rows)*pc), scales: make([]uint16, rows*g)}
	c.bar.tensor(name)
	if err := c.write(bundle.TensorSpec{Name: name, DType: bundle.Q8, Shape: shape,
		Scale: name + bundle.ScaleSuffix, GroupSize: quant.GroupSize}, r); err != nil {
		return err
	}
	return c.writeF16Scales(name, rows, g, r.scales)
}

// q8Reader yields a pre-quantized tensor's int8 bytes a chunk of rows at a
// time, keeping its scales.
type q8Reader struct {
	name   string
	rows   int
	pc, g  int
	row    int
	next   func([]int8, []uint16) error
	q      []int8
	scales []uint16 // all rows*g of them
	out    []byte
	bar    *progressBar
}

func (r *q8Reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.row >= r.rows {
			return 0, io.EOF
		}
		n := min(len(r.q)/r.pc, r.rows-r.row)
		q, s := r.q[:n*r.pc], r.scales[r.row*r.g:(r.row+n)*r.g]
		if err := r.next(q, s); err != nil {
			return 0, fmt.Errorf("read rows %d..%d: %w", r.row, r.row+n-1, err)
		}
		if err := checkQ8Scales(r.name, s, r.row, r.g); err != nil {
			return 0, err
		}
		r.out = quant.Int8Bytes(q)
		r.row += n
	}
	k := copy(p, r.out)
	r.out = r.out[k:]
	r.bar.add(int64(k))
	return k, nil
}

// sliceQ8Rows streams rows out of whole Q8Blocks.
func sliceQ8Rows(b *Q8Blocks) func([]int8, []uint16) error {
	q, s := b.Q, b.Scales
	return func(dq []int8, ds []uint16) error {
		if len(dq) > len(q) || len(ds) > len(s) {
			return io.ErrUnexpectedEOF
		}
		copy(dq, q)
		copy(ds, s)
		q, s = q[len(dq):], s[len(ds):]
		return nil
	}
}

// splitQ8_0 copies n rows of ggml Q8_0 blocks (34 bytes: f16 scale, then
// 32 int8 values) into the bundle layout, whose rows (cols, a multiple of
// 32) need no padding. It does not judge the scales.
func splitQ8_0(q []int8, scales []uint16, raw []byte) {
	qb := quant.Int8Bytes(q)
	for i := range scales {
		blk := raw[i*quant.Q8_0BlockBytes : (i+1)*quant.Q8_0BlockBytes]
		scales[i] = binary.LittleEndian.Uint16(blk)
		copy(qb[i*quant.GroupSize:(i+1)*quant.GroupSize], blk[2:])
	}
}
