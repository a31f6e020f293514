//go:build js && wasm

package engine

import (
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
)

// replay applies the uploads to byte slices standing for the GPU buffers and
// checks that every stored byte of every member lands at its row in the
// right chunk. The shards hold each byte's (tensor, index) code.
func TestMatrixSplitAndPlace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rowBytes int64 // q8 row of 64 values
		rows     []int // members' rows
		parts    int   // each member stored in this many shard parts
		maxBind  int64
		block    bool
	}{
		{"one chunk", 64, []int{96, 32, 32}, 1, 1 << 20, false},
		{"split members", 64, []int{600, 300, 300}, 3, 256 * 64 * 2, false},
		{"split block scales", 64, []int{512, 512}, 2, 256 * 64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &bundle.Manifest{}
			shard := 0
			var names []string
			var stream [][]byte // per shard: contents
			code := func(tensor, i int) byte { return byte(tensor*37 + i*11 + i/256) }
			add := func(name string, dt bundle.DType, shape []int, rb int64, tensorID int) *bundle.Tensor {
				rows := shape[0]
				tt := bundle.Tensor{Name: name, DType: dt, Shape: shape, Length: int64(rows) * rb}
				per := (rows + tc.parts - 1) / tc.parts
				for r := 0; r < rows; r += per {
					n := min(per, rows-r)
					data := make([]byte, 256+int64(n)*rb) // offset 256 inside its shard
					for i := 0; i < int(int64(n)*rb); i++ {
						data[256+i] = code(tensorID, int(int64(r)*rb)+i)
					}
					stream = append(stream, data)
					tt.Parts = append(tt.Parts, bundle.Part{Shard: shard, Offset: 256, Length: int64(n) * rb})
					shard++
				}
				tt.Shard, tt.Offset = tt.Parts[0].Shard, tt.Parts[0].Offset
				m.Tensors = append(m.Tensors, tt)
				return &m.Tensors[len(m.Tensors)-1]
			}
			for i, r := range tc.rows {
				name := string(rune('a' + i))
				names = append(names, name)
				if tc.block {
					add(name+".scale", bundle.F16, []int{r, 2}, 4, 100+i)
					add(name, bundle.Q8, []int{r, 64}, tc.rowBytes, i)
					m.Tensors[len(m.Tensors)-1].Scale, m.Tensors[len(m.Tensors)-1].GroupSize = name+".scale", 32
				} else {
					add(name+".scale", bundle.F32, []int{r}, 4, 100+i)
					add(name, bundle.Q8, []int{r, 64}, tc.rowBytes, i)
					m.Tensors[len(m.Tensors)-1].Scale, m.Tensors[len(m.Tensors)-1].GroupSize = name+".scale", 64
				}
			}
			mat, err := newMatrix(m, "test", names...)
			if err != nil {
				t.Fatal(err)
			}
			if err := mat.split(tc.maxBind); err != nil {
				t.Fatal(err)
			}
			gpu := map[bufferRef][]byte{}
			next := bufferRef(0)
			for _, sp := range mat.chunkSpans() {
				w, s := mat.chunkBytes(sp[1])
				ch := chunk{row0: sp[0], rows: sp[1], w: next, s: next + 1}
				gpu[ch.w], gpu[ch.s] = make([]byte, w), make([]byte, s)
				next += 2
				mat.chunks = append(mat.chunks, ch)
				if w > tc.maxBind || s > tc.maxBind {
					t.Fatalf("chunk of %d rows needs %d/%d bytes, limit %d", sp[1], w, s, tc.maxBind)
				}
			}
			if tc.maxBind < int64(mat.rows)*mat.rowBytes && len(mat.chunks) < 2 {
				t.Fatalf("expected a split, got %d chunk(s)", len(mat.chunks))
			}
			ups, err := mat.uploads()
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range ups {
				if u.size%4 != 0 || u.dstOff%4 != 0 {
					t.Fatalf("unaligned upload %+v", u)
				}
				copy(gpu[u.dst][u.dstOff:u.dstOff+u.size], stream[u.shard][u.srcOff:u.srcOff+u.size])
			}
			for i, mb := range mat.members {
				for _, sc := range []bool{false, true} {
					rb, id := mat.rowBytes, i
					if sc {
						rb, id = mat.scaleRow, 100+i
					}
					for r := 0; r < mb.tensor.Rows(); r++ {
						row := mb.rowOff + r
						ch := mat.chunks[row/mat.chunkRows]
						buf := gpu[ch.w]
						if sc {
							buf = gpu[ch.s]
						}
						for b := int64(0); b < rb; b++ {
							got := buf[int64(row-ch.row0)*rb+b]
							if want := code(id, int(int64(r)*rb+b)); got != want {
								t.Fatalf("member %d scale=%v row %d byte %d: got %d want %d", i, sc, r, b, got, want)
							}
						}
					}
				}
			}
		})
	}
}
