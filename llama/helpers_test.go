package llama

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/quant"
	"github.com/stretchr/testify/require"
)

// tinyConfig is a small GQA model with awkward sizes (hidden not a multiple
// of 32, head_dim 8) and a separate classifier.
func tinyConfig() bundle.Config {
	return bundle.Config{
		Architecture: "llama", Dim: 48, HiddenDim: 100, NLayers: 2, NHeads: 6, NKVHeads: 2, HeadDim: 8,
		VocabSize: 300, ContextLength: 96, RopeTheta: 10000, NormEps: 1e-5,
		BOSTokenID: 1, EOSTokenIDs: []int{2},
	}
}

// randomWeights returns deterministic random weights for every tensor the
// config needs, scaled like a trained model (unit-ish activations).
func randomWeights(c bundle.Config, seed uint64) map[string][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	w := map[string][]float32{}
	shapes := c.ExpectedShapes()
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		shape := shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		if len(shape) == 1 {
			for i := range v {
				v[i] = float32(1 + 0.2*rng.NormFloat64())
			}
		} else {
			std := 1 / math.Sqrt(float64(shape[1]))
			if name == bundle.TokEmbeddings || name == bundle.Output {
				std = 1
			}
			for i := range v {
				v[i] = float32(std * rng.NormFloat64())
			}
		}
		w[name] = v
	}
	return w
}

// testTokenizer is a byte-fallback SentencePiece vocabulary: <unk>, <s>,
// </s>, the 256 byte pieces, then a few words, padded to n pieces.
func testTokenizer(n int) bundle.Tokenizer {
	tk := bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, BOS: 1, EOS: 2, UNK: 0, PAD: -1,
		AddBOS: true, AddDummyPrefix: true, ByteFallback: true}
	add := func(p string, score float32, ty int32) {
		tk.Pieces = append(tk.Pieces, p)
		tk.Scores = append(tk.Scores, score)
		tk.Types = append(tk.Types, ty)
	}
	add("<unk>", 0, bundle.TokenUnknown)
	add("<s>", 0, bundle.TokenControl)
	add("</s>", 0, bundle.TokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, bundle.TokenByte)
	}
	words := []string{"▁", "e", "t", "a", "o", "n", "▁t", "he", "▁the", "▁a", "in", "▁S", "TOP", "▁STOP", "▁x"}
	for i, w := range words {
		add(w, float32(-i), bundle.TokenNormal)
	}
	for i := 0; len(tk.Pieces) < n; i++ {
		add(fmt.Sprintf("▁w%d", i), float32(-100-i), bundle.TokenNormal)
	}
	return tk
}

// writeBundle writes weights as a bundle in the given scheme and returns
// its directory.
func writeBundle(t testing.TB, dir string, c bundle.Config, w map[string][]float32, scheme string) string {
	t.Helper()
	out := filepath.Join(dir, "bundle-"+scheme)
	bw, err := bundle.Create(out, 1<<20)
	require.NoError(t, err)
	names := []string{bundle.TokEmbeddings}
	for l := 0; l < c.NLayers; l++ {
		for _, s := range []string{bundle.AttnNorm, bundle.WQ, bundle.WK, bundle.WV, bundle.WO, bundle.FFNNorm, bundle.W1, bundle.W2, bundle.W3} {
			names = append(names, bundle.LayerTensor(l, s))
		}
	}
	names = append(names, bundle.FinalNorm)
	if !c.TiedEmbeddings {
		names = append(names, bundle.Output)
	}
	shapes := c.ExpectedShapes()
	for _, name := range names {
		shape, v := shapes[name], w[name]
		if len(shape) == 1 || scheme == bundle.SchemeF32 {
			require.NoError(t, bw.WriteTensor(bundle.TensorSpec{Name: name, DType: bundle.F32, Shape: shape}, bytes.NewReader(quant.AppendF32LE(nil, v))))
			continue
		}
		rows, cols := shape[0], shape[1]
		sname := name + bundle.ScaleSuffix
		switch scheme {
		case bundle.SchemeQ8Channel:
			q, s, err := quant.QuantizeChannel(v, rows, cols)
			require.NoError(t, err)
			require.NoError(t, bw.WriteTensor(bundle.TensorSpec{Name: name, DType: bundle.Q8, Shape: shape, Scale: sname, GroupSize: cols}, bytes.NewReader(quant.Int8Bytes(q))))
			require.NoError(t, bw.WriteTensor(bundle.TensorSpec{Name: sname, DType: bundle.F32, Shape: []int{rows}}, bytes.NewReader(quant.AppendF32LE(nil, s))))
		case bundle.SchemeQ8Block32:
			q, s, err := quant.QuantizeBlock32(v, rows, cols)
			require.NoError(t, err)
			require.NoError(t, bw.WriteTensor(bundle.TensorSpec{Name: name, DType: bundle.Q8, Shape: shape, Scale: sname, GroupSize: 32}, bytes.NewReader(quant.Int8Bytes(q))))
			require.NoError(t, bw.WriteTensor(bundle.TensorSpec{Name: sname, DType: bundle.F16, Shape: []int{rows, quant.Groups(cols)}}, bytes.NewReader(quant.AppendU16LE(nil, s))))
		default:
			t.Fatalf("unknown scheme %q", scheme)
		}
	}
	m := &bundle.Manifest{Name: "test", Config: c, Tokenizer: testTokenizer(min(c.VocabSize, 300)),
		Quantization: bundle.Quantization{Scheme: scheme}}
	if scheme == bundle.SchemeQ8Block32 {
		m.Quantization.GroupSize = 32
	}
	require.NoError(t, bw.Commit(m))
	return out
}

// loadTest writes and loads a random model.
func loadTest(t testing.TB, c bundle.Config, scheme string, seed uint64) *Model {
	t.Helper()
	dir := writeBundle(t, t.TempDir(), c, randomWeights(c, seed), scheme)
	m, err := LoadDir(dir)
	require.NoError(t, err)
	return m
}
