//go:build !amd64

package llama

var useAVX2 = false

func dotF32AVX2(a, b *float32, n int) float32                             { panic("unreachable") }
func dot4F32AVX2(w *float32, stride int, x *float32, n int, out *float32) { panic("unreachable") }
func dotQ8AVX2(w, x *int8, xs, ws *float32, groups, wsStep int) float32   { panic("unreachable") }

func dotQ8F32AVX2(w *int8, x, ws *float32, groups, wsStep int) float32 { panic("unreachable") }

func dotQ8x4AVX2(w, x *int8, xStride int, xs *float32, xsStride int, ws *float32, groups, wsStep int, out *float32) {
	panic("unreachable")
}
