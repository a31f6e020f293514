package convert

import (
	"math/rand/v2"
	"os"
	"path/filepath"
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
	require.False(t, isRows, "Q8_0 files must not stream rows, which would requantize")
	c := src.Config()
	require.True(t, c.TiedEmbeddings, "no output.weight: tied")
	for _, name := range TensorOrder(&c) {
		st, err := src.Tensor(name)
		require.NoError(t, err)
		require.Equal(t, m.shapes[name], st.Shape)
		if want, ok := m.q8[name]; ok {
			require.NotNil(t, st.Q8, name)
			require.Nil(t, st.F32)
			require.Equal(t, want, st.Q8, "%s: Q8_0 values and f16 scales kept bit for bit", name)
			require.Len(t, st.Q8.Q, st.Shape[0]*bundle.PadQ8(st.Shape[1]))
			require.Len(t, st.Q8.Scales, st.Shape[0]*quant.Groups(st.Shape[1]))
		} else {
			require.Equal(t, m.f32[name], st.F32, name)
		}
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
