//go:build js && wasm

// Command kernelbench measures the decode and prefill kernels of shaders/ on
// the JS runtime's WebGPU adapter (run it under Deno on the GPU machine):
// weight-streaming bandwidth of matvec_q8 for Llama-7B shapes and both
// quantization schemes over a sweep of rows-per-workgroup and workgroup
// sizes, matmul_q8 throughput for a prefill block, attention at a given
// context, and the cost of an empty dispatch.
//
//	go run ./scripts/internal/wasmrun/cmd/wasmrun -runtime deno ./webgpu/kernelbench [-layers 8] [-small]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"syscall/js"

	"github.com/ember-llm/ember/shaders"
	"github.com/ember-llm/ember/webgpu"
)

var (
	small  = flag.Bool("small", false, "tiny shapes (for a smoke test on SwiftShader)")
	layers = flag.Int("layers", 8, "distinct weight sets per shape (defeats the L2 cache)")
	sweep  = flag.Bool("sweep", true, "sweep RPW and WG of matvec_q8")
	iters  = flag.Int("iters", 5, "timed repetitions (median reported)")
	only   = flag.String("only", "", "run only: matvec, matmul or attention")
)

type bench struct {
	chunk   []byte                      // random bytes, generated once
	weights map[[2]int][]*webgpu.Buffer // per (rows, padded cols): *layers weight buffers
	ctx     context.Context
	dev     *webgpu.Device
	variant shaders.Int8Dot
	mods    map[string]*webgpu.ShaderModule
	rng     *rand.Rand
}

func now() float64 { return js.Global().Get("performance").Call("now").Float() }

func main() {
	flag.Parse()
	ctx := context.Background()
	gpu, err := webgpu.Get()
	check(err)
	ad, err := gpu.RequestAdapter(ctx, webgpu.AdapterOptions{PowerPreference: "high-performance"})
	check(err)
	dev, err := ad.RequestDevice(ctx, nil)
	check(err)
	b := &bench{ctx: ctx, dev: dev, mods: map[string]*webgpu.ShaderModule{}, weights: map[[2]int][]*webgpu.Buffer{}, rng: rand.New(rand.NewPCG(1, 2)),
		variant: shaders.ChooseInt8Dot(gpu.HasWGSLLanguageFeature(webgpu.LangPacked4x8IntegerDotProduct))}
	fmt.Printf("adapter: %s; int8 dot: %s; features %v; maxStorageBufferBindingSize %d\n", ad.Info, b.variant, sortedKeys(dev.Features), dev.Limits.MaxStorageBufferBindingSize)

	b.latency()
	b.emptyDispatch()
	dim, hidden := 4096, 11008
	if *small {
		dim, hidden = 256, 688
	}
	type shape struct {
		name       string
		rows, cols int
	}
	shapes := []shape{{"wq/wo 4096x4096", dim, dim}, {"w1/w3 11008x4096", hidden, dim}, {"w2 4096x11008", dim, hidden}, {"qkv 12288x4096", 3 * dim, dim}}
	for _, b32 := range []bool{false, true} {
		if *only != "" && *only != "matvec" {
			break
		}
		for _, s := range shapes {
			cfgs := [][2]int{{4, 256}}
			if *sweep {
				cfgs = [][2]int{{1, 64}, {1, 128}, {1, 256}, {2, 64}, {2, 128}, {4, 64}, {4, 128}, {4, 256}}
			}
			for _, c := range cfgs {
				b.matvec(s.name, s.rows, s.cols, b32, c[0], c[1], 0)
			}
		}
		for _, c := range [][2]int{{1, 128}, {2, 128}, {4, 256}} {
			b.matvec("w1+w3 swiglu 2x11008x4096", hidden, dim, b32, c[0], c[1], 2)
		}
	}
	T := 512
	if *small {
		T = 64
	}
	for _, b32 := range []bool{false, true} {
		if *only != "" && *only != "matmul" {
			break
		}
		b.matmul(T, dim, dim, b32)
		b.matmul(T, hidden, dim, b32)
	}
	for _, ctxLen := range []int{640, 2048, 4096} {
		if *only != "" && *only != "attention" {
			break
		}
		for _, cw := range [][2]int{{128, 128}, {64, 128}, {32, 128}, {16, 128}, {32, 256}, {64, 256}} {
			b.attention(ctxLen, 32, 32, 128, cw[0], cw[1])
		}
	}
	dev.Destroy()
	os.Exit(0)
}

func check(err error) {
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (b *bench) pipeline(name string, consts map[string]float64) (*webgpu.ComputePipeline, *webgpu.BindGroupLayout) {
	k := shaders.Get(name)
	mod, ok := b.mods[name]
	if !ok {
		var err error
		mod, err = b.dev.CreateShaderModule(b.ctx, name, k.Source(b.variant))
		check(err)
		b.mods[name] = mod
	}
	var types []webgpu.BufferBindingType
	for _, bd := range k.Bindings {
		types = append(types, webgpu.BufferBindingType(bd.Type))
	}
	bgl, err := b.dev.StorageLayout(name, types...)
	check(err)
	pl, err := b.dev.CreatePipelineLayout(name, bgl)
	check(err)
	p, err := b.dev.CreateComputePipelineAsync(b.ctx, webgpu.ComputePipelineDescriptor{Label: name, Layout: pl, Module: mod, EntryPoint: name, Constants: consts})
	check(err)
	return p, bgl
}

// buffer makes a storage buffer of n bytes filled with random bytes (in
// 16 MiB uploads).
func (b *bench) buffer(n int, random bool) *webgpu.Buffer {
	n = (n + 255) &^ 255
	buf, err := b.dev.CreateBuffer(webgpu.BufferDescriptor{Size: uint64(n), Usage: webgpu.BufferStorage | webgpu.BufferCopyDst | webgpu.BufferCopySrc})
	check(err)
	if random {
		if b.chunk == nil {
			b.chunk = make([]byte, 16<<20)
			for i := 0; i < len(b.chunk); i += 8 {
				v := b.rng.Uint64()
				for j := 0; j < 8; j++ {
					b.chunk[i+j] = byte(v >> (8 * j))
				}
			}
		}
		chunk := b.chunk
		for off := 0; off < n; off += len(chunk) {
			check(buf.Write(uint64(off), chunk[:min(len(chunk), n-off)]))
		}
	}
	return buf
}

// scales returns valid scales: f32 0.01 per row, or f16 0.01 pairs.
func (b *bench) scales(rows, g int, b32 bool) *webgpu.Buffer {
	if b32 {
		n := rows * g
		w := make([]uint32, (n+1)/2)
		for i := range w {
			w[i] = 0x211f211f // f16 0.01 twice
		}
		buf := b.buffer(4*len(w), false)
		check(buf.WriteUint32s(0, w))
		return buf
	}
	f := make([]float32, rows)
	for i := range f {
		f[i] = 0.01
	}
	buf := b.buffer(4*rows, false)
	check(buf.WriteFloat32s(0, f))
	return buf
}

// timeit returns the GPU time of one sweep (run adds its dispatches to a
// pass) in ms. A submit's completion is seen with a latency of its own (Deno
// polls the device), so it times submits of n and 4n sweeps and takes the
// slope.
func (b *bench) timeit(run func(p *webgpu.ComputePass)) float64 {
	do := func(reps int) float64 {
		enc := b.dev.CreateCommandEncoder("")
		p := enc.BeginComputePass("")
		for i := 0; i < reps; i++ {
			run(p)
		}
		p.End()
		t0 := now()
		b.dev.Queue.Submit(enc.Finish())
		check(b.dev.Queue.OnSubmittedWorkDone(b.ctx))
		return now() - t0
	}
	do(1)
	// grow n until one submit takes ≥ 50 ms
	n := 1
	for n < 4096 && do(n) < 50 {
		n *= 2
	}
	var ts []float64
	for i := 0; i < *iters; i++ {
		ts = append(ts, (do(4*n)-do(n))/float64(3*n))
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

// latency measures what a decode step pays besides GPU work: an empty
// submit waited with onSubmittedWorkDone, and a 4-byte copy read back with
// mapAsync.
func (b *bench) latency() {
	x := b.buffer(256, false)
	var ts, tr []float64
	out := make([]uint32, 1)
	for i := 0; i < 20; i++ {
		t0 := now()
		b.dev.Queue.Submit(b.dev.CreateCommandEncoder("").Finish())
		check(b.dev.Queue.OnSubmittedWorkDone(b.ctx))
		ts = append(ts, now()-t0)
		t0 = now()
		check(b.dev.ReadUint32s(b.ctx, x, 0, out))
		tr = append(tr, now()-t0)
	}
	sort.Float64s(ts)
	sort.Float64s(tr)
	fmt.Printf("latency: empty submit + onSubmittedWorkDone median %.2f ms (min %.2f); 4-byte readback (copy+submit+mapAsync) median %.2f ms (min %.2f)\n", ts[10], ts[0], tr[10], tr[0])
}

func (b *bench) emptyDispatch() {
	p, bgl := b.pipeline(shaders.Add, map[string]float64{"N": 1})
	x := b.buffer(256, false)
	bg, err := b.dev.BindBuffers("add", bgl, x, x)
	check(err)
	ms := b.timeit(func(ps *webgpu.ComputePass) {
		for i := 0; i < 1000; i++ {
			ps.SetPipeline(p)
			ps.SetBindGroup(0, bg)
			ps.DispatchWorkgroups(1, 1, 1)
		}
	})
	fmt.Printf("empty dispatch (setPipeline+setBindGroup+dispatch, one pass): %.2f us each on the GPU\n", ms*1000/1000)
}

func (b *bench) matvec(name string, rows, cols int, b32 bool, rpw, wg, mode int) {
	kp := (cols + 31) / 32 * 32
	g := kp / 32
	wrows := rows
	if mode == 2 {
		wrows = 2 * rows
	}
	p, bgl := b.pipeline(shaders.MatvecQ8, map[string]float64{"COLS": float64(cols), "ROWS": float64(rows),
		"BLOCK32": map[bool]float64{false: 0, true: 1}[b32], "RPW": float64(rpw), "WG": float64(wg), "MODE": float64(mode)})
	xq, xs, y := b.buffer(kp, true), b.buffer(4*g, false), b.buffer(4*rows, false)
	s := b.scales(wrows, g, b32)
	var bgs []*webgpu.BindGroup
	key := [2]int{wrows, kp}
	if b.weights[key] == nil {
		for l := 0; l < *layers; l++ {
			b.weights[key] = append(b.weights[key], b.buffer(wrows*kp, true))
		}
	}
	for _, w := range b.weights[key] {
		bg, err := b.dev.BindBuffers(name, bgl, w, s, xq, xs, y)
		check(err)
		bgs = append(bgs, bg)
	}
	bx, by := shaders.MatvecWorkgroups(rows, rpw)
	ms := b.timeit(func(ps *webgpu.ComputePass) {
		ps.SetPipeline(p)
		for _, bg := range bgs {
			ps.SetBindGroup(0, bg)
			ps.DispatchWorkgroups(bx, by, 1)
		}
	})
	scaleBytes := wrows * 4
	if b32 {
		scaleBytes = wrows * g * 2
	}
	bytes := float64(*layers) * float64(wrows*kp+scaleBytes)
	scheme := "q8_channel"
	if b32 {
		scheme = "q8_block32"
	}
	fmt.Printf("matvec_q8 %-28s %-10s rpw=%d wg=%-3d: %7.1f us/dispatch, %7.1f GB/s\n", name, scheme, rpw, wg, ms*1000/float64(*layers), bytes/ms/1e6)
}

func (b *bench) matmul(T, rows, cols int, b32 bool) {
	kp := (cols + 31) / 32 * 32
	g := kp / 32
	p, bgl := b.pipeline(shaders.MatmulQ8, map[string]float64{"COLS": float64(cols), "ROWS": float64(rows), "BLOCK32": map[bool]float64{false: 0, true: 1}[b32]})
	w, xq, xs, y := b.buffer(rows*kp, true), b.buffer(T*kp, true), b.buffer(4*T*g, false), b.buffer(4*T*rows, false)
	s := b.scales(rows, g, b32)
	step := b.buffer(shaders.StepSize, false)
	check(step.Write(0, shaders.Step{NTokens: uint32(T)}.Bytes()))
	// the Step binding is a uniform: make a uniform buffer
	ub, err := b.dev.CreateBuffer(webgpu.BufferDescriptor{Size: shaders.StepSize, Usage: webgpu.BufferUniform | webgpu.BufferCopyDst})
	check(err)
	check(ub.Write(0, shaders.Step{NTokens: uint32(T)}.Bytes()))
	bg, err := b.dev.BindBuffers("matmul", bgl, w, s, xq, xs, y, ub)
	check(err)
	ms := b.timeit(func(ps *webgpu.ComputePass) {
		ps.SetPipeline(p)
		ps.SetBindGroup(0, bg)
		ps.DispatchWorkgroups(uint32((rows+63)/64), uint32((T+63)/64), 1)
	})
	ops := 2 * float64(T) * float64(rows) * float64(kp)
	fmt.Printf("matmul_q8 T=%d %dx%d b32=%v: %.3f ms, %.1f TOPS int8, %.0f tok/s per matrix\n", T, rows, cols, b32, ms, ops/ms/1e9, float64(T)/ms*1000)
}

func (b *bench) attention(ctxLen, nh, nkv, hd, chunk, wg int) {
	kvdim := nkv * hd
	qkvw := (nh + 2*nkv) * hd
	maxChunks := (ctxLen + chunk - 1) / chunk
	consts := map[string]float64{"N_HEADS": float64(nh), "N_KV_HEADS": float64(nkv), "HEAD_DIM": float64(hd), "CHUNK": float64(chunk), "WG": float64(wg), "MAX_CHUNKS": float64(maxChunks)}
	pp, bglp := b.pipeline(shaders.AttnPartial, consts)
	pr, bglr := b.pipeline(shaders.AttnReduceQ8, map[string]float64{"N_HEADS": float64(nh), "HEAD_DIM": float64(hd), "CHUNK": float64(chunk), "MAX_CHUNKS": float64(maxChunks)})
	qkv, cs := b.buffer(4*qkvw, false), b.buffer(4*hd, false)
	kc, vc := b.buffer(4*ctxLen*kvdim, false), b.buffer(4*ctxLen*kvdim, false)
	g := (nh*hd + 31) / 32
	part, xq, xs := b.buffer(4*nh*maxChunks*(hd+2), false), b.buffer(32*g, false), b.buffer(4*g, false)
	ub, err := b.dev.CreateBuffer(webgpu.BufferDescriptor{Size: shaders.StepSize, Usage: webgpu.BufferUniform | webgpu.BufferCopyDst})
	check(err)
	check(ub.Write(0, shaders.Step{Pos: uint32(ctxLen - 1), NTokens: 1}.Bytes()))
	bgp, err := b.dev.BindBuffers("attn_partial", bglp, qkv, cs, kc, vc, part, ub)
	check(err)
	bgr, err := b.dev.BindBuffers("attn_reduce_q8", bglr, part, xq, xs, ub)
	check(err)
	ms := b.timeit(func(ps *webgpu.ComputePass) {
		ps.SetPipeline(pp)
		ps.SetBindGroup(0, bgp)
		ps.DispatchWorkgroups(uint32(maxChunks), uint32(nh), 1)
		ps.SetPipeline(pr)
		ps.SetBindGroup(0, bgr)
		ps.DispatchWorkgroups(uint32(g), 1, 1)
	})
	bytes := 2 * 4 * float64(ctxLen*kvdim)
	fmt.Printf("attention decode ctx=%d heads=%d/%d hd=%d chunk=%d wg=%d: %.1f us (partial+reduce_q8), KV read %.1f GB/s\n", ctxLen, nh, nkv, hd, chunk, wg, ms*1000, bytes/ms/1e6)
}
