//go:build js && wasm

package engine

import (
	"fmt"

	"github.com/ember-llm/ember/llama/bundle"
)

// matrix is a weight matrix as laid out on the GPU: one or more stored
// tensors stacked along rows (wq|wk|wv), split into chunks of whole rows when
// it is larger than a storage binding may be.
//
// A paired matrix (w13: the SwiGLU gate W1 and up projection W3, both
// [hidden][dim]) is laid out chunk by chunk instead: the chunk of hidden rows
// [a, a+n) holds W1[a:a+n] then W3[a:a+n], so that every chunk is a
// self-contained SwiGLU block. Its rows are numbered in that layout: the
// chunk covers matrix rows [2a, 2a+2n).
type matrix struct {
	name      string
	rows      int   // total rows (all members)
	cols      int   // logical columns
	rowBytes  int64 // stored bytes per row (q8: PadQ8(cols); f32: 4·cols)
	q8        bool
	block     bool  // q8_block32 (f16 scale per 32 inputs) rather than q8_channel
	groups    int   // weight scales per row: ceil(cols/32) for blocks, 1 per channel
	scaleRow  int64 // stored scale bytes per row (0 for f32)
	paired    bool  // two members of equal rows, interleaved per chunk (see above)
	chunkRows int   // rows per chunk (all but the last)
	chunks    []chunk
	members   []member
}

type chunk struct {
	row0, rows int
	w, s       bufferRef // s unused for f32
}

// bufferRef names a GPU buffer by index into the engine's buffer table.
type bufferRef int

// member is one stored tensor placed at rowOff inside a matrix.
type member struct {
	tensor *bundle.Tensor
	scale  *bundle.Tensor // q8 only
	rowOff int
}

// upload is one queue.writeBuffer of shard bytes into a GPU buffer.
type upload struct {
	shard  int
	srcOff int64
	dst    bufferRef
	dstOff int64
	size   int64
}

// newMatrix stacks the named tensors (same dtype, scheme and columns).
func newMatrix(m *bundle.Manifest, label string, names ...string) (*matrix, error) {
	mat := &matrix{name: label}
	for i, n := range names {
		t, err := m.Tensor(n)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("tensor %q has shape %v, want a matrix", n, t.Shape)
		}
		var s *bundle.Tensor
		switch t.DType {
		case bundle.F32:
		case bundle.Q8:
			if s, err = m.Tensor(t.Scale); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("tensor %q: dtype %s is not supported on the GPU (want f32 or q8)", n, t.DType)
		}
		if i == 0 {
			mat.cols = t.Cols()
			mat.rowBytes = t.RowBytes()
			mat.q8 = t.DType == bundle.Q8
			if mat.q8 {
				mat.block = t.GroupSize != t.Cols() || s.DType == bundle.F16
				if mat.block {
					if s.DType != bundle.F16 || t.GroupSize != bundle.Q8RowAlign {
						return nil, fmt.Errorf("tensor %q: block scales must be f16 per 32 inputs", n)
					}
					mat.groups = (t.Cols() + 31) / 32
					mat.scaleRow = int64(2 * mat.groups)
				} else {
					if s.DType != bundle.F32 {
						return nil, fmt.Errorf("tensor %q: per-channel scales must be f32", n)
					}
					mat.groups = 1
					mat.scaleRow = 4
				}
			}
		} else if t.Cols() != mat.cols || (t.DType == bundle.Q8) != mat.q8 || t.RowBytes() != mat.rowBytes ||
			(s != nil && s.DType == bundle.F16) != mat.block {
			return nil, fmt.Errorf("tensors %q and %q cannot share a GPU matrix", names[0], n)
		}
		if mat.block && (mat.rows*mat.groups)%2 != 0 {
			return nil, fmt.Errorf("tensor %q: its f16 scales start mid-word inside %s", n, label)
		}
		mat.members = append(mat.members, member{tensor: t, scale: s, rowOff: mat.rows})
		mat.rows += t.Rows()
	}
	return mat, nil
}

// newPairedMatrix stacks a SwiGLU gate and up projection (same shape) so
// that each chunk holds the same rows of both (see matrix).
func newPairedMatrix(m *bundle.Manifest, label, gate, up string) (*matrix, error) {
	mat, err := newMatrix(m, label, gate, up)
	if err != nil {
		return nil, err
	}
	if g, u := mat.members[0].tensor.Rows(), mat.members[1].tensor.Rows(); g != u {
		return nil, fmt.Errorf("%s: the gate %q has %d rows but the up projection %q has %d", label, gate, g, up, u)
	}
	mat.paired = true
	return mat, nil
}

// split chooses chunk boundaries so that no chunk's weights or scales exceed
// maxBinding bytes. Chunks are as large as the limit allows, in whole units
// of rowUnit rows.
func (mat *matrix) split(maxBinding int64) error {
	per := maxBinding / mat.rowBytes
	if mat.scaleRow > 0 {
		per = min(per, maxBinding/mat.scaleRow)
	}
	if per >= int64(mat.rows) {
		mat.chunkRows = mat.rows
		return nil
	}
	unit := int64(mat.rowUnit())
	per = per / unit * unit
	if per == 0 {
		return fmt.Errorf("%s: the smallest chunk (%d rows of %d bytes, %d of scales) is larger than the storage binding limit of %d bytes",
			mat.name, unit, mat.rowBytes, mat.scaleRow, maxBinding)
	}
	mat.chunkRows = int(per)
	return nil
}

// rowUnit is the granularity of chunk boundaries, in matrix rows. Every
// chunk buffer starts at its first row, so the only constraint is that each
// upload into it is a whole number of 4-byte words: f16 block scales come in
// u32 pairs, so with an odd number of scale groups per row chunks hold an
// even number of rows. A paired matrix moves a gate row and its up row
// together, and its up half must start on a word too.
func (mat *matrix) rowUnit() int {
	unit := 1
	if mat.block && mat.groups%2 != 0 {
		unit = 2
	}
	if mat.paired {
		unit *= 2
	}
	return unit
}

// chunkSpans returns the (row0, rows) of each chunk.
func (mat *matrix) chunkSpans() [][2]int {
	var out [][2]int
	for r := 0; r < mat.rows; r += mat.chunkRows {
		out = append(out, [2]int{r, min(mat.chunkRows, mat.rows-r)})
	}
	return out
}

// memberRows returns where member i's rows fall in chunk c: its rows
// [src, src+n) are the chunk's rows [dst, dst+n) (n = 0: none).
func (mat *matrix) memberRows(i int, c chunk) (src, dst, n int) {
	if mat.paired {
		half := c.rows / 2
		return c.row0 / 2, i * half, half
	}
	mb := mat.members[i]
	lo := max(c.row0, mb.rowOff)
	hi := min(c.row0+c.rows, mb.rowOff+mb.tensor.Rows())
	if lo >= hi {
		return 0, 0, 0
	}
	return lo - mb.rowOff, lo - c.row0, hi - lo
}

// chunkBytes is the GPU memory of the weights and scales of a chunk of rows.
func (mat *matrix) chunkBytes(rows int) (w, s int64) {
	w = align4(int64(rows) * mat.rowBytes)
	if mat.q8 {
		s = align4(int64(rows) * mat.scaleRow)
	}
	return
}

func align4(n int64) int64 { return (n + 3) &^ 3 }

// uploads lists the writes that place every member's stored bytes (and
// scales) into the chunk buffers. A tensor stored in several parts (shards)
// and a chunk boundary both split writes.
func (mat *matrix) uploads() ([]upload, error) {
	var out []upload
	for i, mb := range mat.members {
		u, err := mat.placeTensor(i, mb.tensor, mat.rowBytes, false)
		if err != nil {
			return nil, err
		}
		out = append(out, u...)
		if mb.scale != nil {
			u, err := mat.placeTensor(i, mb.scale, mat.scaleRow, true)
			if err != nil {
				return nil, err
			}
			out = append(out, u...)
		}
	}
	return out, nil
}

// placeTensor maps the byte stream of t (member i's weights, or its scales
// when scale is set: rows of rb bytes) onto the chunks.
func (mat *matrix) placeTensor(i int, t *bundle.Tensor, rb int64, scale bool) ([]upload, error) {
	var out []upload
	rows := int64(t.Rows())
	if scale && len(t.Shape) == 1 {
		rows = int64(t.Shape[0])
	}
	total := rows * rb // meaningful bytes (f16 padding excluded)
	var stream int64   // stream offset of the current part
	for _, p := range t.PartsOrSelf() {
		pa, pb := stream, min(stream+p.Length, total)
		stream += p.Length
		for _, c := range mat.chunks {
			src, dst, n := mat.memberRows(i, c)
			if n == 0 {
				continue
			}
			// stream range of this tensor that falls in chunk c
			ca, cb := int64(src)*rb, int64(src+n)*rb
			a, b := max(pa, ca), min(pb, cb)
			if a >= b {
				continue
			}
			buf := c.w
			if scale {
				buf = c.s
			}
			dstOff := int64(dst)*rb + a - ca
			size := b - a
			if size%4 != 0 {
				// Only the end of a tensor can be ragged (odd f16 count):
				// round up into the stored padding.
				if b != total || a+align4(size) > pa+p.Length {
					return nil, fmt.Errorf("tensor %q: a %d-byte write (rows %d..%d into %s) is not a multiple of 4", t.Name, size, src, src+n, mat.name)
				}
				size = align4(size)
			}
			if dstOff%4 != 0 {
				return nil, fmt.Errorf("tensor %q: unaligned GPU offset %d in %s", t.Name, dstOff, mat.name)
			}
			out = append(out, upload{shard: p.Shard, srcOff: p.Offset + (a - pa), dst: buf, dstOff: dstOff, size: size})
		}
	}
	return out, nil
}

// vectorUploads places an f32 vector tensor (whole) into buffer dst.
func vectorUploads(t *bundle.Tensor, dst bufferRef) []upload {
	var out []upload
	var off int64
	for _, p := range t.PartsOrSelf() {
		out = append(out, upload{shard: p.Shard, srcOff: p.Offset, dst: dst, dstOff: off, size: align4(p.Length)})
		off += p.Length
	}
	return out
}
