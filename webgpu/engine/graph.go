//go:build js && wasm

package engine

import (
	"context"
	_ "embed"
	"fmt"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/shaders"
)

// An op is 8 int32s: pipeline, bind group and three dispatch dimensions as
// (kind, a) pairs; pipeline -1 is a buffer copy (src, dst, size, src offset
// per token past the first, dst offset) that ends the compute pass.
const opLen = 8

// Dispatch dimension kinds, evaluated by the JS encoder for each pass of T
// tokens at position pos.
const (
	dimConst   = 0 // a
	dimT       = 1 // T
	dimCeilT   = 2 // ceil(T / a)
	dimCeilPos = 3 // ceil((pos + T) / a)
)

type dim [2]int32

func cnst(n int) dim { return dim{dimConst, int32(n)} }

var perToken = dim{dimT, 0}

// idSlotDst as a copy's destination is the id readback slot named by the
// runner call (runList's slot).
const idSlotDst bufferRef = -2

// noSlot is the slot of a pass that reads back no id.
var noSlot = idSlot{b: -1}

func copyOp(src, dst bufferRef, size, strideT, dstOff int64) []int32 {
	return []int32{-1, int32(src), int32(dst), int32(size), int32(strideT), int32(dstOff), 0, 0}
}

// graph builds the op lists of a forward pass.
type graph struct {
	e   *Engine
	ctx context.Context
	ops []int32
}

func (g *graph) add(name string, consts map[string]float64, x, y, z dim, refs ...bufferRef) error {
	ctx := g.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	k := shaders.Get(name)
	if len(refs) != len(k.Bindings) {
		return fmt.Errorf("engine: %s takes %d bindings, got %d", name, len(k.Bindings), len(refs))
	}
	p, err := g.e.pipeline(ctx, name, consts)
	if err != nil {
		return err
	}
	b, err := g.e.bind(p, refs...)
	if err != nil {
		return fmt.Errorf("engine: bind %s: %w", name, err)
	}
	g.ops = append(g.ops, int32(p), int32(b), x[0], x[1], y[0], y[1], z[0], z[1])
	return nil
}

func (g *graph) take() []int32 {
	ops := g.ops
	g.ops = nil
	return ops
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// matvecWG is the workgroup size of the matvec kernels: enough threads to
// cover a row in one step, between 32 and 256; 32 on a software adapter.
func (g *graph) matvecWG(steps int) float64 {
	wg := 32
	for !g.e.cpu && wg < 256 && wg < steps {
		wg *= 2
	}
	return float64(wg)
}

// wg is the workgroup size of the per-token reductions (rmsnorm, argmax).
func (g *graph) wg() float64 { return float64(g.e.normWG) }

// matmul appends y = W·in for every chunk of mat. mode: 0 store, 1 add, 2
// SwiGLU (decode only, a paired matrix: each chunk's gate rows then up rows
// give rows/2 outputs at row0/2). Chunk c's outputs go to y at offset
// c.row0 (c.row0/2 for SwiGLU) in rows of yStride. in is (xq, xs) for int8
// weights or an f32 activation buffer with row stride xStride. z is the token
// dimension (perToken, or cnst(1) for the head).
func (g *graph) matmul(mat *matrix, mode int, prefill bool, z dim, in []bufferRef, xStride int, y bufferRef, yStride int) error {
	if mode == 2 && !mat.paired {
		return fmt.Errorf("engine: %s is not a gate/up pair: no SwiGLU", mat.name)
	}
	for _, ch := range mat.chunks {
		rows, y0 := ch.rows, ch.row0
		if mode == 2 {
			rows, y0 = ch.rows/2, ch.row0/2
		}
		switch {
		case mat.q8 && prefill:
			if mode == 2 {
				return fmt.Errorf("engine: matmul_q8 has no SwiGLU mode")
			}
			err := g.add(shaders.MatmulQ8, map[string]float64{
				"COLS": float64(mat.cols), "ROWS": float64(rows), "BLOCK32": b2f(mat.block), "MODE": float64(mode),
				"Y_STRIDE": float64(yStride), "Y_OFFSET": float64(y0),
			}, cnst((rows+63)/64), dim{dimCeilT, 64}, cnst(1), ch.w, ch.s, in[0], in[1], y, g.e.step)
			if err != nil {
				return err
			}
		case mat.q8:
			// 4 rows per workgroup of up to 256: inside the engine's single
			// compute pass this streamed 6.7 GB in 3.2 ms on an H100, against
			// 3.6 ms for shaders.MatvecConfig's 1 × 128 (best when timed alone;
			// docs/PERFORMANCE.md). Small workgroups on a software adapter.
			rpw, wg := 4, g.matvecWG(int(mat.rowBytes/16))
			bx, by := shaders.MatvecWorkgroups(rows, rpw)
			err := g.add(shaders.MatvecQ8, map[string]float64{
				"COLS": float64(mat.cols), "ROWS": float64(rows), "BLOCK32": b2f(mat.block), "MODE": float64(mode),
				"RPW": float64(rpw), "WG": float64(wg), "Y_STRIDE": float64(yStride), "Y_OFFSET": float64(y0),
			}, cnst(int(bx)), cnst(int(by)), z, ch.w, ch.s, in[0], in[1], y)
			if err != nil {
				return err
			}
		default:
			bx, by := shaders.MatvecWorkgroups(rows, 4)
			err := g.add(shaders.MatvecF32, map[string]float64{
				"COLS": float64(mat.cols), "ROWS": float64(rows), "MODE": float64(mode), "RPW": 4,
				"WG": g.matvecWG(mat.cols / 4), "X_STRIDE": float64(xStride), "Y_STRIDE": float64(yStride), "Y_OFFSET": float64(y0),
			}, cnst(int(bx)), cnst(int(by)), z, ch.w, in[0], y)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// embed appends the embedding of the token ids in buffer tok (the input
// ids, or the id buffer the previous step's sampler wrote). The ids live on
// the GPU, so every chunk of the table gets a dispatch that writes the
// tokens falling in its rows.
func (g *graph) embed(emb *matrix, tok bufferRef) ([]int32, error) {
	e := g.e
	c := &e.cfg
	for _, ch := range emb.chunks {
		consts := map[string]float64{"DIM": float64(c.Dim), "ROW0": float64(ch.row0), "ROWS": float64(ch.rows)}
		var err error
		if emb.q8 {
			consts["BLOCK32"] = b2f(emb.block)
			err = g.add(shaders.EmbedQ8, consts, cnst((c.Dim+63)/64), perToken, cnst(1), tok, ch.w, ch.s, e.x)
		} else {
			err = g.add(shaders.EmbedF32, consts, cnst((c.Dim+63)/64), perToken, cnst(1), tok, ch.w, e.x)
		}
		if err != nil {
			return nil, err
		}
	}
	return g.take(), nil
}

// layer appends transformer block l.
func (g *graph) layer(l int, prefill bool, wqkv, wo, w13, w2 *matrix, attnNorm, ffnNorm bufferRef) ([]int32, error) {
	e := g.e
	c := &e.cfg
	eps := c.NormEps
	qdim, kvd, hid := c.QDim(), c.KVDim(), c.HiddenDim
	qkvW := qdim + 2*kvd
	attnChunk := e.attnChunk
	if prefill {
		attnChunk = e.prefillChunk
	}
	maxChunks := (c.ContextLength + attnChunk - 1) / attnChunk
	q8 := []bufferRef{e.aq, e.as}
	norm := func(w bufferRef) error {
		if e.q8 {
			return g.add(shaders.RMSNormQ8, map[string]float64{"COLS": float64(c.Dim), "EPS": eps, "WG": g.wg()},
				perToken, cnst(1), cnst(1), e.x, w, e.aq, e.as)
		}
		return g.add(shaders.RMSNorm, map[string]float64{"COLS": float64(c.Dim), "EPS": eps, "WG": g.wg()},
			perToken, cnst(1), cnst(1), e.x, w, e.xb)
	}
	in := func(f32 bufferRef) []bufferRef {
		if e.q8 {
			return q8
		}
		return []bufferRef{f32}
	}
	quant := func(src bufferRef, cols int) error {
		if !e.q8 {
			return nil
		}
		return g.add(shaders.QuantizeQ8, map[string]float64{"COLS": float64(cols)},
			cnst(((cols+31)/32+63)/64), perToken, cnst(1), src, e.aq, e.as)
	}
	steps := []func() error{
		func() error { return norm(attnNorm) },
		func() error { return g.matmul(wqkv, 0, prefill, perToken, in(e.xb), c.Dim, e.qkv, qkvW) },
		func() error {
			if !prefill {
				return nil // decode: attn_partial stores the token's k and v
			}
			// prefill: store the pass's keys once, rather than rotating them
			// in every attention workgroup that reads them
			return g.add(shaders.KVStore, map[string]float64{
				"N_HEADS": float64(c.NHeads), "N_KV_HEADS": float64(c.NKVHeads), "HEAD_DIM": float64(c.HeadDim),
			}, cnst((kvd/4+63)/64), perToken, cnst(1), e.qkv, e.cs, e.kc[l], e.vc[l], e.step)
		},
		func() error {
			return g.add(shaders.AttnPartial, map[string]float64{
				"N_HEADS": float64(c.NHeads), "N_KV_HEADS": float64(c.NKVHeads), "HEAD_DIM": float64(c.HeadDim),
				"CHUNK": float64(attnChunk), "WG": float64(e.attnWG), "MAX_CHUNKS": float64(maxChunks), "CACHED": b2f(prefill),
			}, dim{dimCeilPos, int32(attnChunk)}, cnst(c.NHeads), perToken, e.qkv, e.cs, e.kc[l], e.vc[l], e.part, e.step)
		},
		func() error {
			consts := map[string]float64{
				"N_HEADS": float64(c.NHeads), "HEAD_DIM": float64(c.HeadDim), "CHUNK": float64(attnChunk), "MAX_CHUNKS": float64(maxChunks),
			}
			if e.q8 {
				// the combine writes the wo matvec's int8 input directly
				return g.add(shaders.AttnReduceQ8, consts, cnst((qdim+31)/32), perToken, cnst(1), e.part, e.aq, e.as, e.step)
			}
			return g.add(shaders.AttnReduce, consts, cnst(c.NHeads), perToken, cnst(1), e.part, e.ao, e.step)
		},
		func() error { return g.matmul(wo, 1, prefill, perToken, in(e.ao), qdim, e.x, c.Dim) },
		func() error { return norm(ffnNorm) },
		func() error {
			if e.q8 && prefill {
				// h13 gets each chunk's gate and up rows side by side
				// (matrix rows, offset row0): silu_mul reads them per chunk.
				if err := g.matmul(w13, 0, true, perToken, q8, c.Dim, e.h13, 2*hid); err != nil {
					return err
				}
				return g.add(shaders.SiluMul, map[string]float64{"H": float64(hid), "CHUNK": float64(w13.chunkRows / 2)},
					cnst((hid+255)/256), perToken, cnst(1), e.h13, e.hb)
			}
			return g.matmul(w13, 2, false, perToken, in(e.xb), c.Dim, e.hb, hid)
		},
		func() error { return quant(e.hb, hid) },
		func() error { return g.matmul(w2, 1, prefill, perToken, in(e.hb), hid, e.x, c.Dim) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	return g.take(), nil
}

// head appends the final rmsnorm of the last token and the classifier into
// the logits buffer. After a pass of several tokens the last token's row is
// first copied to its own buffer.
func (g *graph) head(out *matrix, finalNorm bufferRef, prefill bool) ([]int32, error) {
	e := g.e
	c := &e.cfg
	src := e.x
	if prefill {
		g.ops = append(g.ops, copyOp(e.x, e.xlast, int64(4*c.Dim), int64(4*c.Dim), 0)...)
		src = e.xlast
	}
	var err error
	if e.q8 {
		err = g.add(shaders.RMSNormQ8, map[string]float64{"COLS": float64(c.Dim), "EPS": c.NormEps, "WG": g.wg()},
			cnst(1), cnst(1), cnst(1), src, finalNorm, e.aq, e.as)
	} else {
		err = g.add(shaders.RMSNorm, map[string]float64{"COLS": float64(c.Dim), "EPS": c.NormEps, "WG": g.wg()},
			cnst(1), cnst(1), cnst(1), src, finalNorm, e.xb)
	}
	if err != nil {
		return nil, err
	}
	in := []bufferRef{e.aq, e.as}
	if !e.q8 {
		in = []bufferRef{e.xb}
	}
	if err := g.matmul(out, 0, false, cnst(1), in, c.Dim, e.logits, c.VocabSize); err != nil {
		return nil, err
	}
	return g.take(), nil
}

func (g *graph) argmax() ([]int32, error) {
	e := g.e
	err := g.add(shaders.Argmax, map[string]float64{"N": float64(e.cfg.VocabSize), "WG": g.wg()}, cnst(1), cnst(1), cnst(1), e.logits, e.out)
	return g.take(), err
}

func (g *graph) sample() ([]int32, error) {
	e := g.e
	err := g.add(shaders.Sample, map[string]float64{"N": float64(e.cfg.VocabSize)}, cnst(1), cnst(1), cnst(1), e.logits, e.out, e.step)
	return g.take(), err
}

// jsList concatenates op slices into a JS array of one Int32Array.
func (e *Engine) jsList(parts ...[]int32) js.Value {
	var all []int32
	for _, p := range parts {
		all = append(all, p...)
	}
	arr := js.Global().Get("Int32Array").New(len(all))
	if len(all) > 0 {
		js.CopyBytesToJS(js.Global().Get("Uint8Array").New(arr.Get("buffer")), jsbridge.AsBytes(all))
	}
	return arr
}

// runnerSource defines globalThis.emberPassRunner, which returns the
// function that encodes and submits one pass (see runner.js).
//
//go:embed runner.js
var runnerSource string

// passRunnerFactory returns globalThis.emberPassRunner, evaluating the
// embedded runner.js first when the host page has not loaded it.
func passRunnerFactory() (js.Value, error) {
	if f := js.Global().Get("emberPassRunner"); f.Type() == js.TypeFunction {
		return f, nil
	}
	def, err := jsbridge.New(js.Global().Get("Function"), runnerSource)
	if err != nil {
		return js.Value{}, fmt.Errorf("ember-runner.js is not loaded and this page forbids eval (load it with importScripts before the engine): %w", err)
	}
	if _, err := jsbridge.Invoke(def); err != nil {
		return js.Value{}, err
	}
	return js.Global().Get("emberPassRunner"), nil
}

// jsTables returns JS arrays of the buffers, pipelines and bind groups.
func (e *Engine) jsTables() (bufs, pipes, groups js.Value) {
	bufs = js.Global().Get("Array").New()
	for _, b := range e.bufs {
		bufs.Call("push", b.JS())
	}
	pipes = js.Global().Get("Array").New()
	for _, p := range e.pipes {
		pipes.Call("push", p.JS())
	}
	groups = js.Global().Get("Array").New()
	for _, g := range e.groups {
		groups.Call("push", g.JS())
	}
	return
}

func (e *Engine) makeRunner() error {
	c := &e.cfg
	half := c.HeadDim / 2
	invFreq := llama.RopeInvFreq(c)
	table := make([]float32, 2*half*c.ContextLength)
	shaders.RopeTable(table, invFreq, 0, c.ContextLength)
	csTable := jsbridge.SliceToJS(table)
	csTable = js.Global().Get("Float32Array").New(csTable.Get("buffer"), csTable.Get("byteOffset"), len(table))
	e.tokStage = make([]uint32, e.batch)
	e.tokArr = js.Global().Get("Uint32Array").New(e.batch)
	e.tokBytes = js.Global().Get("Uint8Array").New(e.tokArr.Get("buffer"))
	e.logitsBuf = make([]float32, c.VocabSize)
	bufs, pipes, groups := e.jsTables()
	mk, err := passRunnerFactory()
	if err != nil {
		return fmt.Errorf("engine: build the pass encoder: %w", err)
	}
	run, err := jsbridge.Invoke(mk, e.dev.JS(), bufs, pipes, groups, int(e.step), int(e.tok), int(e.cs), e.tokArr, csTable, 2*half)
	if err != nil {
		return fmt.Errorf("engine: build the pass encoder: %w", err)
	}
	e.run = run
	return nil
}

// profileJS times a decode pass on the GPU with timestamp queries: each
// dispatch alone in its own pass (its execution time), and all of them in one
// pass as the engine runs them (execution plus the barriers between them).
const profileJS = `
const d = (k, a, T, pos) => k === 0 ? a : k === 1 ? T : k === 2 ? Math.ceil(T / a) : Math.ceil((pos + T) / a);
return async function profile(ops, T, pos, reps) {
  const idx = [];
  for (let i = 0; i < ops.length / 8; i++) if (ops[i * 8] >= 0) idx.push(i);
  const n = idx.length;
  const qs = device.createQuerySet({ type: "timestamp", count: 2 * n + 2 });
  const size = 8 * (2 * n + 2);
  const res = device.createBuffer({ size, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const rd = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const sum = new Float64Array(n + 1);
  const dispatch = (pass, o) => {
    pass.setPipeline(pipes[ops[o]]);
    pass.setBindGroup(0, groups[ops[o + 1]]);
    pass.dispatchWorkgroups(d(ops[o + 2], ops[o + 3], T, pos), d(ops[o + 4], ops[o + 5], T, pos), d(ops[o + 6], ops[o + 7], T, pos));
  };
  for (let r = 0; r < reps; r++) {
    const enc = device.createCommandEncoder();
    for (let j = 0; j < n; j++) {
      const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * j, endOfPassWriteIndex: 2 * j + 1 } });
      dispatch(pass, idx[j] * 8);
      pass.end();
    }
    const all = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * n, endOfPassWriteIndex: 2 * n + 1 } });
    for (let j = 0; j < n; j++) dispatch(all, idx[j] * 8);
    all.end();
    enc.resolveQuerySet(qs, 0, 2 * n + 2, res, 0);
    enc.copyBufferToBuffer(res, 0, rd, 0, size);
    device.queue.submit([enc.finish()]);
    await rd.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(rd.getMappedRange());
    for (let j = 0; j <= n; j++) sum[j] += Number(t[2 * j + 1] - t[2 * j]) / 1e6;
    rd.unmap();
  }
  qs.destroy(); res.destroy(); rd.destroy();
  const out = new Float64Array(ops.length / 8 + 1);
  for (let j = 0; j < n; j++) out[idx[j]] = sum[j] / reps;
  out[ops.length / 8] = sum[n] / reps;
  return Array.from(out);
};`

// EncodeStats reports the CPU time spent recording and submitting passes.
type EncodeStats struct {
	Passes     int     `json:"passes"`
	Dispatches int     `json:"dispatches"`
	EncodeMS   float64 `json:"encode_ms"` // writeBuffer + recording + finish
	SubmitMS   float64 `json:"submit_ms"`
}

// Stats returns the encoder's counters since load.
func (e *Engine) Stats() EncodeStats {
	s := e.run.Get("stats")
	return EncodeStats{Passes: s.Get("passes").Int(), Dispatches: s.Get("dispatches").Int(),
		EncodeMS: s.Get("encodeMS").Float(), SubmitMS: s.Get("submitMS").Float()}
}

// OpProfile is the measured GPU time of one dispatch of a decode pass.
type OpProfile struct {
	Kernel string  // pipeline label (kernel and override constants); "pass" for the whole pass
	MS     float64 // milliseconds
}

// Profile times a decode pass (T = 1 at position pos, greedy) on the GPU with
// timestamp queries, averaged over reps runs: every dispatch alone, then the
// whole pass in one compute pass (the last entry, Kernel "pass").
func (e *Engine) Profile(ctx context.Context, pos, reps int) ([]OpProfile, error) {
	list, ok := e.opLists["decode+argmax"]
	if !ok {
		return nil, fmt.Errorf("engine: no decode pass")
	}
	if !e.dev.HasFeature("timestamp-query") {
		return nil, fmt.Errorf("engine: profiling needs the timestamp-query feature, which this device lacks")
	}
	bufs, pipes, groups := e.jsTables()
	mk, err := jsbridge.New(js.Global().Get("Function"), "device", "bufs", "pipes", "groups", profileJS)
	if err != nil {
		return nil, err
	}
	prof, err := jsbridge.Invoke(mk, e.dev.JS(), bufs, pipes, groups)
	if err != nil {
		return nil, err
	}
	// The Step uniform must describe this pass.
	if err := e.runList("decode", 1, pos, llama.SampleParams{}, 0, noSlot); err != nil {
		return nil, err
	}
	p, err := jsbridge.Invoke(prof, e.jsList(list), 1, pos, reps)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := jsbridge.Await(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []OpProfile
	for i := 0; i < v.Length(); i++ {
		name := "pass"
		if i < len(list)/opLen {
			name = "copy"
			if p := list[i*opLen]; p >= 0 {
				name = e.pipes[p].Label
			}
		}
		out = append(out, OpProfile{Kernel: name, MS: v.Index(i).Float()})
	}
	return out, nil
}

func concat(parts ...[]int32) []int32 {
	var all []int32
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}
