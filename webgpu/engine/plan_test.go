//go:build js && wasm

package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
)

// planCase is a matrix of q8 or f32 members to split and place.
type planCase struct {
	name    string
	kind    string // "f32", "channel" or "block"
	cols    int
	rows    []int // members' rows
	paired  bool  // the two members are a gate/up pair
	parts   int   // each member stored in this many shard parts
	maxBind int64
}

// planManifest builds a manifest of the case's members, each stored in
// tc.parts shard parts at offset 256 of its own shard. stream holds the
// shards' bytes: each stored byte is code(tensor, index).
func planManifest(tc planCase) (m *bundle.Manifest, names []string, stream [][]byte) {
	m = &bundle.Manifest{}
	shard := 0
	add := func(name string, dt bundle.DType, shape []int, rb int64, tensorID int) *bundle.Tensor {
		rows := shape[0]
		meaningful := int64(rows) * rb
		tt := bundle.Tensor{Name: name, DType: dt, Shape: shape, Length: align4(meaningful)}
		per := (rows + tc.parts - 1) / tc.parts
		for r := 0; r < rows; r += per {
			n := int64(min(per, rows-r)) * rb
			if r+per >= rows {
				n = align4(int64(rows)*rb) - int64(r)*rb // the last part holds the padding
			}
			data := make([]byte, 256+n)
			for i := int64(0); i < n; i++ {
				data[256+i] = code(tensorID, int(int64(r)*rb+i))
			}
			stream = append(stream, data)
			tt.Parts = append(tt.Parts, bundle.Part{Shard: shard, Offset: 256, Length: n})
			shard++
		}
		tt.Shard, tt.Offset = tt.Parts[0].Shard, tt.Parts[0].Offset
		m.Tensors = append(m.Tensors, tt)
		return &m.Tensors[len(m.Tensors)-1]
	}
	kp := int64(bundle.PadQ8(tc.cols))
	groups := (tc.cols + 31) / 32
	for i, r := range tc.rows {
		name := string(rune('a' + i))
		names = append(names, name)
		switch tc.kind {
		case "f32":
			add(name, bundle.F32, []int{r, tc.cols}, int64(4*tc.cols), i)
		case "block":
			add(name+".scale", bundle.F16, []int{r, groups}, int64(2*groups), 100+i)
			w := add(name, bundle.Q8, []int{r, tc.cols}, kp, i)
			w.Scale, w.GroupSize = name+".scale", 32
		default:
			add(name+".scale", bundle.F32, []int{r}, 4, 100+i)
			w := add(name, bundle.Q8, []int{r, tc.cols}, kp, i)
			w.Scale, w.GroupSize = name+".scale", tc.cols
		}
	}
	return m, names, stream
}

func code(tensor, i int) byte { return byte(tensor*37 + i*11 + i/256) }

// planMatrix builds, splits and allocates (as byte slices) the case's matrix.
func planMatrix(t *testing.T, tc planCase) (*matrix, map[bufferRef][]byte, [][]byte) {
	t.Helper()
	m, names, stream := planManifest(tc)
	var mat *matrix
	var err error
	if tc.paired {
		mat, err = newPairedMatrix(m, "test", names[0], names[1])
	} else {
		mat, err = newMatrix(m, "test", names...)
	}
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
	return mat, gpu, stream
}

// wantLocation is where row r of member i must be: its chunk and the row
// inside the chunk's buffer.
func wantLocation(mat *matrix, i, r int) (c, row int) {
	if mat.paired {
		h := mat.rows / 2
		per := mat.chunkRows / 2 // hidden units per chunk
		c = r / per
		n := min(per, h-c*per)
		return c, i*n + r - c*per
	}
	row = mat.members[i].rowOff + r
	c = row / mat.chunkRows
	return c, row - c*mat.chunkRows
}

// The uploads replayed into byte slices standing for the GPU buffers put
// every stored byte of every member (weights and scales) at its row in the
// right chunk; chunks respect the limit and the alignment rules.
func TestMatrixSplitAndPlace(t *testing.T) {
	for _, tc := range []planCase{
		{"one chunk", "channel", 64, []int{96, 32, 32}, false, 1, 1 << 20},
		{"split members", "channel", 64, []int{600, 300, 300}, false, 3, 256 * 64 * 2},
		{"split block scales", "block", 64, []int{512, 512}, false, 2, 256 * 64},
		{"small chunks", "channel", 64, []int{96, 32, 32}, false, 2, 7 * 64},
		{"f32 small chunks", "f32", 16, []int{20, 9}, false, 2, 5 * 64},
		{"odd groups: even chunks", "block", 32, []int{40, 18}, false, 3, 7 * 32},
		{"odd groups, odd end", "block", 96, []int{37}, false, 1, 5 * 96},
		{"embedding", "block", 64, []int{512}, false, 2, 4096},
		{"pair one chunk", "block", 64, []int{172, 172}, true, 1, 1 << 20},
		{"pair channel", "channel", 64, []int{172, 172}, true, 2, 4096},
		{"pair block", "block", 64, []int{172, 172}, true, 3, 4096},
		{"pair odd groups", "block", 96, []int{174, 174}, true, 3, 9 * 96}, // parts of 58 rows: f16 parts end on words
		{"pair f32", "f32", 64, []int{172, 172}, true, 1, 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mat, gpu, stream := planMatrix(t, tc)
			total := int64(mat.rows) * mat.rowBytes
			if tc.maxBind < total && len(mat.chunks) < 2 {
				t.Fatalf("expected a split, got %d chunk(s)", len(mat.chunks))
			}
			if tc.maxBind >= total && len(mat.chunks) != 1 {
				t.Fatalf("%d bytes fit in one chunk, got %d", total, len(mat.chunks))
			}
			unit := mat.rowUnit()
			for _, ch := range mat.chunks[:len(mat.chunks)-1] {
				if ch.rows != mat.chunkRows || ch.rows%unit != 0 {
					t.Fatalf("chunk %+v: want %d rows, a multiple of %d", ch, mat.chunkRows, unit)
				}
			}
			if mat.paired {
				for _, ch := range mat.chunks {
					if ch.rows%2 != 0 || ch.row0%2 != 0 {
						t.Fatalf("paired chunk %+v: odd rows", ch)
					}
				}
			}
			ups, err := mat.uploads()
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range ups {
				if u.size%4 != 0 || u.dstOff%4 != 0 || u.dstOff+u.size > int64(len(gpu[u.dst])) {
					t.Fatalf("bad upload %+v (buffer of %d bytes)", u, len(gpu[u.dst]))
				}
				copy(gpu[u.dst][u.dstOff:u.dstOff+u.size], stream[u.shard][u.srcOff:u.srcOff+u.size])
			}
			for i, mb := range mat.members {
				for _, sc := range []bool{false, true} {
					if sc && !mat.q8 {
						continue
					}
					rb, id := mat.rowBytes, i
					if sc {
						rb, id = mat.scaleRow, 100+i
					}
					for r := 0; r < mb.tensor.Rows(); r++ {
						c, row := wantLocation(mat, i, r)
						ch := mat.chunks[c]
						buf := gpu[ch.w]
						if sc {
							buf = gpu[ch.s]
						}
						for b := int64(0); b < rb; b++ {
							got := buf[int64(row)*rb+b]
							if want := code(id, int(int64(r)*rb+b)); got != want {
								t.Fatalf("member %d scale=%v row %d byte %d (chunk %d row %d): got %d want %d", i, sc, r, b, c, row, got, want)
							}
						}
					}
				}
			}
		})
	}
}

// A paired matrix's chunks are self-contained SwiGLU blocks: chunk c holds
// the same hidden units of the gate and the up projection, so the matvec of
// a chunk writes outputs [row0/2, row0/2 + rows/2).
func TestPairedSpans(t *testing.T) {
	mat, _, _ := planMatrix(t, planCase{"pair", "channel", 64, []int{172, 172}, true, 1, 4096})
	// 4096 / 64 = 64 rows: 32 hidden units per chunk, 6 chunks (the last of 12).
	if mat.chunkRows != 64 || len(mat.chunks) != 6 {
		t.Fatalf("chunkRows %d, %d chunks; want 64 and 6", mat.chunkRows, len(mat.chunks))
	}
	next := 0
	for _, ch := range mat.chunks {
		if ch.row0/2 != next {
			t.Fatalf("chunk %+v starts at hidden unit %d, want %d", ch, ch.row0/2, next)
		}
		for i := range mat.members {
			src, dst, n := mat.memberRows(i, ch)
			if src != next || dst != i*n || n != ch.rows/2 {
				t.Fatalf("member %d in chunk %+v: rows [%d,+%d) at %d", i, ch, src, n, dst)
			}
		}
		next += ch.rows / 2
	}
	if next != 172 {
		t.Fatalf("chunks cover %d hidden units, want 172", next)
	}
}

// Only a row (or the smallest chunk: a gate/up pair, two rows sharing a
// scale word) larger than the limit is refused.
func TestSplitTooLarge(t *testing.T) {
	for _, tc := range []planCase{
		{"row", "channel", 512, []int{8}, false, 1, 256},
		{"pair", "channel", 256, []int{8, 8}, true, 1, 256},
		{"odd groups", "block", 32, []int{8}, false, 1, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, names, _ := planManifest(tc)
			var mat *matrix
			var err error
			if tc.paired {
				mat, err = newPairedMatrix(m, "test", names[0], names[1])
			} else {
				mat, err = newMatrix(m, "test", names...)
			}
			if err != nil {
				t.Fatal(err)
			}
			err = mat.split(tc.maxBind)
			if err == nil || !strings.Contains(err.Error(), "storage binding limit") {
				t.Fatalf("split: %v, want a binding-limit error", err)
			}
			if err := mat.split(tc.maxBind * 2); err != nil {
				t.Fatalf("split with twice the limit: %v", err)
			}
		})
	}
	m, names, _ := planManifest(planCase{kind: "channel", cols: 64, rows: []int{8, 9}, parts: 1})
	if _, err := newPairedMatrix(m, "test", names[0], names[1]); err == nil || errors.Is(err, ErrTooLarge) {
		t.Fatalf("pair of 8 and 9 rows: %v", err)
	}
}

func TestReadbackBatch(t *testing.T) {
	for _, c := range []struct {
		stepMS    float64
		max, want int
	}{
		{0, 8, 1},     // unknown step time: one step per map
		{4.3, 8, 8},   // a fast GPU: the longest batch
		{10, 8, 4},    // 40 ms of steps
		{25, 8, 1},    // slow steps stream one by one
		{300, 8, 1},   // very slow
		{4.3, 1, 1},   // lookahead 2 (software adapters)
		{0.5, 16, 16}, // capped by the lookahead
	} {
		if got := readbackBatch(c.stepMS, c.max); got != c.want {
			t.Errorf("readbackBatch(%v, %d) = %d, want %d", c.stepMS, c.max, got, c.want)
		}
	}
}

func TestDepth(t *testing.T) {
	e := &Engine{lookahead: 16, idPer: 8}
	for _, c := range []struct {
		stepMS float64
		want   int
	}{{0, 2}, {4.3, 16}, {10, 8}, {25, 2}, {100, 2}} {
		e.stepMS = c.stepMS
		if got := e.depth(); got != c.want {
			t.Errorf("depth at %v ms/step = %d, want %d", c.stepMS, got, c.want)
		}
	}
	e.fixedBatch = 2
	if got := e.depth(); got != 16 {
		t.Errorf("depth with a fixed batch = %d, want the lookahead 16", got)
	}
}
