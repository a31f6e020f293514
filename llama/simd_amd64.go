package llama

// AVX2+FMA kernels for the matrix work (simd_amd64.s); other architectures
// and js/wasm use the pure Go loops.

// useAVX2 is set when the CPU and the OS support AVX2 and FMA.
var useAVX2 = detectAVX2()

func detectAVX2() bool {
	_, _, c1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if c1&fma == 0 || c1&osxsave == 0 || c1&avx == 0 {
		return false
	}
	if xgetbv()&6 != 6 { // XMM and YMM state enabled by the OS
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}

func cpuid(eax, ecx uint32) (a, b, c, d uint32)
func xgetbv() uint32

// dotF32AVX2 returns Σ a[i]·b[i] for i < n; n is a multiple of 8.
//
//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

// dot4F32AVX2 writes to out[0..3] the dot products of x with the four rows
// starting at w, stride floats apart; n is a multiple of 8.
//
//go:noescape
func dot4F32AVX2(w *float32, stride int, x *float32, n int, out *float32)

// dotQ8AVX2 returns Σ_g xs[g]·ws[g·wsStep/4]·Σ_{j<32} w[32g+j]·x[32g+j] over
// groups g (wsStep is 4 for per-group weight scales, 0 for one scale).
//
//go:noescape
func dotQ8AVX2(w, x *int8, xs, ws *float32, groups, wsStep int) float32

// dotQ8F32AVX2 returns Σ_g ws[g·wsStep/4]·Σ_{j<32} w[32g+j]·x[32g+j]: int8
// weights times f32 activations (x padded to 32·groups with zeros).
//
//go:noescape
func dotQ8F32AVX2(w *int8, x, ws *float32, groups, wsStep int) float32

// dotQ8x4AVX2 is dotQ8AVX2 for four tokens at once: x and xs hold the
// tokens' int8 rows and scales xStride and xsStride bytes apart; the four
// results go to out[0..3].
//
//go:noescape
func dotQ8x4AVX2(w, x *int8, xStride int, xs *float32, xsStride int, ws *float32, groups, wsStep int, out *float32)
