package tokenizer_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/tokenizer"
)

// TestSentencePieceOptionVariants runs spm_encode on copies of the Llama 2
// model with other normalizer and trainer options (remove_extra_whitespaces,
// no dummy prefix, no byte fallback, user-defined pieces) to check the
// options this package honours.
func TestSentencePieceOptionVariants(t *testing.T) {
	if _, err := exec.LookPath("spm_encode"); err != nil {
		t.Skip("spm_encode not installed (Debian package sentencepiece)")
	}
	base := load(t, "llama2-tokenizer/tokenizer.model", 32000).Info()
	var plain []string
	for _, s := range generatedStrings(600) {
		if !strings.Contains(s, "\n") {
			plain = append(plain, s)
		}
	}
	plain = append(plain, "  lead and trail  ", "a   b", " ", "   ", "x\u00e9\u0301", "<b>bold</b> [X] [X][X]")
	for name, edit := range map[string]func(bt *bundle.Tokenizer){
		"remove_extra_whitespaces": func(bt *bundle.Tokenizer) { bt.RemoveExtraWhitespaces = true },
		"no_dummy_prefix":          func(bt *bundle.Tokenizer) { bt.AddDummyPrefix = false },
		"no_byte_fallback": func(bt *bundle.Tokenizer) {
			bt.ByteFallback = false
			for i := range bt.Types {
				if bt.Types[i] == bundle.TokenByte {
					bt.Types[i] = bundle.TokenUnused
				}
			}
		},
		"user_defined": func(bt *bundle.Tokenizer) {
			// Turn a few normal pieces into user-defined ones: they are then
			// matched whole wherever they occur and never merged further.
			for _, p := range []string{"<b>", "[X]", "the", "▁wor"} {
				found := false
				for i, q := range bt.Pieces {
					if q == p {
						bt.Types[i], found = bundle.TokenUserDefined, true
					}
				}
				if !found {
					bt.Pieces = append(bt.Pieces, p)
					bt.Scores = append(bt.Scores, 0)
					bt.Types = append(bt.Types, bundle.TokenUserDefined)
				}
			}
		},
		"unused": func(bt *bundle.Tokenizer) {
			for _, p := range []string{"▁the", "ing", "▁a"} {
				for i, q := range bt.Pieces {
					if q == p {
						bt.Types[i] = bundle.TokenUnused
					}
				}
			}
		},
	} {
		bt := *base
		bt.Pieces = append([]string(nil), base.Pieces...)
		bt.Scores = append([]float32(nil), base.Scores...)
		bt.Types = append([]int32(nil), base.Types...)
		edit(&bt)
		model := filepath.Join(t.TempDir(), name+".model")
		require.NoError(t, os.WriteFile(model, spModelBytes(&bt), 0o644))
		// Loading the written model back gives the same options.
		loaded, err := tokenizer.LoadFile(model, 0)
		require.NoError(t, err, name)
		require.Equal(t, bt.RemoveExtraWhitespaces, loaded.RemoveExtraWhitespaces, name)
		require.Equal(t, bt.AddDummyPrefix, loaded.AddDummyPrefix, name)
		tok, err := tokenizer.New(loaded)
		require.NoError(t, err, name)
		want := spmEncode(t, model, plain)
		for i, s := range plain {
			require.Equal(t, nilIfEmpty(want[i]), nilIfEmpty(tok.Encode(s, tokenizer.EncodeOptions{})), "%s: %q", name, s)
		}
	}
}
