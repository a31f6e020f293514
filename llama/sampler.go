package llama

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
)

// SampleParams chooses how the next token is picked from the logits.
//
// The procedure, which every engine (and DeviceSampler) follows exactly:
//  1. Temperature 0 (or below) is greedy: the argmax, lowest id on ties.
//  2. Otherwise probabilities are softmax(logits / Temperature).
//  3. Tokens are ranked by probability, descending, lower id first on ties;
//     TopK > 0 keeps the first TopK; 0 < TopP < 1 keeps the shortest prefix of
//     the ranking whose probabilities sum to at least TopP; MinP > 0 keeps the
//     tokens with probability ≥ MinP × the largest. The kept set is the
//     intersection (the top token always survives).
//  4. With u uniform in [0, 1), the kept tokens are walked in increasing id
//     order, summing probabilities; the first whose running sum exceeds
//     u × (sum over kept tokens) is chosen (the last kept one if rounding
//     leaves none).
//
// The repetition penalty (CPU only) is applied to the logits before all of
// this: each distinct id among the last RepeatLastN tokens of the context has
// its logit divided by the penalty when positive, multiplied when negative.
type SampleParams struct {
	Temperature       float32 `json:"temperature"`
	TopK              int     `json:"top_k"`
	TopP              float32 `json:"top_p"`
	MinP              float32 `json:"min_p"`
	RepetitionPenalty float32 `json:"repetition_penalty"` // 0 or 1: off
	RepeatLastN       int     `json:"repeat_last_n"`      // 0: DefaultRepeatLastN
	Seed              uint64  `json:"seed"`
}

// DefaultRepeatLastN is the repetition penalty window when RepeatLastN is 0.
const DefaultRepeatLastN = 64

// HasPenalty reports whether a repetition penalty is requested.
func (p SampleParams) HasPenalty() bool {
	return p.RepetitionPenalty > 0 && p.RepetitionPenalty != 1
}

// Greedy reports whether the parameters select the argmax.
func (p SampleParams) Greedy() bool { return !(p.Temperature > 0) }

// Sampler draws tokens with a PRNG seeded from SampleParams.Seed: the same
// seed and the same logits give the same tokens on every platform.
type Sampler struct {
	P   SampleParams
	rng *rand.Rand

	probs []float32
	idx   []int32
}

// NewSampler returns a sampler seeded with p.Seed.
func NewSampler(p SampleParams) *Sampler {
	return &Sampler{P: p, rng: rand.New(rand.NewPCG(p.Seed, 0x656d626572))} // "ember"
}

// Uniform returns the next uniform number in [0, 1) of the sequence. Exactly
// one is drawn per sampled token, greedy or not, so that the sequence stays
// aligned whichever engine samples.
func (s *Sampler) Uniform() float32 {
	for {
		u := float32(s.rng.Float64())
		if u < 1 {
			return u
		}
	}
}

// Sample picks the next token from logits (modified in place by the
// repetition penalty), given the tokens of the context so far.
func (s *Sampler) Sample(logits []float32, context []int) int {
	u := s.Uniform()
	if s.P.HasPenalty() {
		ApplyRepetitionPenalty(logits, context, s.P.RepetitionPenalty, s.P.RepeatLastN)
	}
	return s.sample(logits, u)
}

// ApplyRepetitionPenalty penalizes the distinct ids among the last n tokens
// of context (n <= 0: DefaultRepeatLastN).
func ApplyRepetitionPenalty(logits []float32, context []int, penalty float32, n int) {
	if n <= 0 {
		n = DefaultRepeatLastN
	}
	if len(context) > n {
		context = context[len(context)-n:]
	}
	seen := make(map[int]bool, len(context))
	for _, id := range context {
		if id < 0 || id >= len(logits) || seen[id] {
			continue
		}
		seen[id] = true
		if logits[id] > 0 {
			logits[id] /= penalty
		} else {
			logits[id] *= penalty
		}
	}
}

// SampleLogits applies steps 1–4 of SampleParams to logits with the given
// uniform number u. It does not modify logits.
func SampleLogits(logits []float32, p SampleParams, u float32) int {
	if p.Greedy() {
		return Argmax(logits)
	}
	s := scratchPool.Get().(*Sampler)
	s.P = p
	id := s.sample(logits, u)
	scratchPool.Put(s)
	return id
}

// scratchPool recycles the probability buffers of SampleLogits (a 128k
// vocabulary needs 512 KiB per call).
var scratchPool = sync.Pool{New: func() any { return new(Sampler) }}

// Argmax returns the index of the largest value, the lowest on ties.
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func (s *Sampler) sample(logits []float32, u float32) int {
	p := s.P
	if p.Greedy() {
		return Argmax(logits)
	}
	n := len(logits)
	if cap(s.probs) < n {
		s.probs = make([]float32, n)
	}
	probs := s.probs[:n]
	// softmax(logits / T) in float64 sums for stability.
	maxv := logits[Argmax(logits)]
	invT := 1 / float64(p.Temperature)
	var sum float64
	for i, l := range logits {
		e := math.Exp((float64(l) - float64(maxv)) * invT)
		probs[i] = float32(e)
		sum += e
	}
	inv := 1 / sum
	pmax := float32(0)
	for i := range probs {
		probs[i] = float32(float64(probs[i]) * inv)
		pmax = max(pmax, probs[i])
	}

	topK := p.TopK > 0 && p.TopK < n
	topP := p.TopP > 0 && p.TopP < 1
	minP := p.MinP > 0
	if !topK && !topP && !minP {
		return walk(probs, u)
	}

	// Rank the candidates. Only tokens that can survive the filters need
	// ranking: min-p excludes those below MinP*pmax outright, and top-p
	// (llama2.c's trick) can never keep a token with probability below
	// (1-TopP)/(n-1).
	cut := float32(0)
	if minP {
		cut = p.MinP * pmax
	}
	if topP && !topK && n > 1 {
		cut = max(cut, (1-p.TopP)/float32(n-1))
	}
	idx := s.idx[:0]
	for i, q := range probs {
		if q >= cut {
			idx = append(idx, int32(i))
		}
	}
	if len(idx) == 0 { // rounding: keep the top token
		idx = append(idx, int32(Argmax(probs)))
	}
	s.idx = idx
	better := func(a, b int32) bool { // ranking order: probability, then lower id
		if probs[a] != probs[b] {
			return probs[a] > probs[b]
		}
		return a < b
	}
	if topK && len(idx) > 2*p.TopK {
		idx = selectTop(idx, p.TopK, better)
	}
	sort.Slice(idx, func(a, b int) bool { return better(idx[a], idx[b]) })
	keep := len(idx)
	if topK && p.TopK < keep {
		keep = p.TopK
	}
	if topP {
		var c float32
		for i := 0; i < keep; i++ {
			c += probs[idx[i]]
			if c >= p.TopP {
				keep = i + 1
				break
			}
		}
	}
	if minP {
		for keep > 1 && probs[idx[keep-1]] < p.MinP*pmax {
			keep--
		}
	}
	kept := idx[:keep]
	sort.Slice(kept, func(a, b int) bool { return kept[a] < kept[b] })
	var total float32
	for _, i := range kept {
		total += probs[i]
	}
	target := u * total
	var c float32
	for _, i := range kept {
		c += probs[i]
		if c > target {
			return int(i)
		}
	}
	return int(kept[len(kept)-1])
}

// walk chooses among all tokens (in id order) with running sums.
func walk(probs []float32, u float32) int {
	var total float32
	for _, q := range probs {
		total += q
	}
	target := u * total
	var c float32
	last := 0
	for i, q := range probs {
		if q <= 0 {
			continue
		}
		last = i
		c += q
		if c > target {
			return i
		}
	}
	return last
}

// selectTop moves the k best of idx to its front (in no particular order)
// with a min-heap of size k, and returns them: O(n log k), so top-k over a
// 128k vocabulary does not sort it.
func selectTop(idx []int32, k int, better func(a, b int32) bool) []int32 {
	h := idx[:k]
	down := func(i int) {
		for {
			w := i
			if l := 2*i + 1; l < k && better(h[w], h[l]) {
				w = l
			}
			if r := 2*i + 2; r < k && better(h[w], h[r]) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, c := range idx[k:] {
		if better(c, h[0]) { // h[0] is the worst kept
			h[0] = c
			down(0)
		}
	}
	return h
}
