package hffixture

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/safetensors"
	"github.com/ember-llm/ember/tokenizer"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := Tiny()
	w, err := Write(dir, cfg, 42)
	require.NoError(t, err)

	var js map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &js))
	require.Equal(t, "llama", js["model_type"])
	require.Equal(t, 2.0, js["num_key_value_heads"])
	require.Equal(t, false, js["tie_word_embeddings"])

	m, err := safetensors.OpenModel(dir)
	require.NoError(t, err)
	defer m.Close()
	require.Len(t, m.Files, 2, "sharded over two files with an index")
	require.Len(t, m.Tensors, len(w.Tensors))
	for _, ti := range m.Tensors {
		require.Equal(t, safetensors.BF16, ti.DType, ti.Name)
	}

	// Non-permuted tensors are stored as is.
	emb, err := m.Tensor("model.embed_tokens.weight")
	require.NoError(t, err)
	x, err := emb.ReadF32()
	require.NoError(t, err)
	require.Equal(t, w.Tensors[bundle.TokEmbeddings], x)
	require.Equal(t, []int{cfg.VocabSize, cfg.Dim}, emb.Shape)

	// q/k: HF row h*hd + s*hd/2 + i holds Meta row h*hd + 2i + s.
	hd := cfg.Dim / cfg.NHeads
	for _, c := range []struct {
		hf, canon string
		heads     int
	}{{"model.layers.1.self_attn.q_proj.weight", bundle.LayerTensor(1, bundle.WQ), cfg.NHeads},
		{"model.layers.1.self_attn.k_proj.weight", bundle.LayerTensor(1, bundle.WK), cfg.NKVHeads}} {
		ti, err := m.Tensor(c.hf)
		require.NoError(t, err)
		hfw, err := ti.ReadF32()
		require.NoError(t, err)
		meta := w.Tensors[c.canon]
		require.Equal(t, []int{c.heads * hd, cfg.Dim}, ti.Shape)
		for h := 0; h < c.heads; h++ {
			for i := 0; i < hd/2; i++ {
				for s := 0; s < 2; s++ {
					hr, mr := h*hd+s*hd/2+i, h*hd+2*i+s
					require.Equal(t, meta[mr*cfg.Dim:(mr+1)*cfg.Dim], hfw[hr*cfg.Dim:(hr+1)*cfg.Dim], "%s head %d i %d s %d", c.hf, h, i, s)
				}
			}
		}
		require.NotEqual(t, meta, hfw, "the HF layout differs from the interleaved one")
	}

	// Same seed, same bytes; another seed, other weights.
	w2, err := Write(t.TempDir(), cfg, 42)
	require.NoError(t, err)
	require.Equal(t, w.Tensors, w2.Tensors)
	w3, err := Write(t.TempDir(), cfg, 43)
	require.NoError(t, err)
	require.NotEqual(t, w.Tensors[bundle.Output], w3.Tensors[bundle.Output])
}

func TestTokenizer(t *testing.T) {
	dir := t.TempDir()
	w, err := Write(dir, Tiny(), 1)
	require.NoError(t, err)
	bt, err := tokenizer.LoadFile(filepath.Join(dir, "tokenizer.json"), w.Config.VocabSize)
	require.NoError(t, err)
	require.Len(t, bt.Pieces, w.Config.VocabSize)
	require.Equal(t, bundle.TokenizerByteBPE, bt.Kind)
	require.Equal(t, w.Config.BOSTokenID, bt.BOS)
	require.Equal(t, w.Config.EOSTokenIDs[0], bt.EOS)
	tok, err := tokenizer.New(bt)
	require.NoError(t, err)
	text := "Once upon a time, the little fox saw a ball. Ünïcode ✓"
	ids := tok.Encode(text, tokenizer.EncodeOptions{AddBOS: true})
	require.Equal(t, bt.BOS, ids[0])
	require.Less(t, len(ids), len(text), "merges shorten common words")
	require.Equal(t, text, tok.Decode(ids[1:]))
}

func TestVariants(t *testing.T) {
	cfg := Tiny()
	cfg.Shards, cfg.TiedEmbeddings, cfg.DType = 1, true, safetensors.F16
	dir := t.TempDir()
	w, err := Write(dir, cfg, 7)
	require.NoError(t, err)
	require.NotContains(t, w.Tensors, bundle.Output)
	_, err = os.Stat(filepath.Join(dir, safetensors.SingleFile))
	require.NoError(t, err)
	m, err := safetensors.OpenModel(dir)
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Tensor("lm_head.weight")
	require.ErrorIs(t, err, safetensors.ErrNotFound)

	bad := Tiny()
	bad.NKVHeads = 3
	_, err = Write(t.TempDir(), bad, 1)
	require.Error(t, err)
	bad = Tiny()
	bad.VocabSize = 100
	_, err = Write(t.TempDir(), bad, 1)
	require.Error(t, err)
}
