package llama

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func randLogits(rng *rand.Rand, n int) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(2 * rng.NormFloat64())
	}
	return l
}

func softmaxT(l []float32, temp float64) []float64 {
	p := make([]float64, len(l))
	mx := float64(l[Argmax(l)])
	var s float64
	for i, v := range l {
		p[i] = math.Exp((float64(v) - mx) / temp)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

func TestSampleGreedy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100 {
		l := randLogits(rng, 50)
		want := Argmax(l)
		for _, u := range []float32{0, 0.5, 0.999} {
			require.Equal(t, want, SampleLogits(l, SampleParams{Temperature: 0, TopK: 3, TopP: 0.5}, u))
		}
	}
	require.Equal(t, 1, Argmax([]float32{0, 3, 3, 1}), "ties: lowest id")
}

// Top-k, top-p and min-p never emit a token outside the set an independent
// computation allows, and every allowed token does come up.
func TestSampleFiltersExclude(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for trial := range 10 {
		l := randLogits(rng, 40)
		temp := 0.5 + rng.Float64()
		p := softmaxT(l, temp)
		order := make([]int, len(p))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
		cases := []struct {
			params  SampleParams
			allowed map[int]bool
		}{}
		k := 1 + rng.IntN(8)
		topK := map[int]bool{}
		for _, i := range order[:k] {
			topK[i] = true
		}
		cases = append(cases, struct {
			params  SampleParams
			allowed map[int]bool
		}{SampleParams{Temperature: float32(temp), TopK: k}, topK})
		topP := 0.3 + 0.6*rng.Float64()
		nucleus := map[int]bool{}
		var c float64
		for _, i := range order {
			nucleus[i] = true
			c += p[i]
			if c >= topP {
				break
			}
		}
		cases = append(cases, struct {
			params  SampleParams
			allowed map[int]bool
		}{SampleParams{Temperature: float32(temp), TopP: float32(topP)}, nucleus})
		minP := 0.05 + 0.3*rng.Float64()
		above := map[int]bool{}
		for i := range p {
			if p[i] >= minP*p[order[0]]*(1-1e-4) { // lenient at the float32 boundary
				above[i] = true
			}
		}
		cases = append(cases, struct {
			params  SampleParams
			allowed map[int]bool
		}{SampleParams{Temperature: float32(temp), MinP: float32(minP)}, above})

		for ci, tc := range cases {
			s := NewSampler(SampleParams{Seed: uint64(trial)})
			seen := map[int]int{}
			for range 2000 {
				id := SampleLogits(l, tc.params, s.Uniform())
				require.True(t, tc.allowed[id], "trial %d case %d: token %d (p=%.4f) is excluded", trial, ci, id, p[id])
				seen[id]++
			}
			for id := range tc.allowed {
				// every allowed token with non-negligible mass shows up
				if p[id] > 0.01 && (tc.params.MinP == 0 || p[id] > 1.01*float64(tc.params.MinP)*p[order[0]]) {
					require.Positive(t, seen[id], "trial %d case %d: token %d never drawn", trial, ci, id)
				}
			}
		}
	}
}

// Without filters the draws follow softmax(logits / T).
func TestSampleDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	l := randLogits(rng, 12)
	const temp, n = 1.3, 60000
	p := softmaxT(l, temp)
	s := NewSampler(SampleParams{Temperature: temp, Seed: 99})
	count := make([]int, len(l))
	for range n {
		count[s.Sample(append([]float32(nil), l...), nil)]++
	}
	for i, q := range p {
		sd := math.Sqrt(q * (1 - q) / n)
		require.InDelta(t, q, float64(count[i])/n, 5*sd+1e-4, "token %d", i)
	}
}

func TestSampleSeeds(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	l := randLogits(rng, 100)
	draw := func(seed uint64) []int {
		s := NewSampler(SampleParams{Temperature: 1, TopP: 0.9, TopK: 50, Seed: seed})
		var out []int
		for range 50 {
			out = append(out, s.Sample(append([]float32(nil), l...), nil))
		}
		return out
	}
	require.Equal(t, draw(1), draw(1))
	require.NotEqual(t, draw(1), draw(2))
}

func TestRepetitionPenalty(t *testing.T) {
	l := []float32{2, -2, 1, 0.5}
	ApplyRepetitionPenalty(l, []int{0, 1, 0, 9, -1}, 2, 0)
	require.Equal(t, []float32{1, -4, 1, 0.5}, l)
	// only the window counts
	l = []float32{2, 2, 2}
	ApplyRepetitionPenalty(l, []int{0, 1, 2}, 2, 1)
	require.Equal(t, []float32{2, 2, 1}, l)
	// a strong penalty moves greedy off the repeated token
	s := NewSampler(SampleParams{Temperature: 0, RepetitionPenalty: 10})
	require.Equal(t, 2, s.Sample([]float32{3, 0, 1}, []int{0}))
}
