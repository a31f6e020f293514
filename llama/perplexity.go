package llama

import (
	"context"
	"errors"
	"math"
)

// Perplexity evaluates tokens (BOS first, as generation sees them) and
// returns exp of the mean negative log-likelihood of tokens[1:], each given
// the tokens before it, and how many predictions were scored. Text longer
// than the context is scored in consecutive windows of the context length,
// each evaluated from position 0.
func Perplexity(ctx context.Context, m *Model, tokens []int) (ppl float64, n int, err error) {
	if len(tokens) < 2 {
		return 0, 0, errors.New("llama: perplexity needs at least two tokens")
	}
	window := m.Config().ContextLength
	var nll float64
	for start := 0; start < len(tokens)-1; start += window {
		chunk := tokens[start:min(start+window+1, len(tokens))]
		in := chunk[:len(chunk)-1]
		err := m.EvalAll(ctx, in, 0, func(i int, logits []float32) error {
			nll -= logProb(logits, chunk[i+1])
			n++
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return math.Exp(nll / float64(n)), n, nil
}

// logProb is log softmax(logits)[id], in float64.
func logProb(logits []float32, id int) float64 {
	mx := float64(logits[Argmax(logits)])
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l) - mx)
	}
	return float64(logits[id]) - mx - math.Log(sum)
}
