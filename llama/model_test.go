package llama

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/stretchr/testify/require"
)

func maxAbsDiff64(a []float32, b []float64) (d, scale float64) {
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
		scale = math.Max(scale, math.Abs(b[i]))
	}
	return d, scale
}

func testTokens(n, vocab int) []int {
	toks := make([]int, n)
	for i := range toks {
		toks[i] = (i*37 + 11) % vocab
	}
	toks[0] = 1
	return toks
}

// The engine's f32 path agrees with the plain float64 reference, token by
// token, for GQA, tied and separate classifiers and RoPE scaling variants.
func TestForwardMatchesReference(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(*bundle.Config){
		"gqa-separate": func(*bundle.Config) {},
		"mha-tied":     func(c *bundle.Config) { c.NKVHeads = c.NHeads; c.TiedEmbeddings = true },
		"theta-500000": func(c *bundle.Config) { c.RopeTheta = 500000 },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			c := tinyConfig()
			edit(&c)
			w := randomWeights(c, 1)
			m, err := LoadDir(writeBundle(t, t.TempDir(), c, w, bundle.SchemeF32))
			require.NoError(t, err)
			ref := refFromBundleWeights(c, w)
			ref.theta = c.RopeTheta
			for pos, tok := range testTokens(40, c.VocabSize) {
				got, err := m.Eval(ctx, []int{tok}, pos)
				require.NoError(t, err)
				want := ref.forward(tok, pos)
				d, s := maxAbsDiff64(got, want)
				require.Less(t, d, 1e-4*s+1e-5, "pos %d", pos)
			}
		})
	}
}

// Prefill in blocks equals token-by-token evaluation; EvalAll sees every
// position's logits; the thread count does not change a single bit.
func TestPrefillBatchAndThreads(t *testing.T) {
	t.Run("simd", testPrefillBatchAndThreads)
	if useAVX2 {
		useAVX2 = false
		defer func() { useAVX2 = true }()
		t.Run("purego", testPrefillBatchAndThreads)
	}
}

func testPrefillBatchAndThreads(t *testing.T) {
	ctx := context.Background()
	for _, scheme := range []string{bundle.SchemeF32, bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
		t.Run(scheme, func(t *testing.T) {
			c := tinyConfig()
			m := loadTest(t, c, scheme, 2)
			toks := testTokens(70, c.VocabSize) // crosses two block boundaries
			seq := make([][]float32, len(toks))
			m.SetThreads(1)
			for pos, tok := range toks {
				l, err := m.Eval(ctx, []int{tok}, pos)
				require.NoError(t, err)
				seq[pos] = append([]float32(nil), l...)
			}
			for _, threads := range []int{1, 3} {
				m.SetThreads(threads)
				l, err := m.Eval(ctx, toks, 0)
				require.NoError(t, err)
				d, s := maxAbsDiff64(l, f64(seq[len(toks)-1]))
				require.Less(t, d, 1e-4*s, "threads %d", threads)
				require.NoError(t, m.EvalAll(ctx, toks, 0, func(i int, l []float32) error {
					d, s := maxAbsDiff64(l, f64(seq[i]))
					require.Less(t, d, 1e-4*s, "pos %d", i)
					return nil
				}))
			}
			// bit-identical across thread counts
			m.SetThreads(1)
			a, err := m.Eval(ctx, toks, 0)
			require.NoError(t, err)
			a = append([]float32(nil), a...)
			m.SetThreads(4)
			b, err := m.Eval(ctx, toks, 0)
			require.NoError(t, err)
			require.Equal(t, a, b)
		})
	}
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// Both int8 schemes, with f32 and with quantized activations, stay close to
// the f32 logits.
func TestInt8CloseToF32(t *testing.T) {
	ctx := context.Background()
	c := tinyConfig()
	w := randomWeights(c, 3)
	dir := t.TempDir()
	ref, err := LoadDir(writeBundle(t, dir, c, w, bundle.SchemeF32))
	require.NoError(t, err)
	toks := testTokens(30, c.VocabSize)
	want, err := ref.Eval(ctx, toks, 0)
	require.NoError(t, err)
	want = append([]float32(nil), want...)
	for _, scheme := range []string{bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
		m, err := LoadDir(writeBundle(t, dir, c, w, scheme))
		require.NoError(t, err)
		for _, qa := range []bool{false, true} {
			m.SetQuantizedActivations(qa)
			got, err := m.Eval(ctx, toks, 0)
			require.NoError(t, err)
			d, s := maxAbsDiff64(got, f64(want))
			t.Logf("%s quantized activations=%v: max |Δlogit| %.4f of %.2f", scheme, qa, d, s)
			require.Less(t, d, 0.05*s, "%s quantAct=%v", scheme, qa)
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	c := tinyConfig()
	m := loadTest(t, c, bundle.SchemeF32, 4)
	_, err := m.Eval(ctx, []int{c.VocabSize}, 0)
	require.ErrorIs(t, err, ErrTokenRange)
	_, err = m.Eval(ctx, []int{-1}, 0)
	require.ErrorIs(t, err, ErrTokenRange)
	_, err = m.Eval(ctx, []int{1, 2}, c.ContextLength-1)
	require.ErrorIs(t, err, ErrContextOverflow)
	_, err = m.Eval(ctx, []int{1}, -1)
	require.ErrorIs(t, err, ErrContextOverflow)
	_, err = m.Eval(ctx, nil, 0)
	require.Error(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Eval(cctx, []int{1}, 0)
	require.ErrorIs(t, err, context.Canceled)

	// NaN in a weight shows up as an error on the logits, not garbage.
	w := randomWeights(c, 5)
	w[bundle.LayerTensor(1, bundle.W2)][7] = float32(math.NaN())
	bad, err := LoadDir(writeBundle(t, t.TempDir(), c, w, bundle.SchemeF32))
	require.NoError(t, err)
	_, err = bad.Eval(ctx, []int{1, 5}, 0)
	require.ErrorIs(t, err, ErrNonFinite)

	// A manifest whose config disagrees with its tensors is refused.
	b, err := bundle.Open(writeBundle(t, t.TempDir(), c, randomWeights(c, 6), bundle.SchemeF32))
	require.NoError(t, err)
	b.Manifest.Config.HiddenDim++
	_, err = Load(b.Manifest, DirSource{b})
	require.ErrorIs(t, err, ErrBadModel)

	// A corrupted shard fails verification in LoadDir.
	dir := writeBundle(t, t.TempDir(), c, randomWeights(c, 7), bundle.SchemeF32)
	shard := filepath.Join(dir, bundle.ShardName(0))
	data, err := os.ReadFile(shard)
	require.NoError(t, err)
	data[300] ^= 1
	require.NoError(t, os.WriteFile(shard, data, 0o644))
	_, err = LoadDir(dir)
	require.True(t, errors.Is(err, bundle.ErrChecksum), "%v", err)

	// Closed model.
	require.NoError(t, m.Close())
	_, err = m.Eval(ctx, []int{1}, 0)
	require.Error(t, err)
}
