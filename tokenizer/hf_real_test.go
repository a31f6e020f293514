package tokenizer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/tokenizer"
)

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestHFJSONGPT2 writes the GPT-2 vocabulary as a HuggingFace tokenizer.json
// (the layout tokenizers saves for GPT-2) and runs llama.cpp's vectors
// through the tokenizer.json loader.
func TestHFJSONGPT2(t *testing.T) {
	src := loadGGUF(t, "llamacpp-vocab/ggml-vocab-gpt-2.gguf").Info()
	vocab := map[string]int{}
	var added []map[string]any
	for i, p := range src.Pieces {
		vocab[p] = i
		if p == "<|endoftext|>" {
			added = append(added, map[string]any{"id": i, "content": p, "special": true})
		}
	}
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"version":        "1.0",
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model":          map[string]any{"type": "BPE", "vocab": vocab, "merges": src.Merges},
	})
	bt, err := tokenizer.LoadFile(filepath.Join(dir, "tokenizer.json"), 0)
	require.NoError(t, err)
	require.Equal(t, bundle.TokenizerByteBPE, bt.Kind)
	require.Equal(t, "gpt2", bt.PreTokenizer)
	require.Equal(t, 50256, bt.EOS)
	require.False(t, bt.AddBOS)
	tok, err := tokenizer.New(bt)
	require.NoError(t, err)
	texts, want := llamacppVectors(t, "llamacpp-vocab/ggml-vocab-gpt-2.gguf")
	for i, text := range texts {
		require.Equal(t, want[i], nilIfEmpty(tok.Encode(text, tokenizer.EncodeOptions{})), "text %d %q", i, text)
	}
}

// TestHFJSONLlama2 writes the Llama 2 SentencePiece model as the
// tokenizer.json transformers' converter produces (vocabulary by id, merges
// of every pair of pieces forming a piece, ordered by the merged piece's
// score, Prepend/Replace normalizer, byte fallback) and checks that it
// encodes like tokenizer.model on the generated strings.
func TestHFJSONLlama2(t *testing.T) {
	ref := load(t, "llama2-tokenizer/tokenizer.model", 32000)
	src := ref.Info()
	vocab := map[string]int{}
	for i, p := range src.Pieces {
		vocab[p] = i
	}
	type merge struct {
		a, b  string
		score float32
		ia    int
		ib    int
	}
	var merges []merge
	for i, p := range src.Pieces {
		if src.Types[i] != bundle.TokenNormal {
			continue
		}
		for k := 1; k < len(p); k++ {
			if !utf8.RuneStart(p[k]) {
				continue
			}
			ia, oka := vocab[p[:k]]
			ib, okb := vocab[p[k:]]
			if oka && okb && src.Types[ia] == bundle.TokenNormal && src.Types[ib] == bundle.TokenNormal {
				merges = append(merges, merge{p[:k], p[k:], src.Scores[i], ia, ib})
			}
		}
	}
	sort.SliceStable(merges, func(x, y int) bool {
		if merges[x].score != merges[y].score {
			return merges[x].score > merges[y].score
		}
		if merges[x].ia != merges[y].ia {
			return merges[x].ia < merges[y].ia
		}
		return merges[x].ib < merges[y].ib
	})
	ms := make([]string, len(merges))
	for i, m := range merges {
		ms[i] = m.a + " " + m.b
	}
	added := []map[string]any{
		{"id": 0, "content": "<unk>", "special": true},
		{"id": 1, "content": "<s>", "special": true},
		{"id": 2, "content": "</s>", "special": true},
	}
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"version":      "1.0",
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{
			map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}},
			map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
		}},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
			"vocab": vocab, "merges": ms},
	})
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"add_bos_token": true, "add_eos_token": false,
		"bos_token":     map[string]any{"content": "<s>", "lstrip": false},
		"eos_token":     map[string]any{"content": "</s>"},
		"unk_token":     "<unk>",
		"chat_template": tokenizer.TemplateLlama2,
	})
	bt, err := tokenizer.LoadFile(dir, 32000)
	require.NoError(t, err)
	require.Equal(t, bundle.TokenizerSentencePiece, bt.Kind)
	require.Equal(t, []int{0, 1, 2}, []int{bt.UNK, bt.BOS, bt.EOS})
	require.True(t, bt.AddBOS && bt.AddDummyPrefix && bt.ByteFallback)
	require.Equal(t, src.Types, bt.Types)
	require.Equal(t, tokenizer.TemplateLlama2, bt.ChatTemplate)
	tok, err := tokenizer.New(bt)
	require.NoError(t, err)
	for _, s := range generatedStrings(1500) {
		want := ref.Encode(s, tokenizer.EncodeOptions{AddBOS: true})
		require.Equal(t, want, tok.Encode(s, tokenizer.EncodeOptions{AddBOS: true}), "%q", s)
	}
}
