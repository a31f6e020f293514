package tokenizer_test

import (
	"strings"
	"testing"

	"github.com/ember-llm/ember/tokenizer"
)

// benchText is 100 KB of the generated mixed-script test strings.
func benchText() string {
	var sb strings.Builder
	for _, s := range generatedStrings(5000) {
		if sb.Len() >= 100_000 {
			break
		}
		sb.WriteString(s)
		sb.WriteByte('\n')
	}
	return sb.String()[:100_000]
}

func benchEncode(b *testing.B, tok *tokenizer.Tokenizer, text string) {
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = len(tok.Encode(text, tokenizer.EncodeOptions{}))
	}
	b.ReportMetric(float64(n), "tokens")
}

// BenchmarkEncode100KB encodes 100 KB of mixed text, and 100 KB of one
// space-free "word" (the worst case for a merge loop: one long symbol list).
func BenchmarkEncode100KB(b *testing.B) {
	text := benchText()
	word := strings.Repeat("abcdéfghij", 10_000)[:100_000]
	spm := load(b, "llama2-tokenizer/tokenizer.model", 32000)
	gpt2 := loadGGUF(b, "llamacpp-vocab/ggml-vocab-gpt-2.gguf")
	b.Run("llama2-spm/mixed", func(b *testing.B) { benchEncode(b, spm, text) })
	b.Run("llama2-spm/one-word", func(b *testing.B) { benchEncode(b, spm, word) })
	b.Run("gpt2-bpe/mixed", func(b *testing.B) { benchEncode(b, gpt2, text) })
	b.Run("gpt2-bpe/one-word", func(b *testing.B) { benchEncode(b, gpt2, word) })
	// Ten times the text must take about ten times as long.
	word1M := strings.Repeat(word, 10)
	b.Run("llama2-spm/one-word-1MB", func(b *testing.B) { benchEncode(b, spm, word1M) })
	b.Run("gpt2-bpe/one-word-1MB", func(b *testing.B) { benchEncode(b, gpt2, word1M) })
}

func BenchmarkDecodeStream(b *testing.B) {
	tok := load(b, "llama2-tokenizer/tokenizer.model", 32000)
	ids := tok.Encode(benchText(), tokenizer.EncodeOptions{})
	b.ReportAllocs()
	for b.Loop() {
		d := tok.NewDecoder()
		for _, id := range ids {
			d.Add(id)
		}
		d.Flush()
	}
	b.ReportMetric(float64(len(ids)), "tokens")
}
