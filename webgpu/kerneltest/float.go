//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/shaders"
	"github.com/ember-llm/ember/webgpu"
)

func (e *env) wrapperTests() {
	e.check("wrapper/compile-error", func() error {
		_, err := e.dev.CreateShaderModule(e.ctx, "bad.wgsl", "fn f() {\n  let x: u32 = 1.5;\n}\n")
		var ce *webgpu.CompilationError
		if !errors.As(err, &ce) || !errors.Is(err, webgpu.ErrValidation) {
			return fmt.Errorf("got %v, want a *CompilationError", err)
		}
		if len(ce.Messages) == 0 || ce.Messages[0].Line != 2 || !strings.Contains(err.Error(), "bad.wgsl:2:") {
			return fmt.Errorf("message lacks bad.wgsl:2: %q", err.Error())
		}
		return nil
	})
	e.check("wrapper/validation-scope", func() error {
		err := e.dev.Scoped(e.ctx, "oversized buffer", func() error {
			_, err := e.dev.CreateBuffer(webgpu.BufferDescriptor{Label: "bad", Size: 16, Usage: webgpu.BufferMapRead | webgpu.BufferStorage})
			return err
		})
		if !errors.Is(err, webgpu.ErrValidation) {
			return fmt.Errorf("got %v, want a validation error", err)
		}
		return nil
	})
	e.check("wrapper/indirect-clear", func() error {
		n := 600
		x, y := e.randF32(n, 1), e.randF32(n, 1)
		xb, yb := e.f32("x", x), e.f32("y", y)
		ind, err := e.dev.CreateBuffer(webgpu.BufferDescriptor{Label: "indirect", Size: 12, Usage: webgpu.BufferIndirect | webgpu.BufferCopyDst})
		if err != nil {
			return err
		}
		e.bufs = append(e.bufs, ind)
		if err := ind.WriteUint32s(0, []uint32{uint32((n + 255) / 256), 1, 1}); err != nil {
			return err
		}
		err = e.dev.Scoped(e.ctx, "indirect", func() error {
			p, bgl, err := e.pipeline(shaders.Add, map[string]float64{"N": float64(n)})
			if err != nil {
				return err
			}
			bg, err := e.dev.BindBuffers("add", bgl, xb, yb)
			if err != nil {
				return err
			}
			enc := e.dev.CreateCommandEncoder("indirect")
			enc.ClearBuffer(yb, 0, 256) // y[0:64] = 0: x keeps those
			pass := enc.BeginComputePass("")
			pass.SetPipeline(p)
			pass.SetBindGroup(0, bg)
			pass.DispatchWorkgroupsIndirect(ind, 0)
			pass.End()
			e.dev.Queue.Submit(enc.Finish())
			return e.dev.Queue.OnSubmittedWorkDone(e.ctx)
		})
		if err != nil {
			return err
		}
		got, err := e.readF32(xb, n)
		if err != nil {
			return err
		}
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(x[i] + y[i])
			if i < 64 {
				want[i] = float64(x[i])
			}
		}
		return exactly(got, want)
	})
	e.check("wrapper/write-read", func() error {
		v := e.randF32(1001, 1)
		b := e.f32("v", v)
		got, err := e.readF32(b, len(v))
		if err != nil {
			return err
		}
		for i := range v {
			if got[i] != v[i] {
				return fmt.Errorf("[%d] = %v, want %v", i, got[i], v[i])
			}
		}
		if err := e.dev.Queue.WriteBytes(b, 0, []byte{1, 2, 3}); err == nil {
			return errors.New("unaligned write accepted")
		}
		return nil
	})
}

func rmsnormRef(x, w []float32, T, n int, eps float64) []float64 {
	y := make([]float64, T*n)
	for t := 0; t < T; t++ {
		var ss float64
		for _, v := range x[t*n : (t+1)*n] {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(n)+eps)
		for i := 0; i < n; i++ {
			y[t*n+i] = float64(w[i]) * inv * float64(x[t*n+i])
		}
	}
	return y
}

func (e *env) floatTests() {
	e.check("rmsnorm", func() error {
		T, n := 3, 333
		x, w := e.randF32(T*n, 3), e.randF32(n, 1)
		xb, wb, yb := e.f32("x", x), e.f32("w", w), e.zeros("y", T*n)
		if err := e.dispatch(shaders.RMSNorm, map[string]float64{"COLS": float64(n), "EPS": 1e-5, "WG": 128}, []*webgpu.Buffer{xb, wb, yb}, uint32(T), 1, 1); err != nil {
			return err
		}
		got, err := e.readF32(yb, T*n)
		if err != nil {
			return err
		}
		return closeTo(got, rmsnormRef(x, w, T, n, 1e-5), nil, 1e-5)
	})
	for _, mode := range []int{0, 1, 2} {
		e.check(fmt.Sprintf("matvec_f32/mode%d", mode), func() error {
			rows, cols, T := 45, 77, 2
			wrows := rows
			if mode == 2 {
				wrows = 2 * rows
			}
			w, x, y0 := e.randF32(wrows*cols, 1), e.randF32(T*cols, 1), e.randF32(T*rows, 1)
			wb, xb, yb := e.f32("w", w), e.f32("x", x), e.f32("y", y0)
			consts := map[string]float64{"COLS": float64(cols), "ROWS": float64(rows), "MODE": float64(mode), "RPW": 4, "WG": 64}
			bx, by := shaders.MatvecWorkgroups(rows, 4)
			if err := e.dispatch(shaders.MatvecF32, consts, []*webgpu.Buffer{wb, xb, yb}, bx, by, uint32(T)); err != nil {
				return err
			}
			got, err := e.readF32(yb, T*rows)
			if err != nil {
				return err
			}
			dot := func(t, r int) (float64, float64) {
				var s, m float64
				for k := 0; k < cols; k++ {
					p := float64(w[r*cols+k]) * float64(x[t*cols+k])
					s += p
					m += math.Abs(p)
				}
				return s, m
			}
			want, mag := make([]float64, T*rows), make([]float64, T*rows)
			for t := 0; t < T; t++ {
				for r := 0; r < rows; r++ {
					i := t*rows + r
					s, m := dot(t, r)
					switch mode {
					case 0:
						want[i], mag[i] = s, m
					case 1:
						want[i], mag[i] = s+float64(y0[i]), m+math.Abs(float64(y0[i]))
					case 2:
						u, mu := dot(t, rows+r)
						want[i] = silu(s) * u
						mag[i] = 1.1*m*math.Abs(u) + math.Abs(silu(s))*mu
					}
				}
			}
			return closeTo(got, want, mag, 1e-5)
		})
	}
	// The embedding gathers run whole, or once per chunk of the table (the
	// table binding holds rows [ROW0, ROW0+ROWS)): every token is written
	// by the one chunk holding its row.
	for _, bounds := range [][]int{nil, {0, 17, 49, 50}} {
		e.check(fmt.Sprintf("embed_f32/chunks=%v", bounds), func() error {
			vocab, dim := 50, 37
			table := e.randF32(vocab*dim, 1)
			toks := []uint32{3, 49, 0, 3, 17, 16}
			tb, xb := e.u32("tokens", toks), e.zeros("x", len(toks)*dim)
			for _, sp := range embedChunks(bounds, vocab) {
				consts := map[string]float64{"DIM": float64(dim)}
				if bounds != nil {
					consts["ROW0"], consts["ROWS"] = float64(sp[0]), float64(sp[1]-sp[0])
				}
				eb := e.f32("table", table[sp[0]*dim:sp[1]*dim])
				if err := e.dispatch(shaders.EmbedF32, consts, []*webgpu.Buffer{tb, eb, xb}, uint32((dim+63)/64), uint32(len(toks)), 1); err != nil {
					return err
				}
			}
			got, err := e.readF32(xb, len(toks)*dim)
			if err != nil {
				return err
			}
			want := make([]float64, 0, len(got))
			for _, t := range toks {
				want = append(want, f64s(table[int(t)*dim:(int(t)+1)*dim])...)
			}
			return exactly(got, want)
		})
	}
	for _, b32 := range []bool{false, true} {
		for _, bounds := range [][]int{nil, {0, 10, 24, 41}} {
			e.check(fmt.Sprintf("embed_q8/b32=%v/chunks=%v", b32, bounds), func() error {
				vocab, dim := 41, 70 // 3 scale groups per row: chunks start on even rows
				w := e.randWeights(vocab, dim, b32, false)
				toks := []uint32{40, 1, 7, 10, 23, 24}
				tb, xb := e.u32("tokens", toks), e.zeros("x", len(toks)*dim)
				sb := 4 // scale bytes per row
				if b32 {
					sb = 2 * w.g
				}
				for _, sp := range embedChunks(bounds, vocab) {
					consts := map[string]float64{"DIM": float64(dim), "BLOCK32": b2f(b32)}
					if bounds != nil {
						consts["ROW0"], consts["ROWS"] = float64(sp[0]), float64(sp[1]-sp[0])
					}
					wb := e.u32("table", pack(w.q[sp[0]*w.kp:sp[1]*w.kp]))
					sc := e.buffer("s", w.scaleBytes[sp[0]*sb:min(sp[1]*sb, len(w.scaleBytes))])
					if err := e.dispatch(shaders.EmbedQ8, consts, []*webgpu.Buffer{tb, wb, sc, xb}, uint32((dim+63)/64), uint32(len(toks)), 1); err != nil {
						return err
					}
				}
				got, err := e.readF32(xb, len(toks)*dim)
				if err != nil {
					return err
				}
				var want []float64
				for _, t := range toks {
					for j := 0; j < dim; j++ {
						s := w.scales[t]
						if b32 {
							s = w.scales[int(t)*w.g+j/32]
						}
						want = append(want, float64(float32(w.q[int(t)*w.kp+j])*s))
					}
				}
				return exactly(got, want)
			})
		}
	}
	e.check("add", func() error {
		n := 1000
		x, y := e.randF32(n, 1), e.randF32(n, 1)
		xb, yb := e.f32("x", x), e.f32("y", y)
		if err := e.dispatch(shaders.Add, map[string]float64{"N": float64(n)}, []*webgpu.Buffer{xb, yb}, uint32((n+255)/256), 1, 1); err != nil {
			return err
		}
		got, err := e.readF32(xb, n)
		if err != nil {
			return err
		}
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(x[i] + y[i])
		}
		return exactly(got, want)
	})
	// silu_mul reads the gate and up rows as matmul_q8 writes them from a
	// w13 matrix in chunks of CHUNK hidden units: per chunk [a, a+n) the gate
	// rows at 2a, then the up rows at 2a+n (CHUNK = H: all gate, all up).
	for _, chunk := range []int{0, 128, 100} {
		e.check(fmt.Sprintf("silu_mul/chunk=%d", chunk), func() error {
			T, h := 3, 300
			gate, up := e.randF32(T*h, 2), e.randF32(T*h, 2)
			per := h
			consts := map[string]float64{"H": float64(h)}
			if chunk > 0 {
				per, consts["CHUNK"] = chunk, float64(chunk)
			}
			gu := make([]float32, T*2*h)
			for t := 0; t < T; t++ {
				for a := 0; a < h; a += per {
					n := min(per, h-a)
					copy(gu[t*2*h+2*a:], gate[t*h+a:t*h+a+n])
					copy(gu[t*2*h+2*a+n:], up[t*h+a:t*h+a+n])
				}
			}
			gb, ob := e.f32("gu", gu), e.zeros("out", T*h)
			if err := e.dispatch(shaders.SiluMul, consts, []*webgpu.Buffer{gb, ob}, uint32((h+255)/256), uint32(T), 1); err != nil {
				return err
			}
			got, err := e.readF32(ob, T*h)
			if err != nil {
				return err
			}
			want := make([]float64, T*h)
			for i := range want {
				want[i] = silu(float64(gate[i])) * float64(up[i])
			}
			return closeTo(got, want, nil, 1e-5)
		})
	}
	e.check("softmax", func() error {
		rows, n := 3, 517
		x := e.randF32(rows*n, 3)
		xb := e.f32("x", x)
		if err := e.dispatch(shaders.Softmax, map[string]float64{"N": float64(n), "WG": 128}, []*webgpu.Buffer{xb}, uint32(rows), 1, 1); err != nil {
			return err
		}
		got, err := e.readF32(xb, rows*n)
		if err != nil {
			return err
		}
		want := make([]float64, rows*n)
		for r := 0; r < rows; r++ {
			m := math.Inf(-1)
			for _, v := range x[r*n : (r+1)*n] {
				m = max(m, float64(v))
			}
			var s float64
			for i := 0; i < n; i++ {
				want[r*n+i] = math.Exp(float64(x[r*n+i]) - m)
				s += want[r*n+i]
			}
			for i := 0; i < n; i++ {
				want[r*n+i] /= s
			}
		}
		return closeTo(got, want, nil, 1e-5)
	})
	for _, c := range []struct{ pos, T, chunk, wg int }{
		{0, 1, 64, 64}, {130, 1, 64, 128}, {200, 1, 32, 32}, {200, 1, 32, 128}, {300, 1, 8, 128},
		{5, 7, 32, 32}, {60, 9, 64, 128}, {0, 11, 8, 8}, {3, 40, 8, 32},
	} {
		e.check(fmt.Sprintf("attention/pos%d/T%d/chunk%d/wg%d", c.pos, c.T, c.chunk, c.wg), func() error { return e.testAttention(c.pos, c.T, c.chunk, c.wg, false) })
		if c.T > 1 {
			e.check(fmt.Sprintf("attention+kv_store/pos%d/T%d/chunk%d/wg%d", c.pos, c.T, c.chunk, c.wg), func() error { return e.testAttention(c.pos, c.T, c.chunk, c.wg, true) })
		}
	}
	e.check("argmax", func() error {
		n := 3001
		x := e.randF32(n, 1)
		x[2000], x[777], x[2999] = 9, 9, 9 // ties: lowest index wins
		xb, ob := e.f32("x", x), e.zeros("out", 2)
		if err := e.dispatch(shaders.Argmax, map[string]float64{"N": float64(n), "OUT_INDEX": 1}, []*webgpu.Buffer{xb, ob}, 1, 1, 1); err != nil {
			return err
		}
		got, err := e.readU32(ob, 2)
		if err != nil {
			return err
		}
		if got[1] != 777 || got[0] != 0 {
			return fmt.Errorf("out = %v, want [0 777]", got)
		}
		return nil
	})
	e.check("sample", func() error { return e.testSample() })
}

// testAttention checks attn_partial (RoPE of q and of this pass's keys, the
// KV-cache store, chunked attention) with attn_reduce against a float64
// reference, and attn_reduce_q8 against attn_reduce + quantize_q8 bit for
// bit. Cache rows before pos hold earlier (already rotated) keys; the pass's
// T tokens arrive unrotated in qkv.
func (e *env) testAttention(pos, T, chunk, wg int, cached bool) error {
	nh, nkv, hd := 4, 2, 20
	qdim, kvdim := nh*hd, nkv*hd
	qkvw := qdim + 2*kvdim
	ctxLen := pos + T + 3
	maxChunks := (ctxLen + chunk - 1) / chunk
	qkv := e.randF32(T*qkvw, 1)
	inv := make([]float64, hd/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(10000, float64(2*i)/float64(hd))
	}
	cs := make([]float32, 2*T*hd/2)
	shaders.RopeTable(cs, inv, pos, T)
	kc, vc := e.randF32(ctxLen*kvdim, 1), e.randF32(ctxLen*kvdim, 1)
	qb, cb, kb, vb := e.f32("qkv", qkv), e.f32("cs", cs), e.f32("k", kc), e.f32("v", vc)
	pb := e.zeros("part", T*nh*maxChunks*(hd+2))
	ob := e.zeros("out", T*qdim)
	step := e.uniform(shaders.Step{Pos: uint32(pos), NTokens: uint32(T)})
	consts := map[string]float64{"N_HEADS": float64(nh), "N_KV_HEADS": float64(nkv), "HEAD_DIM": float64(hd), "CHUNK": float64(chunk), "WG": float64(wg), "MAX_CHUNKS": float64(maxChunks)}
	nc := (pos + T + chunk - 1) / chunk
	if cached {
		// the prefill order: kv_store, then attention reading only the caches
		kc := map[string]float64{"N_HEADS": float64(nh), "N_KV_HEADS": float64(nkv), "HEAD_DIM": float64(hd)}
		if err := e.dispatch(shaders.KVStore, kc, []*webgpu.Buffer{qb, cb, kb, vb, step}, uint32((kvdim/4+63)/64), uint32(T), 1); err != nil {
			return err
		}
		consts["CACHED"] = 1
	}
	if err := e.dispatch(shaders.AttnPartial, consts, []*webgpu.Buffer{qb, cb, kb, vb, pb, step}, uint32(nc), uint32(nh), uint32(T)); err != nil {
		return err
	}
	rc := map[string]float64{"N_HEADS": float64(nh), "HEAD_DIM": float64(hd), "CHUNK": float64(chunk), "MAX_CHUNKS": float64(maxChunks)}
	if err := e.dispatch(shaders.AttnReduce, rc, []*webgpu.Buffer{pb, ob, step}, uint32(nh), uint32(T), 1); err != nil {
		return err
	}
	got, err := e.readF32(ob, T*qdim)
	if err != nil {
		return err
	}

	// reference: rotate q and the new keys, store them, attend
	// rot also returns the magnitude of each rotated element's terms
	rot := func(v []float32, t int) (out, mag []float64) {
		out, mag = make([]float64, len(v)), make([]float64, len(v))
		for h := 0; h < len(v); h += hd {
			for i := 0; i < hd/2; i++ {
				c, s := float64(cs[(t*hd/2+i)*2]), float64(cs[(t*hd/2+i)*2+1])
				v0, v1 := float64(v[h+2*i]), float64(v[h+2*i+1])
				out[h+2*i] = v0*c - v1*s
				out[h+2*i+1] = v0*s + v1*c
				mag[h+2*i] = math.Abs(v0*c) + math.Abs(v1*s)
				mag[h+2*i+1] = math.Abs(v0*s) + math.Abs(v1*c)
			}
		}
		return out, mag
	}
	keys, vals := f64s(kc), f64s(vc)
	keyMag := make([]float64, len(keys))
	q := make([][]float64, T)
	for t := 0; t < T; t++ {
		row := qkv[t*qkvw : (t+1)*qkvw]
		q[t], _ = rot(row[:qdim], t)
		k, km := rot(row[qdim:qdim+kvdim], t)
		copy(keys[(pos+t)*kvdim:], k)
		copy(keyMag[(pos+t)*kvdim:], km)
		copy(vals[(pos+t)*kvdim:], f64s(row[qdim+kvdim:]))
	}
	want, mag := make([]float64, T*qdim), make([]float64, T*qdim)
	scale := 1 / math.Sqrt(float64(hd))
	for t := 0; t < T; t++ {
		p := pos + t
		for h := 0; h < nh; h++ {
			koff := (h / (nh / nkv)) * hd
			att := make([]float64, p+1)
			m := math.Inf(-1)
			for j := range att {
				var d float64
				for i := 0; i < hd; i++ {
					d += q[t][h*hd+i] * keys[j*kvdim+koff+i]
				}
				att[j] = d * scale
				m = max(m, att[j])
			}
			var s float64
			for j := range att {
				att[j] = math.Exp(att[j] - m)
				s += att[j]
			}
			for i := 0; i < hd; i++ {
				var o, om float64
				for j := range att {
					o += att[j] / s * vals[j*kvdim+koff+i]
					om += att[j] / s * math.Abs(vals[j*kvdim+koff+i])
				}
				want[t*qdim+h*hd+i] = o
				mag[t*qdim+h*hd+i] = om
			}
		}
	}
	if err := closeTo(got, want, mag, 1e-5); err != nil {
		return fmt.Errorf("output: %v", err)
	}

	// the caches: rows pos..pos+T-1 written (rotated k, plain v), others kept
	gk, err := e.readF32(kb, ctxLen*kvdim)
	if err != nil {
		return err
	}
	gv, err := e.readF32(vb, ctxLen*kvdim)
	if err != nil {
		return err
	}
	n0, n1 := pos*kvdim, (pos+T)*kvdim
	if err := closeTo(gk[n0:n1], keys[n0:n1], keyMag[n0:n1], 1e-5); err != nil {
		return fmt.Errorf("stored keys: %v", err)
	}
	if err := exactly(gv[n0:n1], vals[n0:n1]); err != nil {
		return fmt.Errorf("stored values: %v", err)
	}
	if err := exactly(append(gk[:n0:n0], gk[n1:]...), append(f64s(kc[:n0]), f64s(kc[n1:])...)); err != nil {
		return fmt.Errorf("keys outside the pass changed: %v", err)
	}
	if err := exactly(append(gv[:n0:n0], gv[n1:]...), append(f64s(vc[:n0]), f64s(vc[n1:])...)); err != nil {
		return fmt.Errorf("values outside the pass changed: %v", err)
	}

	// attn_reduce_q8: the same combine, quantized like quantize_q8 (its
	// chunks are summed in another order: ±1 only at rounding ties)
	g := pad32(qdim) / 32
	q2, s2 := e.zeros("xq", T*g*8), e.zeros("xs", T*g)
	if err := e.dispatch(shaders.AttnReduceQ8, rc, []*webgpu.Buffer{pb, q2, s2, step}, uint32(g), uint32(T), 1); err != nil {
		return err
	}
	gq, err := e.readU32(q2, T*g*8)
	if err != nil {
		return err
	}
	gs, err := e.readF32(s2, T*g)
	if err != nil {
		return err
	}
	wq, ws := quantizeAct(got, T, qdim)
	if err := compareQuant(unpack(gq), gs, wq, ws); err != nil {
		return fmt.Errorf("attn_reduce_q8: %v", err)
	}
	return nil
}

func (e *env) testSample() error {
	n := 3000
	logits := e.randF32(n, 2)
	logits[100], logits[2500] = 8, 8
	lb, ob := e.f32("logits", logits), e.zeros("out", 1)
	cases := []llama.SampleParams{
		{Temperature: 0},
		{Temperature: 0.8, TopK: 40},
		{Temperature: 1, TopK: 1},
		{Temperature: 0.7, TopP: 0.9},
		{Temperature: 1.3, TopK: 200, TopP: 0.95},
		{Temperature: 1, MinP: 0.05},
		{Temperature: 1, TopK: 10, MinP: 0.3},
		{Temperature: 1.5},
		{Temperature: 3, TopP: 0.99}, // beyond CAP candidates: overflow
	}
	agree, total := 0, 0
	for ci, p := range cases {
		for k := 0; k < 6; k++ {
			u := float32(e.rng.Float64())
			if *verbose {
				fmt.Printf("     sample %+v u=%v\n", p, u)
			}
			step := e.uniform(shaders.Step{Temperature: p.Temperature, TopK: uint32(p.TopK), TopP: p.TopP, MinP: p.MinP, Rand: u})
			if err := e.dispatch(shaders.Sample, map[string]float64{"N": float64(n), "CAP": 1024}, []*webgpu.Buffer{lb, ob, step}, 1, 1, 1); err != nil {
				return err
			}
			got, err := e.readU32(ob, 1)
			if err != nil {
				return err
			}
			want := llama.SampleLogits(logits, p, u)
			if got[0] == shaders.SampleOverflow {
				if ci != len(cases)-1 {
					return fmt.Errorf("%+v u=%v: overflow, want %d", p, u, want)
				}
				continue
			}
			if ci == len(cases)-1 {
				return fmt.Errorf("%+v: got %d, want the overflow sentinel", p, got[0])
			}
			total++
			if int(got[0]) == want {
				agree++
			} else if p.Temperature == 0 {
				return fmt.Errorf("greedy: got %d, want %d", got[0], want)
			} else {
				fmt.Printf("     sample %+v u=%v: gpu %d, cpu %d\n", p, u, got[0], want)
			}
		}
	}
	// f32 sums on the GPU against float64 on the CPU: a draw can only
	// differ when u lands within rounding of a boundary.
	if agree < total-1 {
		return fmt.Errorf("GPU and CPU sampling agree on %d of %d draws", agree, total)
	}
	return nil
}

// embedChunks returns the [row0, row1) spans of a table split at bounds
// (nil: one span of all rows).
func embedChunks(bounds []int, rows int) [][2]int {
	if bounds == nil {
		return [][2]int{{0, rows}}
	}
	var out [][2]int
	for i := 0; i+1 < len(bounds); i++ {
		out = append(out, [2]int{bounds[i], bounds[i+1]})
	}
	return out
}
