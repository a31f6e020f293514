package bundle

import (
	"fmt"
	"sort"
)

// Canonical tensor names (Meta/llama2.c naming). Shapes are [out, in]
// (row-major, one row per output) for matrices:
//
//	tok_embeddings.weight             (vocab_size, dim)
//	layers.L.attention_norm.weight    (dim)
//	layers.L.attention.wq.weight      (n_heads*head_dim, dim)
//	layers.L.attention.wk.weight      (n_kv_heads*head_dim, dim)
//	layers.L.attention.wv.weight      (n_kv_heads*head_dim, dim)
//	layers.L.attention.wo.weight      (dim, n_heads*head_dim)
//	layers.L.ffn_norm.weight          (dim)
//	layers.L.feed_forward.w1.weight   (hidden_dim, dim)   gate
//	layers.L.feed_forward.w2.weight   (dim, hidden_dim)   down
//	layers.L.feed_forward.w3.weight   (hidden_dim, dim)   up
//	norm.weight                       (dim)
//	output.weight                     (vocab_size, dim)   absent when tied_embeddings
//
// A q8 tensor X has its scales in X + ScaleSuffix. Queries and keys use the
// interleaved RoPE convention: within a head, elements (2i, 2i+1) rotate
// together (llama2.c, Meta, GGUF); HF checkpoints are converted to it.
const (
	TokEmbeddings = "tok_embeddings.weight"
	FinalNorm     = "norm.weight"
	Output        = "output.weight"
	ScaleSuffix   = ".scale"
)

// Per-layer tensor name suffixes, used with LayerTensor.
const (
	AttnNorm = "attention_norm.weight"
	WQ       = "attention.wq.weight"
	WK       = "attention.wk.weight"
	WV       = "attention.wv.weight"
	WO       = "attention.wo.weight"
	FFNNorm  = "ffn_norm.weight"
	W1       = "feed_forward.w1.weight"
	W2       = "feed_forward.w2.weight"
	W3       = "feed_forward.w3.weight"
)

// LayerTensor names tensor suffix of layer l, e.g. LayerTensor(0, WQ).
func LayerTensor(l int, suffix string) string { return fmt.Sprintf("layers.%d.%s", l, suffix) }

// ExpectedShapes returns every tensor the config requires with its logical shape.
func (c *Config) ExpectedShapes() map[string][]int {
	m := map[string][]int{
		TokEmbeddings: {c.VocabSize, c.Dim},
		FinalNorm:     {c.Dim},
	}
	if !c.TiedEmbeddings {
		m[Output] = []int{c.VocabSize, c.Dim}
	}
	for l := 0; l < c.NLayers; l++ {
		m[LayerTensor(l, AttnNorm)] = []int{c.Dim}
		m[LayerTensor(l, WQ)] = []int{c.QDim(), c.Dim}
		m[LayerTensor(l, WK)] = []int{c.KVDim(), c.Dim}
		m[LayerTensor(l, WV)] = []int{c.KVDim(), c.Dim}
		m[LayerTensor(l, WO)] = []int{c.Dim, c.QDim()}
		m[LayerTensor(l, FFNNorm)] = []int{c.Dim}
		m[LayerTensor(l, W1)] = []int{c.HiddenDim, c.Dim}
		m[LayerTensor(l, W2)] = []int{c.Dim, c.HiddenDim}
		m[LayerTensor(l, W3)] = []int{c.HiddenDim, c.Dim}
	}
	return m
}

// CheckTensors reports the first required tensor that is missing or whose
// shape disagrees with the config.
func (m *Manifest) CheckTensors() error {
	want := m.Config.ExpectedShapes()
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		shape := want[name]
		t, err := m.Tensor(name)
		if err != nil {
			return invalid("tensor %q required by the config is missing", name)
		}
		if !sameShape(t.Shape, shape) {
			return invalid("tensor %q has shape %v, the config needs %v", name, t.Shape, shape)
		}
	}
	return nil
}
