package tokenizer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/gguf"
	"github.com/ember-llm/ember/tokenizer"
)

// modelsDir is $EMBER_MODELS, default ../shared/models from the repository root.
func modelsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Skipf("real model data not found at %s (set EMBER_MODELS): %v", dir, err)
	}
	return dir
}

func modelFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(modelsDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not found: %v", p, err)
	}
	return p
}

func load(t testing.TB, rel string, vocab int) *tokenizer.Tokenizer {
	t.Helper()
	bt, err := tokenizer.LoadFile(modelFile(t, rel), vocab)
	require.NoError(t, err)
	tok, err := tokenizer.New(bt)
	require.NoError(t, err)
	return tok
}

func loadGGUF(t testing.TB, rel string) *tokenizer.Tokenizer {
	t.Helper()
	f, err := gguf.Open(modelFile(t, rel))
	require.NoError(t, err)
	defer f.Close()
	bt, err := tokenizer.FromGGUF(f.Metadata)
	require.NoError(t, err)
	tok, err := tokenizer.New(bt)
	require.NoError(t, err)
	return tok
}

func TestLlama2Cases(t *testing.T) {
	data, err := os.ReadFile(modelFile(t, "llama2-tokenizer/cases.json"))
	require.NoError(t, err)
	var cases struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids_with_bos"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &cases))
	require.Len(t, cases.Cases, 5)
	for _, file := range []string{"llama2-tokenizer/tokenizer.model", "llama2-tokenizer/tokenizer.bin"} {
		tok := load(t, file, 32000)
		for _, c := range cases.Cases {
			got := tok.Encode(c.Text, tokenizer.EncodeOptions{AddBOS: true})
			require.Equal(t, c.IDs, got, "%s: %q", file, c.Text)
			require.Equal(t, c.Text, tok.Decode(got), "%s: decode", file)
		}
	}
}

// llamacppVectors reads llama.cpp's .inp/.out test vectors.
func llamacppVectors(t *testing.T, base string) (texts []string, ids [][]int) {
	inp, err := os.ReadFile(modelFile(t, base+".inp"))
	require.NoError(t, err)
	out, err := os.ReadFile(modelFile(t, base+".out"))
	require.NoError(t, err)
	const sep = "\n__ggml_vocab_test__\n"
	texts = strings.Split(string(inp), sep)
	require.Equal(t, "", texts[len(texts)-1], "the .inp file ends with the separator")
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, lines, len(texts))
	for _, l := range lines {
		var row []int
		for _, f := range strings.Fields(l) {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			row = append(row, n)
		}
		ids = append(ids, row)
	}
	return texts, ids
}

func TestLlamaCppVocabSPM(t *testing.T) {
	tok := loadGGUF(t, "llamacpp-vocab/ggml-vocab-llama-spm.gguf")
	require.Equal(t, bundle.TokenizerSentencePiece, tok.Info().Kind)
	texts, want := llamacppVectors(t, "llamacpp-vocab/ggml-vocab-llama-spm.gguf")
	for i, text := range texts {
		got := tok.Encode(text, tokenizer.EncodeOptions{})
		require.Equal(t, want[i], nilIfEmpty(got), "text %d %q", i, text)
		require.Equal(t, text, tok.Decode(got), "decode %d", i)
	}
}

func TestLlamaCppVocabGPT2(t *testing.T) {
	tok := loadGGUF(t, "llamacpp-vocab/ggml-vocab-gpt-2.gguf")
	require.Equal(t, bundle.TokenizerByteBPE, tok.Info().Kind)
	texts, want := llamacppVectors(t, "llamacpp-vocab/ggml-vocab-gpt-2.gguf")
	for i, text := range texts {
		got := tok.Encode(text, tokenizer.EncodeOptions{})
		require.Equal(t, want[i], nilIfEmpty(got), "text %d %q", i, text)
		require.Equal(t, text, tok.Decode(got), "decode %d", i)
	}
}

func nilIfEmpty(a []int) []int {
	if len(a) == 0 {
		return nil
	}
	return a
}

// TestLlama2Chat encodes a Llama 2 chat conversation: BOS before every
// [INST], "▁[" "INST" "]" (the well-known 518 25580 29962), EOS after each
// answer, and "</s>" never split into text pieces.
func TestLlama2Chat(t *testing.T) {
	tok := load(t, "llama2-tokenizer/tokenizer.model", 32000)
	ids, err := tok.EncodeChat([]tokenizer.Message{{Role: "user", Content: "Hi"}}, true)
	require.NoError(t, err)
	require.Equal(t, []int{1, 518, 25580, 29962, 6324, 518, 29914, 25580, 29962}, ids)
	ids, err = tok.EncodeChat([]tokenizer.Message{
		{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"},
		{Role: "assistant", Content: "Hello!"}, {Role: "user", Content: "Bye"},
	}, true)
	require.NoError(t, err)
	require.Equal(t, []int{1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13, 3629, 11473, 29889, 13, 29966, 829, 14816,
		29903, 6778, 13, 13, 18567, 518, 29914, 25580, 29962, 15043, 29991, 29871, 2, 1, 518, 25580, 29962, 2648, 29872,
		518, 29914, 25580, 29962}, ids)
	require.Equal(t, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello!  [INST] Bye [/INST]", tok.Decode(ids))
}
