package llama

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
	"github.com/ember-llm/ember/llama/hffixture"
	"github.com/ember-llm/ember/llama/safetensors"
	"github.com/stretchr/testify/require"
)

// An HF-layout checkpoint (bf16, sharded, GQA, separate lm_head) converted
// to f32 gives the same greedy ids as a plain float64 implementation that
// reads the HF tensors directly and applies HF's rotate-half RoPE.
func TestHFCheckpointMatchesIndependentImplementation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	fc := hffixture.Tiny()
	fc.TiedEmbeddings = false
	fc.RopeTheta = 500000
	w, err := hffixture.Write(hf, fc, 42)
	require.NoError(t, err)
	require.Greater(t, w.Config.NHeads, w.Config.NKVHeads, "GQA")

	src, err := convert.Open(hf)
	require.NoError(t, err)
	out := filepath.Join(dir, "bundle")
	_, err = convert.Convert(src, nil, convert.Options{Out: out, Quant: bundle.SchemeF32})
	src.Close()
	require.NoError(t, err)
	m, err := LoadDir(out)
	require.NoError(t, err)
	c := m.Config()
	require.False(t, c.TiedEmbeddings)

	st, err := safetensors.OpenModel(hf)
	require.NoError(t, err)
	defer st.Close()
	cache := map[string][]float32{}
	read := func(name string) []float32 {
		if v, ok := cache[name]; ok {
			return v
		}
		ti, err := st.Tensor(name)
		require.NoError(t, err)
		v, err := ti.ReadF32()
		require.NoError(t, err)
		cache[name] = v
		return v
	}
	hfNames := map[string]string{"attn_norm": "input_layernorm", "wq": "self_attn.q_proj", "wk": "self_attn.k_proj",
		"wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
		"w1": "mlp.gate_proj", "w2": "mlp.down_proj", "w3": "mlp.up_proj"}
	ref := &refModel{
		dim: fc.Dim, hidden: fc.HiddenDim, layers: fc.NLayers, heads: fc.NHeads, kvHeads: fc.NKVHeads,
		headDim: fc.Dim / fc.NHeads, vocab: fc.VocabSize, theta: fc.RopeTheta, eps: fc.NormEps, rotateHalf: true,
		get: func(kind string, l int) []float32 {
			switch kind {
			case "emb":
				return read("model.embed_tokens.weight")
			case "norm":
				return read("model.norm.weight")
			case "output":
				return read("lm_head.weight")
			}
			return read(fmt.Sprintf("model.layers.%d.%s.weight", l, hfNames[kind]))
		},
	}

	prompt := []int{1, 17, 42, 99, 5}
	var refIDs, gotIDs []int
	var refLogits []float64
	for pos, tok := range prompt {
		refLogits = ref.forward(tok, pos)
	}
	for pos := len(prompt); len(refIDs) < 24; pos++ {
		next := argmax64(refLogits)
		refIDs = append(refIDs, next)
		refLogits = ref.forward(next, pos)
	}
	logits, err := m.Eval(ctx, prompt, 0)
	require.NoError(t, err)
	for pos := len(prompt); len(gotIDs) < 24; pos++ {
		next := Argmax(logits)
		gotIDs = append(gotIDs, next)
		logits, err = m.Eval(ctx, []int{next}, pos)
		require.NoError(t, err)
	}
	require.Equal(t, refIDs, gotIDs)
	d, s := maxAbsDiff64(logits, refLogits)
	require.Less(t, d, 1e-4*s+1e-5)
}

func argmax64(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
