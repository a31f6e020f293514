package llama

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ember-llm/ember/tokenizer"
)

// Options control one generation.
type Options struct {
	// MaxTokens bounds the generated tokens (0: until the context is full).
	MaxTokens int
	Sample    SampleParams
	// StopTokens end generation, besides the tokenizer's end-of-generation
	// ids (EOS, end-of-turn); the stop token itself is not part of the text.
	StopTokens []int
	// StopStrings end generation when the text contains one of them; the
	// text is cut before it. Text that could be the start of a stop string is
	// held back from onText until it is known not to be.
	StopStrings []string
	// SlidingWindow: when the prompt does not fit the context, drop the
	// oldest turns (Chat: keeping system messages and the newest turns;
	// Generate: keeping BOS and the newest tokens) instead of failing.
	SlidingWindow bool
}

// Finish reasons.
const (
	FinishStop   = "stop"   // a stop token or stop string
	FinishLength = "length" // MaxTokens or the context length reached
	FinishAbort  = "abort"  // the context was cancelled
)

// Result describes a finished generation.
type Result struct {
	Text         string // the text streamed to onText, stop string excluded
	Tokens       []int  // generated ids, stop token excluded
	FinishReason string
	// PromptTokens is the prompt length; CachedTokens of them were already
	// in the KV cache and not evaluated again.
	PromptTokens, CachedTokens, CompletionTokens int
	// Truncated: the sliding window dropped DroppedMessages chat messages
	// (or, for a plain prompt, DroppedTokens tokens) to fit the context.
	Truncated       bool
	DroppedMessages int
	DroppedTokens   int

	Prefill, Decode, TTFT   time.Duration
	PrefillTokS, DecodeTokS float64
}

// Session generates text with an engine, keeping track of the tokens whose
// keys and values the engine's KV cache holds so that a prompt extending the
// previous one (the next chat turn) only evaluates the new suffix. A Session
// is not safe for concurrent use.
type Session struct {
	e     Engine
	tok   *tokenizer.Tokenizer
	cache []int // tokens held by the engine's KV cache at positions [0, len)
}

// NewSession returns a session over e with its tokenizer.
func NewSession(e Engine, tok *tokenizer.Tokenizer) *Session {
	return &Session{e: e, tok: tok}
}

// Engine is the session's engine.
func (s *Session) Engine() Engine { return s.e }

// Tokenizer is the session's tokenizer.
func (s *Session) Tokenizer() *tokenizer.Tokenizer { return s.tok }

// Reset forgets the KV cache contents.
func (s *Session) Reset() { s.cache = s.cache[:0] }

// Cached returns the tokens held in the KV cache.
func (s *Session) Cached() []int { return append([]int(nil), s.cache...) }

// Generate continues a plain-text prompt. Like llama2.c, the prompt gets BOS
// (when the vocabulary has one) and no special-token parsing.
func (s *Session) Generate(ctx context.Context, prompt string, opts Options, onText func(string)) (*Result, error) {
	ids := s.tok.Encode(prompt, tokenizer.EncodeOptions{AddBOS: true})
	n := s.e.Config().ContextLength
	dropped := 0
	if len(ids) > n || opts.SlidingWindow && len(ids)+reserve(opts, n) > n {
		if !opts.SlidingWindow {
			return nil, fmt.Errorf("%w: the prompt is %d tokens, the context holds %d", ErrContextOverflow, len(ids), n)
		}
		keep := n - reserve(opts, n)
		head := 0
		if bos := s.e.Config().BOSTokenID; bos >= 0 && ids[0] == bos {
			head = 1
		}
		dropped = len(ids) - keep
		ids = append(ids[:head:head], ids[len(ids)-(keep-head):]...)
	}
	res, err := s.GenerateIDs(ctx, ids, opts, onText)
	if res != nil && dropped > 0 {
		res.Truncated, res.DroppedTokens = true, dropped
	}
	return res, err
}

// reserve is the room a sliding window leaves for the answer.
func reserve(opts Options, n int) int {
	r := n / 4
	if opts.MaxTokens > 0 {
		r = min(opts.MaxTokens, n/2)
	}
	return max(r, 1)
}

// Chat renders msgs with the model's chat template (adding the assistant
// prompt) and generates the reply. Extending the previous conversation
// reuses the KV cache.
func (s *Session) Chat(ctx context.Context, msgs []tokenizer.Message, opts Options, onText func(string)) (*Result, error) {
	if len(msgs) == 0 {
		return nil, errors.New("llama: Chat needs at least one message")
	}
	n := s.e.Config().ContextLength
	dropped := 0
	for {
		ids, err := s.encodeChat(msgs)
		if err != nil {
			return nil, err
		}
		fits := len(ids) <= n
		if opts.SlidingWindow && len(ids)+reserve(opts, n) > n && canDrop(msgs) {
			fits = false
		}
		if fits {
			res, err := s.GenerateIDs(ctx, ids, opts, onText)
			if res != nil && dropped > 0 {
				res.Truncated, res.DroppedMessages = true, dropped
			}
			return res, err
		}
		if !opts.SlidingWindow {
			return nil, fmt.Errorf("%w: the conversation is %d tokens, the context holds %d", ErrContextOverflow, len(ids), n)
		}
		if !canDrop(msgs) {
			return nil, fmt.Errorf("%w: the system prompt and the last message alone are %d tokens, the context holds %d", ErrContextOverflow, len(ids), n)
		}
		var k int
		msgs, k = dropOldestTurn(msgs)
		dropped += k
	}
}

// canDrop reports whether a non-system message other than the last remains.
func canDrop(msgs []tokenizer.Message) bool {
	for _, m := range msgs[:len(msgs)-1] {
		if m.Role != "system" {
			return true
		}
	}
	return false
}

// dropOldestTurn removes the oldest non-system message and the replies that
// follow it up to the next user message (the last message always stays).
func dropOldestTurn(msgs []tokenizer.Message) ([]tokenizer.Message, int) {
	out := make([]tokenizer.Message, 0, len(msgs))
	i := 0
	for ; i < len(msgs)-1 && msgs[i].Role == "system"; i++ {
		out = append(out, msgs[i])
	}
	j := i + 1
	for j < len(msgs)-1 && msgs[j].Role != "user" && msgs[j].Role != "system" {
		j++
	}
	out = append(out, msgs[j:]...)
	return out, j - i
}

func (s *Session) encodeChat(msgs []tokenizer.Message) ([]int, error) {
	return s.tok.EncodeChat(msgs, true)
}

// GenerateIDs continues the prompt token ids (BOS included if wanted),
// streaming text pieces to onText (may be nil). A cancelled ctx ends
// generation within one token with FinishReason "abort" and no error.
func (s *Session) GenerateIDs(ctx context.Context, prompt []int, opts Options, onText func(string)) (*Result, error) {
	cfg := s.e.Config()
	nctx := cfg.ContextLength
	if len(prompt) == 0 {
		return nil, errors.New("llama: empty prompt (no tokens and no BOS)")
	}
	if len(prompt) > nctx {
		return nil, fmt.Errorf("%w: the prompt is %d tokens, the context holds %d", ErrContextOverflow, len(prompt), nctx)
	}
	for i, id := range prompt {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("%w: prompt token %d is %d (vocabulary %d)", ErrTokenRange, i, id, cfg.VocabSize)
		}
	}
	res := &Result{PromptTokens: len(prompt)}

	// Reuse the longest cached prefix; at least one token must be evaluated
	// to get logits.
	common := 0
	for common < len(s.cache) && common < len(prompt) && s.cache[common] == prompt[common] {
		common++
	}
	if common == len(prompt) {
		common--
	}
	s.cache = s.cache[:common]
	res.CachedTokens = common

	stops := map[int]bool{}
	for _, id := range opts.StopTokens {
		stops[id] = true
	}
	for _, id := range cfg.EOSTokenIDs {
		stops[id] = true
	}
	maxNew := opts.MaxTokens
	if maxNew <= 0 {
		maxNew = nctx
	}
	sampler := NewSampler(opts.Sample)
	ds, device := s.e.(DeviceSampler)
	device = device && !opts.Sample.HasPenalty()
	dec := s.tok.NewDecoder()
	var text strings.Builder
	emit := func(p string) {
		if p == "" {
			return
		}
		text.WriteString(p)
		if onText != nil {
			onText(p)
		}
	}
	st := stopper{stops: opts.StopStrings, emit: emit}
	history := append([]int(nil), prompt...) // for the repetition penalty

	start := time.Now()
	var decodeStart time.Time
	pending, pos := prompt[common:], common
	for {
		if ctx.Err() != nil {
			res.FinishReason = FinishAbort
			break
		}
		var next int
		var err error
		if device {
			next, err = ds.EvalSample(ctx, pending, pos, opts.Sample, sampler.Uniform())
		} else {
			var logits []float32
			logits, err = s.e.Eval(ctx, pending, pos)
			if err == nil {
				next = sampler.Sample(logits, history)
			}
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				res.FinishReason = FinishAbort
				break
			}
			return nil, err
		}
		s.cache = append(s.cache, pending...)
		pos += len(pending)
		if decodeStart.IsZero() {
			decodeStart = time.Now()
			res.Prefill = decodeStart.Sub(start)
			res.TTFT = res.Prefill
		}
		if next < 0 || next >= cfg.VocabSize {
			return nil, fmt.Errorf("%w: the engine sampled %d", ErrTokenRange, next)
		}
		if stops[next] || s.tok.IsEOG(next) {
			res.FinishReason = FinishStop
			break
		}
		res.Tokens = append(res.Tokens, next)
		history = append(history, next)
		if st.push(dec.Add(next)) {
			res.FinishReason = FinishStop
			break
		}
		if len(res.Tokens) >= maxNew || pos >= nctx {
			res.FinishReason = FinishLength
			break
		}
		pending = []int{next}
	}
	if !st.stopped {
		st.push(dec.Flush())
		st.flush()
	}
	if !decodeStart.IsZero() {
		res.Decode = time.Since(decodeStart)
	}
	res.Text = text.String()
	res.CompletionTokens = len(res.Tokens)
	if res.Prefill > 0 {
		res.PrefillTokS = float64(len(prompt)-common) / res.Prefill.Seconds()
	}
	// The first generated token came out of the prefill; the rest were decoded.
	if n := res.CompletionTokens - 1; n > 0 && res.Decode > 0 {
		res.DecodeTokS = float64(n) / res.Decode.Seconds()
	}
	return res, nil
}

// stopper streams text, holding back any tail that could start a stop
// string and cutting the text at the first complete one.
type stopper struct {
	stops   []string
	held    string
	emit    func(string)
	stopped bool
}

// push adds a piece; it reports whether a stop string was found.
func (s *stopper) push(piece string) bool {
	if s.stopped {
		return true
	}
	s.held += piece
	cut := -1
	for _, stop := range s.stops {
		if stop == "" {
			continue
		}
		if i := strings.Index(s.held, stop); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		s.emit(s.held[:cut])
		s.held = ""
		s.stopped = true
		return true
	}
	keep := 0
	for _, stop := range s.stops {
		for k := min(len(stop)-1, len(s.held)); k > keep; k-- {
			if strings.HasSuffix(s.held, stop[:k]) {
				keep = k
				break
			}
		}
	}
	s.emit(s.held[:len(s.held)-keep])
	s.held = s.held[len(s.held)-keep:]
	return false
}

// flush emits the held-back tail (generation ended without a stop string).
func (s *stopper) flush() {
	if !s.stopped {
		s.emit(s.held)
		s.held = ""
	}
}
