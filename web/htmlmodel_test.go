//go:build !js

package web

import (
	"fmt"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
)

// htmlModel is a bundle whose every generated token is htmlPiece: weights
// built so that the logits of htmlToken dominate whatever the input (all
// layers zero, so the residual stream is the constant embedding; the
// classifier has a single non-zero row). A page that inserted model text as
// HTML would run its script. Its manifest source says "synthetic", so the
// page must warn that the weights are not a trained model's.
const (
	htmlModel = "html-token"
	htmlPiece = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>`
)

// htmlToken is the id of htmlPiece: after <unk>, <s>, </s> and 256 byte pieces.
const htmlToken = 3 + 256

type htmlSource struct{ cfg bundle.Config }

func newHTMLSource() *htmlSource {
	return &htmlSource{cfg: bundle.Config{
		Architecture: "llama", Dim: 64, HiddenDim: 128, NLayers: 1, NHeads: 4, NKVHeads: 4, HeadDim: 16,
		VocabSize: htmlToken + 1, ContextLength: 384, RopeTheta: 10000, NormEps: 1e-5,
		BOSTokenID: 1, EOSTokenIDs: []int{2},
	}}
}

func (s *htmlSource) Config() bundle.Config { return s.cfg }

func (s *htmlSource) Tokenizer() (*bundle.Tokenizer, error) {
	n := s.cfg.VocabSize
	t := &bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, Pieces: make([]string, n),
		Scores: make([]float32, n), Types: make([]int32, n), BOS: 1, EOS: 2, UNK: 0, PAD: -1,
		AddBOS: true, AddDummyPrefix: true, ByteFallback: true}
	t.Pieces[0], t.Types[0] = "<unk>", bundle.TokenUnknown
	t.Pieces[1], t.Types[1] = "<s>", bundle.TokenControl
	t.Pieces[2], t.Types[2] = "</s>", bundle.TokenControl
	for b := 0; b < 256; b++ {
		t.Pieces[3+b], t.Types[3+b] = fmt.Sprintf("<0x%02X>", b), bundle.TokenByte
	}
	t.Pieces[htmlToken], t.Types[htmlToken] = htmlPiece, bundle.TokenNormal
	return t, nil
}

func (s *htmlSource) Tensor(name string) (*convert.SourceTensor, error) {
	shape, ok := s.cfg.ExpectedShapes()[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	count := 1
	for _, d := range shape {
		count *= d
	}
	x := make([]float32, count)
	switch {
	case name == bundle.TokEmbeddings:
		for i := range x {
			x[i] = 1
		}
	case len(shape) == 1: // norms
		for i := range x {
			x[i] = 1
		}
	case name == bundle.Output:
		for j := 0; j < s.cfg.Dim; j++ {
			x[htmlToken*s.cfg.Dim+j] = 1
		}
	}
	return &convert.SourceTensor{Shape: shape, F32: x}, nil
}

func (s *htmlSource) Close() error { return nil }

func writeHTMLTokenBundle(dir string) error {
	src := newHTMLSource()
	tok, _ := src.Tokenizer()
	_, err := convert.Convert(src, tok, convert.Options{Out: dir, Quant: bundle.SchemeQ8Channel,
		Name: htmlModel, Source: "synthetic test bundle: every token is an HTML snippet"})
	return err
}
