package llama

import (
	"context"
	"strings"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/stretchr/testify/require"
)

func testTok(t testing.TB, m *bundle.Manifest) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.New(&m.Tokenizer)
	require.NoError(t, err)
	return tok
}

// countingEngine records how many tokens each Eval fed.
type countingEngine struct {
	Engine
	fed []int
}

func (c *countingEngine) Eval(ctx context.Context, tokens []int, pos int) ([]float32, error) {
	c.fed = append(c.fed, len(tokens))
	return c.Engine.Eval(ctx, tokens, pos)
}

func (c *countingEngine) total() int {
	n := 0
	for _, f := range c.fed {
		n += f
	}
	return n
}

// deviceEngine samples "on the device" with SampleLogits, as the WebGPU
// engine does.
type deviceEngine struct {
	Engine
	used int
}

func (d *deviceEngine) EvalSample(ctx context.Context, tokens []int, pos int, p SampleParams, u float32) (int, error) {
	d.used++
	l, err := d.Engine.Eval(ctx, tokens, pos)
	if err != nil {
		return 0, err
	}
	return SampleLogits(l, p, u), nil
}

// scriptEngine "predicts" a fixed sequence of tokens, one per Eval call.
type scriptEngine struct {
	cfg    bundle.Config
	script []int
	calls  int
}

func (s *scriptEngine) Config() *bundle.Config { return &s.cfg }
func (s *scriptEngine) Close() error           { return nil }
func (s *scriptEngine) Eval(ctx context.Context, tokens []int, pos int) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := make([]float32, s.cfg.VocabSize)
	l[s.script[min(s.calls, len(s.script)-1)]] = 10
	s.calls++
	return l, nil
}

func newTestSession(t testing.TB, seed uint64) (*Session, *Model) {
	m := loadTest(t, tinyConfig(), bundle.SchemeF32, seed)
	return NewSession(m, testTok(t, m.Manifest())), m
}

// Greedy generation is the argmax chain of the engine's logits, and the
// same seed reproduces a sampled text.
func TestSessionGreedyAndSeeds(t *testing.T) {
	ctx := context.Background()
	s, m := newTestSession(t, 10)
	res, err := s.Generate(ctx, "the a", Options{MaxTokens: 12}, nil)
	require.NoError(t, err)
	require.Equal(t, FinishLength, res.FinishReason)
	require.Len(t, res.Tokens, 12)

	// Recompute the argmax chain by hand.
	ids := s.tok.Encode("the a", tokenizer.EncodeOptions{AddBOS: true})
	require.Equal(t, 1, ids[0])
	m.Reset()
	l, err := m.Eval(ctx, ids, 0)
	require.NoError(t, err)
	var want []int
	pos := len(ids)
	for range 12 {
		next := Argmax(l)
		want = append(want, next)
		l, err = m.Eval(ctx, []int{next}, pos)
		require.NoError(t, err)
		pos++
	}
	require.Equal(t, want, res.Tokens)
	require.Equal(t, s.tok.Decode(want), res.Text)

	gen := func(seed uint64, sess *Session) *Result {
		sess.Reset()
		r, err := sess.Generate(ctx, "the", Options{MaxTokens: 20, Sample: SampleParams{Temperature: 1, TopP: 0.95, Seed: seed}}, nil)
		require.NoError(t, err)
		return r
	}
	a, b, c := gen(7, s), gen(7, s), gen(8, s)
	require.Equal(t, a.Tokens, b.Tokens)
	require.NotEqual(t, a.Tokens, c.Tokens)

	// The device-sampling path picks the same tokens for the same seed.
	de := &deviceEngine{Engine: m}
	d := gen(7, NewSession(de, s.tok))
	require.Equal(t, a.Tokens, d.Tokens)
	require.Positive(t, de.used)
	// ... but not when a repetition penalty needs the logits on the CPU.
	de.used = 0
	_, err = NewSession(de, s.tok).Generate(ctx, "the", Options{MaxTokens: 3, Sample: SampleParams{Temperature: 1, RepetitionPenalty: 1.3}}, nil)
	require.NoError(t, err)
	require.Zero(t, de.used)
}

// A second chat turn that extends the first evaluates only the new tokens,
// and gives the same reply as a fresh session.
func TestSessionKVReuse(t *testing.T) {
	ctx := context.Background()
	m := loadTest(t, tinyConfig(), bundle.SchemeF32, 11)
	tok := testTok(t, m.Manifest())
	ce := &countingEngine{Engine: m}
	s := NewSession(ce, tok)
	msgs := []tokenizer.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "the a"}}
	r1, err := s.Chat(ctx, msgs, Options{MaxTokens: 6}, nil)
	require.NoError(t, err)
	require.Zero(t, r1.CachedTokens)

	msgs = append(msgs, tokenizer.Message{Role: "assistant", Content: r1.Text}, tokenizer.Message{Role: "user", Content: "the"})
	ce.fed = nil
	r2, err := s.Chat(ctx, msgs, Options{MaxTokens: 6}, nil)
	require.NoError(t, err)
	require.Positive(t, r2.CachedTokens)
	// prefill fed exactly the uncached suffix; then one token per decode step
	require.Equal(t, r2.PromptTokens-r2.CachedTokens, ce.fed[0])
	require.Equal(t, r2.PromptTokens-r2.CachedTokens+len(ce.fed)-1, ce.total())
	t.Logf("turn 2: %d prompt tokens, %d reused", r2.PromptTokens, r2.CachedTokens)

	m2 := loadTest(t, tinyConfig(), bundle.SchemeF32, 11)
	fresh, err := NewSession(m2, tok).Chat(ctx, msgs, Options{MaxTokens: 6}, nil)
	require.NoError(t, err)
	require.Equal(t, fresh.Tokens, r2.Tokens)

	// The identical prompt again still evaluates one token (to get logits).
	ce.fed = nil
	r3, err := s.Chat(ctx, msgs, Options{MaxTokens: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, r3.PromptTokens-1, r3.CachedTokens)
	require.Equal(t, []int{1}, ce.fed)
	require.Equal(t, r2.Tokens[:1], r3.Tokens)
}

func scriptSession(t *testing.T, script []int) *Session {
	c := tinyConfig()
	tk := testTokenizer(c.VocabSize)
	tok, err := tokenizer.New(&tk)
	require.NoError(t, err)
	return NewSession(&scriptEngine{cfg: c, script: script}, tok)
}

// Token ids of testTokenizer.
const (
	tokS    = 270 // "▁S"
	tokTOP  = 271 // "TOP"
	tokSTOP = 272 // "▁STOP"
	tokW0   = 274 // "▁w0", then ▁w1 …
)

func byteTok(b byte) int { return 3 + int(b) }

func TestSessionStopStrings(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		script []int
		stops  []string
		want   string
		finish string
	}{
		{"split-over-tokens", []int{tokW0, tokW0 + 1, tokS, tokTOP, tokW0 + 2}, []string{" STOP"}, "w0 w1", FinishStop},
		{"one-token", []int{tokW0, tokSTOP, tokW0 + 1}, []string{"STOP"}, "w0 ", FinishStop},
		{"false-start", []int{tokW0, tokS, tokW0 + 1, tokW0 + 2}, []string{" STOP"}, "w0 S w1 w2", FinishLength},
		{"eos", []int{tokW0, 2, tokW0 + 1}, nil, "w0", FinishStop},
		{"utf8-bytes", []int{byteTok(0xC3), byteTok(0xA9), tokW0}, nil, "é w0 w0", FinishLength},
		{"earliest-of-two", []int{tokW0, tokW0 + 1, tokW0 + 2}, []string{"w2", "w1"}, "w0 ", FinishStop},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := scriptSession(t, tc.script)
			var pieces []string
			res, err := s.Generate(ctx, "", Options{MaxTokens: 4, StopStrings: tc.stops}, func(p string) {
				pieces = append(pieces, p)
			})
			require.NoError(t, err)
			require.Equal(t, tc.want, res.Text)
			require.Equal(t, tc.finish, res.FinishReason)
			require.Equal(t, tc.want, strings.Join(pieces, ""))
			for _, p := range pieces {
				require.NotEmpty(t, p)
				require.NotContains(t, p, "\uFFFD")
			}
		})
	}
	// Extra stop token ids.
	s := scriptSession(t, []int{tokW0, tokW0 + 1, tokW0 + 2})
	res, err := s.Generate(ctx, "", Options{MaxTokens: 10, StopTokens: []int{tokW0 + 2}}, nil)
	require.NoError(t, err)
	require.Equal(t, "w0 w1", res.Text)
	require.Equal(t, FinishStop, res.FinishReason)
}

// Cancelling stops generation within one token, reported as "abort".
func TestSessionCancel(t *testing.T) {
	s := scriptSession(t, []int{tokW0, tokW0 + 1, tokW0 + 2, tokW0 + 3, tokW0 + 4, tokW0 + 5})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := s.Generate(ctx, "", Options{MaxTokens: 50}, func(string) {
		n++
		if n == 2 {
			cancel()
		}
	})
	require.NoError(t, err)
	require.Equal(t, FinishAbort, res.FinishReason)
	require.Len(t, res.Tokens, 2)
}

func TestSessionContext(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestSession(t, 12)
	n := s.e.Config().ContextLength
	long := strings.Repeat("the a ", n)
	_, err := s.Generate(ctx, long, Options{MaxTokens: 4}, nil)
	require.ErrorIs(t, err, ErrContextOverflow)

	res, err := s.Generate(ctx, long, Options{MaxTokens: 4, SlidingWindow: true}, nil)
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.LessOrEqual(t, res.PromptTokens+4, n)
	require.Equal(t, 1, s.Cached()[0], "BOS kept")

	// Chat: the oldest turns go, the system prompt and the last message stay.
	msgs := []tokenizer.Message{{Role: "system", Content: "sys"}}
	for i := 0; i < 12; i++ {
		msgs = append(msgs, tokenizer.Message{Role: "user", Content: "the a the a"}, tokenizer.Message{Role: "assistant", Content: "a the a the"})
	}
	msgs = append(msgs, tokenizer.Message{Role: "user", Content: "last"})
	_, err = s.Chat(ctx, msgs, Options{MaxTokens: 8}, nil)
	require.ErrorIs(t, err, ErrContextOverflow)
	res, err = s.Chat(ctx, msgs, Options{MaxTokens: 8, SlidingWindow: true}, nil)
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.Positive(t, res.DroppedMessages)
	require.Zero(t, res.DroppedMessages%2, "whole turns are dropped")
	require.LessOrEqual(t, res.PromptTokens+8, n)
	kept := s.tok.Decode(s.Cached())
	require.Contains(t, kept, "sys")
	require.Contains(t, kept, "last")

	// Generation stops at the end of the context.
	s.Reset()
	res, err = s.Generate(ctx, strings.Repeat("the ", n/2), Options{}, nil)
	require.NoError(t, err)
	require.Equal(t, FinishLength, res.FinishReason)
	require.Equal(t, n, len(s.Cached()))
}

func TestStopper(t *testing.T) {
	var out strings.Builder
	st := stopper{stops: []string{"<|end|>", "\n\n"}, emit: func(s string) { out.WriteString(s) }}
	for _, p := range []string{"hello <", "|en", "d", "ing\n", "x", "<|", "end|", ">tail"} {
		if st.push(p) {
			break
		}
	}
	require.True(t, st.stopped)
	require.Equal(t, "hello <|ending\nx", out.String())
}
