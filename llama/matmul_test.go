package llama

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The SIMD kernels (where the CPU has them) agree with the plain loops for
// every length, including tails that are not a multiple of 8.
func TestKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t.Logf("AVX2 kernels: %v", useAVX2)
	for _, n := range []int{1, 7, 8, 9, 16, 31, 33, 64, 100, 172, 288, 1000} {
		a := make([]float32, 4*n)
		b := make([]float32, n)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		got := dotF32(a[:n], b)
		want := dotF32Go(a[:n], b)
		require.InDelta(t, want, got, 1e-4*math.Sqrt(float64(n)), "n=%d", n)
		w := &Matrix{Rows: 4, Cols: n, F32: a}
		out := make([]float32, 4)
		matmulF32(out, b, w, 1, 0, 4)
		for r := 0; r < 4; r++ {
			require.InDelta(t, dotF32Go(a[r*n:(r+1)*n], b), out[r], 1e-4*math.Sqrt(float64(n)), "n=%d row %d", n, r)
		}
	}
	for _, groups := range []int{1, 2, 3, 8, 9} {
		n := groups * 32
		w := make([]int8, n)
		x := make([]int8, n)
		xs := make([]float32, groups)
		ws := make([]float32, groups)
		for i := range w {
			w[i] = int8(rng.IntN(255) - 127)
			x[i] = int8(rng.IntN(255) - 127)
		}
		w[0], x[0], w[1], x[1] = 127, -127, -127, -127
		for g := range xs {
			xs[g] = rng.Float32()
			ws[g] = rng.Float32()
		}
		var want, wantChan float64
		for g := 0; g < groups; g++ {
			d := float64(dotI8x32(w[g*32:], x[g*32:]))
			want += d * float64(xs[g]) * float64(ws[g])
			wantChan += d * float64(xs[g])
		}
		xf := make([]float32, n)
		var wantF, wantFChan float64
		for g := 0; g < groups; g++ {
			var d float64
			for j := g * 32; j < (g+1)*32; j++ {
				xf[j] = float32(rng.NormFloat64())
				d += float64(w[j]) * float64(xf[j])
			}
			wantF += d * float64(ws[g])
			wantFChan += d * float64(ws[0])
		}
		require.InDelta(t, want, dotQ8Go(w, x, xs, ws), 1e-3*math.Abs(want)+1e-3)
		require.InDelta(t, wantChan, dotQ8Go(w, x, xs, nil), 1e-3*math.Abs(wantChan)+1e-3)
		if useAVX2 {
			require.InDelta(t, wantF, dotQ8F32AVX2(&w[0], &xf[0], &ws[0], groups, 4), 1e-3*math.Abs(wantF)+1e-2)
			require.InDelta(t, wantFChan, dotQ8F32AVX2(&w[0], &xf[0], &ws[0], groups, 0), 1e-3*math.Abs(wantFChan)+1e-2)
			require.InDelta(t, want, dotQ8AVX2(&w[0], &x[0], &xs[0], &ws[0], groups, 4), 1e-3*math.Abs(want)+1e-3)
			require.InDelta(t, wantChan, dotQ8AVX2(&w[0], &x[0], &xs[0], &one, groups, 0), 1e-3*math.Abs(wantChan)+1e-3)
		}
	}
}

// dotI8x32 is the integer dot product of the first 32 values of a and b.
func dotI8x32(a, b []int8) int32 {
	a, b = a[:32:32], b[:32:32]
	var s0, s1, s2, s3 int32
	for i := 0; i < 32; i += 4 {
		s0 += int32(a[i]) * int32(b[i])
		s1 += int32(a[i+1]) * int32(b[i+1])
		s2 += int32(a[i+2]) * int32(b[i+2])
		s3 += int32(a[i+3]) * int32(b[i+3])
	}
	return (s0 + s1) + (s2 + s3)
}

// The four-token int8 kernel equals four single-token calls bit for bit, so
// prefill and token-by-token evaluation agree exactly.
func TestQ8x4Kernel(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, groups := range []int{1, 2, 3, 8, 9} {
		n := groups * 32
		w := make([]int8, n)
		x := make([]int8, 4*n)
		xs := make([]float32, 4*groups)
		ws := make([]float32, groups)
		for i := range w {
			w[i] = int8(rng.IntN(255) - 127)
		}
		for i := range x {
			x[i] = int8(rng.IntN(255) - 127)
		}
		for i := range xs {
			xs[i] = rng.Float32()
		}
		for i := range ws {
			ws[i] = rng.Float32()
		}
		for _, step := range []int{0, 4} {
			var o [4]float32
			dotQ8x4AVX2(&w[0], &x[0], n, &xs[0], 4*groups, &ws[0], groups, step, &o[0])
			for tok := 0; tok < 4; tok++ {
				want := dotQ8AVX2(&w[0], &x[tok*n], &xs[tok*groups], &ws[0], groups, step)
				require.Equal(t, want, o[tok], "groups %d step %d token %d: must be bit-identical", groups, step, tok)
			}
		}
	}
}
