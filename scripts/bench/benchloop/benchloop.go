// Package benchloop is the measurement loop of scripts/bench, shared by the
// host CPU benchmark and the wasm entry's benchmark mode so that every
// backend is timed the same way: a warm-up pass, one prefill of P prompt
// tokens (its time is the time to first token), then N greedy decode steps
// that ignore end-of-sequence tokens.
package benchloop

import (
	"context"
	"fmt"
	"time"

	"github.com/ember-llm/ember/llama"
)

// Result holds one benchmark's figures.
type Result struct {
	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"gen_tokens"`
	PrefillSec   float64 `json:"prefill_s"`
	DecodeSec    float64 `json:"decode_s"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
	TTFTMS       float64 `json:"ttft_ms"`
	LoadMS       float64 `json:"load_ms"`
	FirstToken   int     `json:"first_token"`
	LastToken    int     `json:"last_token"`
}

// Prompt returns P deterministic token ids (BOS first when bos >= 0).
func Prompt(P, vocab, bos int) []int {
	ids := make([]int, P)
	for i := range ids {
		ids[i] = (i*7919 + 13) % vocab
	}
	if bos >= 0 && P > 0 {
		ids[0] = bos
	}
	return ids
}

func next(ctx context.Context, e llama.Engine, tokens []int, pos int) (int, error) {
	if ds, ok := e.(llama.DeviceSampler); ok {
		return ds.EvalSample(ctx, tokens, pos, llama.SampleParams{}, 0)
	}
	logits, err := e.Eval(ctx, tokens, pos)
	if err != nil {
		return 0, err
	}
	return llama.Argmax(logits), nil
}

// Run measures prefill of P tokens and N decode steps on e.
func Run(ctx context.Context, e llama.Engine, P, N int) (Result, error) {
	c := e.Config()
	if P < 1 || N < 0 {
		return Result{}, fmt.Errorf("benchloop: need at least one prompt token (P=%d, N=%d)", P, N)
	}
	if P+N > c.ContextLength {
		return Result{}, fmt.Errorf("benchloop: %d prompt + %d generated tokens exceed the context of %d", P, N, c.ContextLength)
	}
	prompt := Prompt(P, c.VocabSize, c.BOSTokenID)
	// Warm-up: first dispatches of every pipeline, allocator growth.
	w := min(P, 8)
	tok, err := next(ctx, e, prompt[:w], 0)
	if err != nil {
		return Result{}, err
	}
	for i := 0; i < 2 && w+i < c.ContextLength; i++ {
		if tok, err = next(ctx, e, []int{tok}, w+i); err != nil {
			return Result{}, err
		}
	}
	r := Result{PromptTokens: P, GenTokens: N}
	t0 := time.Now()
	tok, err = next(ctx, e, prompt, 0)
	if err != nil {
		return r, err
	}
	r.PrefillSec = time.Since(t0).Seconds()
	r.TTFTMS = r.PrefillSec * 1000
	r.PrefillTokS = float64(P) / r.PrefillSec
	r.FirstToken = tok
	t1 := time.Now()
	for i := 0; i < N; i++ {
		if tok, err = next(ctx, e, []int{tok}, P+i); err != nil {
			return r, err
		}
	}
	r.DecodeSec = time.Since(t1).Seconds()
	if N > 0 {
		r.DecodeTokS = float64(N) / r.DecodeSec
	}
	r.LastToken = tok
	return r, nil
}

// Format prints the figures the way scripts/bench reports them.
func (r Result) Format() string {
	return fmt.Sprintf("load %.0f ms\nprefill %d tokens: %.1f tok/s\ntime to first token %.1f ms\ndecode %d tokens: %.2f tok/s\n",
		r.LoadMS, r.PromptTokens, r.PrefillTokS, r.TTFTMS, r.GenTokens, r.DecodeTokS)
}
