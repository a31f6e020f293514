package tokenizer

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/ember-llm/ember/llama/bundle"
)

const ggufSource = "GGUF metadata"

// FromGGUF builds a tokenizer from GGUF metadata as decoded by llama/gguf
// (tokenizer.ggml.* keys and tokenizer.chat_template).
func FromGGUF(md map[string]any) (*bundle.Tokenizer, error) {
	model, ok := md["tokenizer.ggml.model"].(string)
	if !ok {
		return nil, invalidf(ggufSource, "tokenizer.ggml.model is missing or not a string")
	}
	t := &bundle.Tokenizer{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	switch model {
	case "llama":
		// llama.cpp's defaults for SentencePiece vocabularies.
		t.Kind = bundle.TokenizerSentencePiece
		t.AddBOS, t.AddDummyPrefix = true, true
		t.UNK, t.BOS, t.EOS = 0, 1, 2
	case "gpt2":
		t.Kind = bundle.TokenizerByteBPE
	default:
		return nil, fmt.Errorf("%w: %s: tokenizer.ggml.model %q (want llama or gpt2)", ErrUnsupported, ggufSource, model)
	}
	tokens, ok := md["tokenizer.ggml.tokens"].([]string)
	if !ok {
		return nil, invalidf(ggufSource, "tokenizer.ggml.tokens is missing or not an array of strings (got %T)", md["tokenizer.ggml.tokens"])
	}
	n := len(tokens)
	if n == 0 || n > maxPieces {
		return nil, invalidf(ggufSource, "tokenizer.ggml.tokens has %d entries (want 1..%d)", n, maxPieces)
	}
	for _, id := range []*int{&t.UNK, &t.BOS, &t.EOS} {
		if *id >= n {
			*id = -1
		}
	}
	for i, p := range tokens {
		if !utf8.ValidString(p) {
			return nil, invalidf(ggufSource, "tokenizer.ggml.tokens[%d] is not valid UTF-8", i)
		}
	}
	t.Pieces = tokens
	if v, ok := md["tokenizer.ggml.scores"]; ok {
		s, ok := v.([]float32)
		if !ok || len(s) != n {
			return nil, invalidf(ggufSource, "tokenizer.ggml.scores: want %d float32 values, got %T of length %d", n, v, lenOf(v))
		}
		for i, x := range s {
			if math.IsNaN(float64(x)) {
				return nil, invalidf(ggufSource, "tokenizer.ggml.scores[%d] is NaN", i)
			}
		}
		t.Scores = s
	}
	if v, ok := md["tokenizer.ggml.token_type"]; ok {
		ty, err := int32s(v)
		if err != nil || len(ty) != n {
			return nil, invalidf(ggufSource, "tokenizer.ggml.token_type: want %d integers, got %T of length %d", n, v, lenOf(v))
		}
		for i, x := range ty {
			if x < bundle.TokenNormal || x > bundle.TokenByte {
				return nil, invalidf(ggufSource, "tokenizer.ggml.token_type[%d] = %d (want 1..6)", i, x)
			}
		}
		t.Types = ty
	}
	if v, ok := md["tokenizer.ggml.merges"]; ok {
		m, ok := v.([]string)
		if !ok {
			return nil, invalidf(ggufSource, "tokenizer.ggml.merges is %T, want an array of strings", v)
		}
		for i, s := range m {
			if strings.Count(s, " ") != 1 {
				return nil, invalidf(ggufSource, "tokenizer.ggml.merges[%d] %q is not two pieces separated by one space", i, s)
			}
		}
		t.Merges = m
	}
	for _, f := range []struct {
		key string
		id  *int
	}{
		{"tokenizer.ggml.bos_token_id", &t.BOS}, {"tokenizer.ggml.eos_token_id", &t.EOS},
		{"tokenizer.ggml.unknown_token_id", &t.UNK}, {"tokenizer.ggml.padding_token_id", &t.PAD},
	} {
		v, ok := md[f.key]
		if !ok {
			continue
		}
		id, ok := intOf(v)
		if !ok {
			return nil, invalidf(ggufSource, "%s is %T, want an integer", f.key, v)
		}
		if id < -1 || id >= int64(n) {
			// llama.cpp treats out-of-range ids as absent.
			id = -1
		}
		*f.id = int(id)
	}
	for _, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		if id, ok := intOf(md[key]); ok && id >= 0 && id < int64(n) {
			t.EOT = append(t.EOT, int(id))
		}
	}
	for _, f := range []struct {
		key string
		b   *bool
	}{
		{"tokenizer.ggml.add_bos_token", &t.AddBOS}, {"tokenizer.ggml.add_eos_token", &t.AddEOS},
		{"tokenizer.ggml.add_space_prefix", &t.AddDummyPrefix},
		{"tokenizer.ggml.remove_extra_whitespaces", &t.RemoveExtraWhitespaces},
	} {
		if v, ok := md[f.key]; ok {
			b, ok := v.(bool)
			if !ok {
				return nil, invalidf(ggufSource, "%s is %T, want bool", f.key, v)
			}
			*f.b = b
		}
	}
	if v, ok := md["tokenizer.chat_template"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, invalidf(ggufSource, "tokenizer.chat_template is %T, want a string", v)
		}
		t.ChatTemplate = s
	}
	pre, _ := md["tokenizer.ggml.pre"].(string)
	switch t.Kind {
	case bundle.TokenizerSentencePiece:
		if len(t.Scores) == 0 {
			return nil, invalidf(ggufSource, "tokenizer.ggml.scores is missing (a llama tokenizer merges by score)")
		}
		if t.UNK < 0 {
			t.UNK = 0
		}
		t.ByteFallback = hasBytePieces(t)
		if len(t.Types) == 0 {
			t.Types = inferTypes(t)
			t.ByteFallback = hasBytePieces(t)
		}
	case bundle.TokenizerByteBPE:
		if len(t.Merges) == 0 {
			return nil, invalidf(ggufSource, "tokenizer.ggml.merges is missing (a gpt2 tokenizer merges by rank)")
		}
		name, ok := ggufPre[pre]
		if !ok {
			return nil, fmt.Errorf("%w: %s: tokenizer.ggml.pre %q (known: gpt-2, llama-bpe, smollm, qwen2)", ErrUnsupported, ggufSource, pre)
		}
		t.PreTokenizer = name
	}
	addEOTByName(t)
	return finish(t, ggufSource)
}

// ggufPre maps tokenizer.ggml.pre (llama.cpp's names) to this package's
// pre-tokenizer names.
var ggufPre = map[string]string{
	"": "gpt2", "default": "gpt2", "gpt-2": "gpt2", "gpt2": "gpt2",
	"llama-bpe": "llama3", "llama3": "llama3", "llama-v3": "llama3",
	"smollm": "smollm", "qwen2": "qwen2",
}

// inferTypes guesses piece types when a file gives none.
func inferTypes(t *bundle.Tokenizer) []int32 {
	ty := make([]int32, len(t.Pieces))
	for i, p := range t.Pieces {
		switch {
		case i == t.UNK:
			ty[i] = bundle.TokenUnknown
		case i == t.BOS || i == t.EOS:
			ty[i] = bundle.TokenControl
		case isBytePiece(p):
			ty[i] = bundle.TokenByte
		default:
			ty[i] = bundle.TokenNormal
		}
	}
	return ty
}

func intOf(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt32 {
			return -1, true
		}
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

func int32s(v any) ([]int32, error) {
	switch x := v.(type) {
	case []int32:
		return x, nil
	case []uint32:
		out := make([]int32, len(x))
		for i, e := range x {
			out[i] = int32(min(e, math.MaxInt32))
		}
		return out, nil
	case []int64:
		out := make([]int32, len(x))
		for i, e := range x {
			out[i] = int32(max(min(e, math.MaxInt32), math.MinInt32))
		}
		return out, nil
	case []any:
		out := make([]int32, len(x))
		for i, e := range x {
			n, ok := intOf(e)
			if !ok {
				return nil, fmt.Errorf("element %d is %T", i, e)
			}
			out[i] = int32(max(min(n, math.MaxInt32), math.MinInt32))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T", v)
}

func lenOf(v any) int {
	switch x := v.(type) {
	case []float32:
		return len(x)
	case []int32:
		return len(x)
	case []uint32:
		return len(x)
	case []string:
		return len(x)
	case []any:
		return len(x)
	}
	return -1
}
