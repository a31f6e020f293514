package llama

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/stretchr/testify/require"
)

// modelsDir is $EMBER_MODELS, else ../shared/models beside the repository.
func modelsDir() string {
	if d := os.Getenv("EMBER_MODELS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "models")
}

type expectedCase struct {
	Prompt      string  `json:"prompt"`
	Temperature float64 `json:"temperature"`
	Steps       int     `json:"steps"`
	Text        string  `json:"text"`
}

func storiesFiles(t *testing.T) (dir string, cases []expectedCase) {
	t.Helper()
	dir = filepath.Join(modelsDir(), "stories260K")
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Skipf("stories260K test data not found (set EMBER_MODELS to the shared models folder): %v", err)
	}
	var e struct{ Cases []expectedCase }
	require.NoError(t, json.Unmarshal(data, &e))
	require.NotEmpty(t, e.Cases)
	return dir, e.Cases
}

var (
	storiesOnce    sync.Once
	storiesBundles map[string]string // "bin/f32", "gguf/f32", "bin/q8_channel", ... → dir
	storiesErr     error
	storiesTmp     string
)

// storiesBundle converts stories260K once per test binary run.
func storiesBundle(t *testing.T, key string) string {
	dir, _ := storiesFiles(t)
	storiesOnce.Do(func() {
		storiesTmp, storiesErr = os.MkdirTemp("", "ember-stories260K-")
		if storiesErr != nil {
			return
		}
		storiesBundles = map[string]string{}
		tk, err := tokenizer.LoadFile(filepath.Join(dir, "tok512.bin"), 512)
		if err != nil {
			storiesErr = err
			return
		}
		for _, c := range []struct{ key, in, scheme string }{
			{"bin/f32", "stories260K.bin", bundle.SchemeF32},
			{"gguf/f32", "stories260K.gguf", bundle.SchemeF32},
			{"bin/q8_channel", "stories260K.bin", bundle.SchemeQ8Channel},
			{"bin/q8_block32", "stories260K.bin", bundle.SchemeQ8Block32},
		} {
			src, err := convert.Open(filepath.Join(dir, c.in))
			if err != nil {
				storiesErr = err
				return
			}
			tok := tk
			if c.key == "gguf/f32" {
				tok = nil // the GGUF's own vocabulary
			}
			out := filepath.Join(storiesTmp, c.key)
			_, err = convert.Convert(src, tok, convert.Options{Out: out, Quant: c.scheme})
			src.Close()
			if err != nil {
				storiesErr = err
				return
			}
			storiesBundles[c.key] = out
		}
	})
	require.NoError(t, storiesErr)
	return storiesBundles[key]
}

func loadStories(t *testing.T, key string) (*Model, *tokenizer.Tokenizer) {
	m, err := LoadDir(storiesBundle(t, key))
	require.NoError(t, err)
	tok, err := tokenizer.New(&m.Manifest().Tokenizer)
	require.NoError(t, err)
	return m, tok
}

// The f32 bundles converted from the .bin and from the .gguf reproduce
// llama2.c's greedy outputs byte for byte. run.c runs steps forward passes
// from BOS: with a prompt of k tokens (BOS included) it samples steps-k+1
// tokens (the last one is printed but never fed back), so steps tokens for
// the empty prompt.
func TestStories260KExpected(t *testing.T) {
	_, cases := storiesFiles(t)
	for _, key := range []string{"bin/f32", "gguf/f32"} {
		t.Run(key, func(t *testing.T) {
			m, tok := loadStories(t, key)
			s := NewSession(m, tok)
			for _, c := range cases {
				require.Zero(t, c.Temperature)
				s.Reset()
				k := len(tok.Encode(c.Prompt, tokenizer.EncodeOptions{AddBOS: true}))
				res, err := s.Generate(context.Background(), c.Prompt, Options{MaxTokens: c.Steps - k + 1}, nil)
				require.NoError(t, err)
				require.Equal(t, c.Text, res.Text, "steps %d", c.Steps)
				require.Equal(t, FinishLength, res.FinishReason)
			}
		})
	}
}

// Int8 bundles: perplexity on the expected texts within 1% of f32, and how
// long greedy generation follows f32 before the first divergence.
func TestStories260KInt8(t *testing.T) {
	ctx := context.Background()
	_, cases := storiesFiles(t)
	text := cases[len(cases)-1].Text
	ref, tok := loadStories(t, "bin/f32")
	ids := tok.Encode(text, tokenizer.EncodeOptions{AddBOS: true})
	pplRef, n, err := Perplexity(ctx, ref, ids)
	require.NoError(t, err)
	t.Logf("f32: perplexity %.4f over %d tokens", pplRef, n)
	steps := cases[len(cases)-1].Steps
	refRes, err := NewSession(ref, tok).Generate(ctx, "", Options{MaxTokens: steps}, nil)
	require.NoError(t, err)

	for _, scheme := range []string{bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
		m, _ := loadStories(t, "bin/"+scheme)
		for _, qa := range []bool{true, false} {
			m.SetQuantizedActivations(qa)
			ppl, _, err := Perplexity(ctx, m, ids)
			require.NoError(t, err)
			m.Reset()
			res, err := NewSession(m, tok).Generate(ctx, "", Options{MaxTokens: steps}, nil)
			require.NoError(t, err)
			same := 0
			for same < len(res.Tokens) && same < len(refRes.Tokens) && res.Tokens[same] == refRes.Tokens[same] {
				same++
			}
			act := map[bool]string{true: "int8", false: "f32"}[qa]
			t.Logf("%s, %s activations: perplexity %.4f (%+.3f%% vs f32); greedy tokens equal to f32 before the first divergence: %d of %d",
				scheme, act, ppl, 100*(ppl/pplRef-1), same, len(refRes.Tokens))
			require.InEpsilon(t, pplRef, ppl, 0.01, "%s %s activations", scheme, act)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if storiesTmp != "" {
		os.RemoveAll(storiesTmp)
	}
	benchDirs.Range(func(_, v any) bool {
		os.RemoveAll(filepath.Dir(filepath.Dir(v.(string))))
		return true
	})
	os.Exit(code)
}
