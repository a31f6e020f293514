//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"math"

	"github.com/ember-llm/ember/shaders"
	"github.com/ember-llm/ember/webgpu"
)

type mvCase struct {
	rows, cols, T int
	block32, unit bool
	mode          int // 0 store, 1 add, 2 swiglu
	rpw, wg       int
}

// int8Tests runs the int8 kernels; full is false for the second and later
// variants, which get a smaller set (pipeline compilation dominates the time
// on SwiftShader).
func (e *env) int8Tests(full bool) {
	v := e.variant.String()
	e.check("quantize_q8/"+v, func() error { return e.testQuantize(3, 100) })
	e.check("rmsnorm_q8/"+v, func() error { return e.testRMSNormQ8(2, 200) })
	if full {
		e.check("quantize_q8/"+v+"/2100", func() error { return e.testQuantize(2, 2100) })
		e.check("rmsnorm_q8/"+v+"/700", func() error { return e.testRMSNormQ8(3, 700) })
	}
	mvs := []mvCase{
		{rows: 37, cols: 100, T: 1, unit: true, rpw: 4, wg: 64},                // exact integer sums
		{rows: 37, cols: 100, T: 1, block32: true, unit: true, rpw: 4, wg: 64}, // exact, f16 scales = 1
		{rows: 37, cols: 100, T: 2, rpw: 4, wg: 64},
		{rows: 70, cols: 300, T: 1, block32: true, rpw: 3, wg: 32},
		{rows: 129, cols: 1000, T: 1, rpw: 4, wg: 256},
		{rows: 130, cols: 200, T: 1, rpw: 1, wg: 128},
		{rows: 33, cols: 64, T: 1, block32: true, mode: 1, rpw: 4, wg: 128},
		{rows: 21, cols: 95, T: 2, mode: 2, rpw: 2, wg: 64},
		{rows: 21, cols: 95, T: 1, block32: true, mode: 2, rpw: 4, wg: 64},
	}
	mms := []mvCase{
		{rows: 67, cols: 100, T: 70, unit: true},
		{rows: 67, cols: 100, T: 70, block32: true, unit: true},
		{rows: 130, cols: 96, T: 5},
		{rows: 40, cols: 250, T: 65, block32: true},
		{rows: 64, cols: 64, T: 64, mode: 1},
	}
	if !full {
		mvs = []mvCase{mvs[0], mvs[1], mvs[3], mvs[7]}
		mms = mms[:2]
	}
	for _, c := range mvs {
		name := fmt.Sprintf("matvec_q8/%s/%dx%d/T%d/b32=%v/unit=%v/mode%d/rpw%d/wg%d", v, c.rows, c.cols, c.T, c.block32, c.unit, c.mode, c.rpw, c.wg)
		e.check(name, func() error { return e.testMatvecQ8(c) })
	}
	for _, c := range mms {
		name := fmt.Sprintf("matmul_q8/%s/%dx%d/T%d/b32=%v/unit=%v/mode%d", v, c.rows, c.cols, c.T, c.block32, c.unit, c.mode)
		e.check(name, func() error { return e.testMatmulQ8(c) })
	}
}

func (e *env) testQuantize(T, n int) error {
	x := e.randF32(T*n, 1)
	x[5] = 0 // a zero and an all-zero group
	for j := 64; j < 96; j++ {
		x[n+j] = 0
	}
	kp, g := pad32(n), pad32(n)/32
	xb, qb, sb := e.f32("x", x), e.zeros("xq", T*kp/4), e.zeros("xs", T*g)
	if err := e.dispatch(shaders.QuantizeQ8, map[string]float64{"COLS": float64(n)}, []*webgpu.Buffer{xb, qb, sb}, uint32((g+63)/64), uint32(T), 1); err != nil {
		return err
	}
	wq, ws := quantizeAct(x, T, n)
	gq, err := e.readU32(qb, T*kp/4)
	if err != nil {
		return err
	}
	gs, err := e.readF32(sb, T*g)
	if err != nil {
		return err
	}
	return compareQuant(unpack(gq), gs, wq, ws)
}

// compareQuant allows ±1 at rounding ties (x·inv within 1e-5 of .5) only.
func compareQuant(gq []int8, gs []float32, wq []int8, ws []float32) error {
	for i := range ws {
		if gs[i] != ws[i] && math.Abs(float64(gs[i]-ws[i])) > 1e-6*math.Abs(float64(ws[i])) {
			return fmt.Errorf("scale[%d] = %v, want %v", i, gs[i], ws[i])
		}
	}
	off := 0
	for i := range wq {
		if d := int(gq[i]) - int(wq[i]); d != 0 {
			if d < -1 || d > 1 {
				return fmt.Errorf("q[%d] = %d, want %d", i, gq[i], wq[i])
			}
			off++
		}
	}
	if off > len(wq)/200 {
		return fmt.Errorf("%d of %d quantized values off by one", off, len(wq))
	}
	return nil
}

func (e *env) testRMSNormQ8(T, n int) error {
	x := e.randF32(T*n, 2)
	w := e.randF32(n, 1)
	kp, g := pad32(n), pad32(n)/32
	xb, wb, qb, sb := e.f32("x", x), e.f32("w", w), e.zeros("xq", T*kp/4), e.zeros("xs", T*g)
	if err := e.dispatch(shaders.RMSNormQ8, map[string]float64{"COLS": float64(n), "EPS": 1e-5, "WG": 64}, []*webgpu.Buffer{xb, wb, qb, sb}, uint32(T), 1, 1); err != nil {
		return err
	}
	y := rmsnormRef(x, w, T, n, 1e-5)
	y32 := make([]float32, len(y))
	for i := range y {
		y32[i] = float32(y[i])
	}
	wq, ws := quantizeAct(y32, T, n)
	gq, err := e.readU32(qb, T*kp/4)
	if err != nil {
		return err
	}
	gs, err := e.readF32(sb, T*g)
	if err != nil {
		return err
	}
	for i := range ws {
		if math.Abs(float64(gs[i]-ws[i])) > 1e-5*float64(ws[i]) {
			return fmt.Errorf("scale[%d] = %v, want %v", i, gs[i], ws[i])
		}
	}
	return compareQuant(unpack(gq), ws, wq, ws)
}

func (e *env) quantInput(T, cols int, unit bool) ([]int8, []float32) {
	if unit {
		kp := pad32(cols)
		q := make([]int8, T*kp)
		s := make([]float32, T*kp/32)
		for t := 0; t < T; t++ {
			for j := 0; j < cols; j++ {
				q[t*kp+j] = int8(e.rng.IntN(255) - 127)
			}
		}
		for i := range s {
			s[i] = 1
		}
		return q, s
	}
	return quantizeAct(e.randF32(T*cols, 1), T, cols)
}

func (e *env) testMatvecQ8(c mvCase) error {
	wrows := c.rows
	if c.mode == 2 {
		wrows = 2 * c.rows
	}
	w := e.randWeights(wrows, c.cols, c.block32, c.unit)
	xq, xs := e.quantInput(c.T, c.cols, c.unit)
	y0 := e.randF32(c.T*c.rows, 1)
	wb, sb := e.u32("w", pack(w.q)), e.buffer("s", w.scaleBytes)
	xqb, xsb := e.u32("xq", pack(xq)), e.f32("xs", xs)
	yb := e.f32("y", y0)
	consts := map[string]float64{"COLS": float64(c.cols), "ROWS": float64(c.rows), "BLOCK32": b2f(c.block32),
		"MODE": float64(c.mode), "RPW": float64(c.rpw), "WG": float64(c.wg)}
	bx, by := shaders.MatvecWorkgroups(c.rows, c.rpw)
	if err := e.dispatch(shaders.MatvecQ8, consts, []*webgpu.Buffer{wb, sb, xqb, xsb, yb}, bx, by, uint32(c.T)); err != nil {
		return err
	}
	got, err := e.readF32(yb, c.T*c.rows)
	if err != nil {
		return err
	}
	ref, mag := matvecRef(w, xq, xs, c.T)
	want := make([]float64, c.T*c.rows)
	wmag := make([]float64, len(want))
	for t := 0; t < c.T; t++ {
		for r := 0; r < c.rows; r++ {
			i := t*c.rows + r
			switch c.mode {
			case 0:
				want[i], wmag[i] = ref[t*wrows+r], mag[t*wrows+r]
			case 1:
				want[i], wmag[i] = float64(y0[i])+ref[t*wrows+r], math.Abs(float64(y0[i]))+mag[t*wrows+r]
			case 2:
				g, u := ref[t*wrows+r], ref[t*wrows+c.rows+r]
				want[i] = silu(g) * u
				// relative error of g and u carries over (silu' ≤ 1.1)
				wmag[i] = 1.1*mag[t*wrows+r]*math.Abs(u) + math.Abs(silu(g))*mag[t*wrows+c.rows+r]
			}
		}
	}
	if c.unit && c.mode == 0 {
		return exactly(got, want)
	}
	return closeTo(got, want, wmag, 1e-5)
}

func (e *env) testMatmulQ8(c mvCase) error {
	w := e.randWeights(c.rows, c.cols, c.block32, c.unit)
	xq, xs := e.quantInput(c.T, c.cols, c.unit)
	y0 := e.randF32(c.T*c.rows, 1)
	wb, sb := e.u32("w", pack(w.q)), e.buffer("s", w.scaleBytes)
	xqb, xsb, yb := e.u32("xq", pack(xq)), e.f32("xs", xs), e.f32("y", y0)
	step := e.uniform(shaders.Step{NTokens: uint32(c.T)})
	consts := map[string]float64{"COLS": float64(c.cols), "ROWS": float64(c.rows), "BLOCK32": b2f(c.block32), "MODE": float64(c.mode)}
	if err := e.dispatch(shaders.MatmulQ8, consts, []*webgpu.Buffer{wb, sb, xqb, xsb, yb, step}, uint32((c.rows+63)/64), uint32((c.T+63)/64), 1); err != nil {
		return err
	}
	got, err := e.readF32(yb, c.T*c.rows)
	if err != nil {
		return err
	}
	want, mag := matvecRef(w, xq, xs, c.T)
	if c.mode == 1 {
		for i := range want {
			want[i] += float64(y0[i])
			mag[i] += math.Abs(float64(y0[i]))
		}
	}
	if c.unit && c.mode == 0 {
		return exactly(got, want)
	}
	return closeTo(got, want, mag, 1e-5)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var errSkip = errors.New("skipped")
