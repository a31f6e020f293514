package quant

import "math"

// ErrorStats accumulates the error of an approximation got against a
// reference ref, over any number of slices (e.g. a whole model).
type ErrorStats struct {
	N         int64
	MaxAbsErr float64 // max |ref-got|
	SumSqErr  float64 // Σ (ref-got)²
	SumSqRef  float64 // Σ ref²
}

// Compare returns the error statistics of got against ref (equal lengths).
func Compare(ref, got []float32) ErrorStats {
	var s ErrorStats
	s.Add(ref, got)
	return s
}

// Add accumulates min(len(ref), len(got)) pairs.
func (s *ErrorStats) Add(ref, got []float32) {
	n := min(len(ref), len(got))
	for i := 0; i < n; i++ {
		r := float64(ref[i])
		e := r - float64(got[i])
		if a := math.Abs(e); a > s.MaxAbsErr || a != a {
			s.MaxAbsErr = a
		}
		s.SumSqErr += e * e
		s.SumSqRef += r * r
	}
	s.N += int64(n)
}

// Merge adds the pairs counted in o.
func (s *ErrorStats) Merge(o ErrorStats) {
	s.N += o.N
	s.MaxAbsErr = math.Max(s.MaxAbsErr, o.MaxAbsErr)
	s.SumSqErr += o.SumSqErr
	s.SumSqRef += o.SumSqRef
}

// RMSE is the root mean square error (0 with no pairs).
func (s *ErrorStats) RMSE() float64 {
	if s.N == 0 {
		return 0
	}
	return math.Sqrt(s.SumSqErr / float64(s.N))
}

// SNR is the signal-to-noise ratio in dB, 10·log10(Σref²/Σerr²); +Inf when
// the approximation is exact.
func (s *ErrorStats) SNR() float64 {
	if s.SumSqErr == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s.SumSqRef/s.SumSqErr)
}
