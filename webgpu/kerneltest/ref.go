//go:build js && wasm

package main

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ember-llm/ember/quant"
)

// Go references, written from the CPU engine's definitions (llama/).

func pad32(n int) int { return (n + 31) / 32 * 32 }

// pack packs int8 rows (already padded) into LE u32 words.
func pack(q []int8) []uint32 {
	out := make([]uint32, len(q)/4)
	for i := range out {
		out[i] = uint32(uint8(q[4*i])) | uint32(uint8(q[4*i+1]))<<8 | uint32(uint8(q[4*i+2]))<<16 | uint32(uint8(q[4*i+3]))<<24
	}
	return out
}

func unpack(w []uint32) []int8 {
	out := make([]int8, 4*len(w))
	for i, x := range w {
		for j := 0; j < 4; j++ {
			out[4*i+j] = int8(x >> (8 * j))
		}
	}
	return out
}

// quantizeAct is the CPU engine's activation quantization: groups of 32,
// scale = maxabs/127, q = round(x·(1/scale)) half away from zero.
func quantizeAct(x []float32, T, n int) ([]int8, []float32) {
	kp := pad32(n)
	g := kp / 32
	q := make([]int8, T*kp)
	s := make([]float32, T*g)
	for t := 0; t < T; t++ {
		for gi := 0; gi < g; gi++ {
			var amax float32
			for j := gi * 32; j < min(gi*32+32, n); j++ {
				amax = max(amax, float32(math.Abs(float64(x[t*n+j]))))
			}
			scale := amax / 127
			s[t*g+gi] = scale
			if scale == 0 {
				continue
			}
			inv := 1 / scale
			for j := gi * 32; j < min(gi*32+32, n); j++ {
				q[t*kp+j] = int8(math.Round(float64(x[t*n+j] * inv)))
			}
		}
	}
	return q, s
}

// weights is a random q8 matrix in both storage forms.
type weights struct {
	rows, cols, kp, g int
	q                 []int8    // rows × kp
	scales            []float32 // per row (channel) or rows × g (block32)
	block32           bool
	scaleBytes        []byte // as stored: f32 LE or f16 LE (padded to 4)
}

func (e *env) randWeights(rows, cols int, block32 bool, unit bool) *weights {
	w := &weights{rows: rows, cols: cols, kp: pad32(cols), g: pad32(cols) / 32, block32: block32}
	w.q = make([]int8, rows*w.kp)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			w.q[r*w.kp+c] = int8(e.rng.IntN(255) - 127)
		}
	}
	if block32 {
		w.scales = make([]float32, rows*w.g)
		h := make([]uint16, len(w.scales))
		for i := range w.scales {
			v := float32(1)
			if !unit {
				v = float32(0.001 + 0.02*e.rng.Float64())
			}
			h[i] = quant.F32ToF16(v)
			w.scales[i] = quant.F16ToF32(h[i])
		}
		w.scaleBytes = make([]byte, (2*len(h)+3)&^3)
		for i, x := range h {
			binary.LittleEndian.PutUint16(w.scaleBytes[2*i:], x)
		}
	} else {
		w.scales = make([]float32, rows)
		w.scaleBytes = make([]byte, 4*rows)
		for i := range w.scales {
			v := float32(1)
			if !unit {
				v = float32(0.001 + 0.02*e.rng.Float64())
			}
			w.scales[i] = v
			binary.LittleEndian.PutUint32(w.scaleBytes[4*i:], math.Float32bits(v))
		}
	}
	return w
}

// matvecRef returns y[t][r] = Σ_g dot_g · xs[t][g] (· ws[r][g]) (· ws[r]) in
// float64, and the magnitude Σ|terms| for the tolerance.
func matvecRef(w *weights, xq []int8, xs []float32, T int) (y, mag []float64) {
	y = make([]float64, T*w.rows)
	mag = make([]float64, T*w.rows)
	for t := 0; t < T; t++ {
		for r := 0; r < w.rows; r++ {
			var s, m float64
			for g := 0; g < w.g; g++ {
				var d int64
				for j := 0; j < 32; j++ {
					d += int64(w.q[r*w.kp+g*32+j]) * int64(xq[t*w.kp+g*32+j])
				}
				term := float64(d) * float64(xs[t*w.g+g])
				if w.block32 {
					term *= float64(w.scales[r*w.g+g])
				}
				s += term
				m += math.Abs(term)
			}
			if !w.block32 {
				s *= float64(w.scales[r])
				m *= math.Abs(float64(w.scales[r]))
			}
			y[t*w.rows+r] = s
			mag[t*w.rows+r] = m
		}
	}
	return y, mag
}

func silu(g float64) float64 { return g / (1 + math.Exp(-g)) }

// closeTo compares got with want elementwise: |got−want| ≤ tol·(mag+|want|) + 1e-30.
func closeTo(got []float32, want, mag []float64, tol float64) error {
	if len(got) < len(want) {
		return fmt.Errorf("got %d values, want %d", len(got), len(want))
	}
	worst, wi := 0.0, -1
	for i := range want {
		m := math.Abs(want[i])
		if mag != nil {
			m = max(m, mag[i])
		}
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(float64(got[i])) {
			return fmt.Errorf("[%d] = NaN, want %g", i, want[i])
		}
		if r := d / (m + 1e-30); d > 1e-30 && r > worst {
			worst, wi = r, i
		}
	}
	if worst > tol {
		return fmt.Errorf("[%d] = %g, want %g: relative error %.3g > %g", wi, got[wi], want[wi], worst, tol)
	}
	return nil
}

func exactly(got []float32, want []float64) error {
	for i := range want {
		if float64(got[i]) != want[i] {
			return fmt.Errorf("[%d] = %v, want exactly %v", i, got[i], want[i])
		}
	}
	return nil
}

func (e *env) randF32(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(e.rng.NormFloat64() * scale)
	}
	return v
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
