package llama

import (
	"math"
)

// parallel splits [0, n) into at most m.threads contiguous chunks (each at
// least grain long, a multiple of 4 where possible) and runs f on each, on the
// model's worker pool; w is the chunk's worker index, for per-worker scratch
// buffers.
func (m *Model) parallel(n, grain int, f func(w, lo, hi int)) {
	nt := m.threads
	if grain < 1 {
		grain = 1
	}
	if nt > n/grain {
		nt = n / grain
	}
	p := m.workers.p
	if nt <= 1 || p == nil {
		f(0, 0, n)
		return
	}
	chunk := (n + nt - 1) / nt
	chunk = (chunk + 3) &^ 3
	p.run(func(w int) {
		if lo, hi := w*chunk, min((w+1)*chunk, n); lo < hi {
			f(w, lo, hi)
		}
	})
}

// matmul computes out[t] = W · x[t] for the T = len(x)/W.Cols tokens of x
// (T, W.Cols), writing out (T, W.Rows). Each weight row is read once for the
// whole block of tokens.
func (m *Model) matmul(out, x []float32, w *Matrix) {
	T := len(x) / w.Cols
	switch {
	case w.F32 != nil:
		m.parallel(w.Rows, 16, func(_, lo, hi int) { matmulF32(out, x, w, T, lo, hi) })
	case m.quantAct:
		xq, xs := m.s.quantize(x, T, w.Cols)
		m.parallel(w.Rows, 16, func(_, lo, hi int) { matmulQ8Q8(out, xq, xs, w, T, lo, hi) })
	case useAVX2:
		xp := m.s.pad(x, T, w.Cols)
		m.parallel(w.Rows, 16, func(_, lo, hi int) { matmulQ8F32AVX2(out, xp, w, T, lo, hi) })
	default:
		m.parallel(w.Rows, 16, func(_, lo, hi int) { matmulQ8F32(out, x, w, T, lo, hi) })
	}
}

func matmulF32(out, x []float32, w *Matrix, T, lo, hi int) {
	n, d := w.Cols, w.Rows
	r := lo
	for ; r+4 <= hi; r += 4 {
		w0 := w.F32[r*n : (r+1)*n]
		w1 := w.F32[(r+1)*n : (r+2)*n]
		w2 := w.F32[(r+2)*n : (r+3)*n]
		w3 := w.F32[(r+3)*n : (r+4)*n]
		for t := 0; t < T; t++ {
			o := out[t*d+r : t*d+r+4]
			xt := x[t*n : (t+1)*n]
			if useAVX2 && n >= 8 {
				n8 := n &^ 7
				dot4F32AVX2(&w0[0], n, &xt[0], n8, &o[0])
				for i := n8; i < n; i++ {
					o[0] += w0[i] * xt[i]
					o[1] += w1[i] * xt[i]
					o[2] += w2[i] * xt[i]
					o[3] += w3[i] * xt[i]
				}
				continue
			}
			o[0], o[1], o[2], o[3] = dot4F32(w0, w1, w2, w3, xt)
		}
	}
	for ; r < hi; r++ {
		wr := w.F32[r*n : (r+1)*n]
		for t := 0; t < T; t++ {
			out[t*d+r] = dotF32(wr, x[t*n:(t+1)*n])
		}
	}
}

func dotF32(a, b []float32) float32 {
	b = b[:len(a)]
	if useAVX2 && len(a) >= 8 {
		n := len(a) &^ 7
		s := dotF32AVX2(&a[0], &b[0], n)
		for i := n; i < len(a); i++ {
			s += a[i] * b[i]
		}
		return s
	}
	return dotF32Go(a, b)
}

func dotF32Go(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dot4F32 is four dot products sharing the loads of x.
func dot4F32(w0, w1, w2, w3, x []float32) (float32, float32, float32, float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	var a0, a1, b0, b1, c0, c1, d0, d1 float32
	i := 0
	for ; i+2 <= n; i += 2 {
		x0, x1 := x[i], x[i+1]
		a0 += w0[i] * x0
		a1 += w0[i+1] * x1
		b0 += w1[i] * x0
		b1 += w1[i+1] * x1
		c0 += w2[i] * x0
		c1 += w2[i+1] * x1
		d0 += w3[i] * x0
		d1 += w3[i+1] * x1
	}
	if i < n {
		x0 := x[i]
		a0 += w0[i] * x0
		b0 += w1[i] * x0
		c0 += w2[i] * x0
		d0 += w3[i] * x0
	}
	return a0 + a1, b0 + b1, c0 + c1, d0 + d1
}

// matmulQ8F32 multiplies int8 weights by f32 activations, group by group.
func matmulQ8F32(out, x []float32, w *Matrix, T, lo, hi int) {
	n, d, gs := w.Cols, w.Rows, w.GroupSize
	for r := lo; r < hi; r++ {
		wr := w.Q[r*w.Stride : r*w.Stride+n]
		sc := w.Scales[r*w.Groups : (r+1)*w.Groups]
		for t := 0; t < T; t++ {
			xt := x[t*n : (t+1)*n]
			var sum float32
			for g, s := range sc {
				j0 := g * gs
				j1 := min(j0+gs, n)
				sum += s * dotI8F32(wr[j0:j1], xt[j0:j1])
			}
			out[t*d+r] = sum
		}
	}
}

// pad copies x (T, n) into a reusable buffer with rows zero-padded to a
// multiple of 32, as the int8 weight rows are.
func (s *State) pad(x []float32, T, n int) []float32 {
	stride := (n + qgroup - 1) / qgroup * qgroup
	if cap(s.xpad) < T*stride {
		s.xpad = make([]float32, T*stride)
	}
	xp := s.xpad[:T*stride]
	for t := 0; t < T; t++ {
		copy(xp[t*stride:], x[t*n:(t+1)*n])
		clear(xp[t*stride+n : (t+1)*stride])
	}
	return xp
}

func matmulQ8F32AVX2(out, xp []float32, w *Matrix, T, lo, hi int) {
	stride, d := w.Stride, w.Rows
	groups := stride / qgroup
	step := 4
	if w.Groups == 1 {
		step = 0
	}
	for r := lo; r < hi; r++ {
		wr := w.Q[r*stride : (r+1)*stride]
		sc := w.Scales[r*w.Groups : (r+1)*w.Groups]
		for t := 0; t < T; t++ {
			out[t*d+r] = dotQ8F32AVX2(&wr[0], &xp[t*stride], &sc[0], groups, step)
		}
	}
}

func dotI8F32(a []int8, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float32(a[i]) * b[i]
		s1 += float32(a[i+1]) * b[i+1]
		s2 += float32(a[i+2]) * b[i+2]
		s3 += float32(a[i+3]) * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += float32(a[i]) * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// qgroup is the activation quantization group (runq.c's GS): activations are
// quantized in groups of 32 whatever the weight scheme.
const qgroup = 32

// quantize quantizes x (T, n) to int8 in groups of 32 (symmetric, scale =
// maxabs/127), each row zero-padded to PadQ8(n). It returns views of
// reusable state buffers.
func (s *State) quantize(x []float32, T, n int) ([]int8, []float32) {
	stride := (n + qgroup - 1) / qgroup * qgroup
	groups := stride / qgroup
	if cap(s.xq) < T*stride {
		s.xq = make([]int8, T*stride)
	}
	if cap(s.xs) < T*groups {
		s.xs = make([]float32, T*groups)
	}
	xq, xs := s.xq[:T*stride], s.xs[:T*groups]
	for t := 0; t < T; t++ {
		xt := x[t*n : (t+1)*n]
		for g := 0; g < groups; g++ {
			j0 := g * qgroup
			j1 := min(j0+qgroup, n)
			var amax float32
			for _, v := range xt[j0:j1] {
				amax = max(amax, abs32(v))
			}
			scale := amax / 127
			xs[t*groups+g] = scale
			q := xq[t*stride+j0 : t*stride+j0+qgroup]
			if scale == 0 {
				clear(q)
				continue
			}
			inv := 1 / scale
			for j := range q {
				if j0+j < j1 {
					q[j] = int8(math.Round(float64(xt[j0+j] * inv)))
				} else {
					q[j] = 0
				}
			}
		}
	}
	return xq, xs
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// matmulQ8Q8 multiplies int8 weights by int8 activations: integer dot
// products per group of 32, scaled by the activation group's scale and the
// weight scale (per group for blocks, once per row for channels).
func matmulQ8Q8(out []float32, xq []int8, xs []float32, w *Matrix, T, lo, hi int) {
	stride, d := w.Stride, w.Rows
	groups := stride / qgroup
	perChannel := w.Groups == 1
	for r := lo; r < hi; r++ {
		wr := w.Q[r*stride : (r+1)*stride]
		sc := w.Scales[r*w.Groups : (r+1)*w.Groups]
		t := 0
		if useAVX2 { // prefill: four tokens per pass over the row
			ws, step, rs := &sc[0], 4, float32(1)
			if perChannel {
				ws, step, rs = &one, 0, sc[0]
			}
			var o [4]float32
			for ; t+4 <= T; t += 4 {
				dotQ8x4AVX2(&wr[0], &xq[t*stride], stride, &xs[t*groups], 4*groups, ws, groups, step, &o[0])
				for i, v := range o {
					out[(t+i)*d+r] = v * rs
				}
			}
		}
		for ; t < T; t++ {
			xt := xq[t*stride : (t+1)*stride]
			st := xs[t*groups : (t+1)*groups]
			var sum float32
			switch {
			case useAVX2 && perChannel:
				sum = dotQ8AVX2(&wr[0], &xt[0], &st[0], &one, groups, 0) * sc[0]
			case useAVX2:
				sum = dotQ8AVX2(&wr[0], &xt[0], &st[0], &sc[0], groups, 4)
			case perChannel:
				sum = dotQ8Go(wr, xt, st, nil) * sc[0]
			default:
				sum = dotQ8Go(wr, xt, st, sc)
			}
			out[t*d+r] = sum
		}
	}
}

var one float32 = 1

// dotQ8Go is the pure Go (js/wasm) int8·int8 row product: Σ_g xs[g]·ws[g]·
// Σ_{j<32} w[32g+j]·x[32g+j], with ws nil for a per-channel row (scaled by
// the caller). The group loop is written out so that nothing is called
// per group.
func dotQ8Go(w, x []int8, xs, ws []float32) float32 {
	var sum float32
	for g, s := range xs {
		a := w[g*qgroup : g*qgroup+qgroup : g*qgroup+qgroup]
		b := x[g*qgroup : g*qgroup+qgroup : g*qgroup+qgroup]
		var s0, s1 int32
		for i := 0; i < qgroup; i += 8 {
			s0 += int32(a[i])*int32(b[i]) + int32(a[i+1])*int32(b[i+1]) +
				int32(a[i+2])*int32(b[i+2]) + int32(a[i+3])*int32(b[i+3])
			s1 += int32(a[i+4])*int32(b[i+4]) + int32(a[i+5])*int32(b[i+5]) +
				int32(a[i+6])*int32(b[i+6]) + int32(a[i+7])*int32(b[i+7])
		}
		if ws != nil {
			s *= ws[g]
		}
		sum += float32(s0+s1) * s
	}
	return sum
}
