package llama

import (
	"math"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/stretchr/testify/require"
)

func TestRopeScaling(t *testing.T) {
	c := bundle.Config{HeadDim: 128, RopeTheta: 500000}
	base := RopeInvFreq(&c)
	require.InDelta(t, 1.0, base[0], 0)
	require.InDelta(t, math.Pow(500000, -2.0/128), base[1], 1e-15)

	c.RopeScaling = &bundle.RopeScaling{Type: "linear", Factor: 4}
	for i, f := range RopeInvFreq(&c) {
		require.InDelta(t, base[i]/4, f, 1e-18)
	}

	// Llama 3.1: factor 8, low 1, high 4, original context 8192.
	c.RopeScaling = &bundle.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContextLength: 8192}
	got := RopeInvFreq(&c)
	var high, low, mid int
	for i, f := range base {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < 8192/4.0: // high frequencies are kept
			require.Equal(t, f, got[i])
			high++
		case wavelen > 8192/1.0: // low frequencies are divided by the factor
			require.InDelta(t, f/8, got[i], 1e-18)
			low++
		default: // in between: a blend, strictly between the two
			require.Less(t, got[i], f)
			require.Greater(t, got[i], f/8)
			mid++
		}
	}
	require.Positive(t, high)
	require.Positive(t, low)
	require.Positive(t, mid)
	// and the blend is monotonic in the wavelength
	for i := 1; i < len(got); i++ {
		require.Less(t, got[i], got[i-1])
	}
}
