package convert

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/hffixture"
	"github.com/ember-llm/ember/llama/safetensors"
)

func TestHFFixture(t *testing.T) {
	dir := t.TempDir()
	w, err := hffixture.Write(dir, hffixture.Tiny(), 5)
	require.NoError(t, err)
	src, err := OpenHF(dir)
	require.NoError(t, err)
	defer src.Close()
	_, isRows := src.(RowSource)
	require.True(t, isRows, "HF tensors stream row by row")
	c := src.Config()
	require.Equal(t, w.Config, c)

	// Every tensor equals the fixture's canonical (interleaved) weights bit
	// for bit: q/k are un-permuted, bf16 widened exactly.
	for _, name := range TensorOrder(&c) {
		shape, x := readF32(t, src, name)
		require.Equal(t, w.Shapes[name], shape, name)
		require.Equal(t, w.Tensors[name], x, name)
		st, err := src.Tensor(name)
		require.NoError(t, err)
		require.Equal(t, w.Tensors[name], st.F32, name)
	}

	tok, err := src.Tokenizer()
	require.NoError(t, err)
	require.NotNil(t, tok)
	require.Len(t, tok.Pieces, c.VocabSize)
	require.Equal(t, c.BOSTokenID, tok.BOS)
}

// The un-permuted q/k give the same attention scores under interleaved RoPE
// as HF's own weights under HF's rotate-half RoPE: the conversion keeps the
// model's meaning, not just some permutation.
func TestHFRoPEEquivalence(t *testing.T) {
	dir := t.TempDir()
	cfg := hffixture.Tiny()
	_, err := hffixture.Write(dir, cfg, 9)
	require.NoError(t, err)
	src, err := OpenHF(dir)
	require.NoError(t, err)
	defer src.Close()
	c := src.Config()
	m, err := safetensors.OpenModel(dir)
	require.NoError(t, err)
	defer m.Close()
	hfRead := func(name string) []float32 {
		ti, err := m.Tensor(name)
		require.NoError(t, err)
		x, err := ti.ReadF32()
		require.NoError(t, err)
		return x
	}
	hd, dim := c.HeadDim, c.Dim
	freq := func(i int) float64 { return math.Pow(c.RopeTheta, -float64(2*i)/float64(hd)) }
	matvec := func(w []float32, x []float64) []float64 {
		out := make([]float64, len(w)/len(x))
		for r := range out {
			for k, v := range x {
				out[r] += float64(w[r*len(x)+k]) * v
			}
		}
		return out
	}
	rot := func(a, b, angle float64) (float64, float64) {
		s, co := math.Sincos(angle)
		return a*co - b*s, a*s + b*co
	}
	ropeInterleaved := func(v []float64, pos int) {
		for h := 0; h < len(v)/hd; h++ {
			for i := 0; i < hd/2; i++ {
				p := h*hd + 2*i
				v[p], v[p+1] = rot(v[p], v[p+1], float64(pos)*freq(i))
			}
		}
	}
	ropeHF := func(v []float64, pos int) { // q*cos + rotate_half(q)*sin
		for h := 0; h < len(v)/hd; h++ {
			for i := 0; i < hd/2; i++ {
				p := h*hd + i
				v[p], v[p+hd/2] = rot(v[p], v[p+hd/2], float64(pos)*freq(i))
			}
		}
	}
	scores := func(q, k []float64) []float64 {
		var s []float64
		for h := 0; h < c.NHeads; h++ {
			g := h / (c.NHeads / c.NKVHeads)
			d := 0.0
			for i := 0; i < hd; i++ {
				d += q[h*hd+i] * k[g*hd+i]
			}
			s = append(s, d)
		}
		return s
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for l := 0; l < c.NLayers; l++ {
		wq, err := src.Tensor(bundle.LayerTensor(l, bundle.WQ))
		require.NoError(t, err)
		wk, err := src.Tensor(bundle.LayerTensor(l, bundle.WK))
		require.NoError(t, err)
		hq := hfRead(fmt.Sprintf("model.layers.%d.self_attn.q_proj.weight", l))
		hk := hfRead(fmt.Sprintf("model.layers.%d.self_attn.k_proj.weight", l))
		for trial := 0; trial < 3; trial++ {
			x1, x2 := make([]float64, dim), make([]float64, dim)
			for i := range x1 {
				x1[i], x2[i] = rng.NormFloat64(), rng.NormFloat64()
			}
			p1, p2 := rng.IntN(200), rng.IntN(200)
			q, k := matvec(wq.F32, x1), matvec(wk.F32, x2)
			ropeInterleaved(q, p1)
			ropeInterleaved(k, p2)
			qh, kh := matvec(hq, x1), matvec(hk, x2)
			ropeHF(qh, p1)
			ropeHF(kh, p2)
			got, want := scores(q, k), scores(qh, kh)
			for i := range want {
				require.InDelta(t, want[i], got[i], 1e-9*(1+math.Abs(want[i])), "layer %d head %d", l, i)
			}
			// Without un-permuting, the scores would differ.
			qw, kw := matvec(hq, x1), matvec(hk, x2)
			ropeInterleaved(qw, p1)
			ropeInterleaved(kw, p2)
			if p1 != 0 || p2 != 0 {
				require.NotEqual(t, want, scores(qw, kw))
			}
		}
	}
}

func TestHFConvertBundle(t *testing.T) {
	dir := t.TempDir()
	w, err := hffixture.Write(dir, hffixture.Tiny(), 11)
	require.NoError(t, err)
	src, err := OpenHF(dir)
	require.NoError(t, err)
	defer src.Close()
	out := filepath.Join(t.TempDir(), "bundle")
	_, err = Convert(src, nil, Options{Out: out, Quant: bundle.SchemeF32})
	require.NoError(t, err)
	b, err := bundle.Open(out)
	require.NoError(t, err)
	require.NoError(t, b.Verify())
	require.Equal(t, w.Config, b.Manifest.Config)
	require.Equal(t, bundle.TokenizerByteBPE, b.Manifest.Tokenizer.Kind)
	for name, want := range w.Tensors {
		_, raw, err := b.ReadTensor(name)
		require.NoError(t, err)
		require.Equal(t, f32le(want), raw, name)
	}
}

func TestHFVariantsAndErrors(t *testing.T) {
	// Tied, single file, f16, with a SentencePiece tokenizer.model.
	cfg := hffixture.Tiny()
	cfg.TiedEmbeddings, cfg.Shards, cfg.DType = true, 1, safetensors.F16
	models, haveModels := os.Getenv("EMBER_MODELS"), false
	if models == "" {
		models = filepath.Join("..", "..", "..", "shared", "models")
	}
	spm := filepath.Join(models, "llama2-tokenizer", "tokenizer.model")
	if _, err := os.Stat(spm); err == nil {
		haveModels = true
		cfg.TokenizerFile, cfg.VocabSize, cfg.BOSTokenID, cfg.EOSTokenID = spm, 32000, 1, 2
		cfg.Dim, cfg.HiddenDim = 32, 64 // keep the 32000-row embedding small
	}
	dir := t.TempDir()
	w, err := hffixture.Write(dir, cfg, 2)
	require.NoError(t, err)
	src, err := OpenHF(dir)
	require.NoError(t, err)
	c := src.Config()
	require.True(t, c.TiedEmbeddings)
	_, err = src.Tensor(bundle.Output)
	require.ErrorIs(t, err, ErrInput)
	shape, x := readF32(t, src, bundle.LayerTensor(1, bundle.WK))
	require.Equal(t, w.Shapes[bundle.LayerTensor(1, bundle.WK)], shape)
	require.Equal(t, w.Tensors[bundle.LayerTensor(1, bundle.WK)], x)
	if haveModels {
		tok, err := src.Tokenizer()
		require.NoError(t, err)
		require.Equal(t, bundle.TokenizerSentencePiece, tok.Kind)
		require.Len(t, tok.Pieces, 32000)
	}
	src.Close()

	// No tokenizer file: nil, nil.
	d0 := t.TempDir()
	_, err = hffixture.Write(d0, hffixture.Tiny(), 1)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(d0, "tokenizer.json")))
	src, err = OpenHF(d0)
	require.NoError(t, err)
	tok, err := src.Tokenizer()
	require.NoError(t, err)
	require.Nil(t, tok)
	src.Close()

	edits := []struct {
		name, config, words string
	}{
		{"model type", `{"model_type":"mistral"}`, `model_type "mistral"`},
		{"json", `{"model_type":`, "not a model config"},
		{"act", `{"model_type":"llama","hidden_act":"gelu"}`, "hidden_act"},
		{"bias", `{"model_type":"llama","attention_bias":true}`, "bias"},
		{"dims", `{"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":1,"num_attention_heads":5,"vocab_size":10,"max_position_embeddings":8}`, "not a multiple"},
		{"range", `{"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":0,"max_position_embeddings":8}`, "out of range"},
		{"scaling", `{"model_type":"llama","rope_scaling":{"rope_type":"dynamic","factor":2}}`, `"dynamic" is not supported`},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, "config.json"), []byte(e.config), 0o644))
			_, err := OpenHF(d)
			require.ErrorIs(t, err, ErrInput)
			require.Contains(t, err.Error(), "config.json")
			require.Contains(t, err.Error(), e.words)
		})
	}

	// A shard missing from the directory.
	d := t.TempDir()
	_, err = hffixture.Write(d, hffixture.Tiny(), 1)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(d, "model-00002-of-00002.safetensors")))
	_, err = OpenHF(d)
	require.ErrorIs(t, err, ErrInput)
	require.Contains(t, err.Error(), "model-00002-of-00002.safetensors")

	// Llama 3 style rope_scaling and a list of eos ids.
	d = t.TempDir()
	_, err = hffixture.Write(d, hffixture.Tiny(), 1)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(d, "generation_config.json"), []byte(`{"eos_token_id":[258, 5]}`), 0o644))
	cfgJSON, err := os.ReadFile(filepath.Join(d, "config.json"))
	require.NoError(t, err)
	cfgJSON = []byte(string(cfgJSON[:len(cfgJSON)-2]) + `,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}`)
	cfgJSON = []byte(replaceOnce(string(cfgJSON), `"rope_scaling": null,`, ""))
	require.NoError(t, os.WriteFile(filepath.Join(d, "config.json"), cfgJSON, 0o644))
	src, err = OpenHF(d)
	require.NoError(t, err, string(cfgJSON))
	defer src.Close()
	c = src.Config()
	require.Equal(t, &bundle.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContextLength: 8192}, c.RopeScaling)
	require.Equal(t, []int{318, 258, 5}, c.EOSTokenIDs, "config.json's eos first, then generation_config.json's")
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// hfRowsOnly hides Source.Tensor, so Convert can only stream rows.
type hfRowsOnly struct {
	Source
	RowSource
}

func (hfRowsOnly) Tensor(name string) (*SourceTensor, error) {
	return nil, fmt.Errorf("whole-tensor read of %s", name)
}

// Every safetensors dtype (F32, F16, BF16) converts row by row: Convert
// never asks for a whole tensor.
func TestHFEveryDTypeStreams(t *testing.T) {
	for _, dt := range []string{safetensors.F32, safetensors.F16, safetensors.BF16} {
		t.Run(dt, func(t *testing.T) {
			cfg := hffixture.Tiny()
			cfg.DType = dt
			dir := t.TempDir()
			w, err := hffixture.Write(dir, cfg, 7)
			require.NoError(t, err)
			src, err := OpenHF(dir)
			require.NoError(t, err)
			defer src.Close()
			rs, ok := src.(RowSource)
			require.True(t, ok)
			_, isQ8 := src.(Q8RowSource)
			require.False(t, isQ8, "safetensors holds no pre-quantized data")
			out := filepath.Join(t.TempDir(), "b")
			_, err = Convert(hfRowsOnly{src, rs}, nil, Options{Out: out, Quant: bundle.SchemeF32})
			require.NoError(t, err)
			b, err := bundle.Open(out)
			require.NoError(t, err)
			for name, want := range w.Tensors {
				_, raw, err := b.ReadTensor(name)
				require.NoError(t, err)
				require.Equal(t, f32le(want), raw, name)
			}
		})
	}
}
