//go:build js && wasm

package engine

import (
	"math"

	"github.com/ember-llm/ember/llama/bundle"
)

// ropeInvFreq returns the inverse frequency of each rotated pair of a head
// with the config's RoPE scaling, computed exactly as the CPU engine does
// (llama/model.go) so that the GPU's cos/sin tables are bit-identical.
func ropeInvFreq(c *bundle.Config) []float64 {
	f := make([]float64, c.HeadDim/2)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	s := c.RopeScaling
	if s == nil {
		return f
	}
	switch s.Type {
	case "linear":
		for i := range f {
			f[i] /= s.Factor
		}
	case "llama3":
		old := float64(s.OriginalContextLength)
		lowWavelen := old / s.LowFreqFactor
		highWavelen := old / s.HighFreqFactor
		for i, freq := range f {
			wavelen := 2 * math.Pi / freq
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				f[i] = freq / s.Factor
			default:
				smooth := (old/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f[i] = (1-smooth)*freq/s.Factor + smooth*freq
			}
		}
	}
	return f
}
