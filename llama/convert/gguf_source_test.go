package convert

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/gguf"
	"github.com/ember-llm/ember/quant"
)

func sharedModels(t *testing.T) string {
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Skipf("real test data not found in %s (set EMBER_MODELS): %v", dir, err)
	}
	return dir
}

// readF32 reads a whole tensor through TensorRows when the source streams,
// in uneven chunks, else through Tensor.
func readF32(t *testing.T, src Source, name string) ([]int, []float32) {
	t.Helper()
	if rs, ok := src.(RowSource); ok {
		shape, next, err := rs.TensorRows(name)
		require.NoError(t, err, name)
		rows, cols := 1, shape[len(shape)-1]
		for _, d := range shape[:len(shape)-1] {
			rows *= d
		}
		out := make([]float32, rows*cols)
		for r, step := 0, 1; r < rows; step++ {
			n := min(step, rows-r)
			require.NoError(t, next(out[r*cols:(r+n)*cols]), name)
			r += n
		}
		require.Error(t, next(make([]float32, cols)), "reading past the last row fails")
		return shape, out
	}
	st, err := src.Tensor(name)
	require.NoError(t, err, name)
	require.Nil(t, st.Q8, name)
	return st.Shape, st.F32
}

func TestGGUFStories260K(t *testing.T) {
	dir := filepath.Join(sharedModels(t), "stories260K")
	src, err := OpenGGUF(filepath.Join(dir, "stories260K.gguf"))
	require.NoError(t, err)
	defer src.Close()
	c := src.Config()
	require.Equal(t, bundle.Config{Architecture: "llama", Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4,
		HeadDim: 8, VocabSize: 512, ContextLength: 2048, RopeTheta: 10000, NormEps: float64(float32(1e-5)),
		TiedEmbeddings: true, BOSTokenID: 1, EOSTokenIDs: []int{2}}, c,
		"output.weight duplicates token_embd.weight, so the classifier is tied as in the llama2.c original")
	_, isRows := src.(RowSource)
	require.True(t, isRows, "an all-F32 file streams rows")

	tok, err := src.Tokenizer()
	require.NoError(t, err)
	require.NotNil(t, tok)
	require.Len(t, tok.Pieces, 512)
	require.Equal(t, bundle.TokenizerSentencePiece, tok.Kind)

	// The same weights as the llama2.c checkpoint, bit for bit: GGUF dims
	// reversed to [out, in], no q/k permutation.
	ref, err := OpenLlama2C(filepath.Join(dir, "stories260K.bin"))
	require.NoError(t, err)
	defer ref.Close()
	rc := ref.Config()
	require.Equal(t, c.ExpectedShapes(), rc.ExpectedShapes())
	for _, name := range TensorOrder(&c) {
		shape, got := readF32(t, src, name)
		want, err := ref.Tensor(name)
		require.NoError(t, err)
		require.Equal(t, want.Shape, shape, name)
		require.Equal(t, want.F32, got, name)
	}
	_, err = src.Tensor(bundle.Output)
	require.ErrorIs(t, err, ErrInput, "tied: no separate classifier")
	_, err = src.Tensor(bundle.LayerTensor(5, bundle.WQ))
	require.ErrorIs(t, err, ErrInput)
}

func f32le(x []float32) []byte { return quant.AppendF32LE(nil, x) }

func u16le(h []uint16) []byte { return quant.AppendU16LE(nil, h) }

// tinyGGUF writes a 1-layer Llama GGUF with the given matrix type (F16,
// BF16 or Q8_0) and returns its path and the canonical f32 weights (for Q8_0:
// the quantized values and scales).
type tinyModel struct {
	path   string
	f32    map[string][]float32
	q8     map[string]*Q8Blocks
	shapes map[string][]int
}

func writeTinyGGUF(t *testing.T, mtype gguf.Type, withOutput bool, edit func(b *gguf.Builder)) *tinyModel {
	const dim, hidden, heads, kv, vocab = 64, 96, 4, 2, 40
	c := bundle.Config{Dim: dim, HiddenDim: hidden, NLayers: 1, NHeads: heads, NKVHeads: kv, HeadDim: dim / heads, VocabSize: vocab, TiedEmbeddings: !withOutput}
	m := &tinyModel{f32: map[string][]float32{}, q8: map[string]*Q8Blocks{}, shapes: c.ExpectedShapes()}
	var b gguf.Builder
	b.Set("general.architecture", "llama")
	b.Set("llama.embedding_length", uint32(dim))
	b.Set("llama.feed_forward_length", uint32(hidden))
	b.Set("llama.block_count", uint32(1))
	b.Set("llama.attention.head_count", uint32(heads))
	b.Set("llama.attention.head_count_kv", uint32(kv))
	b.Set("llama.context_length", uint32(128))
	b.Set("llama.rope.freq_base", float32(500000))
	b.Set("llama.attention.layer_norm_rms_epsilon", float32(1e-6))
	b.Set("llama.vocab_size", uint32(vocab))
	b.Set("tokenizer.ggml.bos_token_id", uint32(1))
	b.Set("tokenizer.ggml.eos_token_id", uint32(2))
	b.Set("tokenizer.ggml.eot_token_id", int32(3))
	if edit != nil {
		edit(&b)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	gname := map[string]string{bundle.TokEmbeddings: "token_embd.weight", bundle.FinalNorm: "output_norm.weight", bundle.Output: "output.weight"}
	for s, g := range ggufLayerNames {
		gname[bundle.LayerTensor(0, s)] = "blk.0." + g
	}
	for _, name := range TensorOrder(&c) {
		shape := m.shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		dims := make([]int, len(shape))
		for i, d := range shape {
			dims[len(shape)-1-i] = d
		}
		if len(shape) == 1 {
			m.f32[name] = x
			b.AddTensor(gname[name], gguf.TypeF32, dims, f32le(x))
			continue
		}
		switch mtype {
		case gguf.TypeF16, gguf.TypeBF16:
			h := make([]uint16, n)
			for i, v := range x {
				if mtype == gguf.TypeF16 {
					h[i] = quant.F32ToF16(v)
					x[i] = quant.F16ToF32(h[i])
				} else {
					h[i] = quant.F32ToBF16(v)
					x[i] = quant.BF16ToF32(h[i])
				}
			}
			m.f32[name] = x
			b.AddTensor(gname[name], mtype, dims, u16le(h))
		case gguf.TypeQ8_0:
			q, s, err := quant.QuantizeBlock32(x, shape[0], shape[1])
			require.NoError(t, err)
			raw, err := quant.EncodeQ8_0(q, s, shape[0], shape[1])
			require.NoError(t, err)
			m.q8[name] = &Q8Blocks{Q: q, Scales: s}
			b.AddTensor(gname[name], mtype, dims, raw)
		default:
			m.f32[name] = x
			b.AddTensor(gname[name], gguf.TypeF32, dims, f32le(x))
		}
	}
	data, err := b.Bytes()
	require.NoError(t, err)
	m.path = filepath.Join(t.TempDir(), "tiny.gguf")
	require.NoError(t, os.WriteFile(m.path, data, 0o644))
	return m
}

func TestGGUFWidening(t *testing.T) {
	for _, ty := range []gguf.Type{gguf.TypeF16, gguf.TypeBF16} {
		t.Run(ty.String(), func(t *testing.T) {
			m := writeTinyGGUF(t, ty, true, nil)
			src, err := OpenGGUF(m.path)
			require.NoError(t, err)
			defer src.Close()
			c := src.Config()
			require.False(t, c.TiedEmbeddings)
			require.Equal(t, 500000.0, c.RopeTheta)
			require.InDelta(t, 1e-6, c.NormEps, 1e-12)
			require.Equal(t, 1, c.BOSTokenID)
			require.Equal(t, []int{2, 3}, c.EOSTokenIDs, "eos and end-of-turn ids both stop generation")
			require.Equal(t, 40, c.VocabSize)
			tok, err := src.Tokenizer()
			require.NoError(t, err)
			require.Nil(t, tok, "no tokenizer.ggml.model: no tokenizer")
			for _, name := range TensorOrder(&c) {
				shape, x := readF32(t, src, name)
				require.Equal(t, m.shapes[name], shape, name)
				require.Equal(t, m.f32[name], x, name)
				st, err := src.Tensor(name)
				require.NoError(t, err)
				require.Equal(t, m.f32[name], st.F32, name)
			}
		})
	}
}

func TestGGUFQ8PassThrough(t *testing.T) {
	m := writeTinyGGUF(t, gguf.TypeQ8_0, false, nil)
	src, err := OpenGGUF(m.path)
	require.NoError(t, err)
	defer src.Close()
	_, isRows := src.(RowSource)
	require.True(t, isRows, "every tensor streams rows, Q8_0 ones included")
	qs, ok := src.(Q8RowSource)
	require.True(t, ok, "Q8_0 matrices stream as Q8 blocks, not requantized")
	c := src.Config()
	require.True(t, c.TiedEmbeddings, "no output.weight: tied")
	for _, name := range TensorOrder(&c) {
		st, err := src.Tensor(name)
		require.NoError(t, err)
		require.Equal(t, m.shapes[name], st.Shape)
		shape, x := readF32(t, src, name)
		require.Equal(t, m.shapes[name], shape)
		want, ok := m.q8[name]
		qshape, next, isQ8, err := qs.TensorQ8Rows(name)
		require.NoError(t, err)
		require.Equal(t, ok, isQ8, name)
		if !ok {
			require.Equal(t, m.f32[name], st.F32, name)
			require.Equal(t, m.f32[name], x, name)
			continue
		}
		require.NotNil(t, st.Q8, name)
		require.Nil(t, st.F32)
		require.Equal(t, want, st.Q8, "%s: Q8_0 values and f16 scales kept bit for bit", name)
		require.Len(t, st.Q8.Q, st.Shape[0]*bundle.PadQ8(st.Shape[1]))
		require.Len(t, st.Q8.Scales, st.Shape[0]*quant.Groups(st.Shape[1]))
		deq, err := quant.DequantizeBlock32(want.Q, want.Scales, shape[0], shape[1])
		require.NoError(t, err)
		require.Equal(t, deq, x, "%s: f32 rows are the dequantized blocks", name)

		// Streamed in uneven chunks, the blocks come back bit for bit.
		require.Equal(t, m.shapes[name], qshape)
		rows, cols := qshape[0], qshape[1]
		g := quant.Groups(cols)
		got := &Q8Blocks{Q: make([]int8, rows*cols), Scales: make([]uint16, rows*g)}
		for r, step := 0, 1; r < rows; step++ {
			n := min(step, rows-r)
			require.NoError(t, next(got.Q[r*cols:(r+n)*cols], got.Scales[r*g:(r+n)*g]), name)
			r += n
		}
		require.Error(t, next(make([]int8, cols), make([]uint16, g)), "reading past the last row fails")
		require.Equal(t, want, got, name)
	}

	// Through Convert into q8_block32: the stored int8 bytes are the GGUF values.
	out := filepath.Join(t.TempDir(), "bundle")
	tok := &bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, Pieces: make([]string, 40), BOS: 1, EOS: 2, UNK: -1, PAD: -1}
	for i := range tok.Pieces {
		tok.Pieces[i] = string(rune('a' + i))
	}
	_, err = Convert(src, tok, Options{Out: out, Quant: bundle.SchemeQ8Block32})
	require.NoError(t, err)
	bd, err := bundle.Open(out)
	require.NoError(t, err)
	wq := bundle.LayerTensor(0, bundle.WQ)
	_, raw, err := bd.ReadTensor(wq)
	require.NoError(t, err)
	require.Equal(t, quant.Int8Bytes(m.q8[wq].Q), raw)
	_, sraw, err := bd.ReadTensor(wq + bundle.ScaleSuffix)
	require.NoError(t, err)
	require.Equal(t, u16le(m.q8[wq].Scales), sraw[:2*len(m.q8[wq].Scales)])
}

func TestGGUFBadInput(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(b *gguf.Builder)
		words string
	}{
		{"partial rope", func(b *gguf.Builder) { b.Set("llama.rope.dimension_count", uint32(8)) }, "partial RoPE"},
		{"yarn", func(b *gguf.Builder) { b.Set("llama.rope.scaling.type", "yarn") }, `"yarn" is not supported`},
		{"heads", func(b *gguf.Builder) { b.Set("llama.attention.head_count_kv", uint32(3)) }, "n_kv_heads"},
		{"arch", func(b *gguf.Builder) { b.Set("general.architecture", "qwen2") }, `"qwen2" is not supported`},
		{"q4_k", func(b *gguf.Builder) { b.AddTensor("blk.9.ffn_up.weight", 12, []int{256, 1}, make([]byte, 144)) }, "Q4_K is not supported; supported: F32, F16, BF16, Q8_0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := writeTinyGGUF(t, gguf.TypeF32, true, c.edit)
			_, err := OpenGGUF(m.path)
			require.ErrorIs(t, err, ErrInput)
			require.Contains(t, err.Error(), "tiny.gguf")
			require.Contains(t, err.Error(), c.words)
		})
	}
	m := writeTinyGGUF(t, gguf.TypeF32, true, func(b *gguf.Builder) {
		b.Set("llama.rope.scaling.type", "linear")
		b.Set("llama.rope.scaling.factor", float32(4))
	})
	src, err := OpenGGUF(m.path)
	require.NoError(t, err)
	require.Equal(t, &bundle.RopeScaling{Type: "linear", Factor: 4}, src.Config().RopeScaling)
	src.Close()

	// A missing tensor is reported by name when asked for.
	var b gguf.Builder
	b.Set("general.architecture", "llama")
	for k, v := range map[string]uint32{"llama.embedding_length": 64, "llama.feed_forward_length": 96, "llama.block_count": 1,
		"llama.attention.head_count": 4, "llama.context_length": 64, "llama.vocab_size": 40} {
		b.Set(k, v)
	}
	data, err := b.Bytes()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "empty.gguf")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	src, err = OpenGGUF(path)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.Tensor(bundle.LayerTensor(0, bundle.W2))
	require.ErrorIs(t, err, ErrInput)
	require.Contains(t, err.Error(), "blk.0.ffn_down.weight")

	// Truncation and garbage are refused by the reader, wrapped as ErrInput.
	require.NoError(t, os.WriteFile(path, data[:len(data)/2], 0o644))
	_, err = OpenGGUF(path)
	require.ErrorIs(t, err, ErrInput)
	require.ErrorIs(t, err, gguf.ErrInvalidFormat)
}

func TestGGUFLlama3RopeFreqs(t *testing.T) {
	const hd = 16
	rs := &bundle.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContextLength: 8192}
	freqs := make([]float32, hd/2)
	for i := range freqs {
		freqs[i] = float32(llama3Divisor(i, hd, 500000, rs))
	}
	require.Equal(t, float32(1), freqs[0], "high frequencies are not scaled")
	require.Equal(t, float32(8), freqs[hd/2-1], "low frequencies are divided by the factor")
	m := writeTinyGGUF(t, gguf.TypeF32, true, func(b *gguf.Builder) {
		b.AddTensor("rope_freqs.weight", gguf.TypeF32, []int{hd / 2}, f32le(freqs))
	})
	src, err := OpenGGUF(m.path)
	require.NoError(t, err)
	require.Equal(t, rs, src.Config().RopeScaling)
	src.Close()

	freqs[3] *= 1.5
	m = writeTinyGGUF(t, gguf.TypeF32, true, func(b *gguf.Builder) {
		b.AddTensor("rope_freqs.weight", gguf.TypeF32, []int{hd / 2}, f32le(freqs))
	})
	_, err = OpenGGUF(m.path)
	require.ErrorIs(t, err, ErrInput)
	require.Contains(t, err.Error(), "rope_freqs.weight[3]")
}

// The f32 bundles converted from stories260K.bin and stories260K.gguf hold
// byte-identical weights.
func TestGGUFAndLlama2CBundlesIdentical(t *testing.T) {
	dir := filepath.Join(sharedModels(t), "stories260K")
	g, err := OpenGGUF(filepath.Join(dir, "stories260K.gguf"))
	require.NoError(t, err)
	defer g.Close()
	tok, err := g.Tokenizer()
	require.NoError(t, err)
	l, err := OpenLlama2C(filepath.Join(dir, "stories260K.bin"))
	require.NoError(t, err)
	defer l.Close()
	outG, outL := filepath.Join(t.TempDir(), "g"), filepath.Join(t.TempDir(), "l")
	mg, err := Convert(g, nil, Options{Out: outG, Quant: bundle.SchemeF32})
	require.NoError(t, err)
	ml, err := Convert(l, tok, Options{Out: outL, Quant: bundle.SchemeF32})
	require.NoError(t, err)
	require.Equal(t, len(ml.Tensors), len(mg.Tensors))
	bg, err := bundle.Open(outG)
	require.NoError(t, err)
	bl, err := bundle.Open(outL)
	require.NoError(t, err)
	for _, te := range ml.Tensors {
		_, a, err := bl.ReadTensor(te.Name)
		require.NoError(t, err)
		_, b, err := bg.ReadTensor(te.Name)
		require.NoError(t, err)
		require.Equal(t, a, b, te.Name)
	}
}

func TestGGUFQ8BadScale(t *testing.T) {
	m := writeTinyGGUF(t, gguf.TypeQ8_0, true, nil)
	f, err := gguf.Open(m.path)
	require.NoError(t, err)
	ti, err := f.Tensor("blk.0.ffn_down.weight")
	require.NoError(t, err)
	off := ti.Offset + 3*34 // row 0, group 3 (hidden 96 = 3 groups per row: row 1 group 0)
	f.Close()
	data, err := os.ReadFile(m.path)
	require.NoError(t, err)
	data[off], data[off+1] = 0x00, 0x7e // NaN
	require.NoError(t, os.WriteFile(m.path, data, 0o644))
	src, err := OpenGGUF(m.path)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.Tensor(bundle.LayerTensor(0, bundle.W2))
	require.ErrorIs(t, err, ErrInput)
	require.ErrorIs(t, err, quant.ErrNonFinite)
	require.Contains(t, err.Error(), "blk.0.ffn_down.weight")
	require.Contains(t, err.Error(), "row 1 group 0")
}

// writeQ8GGUF writes a Llama GGUF whose matrices are all Q8_0, streaming
// the tensor data (the Builder never holds it): vocab×dim embeddings and
// classifier, nLayers layers, a llama tokenizer of vocab pieces. The int8
// values and f16 scales are a pure function of the tensor and row, given
// by q8Row, so that a test can check the converted bytes without holding
// them. edit, when set, may change a row's raw blocks as written.
func writeQ8GGUF(w io.Writer, vocab, dim, hidden, nLayers int, edit func(name string, row int, blocks []byte)) error {
	heads := dim / 64
	kv := max(1, heads/4)
	c := bundle.Config{Dim: dim, HiddenDim: hidden, NLayers: nLayers, NHeads: heads, NKVHeads: kv, HeadDim: 64, VocabSize: vocab}
	shapes := c.ExpectedShapes()
	var b gguf.Builder
	b.Set("general.architecture", "llama")
	for k, v := range map[string]uint32{"llama.embedding_length": uint32(dim), "llama.feed_forward_length": uint32(hidden),
		"llama.block_count": uint32(nLayers), "llama.attention.head_count": uint32(heads), "llama.attention.head_count_kv": uint32(kv), "llama.context_length": 2048} {
		b.Set(k, v)
	}
	b.Set("tokenizer.ggml.model", "llama")
	pieces := make([]string, vocab)
	for i := range pieces {
		pieces[i] = fmt.Sprintf("t%d", i)
	}
	b.Set("tokenizer.ggml.tokens", pieces)
	b.Set("tokenizer.ggml.scores", make([]float32, vocab))
	gname := map[string]string{bundle.TokEmbeddings: "token_embd.weight", bundle.FinalNorm: "output_norm.weight", bundle.Output: "output.weight"}
	for l := range nLayers {
		for s, g := range ggufLayerNames {
			gname[bundle.LayerTensor(l, s)] = fmt.Sprintf("blk.%d.%s", l, g)
		}
	}
	for _, name := range TensorOrder(&c) {
		shape := shapes[name]
		dims := []int{shape[len(shape)-1]}
		if len(shape) == 2 {
			dims = append(dims, shape[0])
		}
		if len(shape) == 1 {
			x := make([]float32, shape[0])
			for i := range x {
				x[i] = 1
			}
			b.AddTensor(gname[name], gguf.TypeF32, dims, f32le(x))
			continue
		}
		rows, cols := shape[0], shape[1]
		b.AddTensorReader(gname[name], gguf.TypeQ8_0, dims, quant.Q8_0Bytes(int64(rows), int64(cols)),
			&q8RowGen{name: name, rows: rows, cols: cols, edit: edit})
	}
	_, err := b.WriteTo(w)
	return err
}

// q8Row fills one row's values and scales deterministically (a cheap hash
// of tensor, row and column; scales finite and positive).
func q8Row(name string, row int, q []int8, scales []uint16) {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	h ^= uint32(row) * 2654435761
	for i := range q {
		h ^= h << 13
		h ^= h >> 17
		h ^= h << 5
		q[i] = int8(h)
	}
	for i := range scales {
		scales[i] = 0x1000 + uint16(row*7+i)%0x2000
	}
}

// q8RowGen is an io.Reader of a Q8_0 tensor's blocks, a row at a time.
type q8RowGen struct {
	name       string
	rows, cols int
	row        int
	q          []int8
	scales     []uint16
	raw, buf   []byte
	edit       func(name string, row int, blocks []byte)
}

func (g *q8RowGen) Read(p []byte) (int, error) {
	if len(g.buf) == 0 {
		if g.row >= g.rows {
			return 0, io.EOF
		}
		if g.q == nil {
			g.q, g.scales = make([]int8, g.cols), make([]uint16, g.cols/quant.GroupSize)
		}
		q8Row(g.name, g.row, g.q, g.scales)
		raw := g.raw[:0]
		for i, d := range g.scales {
			raw = binary.LittleEndian.AppendUint16(raw, d)
			raw = append(raw, quant.Int8Bytes(g.q[i*quant.GroupSize:(i+1)*quant.GroupSize])...)
		}
		g.raw = raw
		if g.edit != nil {
			g.edit(g.name, g.row, raw)
		}
		g.buf = raw
		g.row++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// A large Q8_0 embedding (64 chunks of rows) converts into q8_block32 bit
// for bit without ever being held: Convert allocates a small fraction of
// the tensor's size. Under the other schemes it is dequantized row by row.
func TestGGUFQ8StreamsLargeTensor(t *testing.T) {
	const vocab, dim, hidden = 16384, 1024, 128
	path := filepath.Join(t.TempDir(), "big.gguf")
	write := func(edit func(string, int, []byte)) {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, writeQ8GGUF(f, vocab, dim, hidden, 1, edit))
		require.NoError(t, f.Close())
	}
	write(nil)
	src, err := OpenGGUF(path)
	require.NoError(t, err)
	defer src.Close()
	c := src.Config()
	require.False(t, c.TiedEmbeddings)

	out := filepath.Join(t.TempDir(), "b")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Convert(src, nil, Options{Out: out, Quant: bundle.SchemeQ8Block32})
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	embBytes := uint64(vocab * dim)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Convert allocated %.1f MiB in all for two %.0f MiB Q8_0 matrices", float64(alloc)/(1<<20), float64(embBytes)/(1<<20))
	require.Less(t, alloc, embBytes, "Convert must stream rows: holding the two matrices would allocate at least twice this")

	bd, err := bundle.Open(out)
	require.NoError(t, err)
	g := dim / quant.GroupSize
	q, s := make([]int8, dim), make([]uint16, g)
	for _, name := range []string{bundle.TokEmbeddings, bundle.Output, bundle.LayerTensor(0, bundle.W2)} {
		shape := c.ExpectedShapes()[name]
		rows, cols := shape[0], shape[1]
		_, raw, err := bd.ReadTensor(name)
		require.NoError(t, err)
		_, sraw, err := bd.ReadTensor(name + bundle.ScaleSuffix)
		require.NoError(t, err)
		require.Len(t, raw, rows*cols, name)
		for r := range rows {
			q8Row(name, r, q[:cols], s[:cols/quant.GroupSize])
			if !bytes.Equal(quant.Int8Bytes(q[:cols]), raw[r*cols:(r+1)*cols]) ||
				!bytes.Equal(u16le(s[:cols/quant.GroupSize]), sraw[2*r*cols/quant.GroupSize:2*(r+1)*cols/quant.GroupSize]) {
				t.Fatalf("%s row %d: stored blocks differ from the GGUF's", name, r)
			}
		}
	}

	// q8_channel dequantizes the blocks row by row and requantizes them.
	out2 := filepath.Join(t.TempDir(), "c")
	_, err = Convert(src, nil, Options{Out: out2, Quant: bundle.SchemeQ8Channel})
	require.NoError(t, err)
	bc, err := bundle.Open(out2)
	require.NoError(t, err)
	got := dequant(t, bc, bundle.TokEmbeddings)
	want := make([]float32, dim)
	for _, r := range []int{0, 12345, vocab - 1} {
		q8Row(bundle.TokEmbeddings, r, q, s)
		quant.DequantizeRowBlock32(want, q, s)
		st := quant.Compare(want, got[r*dim:(r+1)*dim])
		require.Greater(t, st.SNR(), 30.0, "row %d", r)
	}

	// A NaN scale deep in the tensor is reported with its absolute row.
	src.Close()
	write(func(name string, row int, blocks []byte) {
		if name == bundle.TokEmbeddings && row == 15001 {
			blocks[3*quant.Q8_0BlockBytes+1] = 0x7e
		}
	})
	src, err = OpenGGUF(path)
	require.NoError(t, err)
	_, err = Convert(src, nil, Options{Out: filepath.Join(t.TempDir(), "d"), Quant: bundle.SchemeQ8Block32})
	require.ErrorIs(t, err, ErrInput)
	require.ErrorIs(t, err, quant.ErrNonFinite)
	require.Contains(t, err.Error(), "token_embd.weight: Q8_0 row 15001 group 3")
}

// EMBER_BIG_GGUF=/tmp/big.gguf writes a Llama-3-8B-shaped Q8_0 GGUF (128256
// vocabulary, dim 4096, hidden 14336, untied classifier, EMBER_BIG_LAYERS
// layers, default 2: 1.55 GB) for measuring the converter's peak memory
// (docs/PERFORMANCE.md).
func TestWriteBigGGUF(t *testing.T) {
	path := os.Getenv("EMBER_BIG_GGUF")
	if path == "" {
		t.Skip("set EMBER_BIG_GGUF=PATH to write a large Q8_0 GGUF there")
	}
	layers := 2
	if v := os.Getenv("EMBER_BIG_LAYERS"); v != "" {
		var err error
		layers, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	require.NoError(t, writeQ8GGUF(w, 128256, 4096, 14336, layers, nil))
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)
	t.Logf("wrote %s: %.2f GiB", path, float64(st.Size())/(1<<30))
}

// ggufStreamOnly hides Source.Tensor, so Convert can only stream rows.
type ggufStreamOnly struct {
	Source
	RowSource
	Q8RowSource
}

func (ggufStreamOnly) Tensor(name string) (*SourceTensor, error) {
	return nil, fmt.Errorf("whole-tensor read of %s", name)
}

// Every GGUF tensor type (F32, F16, BF16, Q8_0) converts row by row under
// every scheme: Convert never asks for a whole tensor, and the bundle is
// the one built from whole tensors.
func TestGGUFEveryTypeStreams(t *testing.T) {
	tok := &bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, Pieces: make([]string, 40), BOS: 1, EOS: 2, UNK: -1, PAD: -1}
	for i := range tok.Pieces {
		tok.Pieces[i] = string(rune('a' + i))
	}
	for _, ty := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0} {
		m := writeTinyGGUF(t, ty, true, nil)
		src, err := OpenGGUF(m.path)
		require.NoError(t, err)
		for _, scheme := range []string{bundle.SchemeF32, bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
			stream := ggufStreamOnly{src, src.(RowSource), src.(Q8RowSource)}
			out := filepath.Join(t.TempDir(), "s")
			ms, err := Convert(stream, tok, Options{Out: out, Quant: scheme})
			require.NoError(t, err, "%s %s", ty, scheme)
			// The reference: whole tensors through a Source with Tensor only.
			ref := filepath.Join(t.TempDir(), "r")
			mr, err := Convert(wholeOnly{src}, tok, Options{Out: ref, Quant: scheme})
			require.NoError(t, err, "%s %s", ty, scheme)
			require.Equal(t, mr.Tensors, ms.Tensors, "%s %s", ty, scheme)
			bs, err := bundle.Open(out)
			require.NoError(t, err)
			br, err := bundle.Open(ref)
			require.NoError(t, err)
			for _, te := range mr.Tensors {
				_, a, err := bs.ReadTensor(te.Name)
				require.NoError(t, err)
				_, b, err := br.ReadTensor(te.Name)
				require.NoError(t, err)
				require.Equal(t, b, a, "%s %s %s", ty, scheme, te.Name)
			}
		}
		src.Close()
	}
}

// wholeOnly hides a Source's streaming interfaces.
type wholeOnly struct{ s Source }

func (w wholeOnly) Config() bundle.Config                     { return w.s.Config() }
func (w wholeOnly) Tokenizer() (*bundle.Tokenizer, error)     { return w.s.Tokenizer() }
func (w wholeOnly) Tensor(name string) (*SourceTensor, error) { return w.s.Tensor(name) }
func (w wholeOnly) Close() error                              { return nil }
