//go:build js && wasm

package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/shaders"
	"github.com/ember-llm/ember/webgpu"
)

// ShardSource yields shard i's bytes as a JS Uint8Array, verified against the
// manifest (wasm/shards.Source satisfies it).
type ShardSource interface {
	Shard(ctx context.Context, i int, progress func(bytes int64)) (js.Value, error)
}

// Options tunes Load.
type Options struct {
	// MaxContext caps the KV cache (positions); 0 means the model's context
	// length. The cache is reduced further when a layer's keys would exceed
	// the storage binding limit.
	MaxContext int
	// MaxBatch caps the prompt tokens evaluated per prefill pass (0: 256,
	// reduced to fit the binding limits).
	MaxBatch int
	// Progress is called after each shard is uploaded with the bytes done,
	// the total and the shard index.
	Progress func(done, total int64, shard int)
	// Int8Dot forces an idot4 implementation; nil picks the fastest the
	// device supports.
	Int8Dot *shaders.Int8Dot
	// Lookahead is how many greedy decode steps may be in flight at once,
	// the caller's included (0: 16 on a GPU, 2 on a software adapter; 1: no
	// running ahead). Their ids are read back in batches of up to
	// Lookahead/2 steps, sized to about 40 ms of generation, and two
	// batches' worth are kept in flight (at most Lookahead).
	Lookahead int
	// NormWG is the workgroup size of rmsnorm and argmax (a power of two;
	// 0: dim/4 up to the device's limit of at most 1024, or 32 on a
	// software adapter).
	NormWG int
	// ReadbackBatch fixes the decode steps per id readback (at most
	// Lookahead/2); 0 sizes each batch to about 40 ms of generation.
	ReadbackBatch int
	// AttnChunk is the decode attention's sequence chunk, positions per
	// workgroup (a power of two; 0: 32). Prefill uses 128 on a GPU.
	AttnChunk int
	// MaxBinding, when > 0, caps the storage binding size (bytes) that
	// weight matrices are planned with, below the device's limit: they are
	// split into chunks of at most this many bytes of weights (and of
	// scales). Tests use it to force splits on small models; the activations
	// and the KV cache keep planning with the device's limit, so that the
	// context and prefill batch stay what they would be.
	MaxBinding int64
}

// flight is a decode step submitted to the GPU whose id is not read yet.
type flight struct {
	pos, next int    // position of its first token; of the step after it
	slot      idSlot // where its result is read back
}

// ErrTooLarge is returned (wrapped, with the numbers) when the model cannot
// fit the device.
var ErrTooLarge = errors.New("engine: the model does not fit this GPU")

const defaultBatch = 256

// Engine is the WebGPU forward pass. It is not safe for concurrent use.
type Engine struct {
	dev   *webgpu.Device
	cfg   bundle.Config // ContextLength is the allocated KV capacity
	q8    bool
	dot   shaders.Int8Dot
	batch int // max tokens per pass
	// cpu: the adapter is a software rasterizer (SwiftShader, llvmpipe),
	// where large workgroups with barriers are slow: use small ones.
	cpu          bool
	attnChunk    int // attn_partial's CHUNK (positions per workgroup) in decode
	prefillChunk int // and in prefill passes
	attnWG       int // attn_partial's workgroup size
	normWG       int
	gpuSize      int64

	bufs    []*webgpu.Buffer
	modules map[string]*webgpu.ShaderModule
	pipes   []*webgpu.ComputePipeline
	pipeIdx map[string]int
	groups  []*webgpu.BindGroup

	// named activation buffers
	step, tok, cs, x, xlast, xb, aq, as, qkv, ao, hb, h13, part, logits, out, readback bufferRef
	kc, vc                                                                             []bufferRef
	mats                                                                               []*matrix

	run      js.Value // the JS encoder of a forward pass
	tokArr   js.Value // Uint32Array(batch) staging of token ids
	tokBytes js.Value // Uint8Array view of tokArr
	lists    map[string]js.Value
	opLists  map[string][]int32
	funcs    jsbridge.Funcs
	tokStage []uint32
	// Greedy decoding runs ahead of its caller: ahead holds the decode steps
	// queued on the GPU's own choices (each step's embedding reads the id the
	// previous step wrote), oldest first; lastID is the id last returned.
	lookahead   int
	ahead       []flight
	idBatches   []*idBatch // readback of sampled ids (readback.go)
	idPer       int        // most slots per batch
	stepMS      float64    // estimated decode step time (readback.go)
	fixedBatch  int        // Options.ReadbackBatch
	lastRead    time.Time  // of the last batch read
	openBatch   int        // batch handing out slots, -1 none
	freeBatches []int
	lastID      int
	logitsBuf   []float32
	closed      bool
}

// Load builds the engine on dev from manifest m, uploading every tensor from src.
func Load(ctx context.Context, dev *webgpu.Device, m *bundle.Manifest, src ShardSource, opt Options) (_ *Engine, err error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := m.Config
	if c.HeadDim%4 != 0 || c.HeadDim > 512 || c.NKVHeads == 0 || c.NHeads%c.NKVHeads != 0 {
		return nil, fmt.Errorf("engine: unsupported attention shape (head_dim %d, %d heads, %d kv heads)", c.HeadDim, c.NHeads, c.NKVHeads)
	}
	e := &Engine{dev: dev, cfg: c, modules: map[string]*webgpu.ShaderModule{}, pipeIdx: map[string]int{}, lists: map[string]js.Value{}, opLists: map[string][]int32{}}
	e.cfg.EOSTokenIDs = append([]int(nil), c.EOSTokenIDs...)
	if a := dev.Adapter; a != nil {
		inf := strings.ToLower(a.Info.String())
		e.cpu = a.Info.IsFallback || strings.Contains(inf, "swiftshader") || strings.Contains(inf, "llvmpipe") || strings.Contains(inf, "lavapipe")
	}
	// Attention: decode splits the context into chunks of 32 positions (more
	// workgroups at short contexts, 4 invocations per key); prefill into
	// chunks of 128 (its partials scale with the tokens of the pass).
	e.attnChunk, e.prefillChunk, e.attnWG, e.lookahead = 32, 128, 128, 16
	if e.cpu {
		e.attnChunk, e.prefillChunk, e.attnWG, e.lookahead = 32, 32, 32, 2
	}
	if opt.AttnChunk > 0 {
		e.attnChunk = opt.AttnChunk
	}
	e.attnChunk = pow2AtLeast(e.attnChunk)
	e.attnWG = pow2AtLeast(max(e.attnWG, e.attnChunk, e.prefillChunk, c.HeadDim/4))
	if opt.Lookahead > 0 {
		e.lookahead = opt.Lookahead
	}
	e.normWG = normWorkgroup(c.Dim, dev.Limits, e.cpu)
	if opt.NormWG > 0 {
		e.normWG = opt.NormWG
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if opt.Int8Dot != nil {
		e.dot = *opt.Int8Dot
	} else {
		e.dot = shaders.Bits
		if dev.HasWGSLLanguageFeature(ctx, webgpu.LangPacked4x8IntegerDotProduct) {
			e.dot = shaders.Dot4I8Packed
		}
	}
	lim := dev.Limits
	maxBind := int64(lim.MaxStorageBufferBindingSize)
	if mb := int64(lim.MaxBufferSize); mb > 0 && mb < maxBind {
		maxBind = mb
	}
	maxBind &^= 255
	if maxBind <= 0 {
		return nil, errors.New("engine: the device reports no storage buffer limit")
	}
	matBind := maxBind
	if opt.MaxBinding > 0 && opt.MaxBinding < matBind {
		matBind = opt.MaxBinding &^ 3
	}

	// Weights.
	var uploads []upload
	// addMat splits a new matrix into chunks that fit a binding.
	addMat := func(mat *matrix, err error) (*matrix, error) {
		if err != nil {
			return nil, err
		}
		if err := mat.split(matBind); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		e.mats = append(e.mats, mat)
		return mat, nil
	}
	emb, err := addMat(newMatrix(m, "tok_embeddings", bundle.TokEmbeddings))
	if err != nil {
		return nil, err
	}
	e.q8 = emb.q8
	type layerMats struct {
		qkv, wo, w13, w2        *matrix
		attnNorm, ffnNorm       *bundle.Tensor
		attnNormBuf, ffnNormBuf bufferRef
	}
	layers := make([]layerMats, c.NLayers)
	for l := range layers {
		L := &layers[l]
		n := func(s string) string { return bundle.LayerTensor(l, s) }
		if L.qkv, err = addMat(newMatrix(m, fmt.Sprintf("layer %d wqkv", l), n(bundle.WQ), n(bundle.WK), n(bundle.WV))); err != nil {
			return nil, err
		}
		if L.wo, err = addMat(newMatrix(m, fmt.Sprintf("layer %d wo", l), n(bundle.WO))); err != nil {
			return nil, err
		}
		if L.w13, err = addMat(newPairedMatrix(m, fmt.Sprintf("layer %d w13", l), n(bundle.W1), n(bundle.W3))); err != nil {
			return nil, err
		}
		if L.w2, err = addMat(newMatrix(m, fmt.Sprintf("layer %d w2", l), n(bundle.W2))); err != nil {
			return nil, err
		}
		for _, mat := range []*matrix{L.qkv, L.wo, L.w13, L.w2} {
			if mat.q8 != e.q8 {
				return nil, fmt.Errorf("engine: %s mixes f32 and int8 matrices", mat.name)
			}
		}
		if L.attnNorm, err = vecTensor(m, n(bundle.AttnNorm), c.Dim); err != nil {
			return nil, err
		}
		if L.ffnNorm, err = vecTensor(m, n(bundle.FFNNorm), c.Dim); err != nil {
			return nil, err
		}
	}
	finalNorm, err := vecTensor(m, bundle.FinalNorm, c.Dim)
	if err != nil {
		return nil, err
	}
	out := emb
	if !c.TiedEmbeddings {
		if out, err = addMat(newMatrix(m, "output", bundle.Output)); err != nil {
			return nil, err
		}
	}

	// Sizes of everything else, to check the whole fits before allocating.
	qdim, kvd, hid := c.QDim(), c.KVDim(), c.HiddenDim
	qkvW := qdim + 2*kvd
	capCtx := c.ContextLength
	if opt.MaxContext > 0 && opt.MaxContext < capCtx {
		capCtx = opt.MaxContext
	}
	if lim := int(maxBind / int64(4*kvd)); capCtx > lim {
		capCtx = lim
	}
	if capCtx < 1 {
		return nil, fmt.Errorf("%w: one position of the KV cache exceeds the storage binding limit", ErrTooLarge)
	}
	e.cfg.ContextLength = capCtx
	maxChunks := (capCtx + e.prefillChunk - 1) / e.prefillChunk // per token of a prefill pass
	decodeChunks := (capCtx + e.attnChunk - 1) / e.attnChunk
	batch := opt.MaxBatch
	if batch <= 0 {
		batch = defaultBatch
	}
	batch = min(batch, capCtx)
	widest := max(c.Dim, qdim, hid)
	perTok := func(floats int) int64 { return int64(floats) * 4 }
	for batch > 1 {
		if perTok(batch*c.NHeads*maxChunks*(c.HeadDim+2)) <= min(maxBind, 256<<20) &&
			perTok(batch*2*hid) <= maxBind && perTok(batch*qkvW) <= maxBind {
			break
		}
		batch /= 2
	}
	e.batch = batch
	pad := bundle.PadQ8(widest)
	act := []struct {
		ref   *bufferRef
		label string
		bytes int64
		usage webgpu.BufferUsage
	}{
		{&e.step, "step", shaders.StepSize, webgpu.BufferUniform | webgpu.BufferCopyDst},
		{&e.tok, "tokens", perTok(batch), 0},
		{&e.cs, "rope cos/sin", perTok(batch * c.HeadDim), 0},
		{&e.x, "x", perTok(batch * c.Dim), 0},
		{&e.xlast, "x last", perTok(c.Dim), 0},
		{&e.xb, "xb", perTok(batch * widest), 0},
		{&e.aq, "xq", int64(batch * pad), 0},
		{&e.as, "xs", perTok(batch * pad / 32), 0},
		{&e.qkv, "qkv", perTok(batch * qkvW), 0},
		{&e.ao, "attention out", perTok(batch * qdim), 0},
		{&e.hb, "hb", perTok(batch * hid), 0},
		{&e.h13, "h13", perTok(batch * 2 * hid), 0},
		{&e.part, "attention partials", perTok(max(batch*maxChunks, decodeChunks) * c.NHeads * (c.HeadDim + 2)), 0},
		{&e.logits, "logits", perTok(c.VocabSize), 0},
		{&e.out, "sampled", 16, 0},
	}
	var need int64
	for _, mat := range e.mats {
		for _, sp := range mat.chunkSpans() {
			w, s := mat.chunkBytes(sp[1])
			need += w + s
		}
	}
	need += int64(3*c.NLayers+1) * perTok(c.Dim)
	for _, a := range act {
		need += a.bytes
	}
	kvBytes := int64(capCtx) * perTok(kvd)
	need += 2 * int64(c.NLayers) * kvBytes
	need += perTok(c.VocabSize)
	e.gpuSize = need

	// Allocate inside error scopes: out-of-memory is reported asynchronously.
	err = dev.Scoped(ctx, "allocate model buffers", func() error {
		for _, mat := range e.mats {
			for ci, sp := range mat.chunkSpans() {
				w, s := mat.chunkBytes(sp[1])
				ch := chunk{row0: sp[0], rows: sp[1]}
				if ch.w, err = e.buffer(fmt.Sprintf("%s[%d]", mat.name, ci), w, webgpu.BufferCopyDst); err != nil {
					return err
				}
				if mat.q8 {
					if ch.s, err = e.buffer(fmt.Sprintf("%s[%d] scales", mat.name, ci), s, webgpu.BufferCopyDst); err != nil {
						return err
					}
				}
				mat.chunks = append(mat.chunks, ch)
			}
			u, err := mat.uploads()
			if err != nil {
				return err
			}
			uploads = append(uploads, u...)
		}
		vec := func(t *bundle.Tensor) (bufferRef, error) {
			r, err := e.buffer(t.Name, perTok(c.Dim), webgpu.BufferCopyDst)
			if err == nil {
				uploads = append(uploads, vectorUploads(t, r)...)
			}
			return r, err
		}
		for l := range layers {
			if layers[l].attnNormBuf, err = vec(layers[l].attnNorm); err != nil {
				return err
			}
			if layers[l].ffnNormBuf, err = vec(layers[l].ffnNorm); err != nil {
				return err
			}
		}
		for _, a := range act {
			usage := a.usage
			if usage == 0 {
				usage = webgpu.BufferCopySrc | webgpu.BufferCopyDst
			}
			if *a.ref, err = e.buffer(a.label, a.bytes, usage); err != nil {
				return err
			}
		}
		for l := 0; l < c.NLayers; l++ {
			k, err := e.buffer(fmt.Sprintf("layer %d keys", l), kvBytes, webgpu.BufferCopyDst)
			if err != nil {
				return err
			}
			v, err := e.buffer(fmt.Sprintf("layer %d values", l), kvBytes, webgpu.BufferCopyDst)
			if err != nil {
				return err
			}
			e.kc, e.vc = append(e.kc, k), append(e.vc, v)
		}
		if e.readback, err = e.bufferUsage("readback", max(perTok(c.VocabSize), 16), webgpu.BufferMapRead|webgpu.BufferCopyDst); err != nil {
			return err
		}
		// ids come back in batches of up to half the lookahead (readback.go)
		e.fixedBatch = min(opt.ReadbackBatch, max(1, e.lookahead/2))
		return e.newIDBatches(e.lookahead+2, max(1, e.lookahead/2))
	})
	if err != nil {
		if errors.Is(err, webgpu.ErrOutOfMemory) {
			return nil, fmt.Errorf("%w: it needs %s of GPU memory (weights, a %d-position KV cache and activations) and the device could not allocate it (largest buffer %s): %v",
				ErrTooLarge, mib(need), capCtx, mib(int64(lim.MaxBufferSize)), err)
		}
		return nil, err
	}
	normBuf := map[string]bufferRef{}
	for l := range layers {
		normBuf[layers[l].attnNorm.Name] = layers[l].attnNormBuf
		normBuf[layers[l].ffnNorm.Name] = layers[l].ffnNormBuf
	}
	finalNormBuf, err := e.buffer(finalNorm.Name, perTok(c.Dim), webgpu.BufferCopyDst)
	if err != nil {
		return nil, err
	}
	uploads = append(uploads, vectorUploads(finalNorm, finalNormBuf)...)

	if err := e.upload(ctx, m, src, uploads, opt.Progress); err != nil {
		return nil, err
	}

	// Pipelines, bind groups and the op lists.
	g := &graph{e: e, ctx: ctx}
	layerOps := func(prefill bool) ([]int32, error) {
		var ops []int32
		for l := range layers {
			L := &layers[l]
			lo, err := g.layer(l, prefill, L.qkv, L.wo, L.w13, L.w2, L.attnNormBuf, L.ffnNormBuf)
			if err != nil {
				return nil, err
			}
			ops = append(ops, lo...)
		}
		return ops, nil
	}
	embedOps, err := g.embed(emb, e.tok)
	if err != nil {
		return nil, err
	}
	chainOps, err := g.embed(emb, e.out)
	if err != nil {
		return nil, err
	}
	decode, err := layerOps(false)
	if err != nil {
		return nil, err
	}
	prefill := decode
	if e.batch > 1 {
		if prefill, err = layerOps(true); err != nil {
			return nil, err
		}
	}
	headDecode, err := g.head(out, finalNormBuf, false)
	if err != nil {
		return nil, err
	}
	headPrefill, err := g.head(out, finalNormBuf, true)
	if err != nil {
		return nil, err
	}
	argmax, err := g.argmax()
	if err != nil {
		return nil, err
	}
	// Without the sample kernel (it failed to compile) non-greedy decoding
	// reads the logits back and samples on the CPU.
	sample, sampleErr := g.sample()
	readLogits := copyOp(e.logits, e.readback, perTok(c.VocabSize), 0, 0)
	body := map[string][]int32{"decode": concat(embedOps, decode), "prefill": concat(embedOps, prefill), "chain": concat(chainOps, decode)}
	head := map[string][]int32{"decode": headDecode, "prefill": headPrefill, "chain": headDecode}
	for _, name := range []string{"decode", "prefill", "chain"} {
		e.lists[name] = e.jsList(body[name])
		e.lists[name+"+logits"] = e.jsList(body[name], head[name], readLogits)
		if name == "chain" && e.lookahead < 2 {
			continue
		}
		// the id goes to the slot runList names (copy destination idSlotDst)
		readOut := copyOp(e.out, idSlotDst, 16, 0, 0)
		e.lists[name+"+argmax"] = e.jsList(body[name], head[name], argmax, readOut)
		e.opLists[name+"+argmax"] = concat(body[name], head[name], argmax, readOut)
		if sampleErr == nil {
			e.lists[name+"+sample"] = e.jsList(body[name], head[name], sample, readOut)
		}
	}
	if err := e.makeRunner(); err != nil {
		return nil, err
	}
	if errs := dev.TakeUncapturedErrors(); len(errs) > 0 {
		return nil, fmt.Errorf("engine: GPU errors while loading: %w", errors.Join(errs...))
	}
	return e, nil
}

// pow2AtLeast returns the smallest power of two ≥ n (and ≥ 1).
func pow2AtLeast(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// normWorkgroup is the workgroup size of the per-token reductions: one
// invocation per 4 elements of a row, so that rmsnorm_q8 loads, reduces and
// quantizes in one round (a 4096-wide rmsnorm took 13.5 µs with 256
// invocations on an H100), capped by the device's limits at 1024; 32 on a
// software adapter, where barriers in large workgroups are slow.
func normWorkgroup(dim int, lim webgpu.Limits, software bool) int {
	if software {
		return 32
	}
	capWG := min(uint64(1024), lim.MaxComputeInvocationsPerWorkgroup, lim.MaxComputeWorkgroupSizeX)
	wg := 32
	for wg*4 < dim && uint64(wg*2) <= capWG && (wg*2)*8 <= int(lim.MaxComputeWorkgroupStorageSize) {
		wg *= 2
	}
	return wg
}

func vecTensor(m *bundle.Manifest, name string, n int) (*bundle.Tensor, error) {
	t, err := m.Tensor(name)
	if err != nil {
		return nil, err
	}
	if t.DType != bundle.F32 || t.Rows()*t.Cols() != n {
		return nil, fmt.Errorf("tensor %q: want f32 [%d], have %s %v", name, n, t.DType, t.Shape)
	}
	return t, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (e *Engine) buffer(label string, size int64, usage webgpu.BufferUsage) (bufferRef, error) {
	return e.bufferUsage(label, size, webgpu.BufferStorage|usage)
}

func (e *Engine) bufferUsage(label string, size int64, usage webgpu.BufferUsage) (bufferRef, error) {
	size = max(align4(size), 16)
	b, err := e.dev.CreateBuffer(webgpu.BufferDescriptor{Label: label, Size: uint64(size), Usage: usage})
	if err != nil {
		return -1, err
	}
	e.bufs = append(e.bufs, b)
	return bufferRef(len(e.bufs) - 1), nil
}

// upload streams the shards in order and writes each one's pieces to the GPU.
func (e *Engine) upload(ctx context.Context, m *bundle.Manifest, src ShardSource, ups []upload, progress func(done, total int64, shard int)) error {
	byShard := make([][]upload, len(m.Shards))
	for _, u := range ups {
		if u.shard < 0 || u.shard >= len(m.Shards) {
			return fmt.Errorf("engine: upload from shard %d of %d", u.shard, len(m.Shards))
		}
		byShard[u.shard] = append(byShard[u.shard], u)
	}
	total := m.TotalBytes()
	var done, sinceSync int64
	q := e.dev.Queue
	for i := range m.Shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(byShard[i]) == 0 {
			done += m.Shards[i].Bytes
			continue
		}
		arr, err := src.Shard(ctx, i, nil)
		if err != nil {
			return fmt.Errorf("shard %d (%s): %w", i, m.Shards[i].File, err)
		}
		n := int64(jsbridge.ByteLength(arr))
		for _, u := range byShard[i] {
			if u.srcOff+u.size > n {
				return fmt.Errorf("shard %s: %w: a tensor ends at byte %d, the shard has %d", m.Shards[i].File, bundle.ErrChecksum, u.srcOff+u.size, n)
			}
			if err := q.WriteBufferRange(e.bufs[u.dst], uint64(u.dstOff), arr, uint64(u.srcOff), uint64(u.size)); err != nil {
				return err
			}
		}
		done += m.Shards[i].Bytes
		sinceSync += n
		// Bound the staging memory writeBuffer holds until the GPU copies it.
		if sinceSync >= 256<<20 {
			if err := q.OnSubmittedWorkDone(ctx); err != nil {
				return err
			}
			sinceSync = 0
		}
		if progress != nil {
			progress(done, total, i)
		}
	}
	return q.OnSubmittedWorkDone(ctx)
}

// Config implements llama.Engine. ContextLength is the KV capacity allocated.
func (e *Engine) Config() *bundle.Config { return &e.cfg }

// MaxBatch is the number of prompt tokens evaluated per pass.
func (e *Engine) MaxBatch() int { return e.batch }

// GPUBytes is the GPU memory the engine allocated.
func (e *Engine) GPUBytes() int64 { return e.gpuSize }

// Int8Dot is the idot4 implementation in use.
func (e *Engine) Int8Dot() shaders.Int8Dot { return e.dot }

// Split is a weight matrix stored in several chunks.
type Split struct {
	Matrix string `json:"matrix"` // e.g. "tok_embeddings", "layer 0 w13"
	Chunks int    `json:"chunks"`
}

// Splits lists the weight matrices split into more than one chunk to fit
// the storage binding limit (or Options.MaxBinding), in load order.
func (e *Engine) Splits() []Split {
	var out []Split
	for _, mat := range e.mats {
		if n := len(mat.chunks); n > 1 {
			out = append(out, Split{Matrix: mat.name, Chunks: n})
		}
	}
	return out
}

// Quantized reports whether the model's matrices are int8.
func (e *Engine) Quantized() bool { return e.q8 }

func (e *Engine) check(tokens []int, pos int) error {
	c := &e.cfg
	if e.closed {
		return errors.New("engine: closed")
	}
	if len(tokens) == 0 {
		return errors.New("engine: Eval with no tokens")
	}
	if pos < 0 || pos+len(tokens) > c.ContextLength {
		return fmt.Errorf("%w: tokens [%d, %d) but the context holds %d", llama.ErrContextOverflow, pos, pos+len(tokens), c.ContextLength)
	}
	for i, t := range tokens {
		if t < 0 || t >= c.VocabSize {
			return fmt.Errorf("%w: token %d (at %d) is outside the vocabulary of %d", llama.ErrTokenRange, t, i, c.VocabSize)
		}
	}
	return e.dev.Err()
}

// forward runs the tokens through the model in passes of at most batch
// tokens; the last pass also runs the list named by tail ("logits",
// "argmax", "sample" or "").
func (e *Engine) forward(ctx context.Context, tokens []int, pos int, tail string, p llama.SampleParams, u float32, slot idSlot) error {
	if err := e.check(tokens, pos); err != nil {
		return err
	}
	for b := 0; b < len(tokens); b += e.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(e.batch, len(tokens)-b)
		for i, t := range tokens[b : b+n] {
			e.tokStage[i] = uint32(t)
		}
		js.CopyBytesToJS(e.tokBytes, jsbridge.AsBytes(e.tokStage[:n]))
		name := "decode"
		if n > 1 {
			name = "prefill"
		}
		if b+n == len(tokens) && tail != "" {
			name += "+" + tail
		}
		if err := e.runList(name, n, pos+b, p, u, slot); err != nil {
			return err
		}
	}
	return nil
}

// runList encodes and submits the named list for T tokens at pos; a sampled
// id is copied to slot (when the list ends with one).
func (e *Engine) runList(name string, T, pos int, p llama.SampleParams, u float32, slot idSlot) error {
	list, ok := e.lists[name]
	if !ok {
		return fmt.Errorf("engine: no pass %q", name)
	}
	topK := max(p.TopK, 0)
	if err := jsbridge.Try(func() {
		rb, off := -1, 0
		if slot.b >= 0 {
			rb, off = int(e.idBatches[slot.b].buf), 16*slot.j
		}
		e.run.Invoke(list, T, pos, p.Temperature, topK, p.TopP, p.MinP, u, rb, off)
	}); err != nil {
		return fmt.Errorf("engine: encode pass: %w", err)
	}
	return nil
}

// read maps the logits readback buffer and copies its first len(dst) bytes.
func (e *Engine) read(ctx context.Context, dst []byte) error {
	return e.readFrom(ctx, e.readback, dst)
}

func (e *Engine) readFrom(ctx context.Context, buf bufferRef, dst []byte) error {
	rb := e.bufs[buf]
	// The map must complete even when ctx ends, or the buffer stays pending.
	if err := rb.MapAsync(context.WithoutCancel(ctx), webgpu.MapRead, 0, uint64(len(dst))); err != nil {
		return err
	}
	r, err := rb.GetMappedRange(0, uint64(len(dst)))
	if err == nil {
		_, err = jsbridge.CopyToGo(dst, r)
	}
	rb.Unmap()
	if err != nil {
		return err
	}
	if errs := e.dev.TakeUncapturedErrors(); len(errs) > 0 {
		return fmt.Errorf("engine: GPU error: %w", errors.Join(errs...))
	}
	return ctx.Err()
}

// Eval implements llama.Engine: it returns the logits of the last token.
func (e *Engine) Eval(ctx context.Context, tokens []int, pos int) ([]float32, error) {
	e.drain()
	if err := e.forward(ctx, tokens, pos, "logits", llama.SampleParams{}, 0, noSlot); err != nil {
		return nil, err
	}
	if err := e.read(ctx, jsbridge.AsBytes(e.logitsBuf)); err != nil {
		return nil, err
	}
	for i, v := range e.logitsBuf {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: logit %d is %v", llama.ErrNonFinite, i, v)
		}
	}
	return e.logitsBuf, nil
}

// EvalSample implements llama.DeviceSampler: the token is chosen on the GPU
// (argmax for greedy decoding, the sample kernel otherwise) and only its id
// is read back. When the sample kernel cannot decide within its candidate
// cap, the logits are read back and sampled on the CPU.
//
// Greedy decoding is pipelined: before waiting for the id of step pos, the
// step pos+1 is queued with the GPU's own choice as its input (its
// embedding reads the id buffer), so the GPU works while the id travels
// back and the caller decides what comes next. When the next call is that
// step (the usual case), it is already running; otherwise it is simply
// superseded: its keys and values at pos+1 are rewritten by the next pass.
func (e *Engine) EvalSample(ctx context.Context, tokens []int, pos int, p llama.SampleParams, u float32) (int, error) {
	if !p.Greedy() {
		if _, ok := e.lists["decode+sample"]; !ok {
			logits, err := e.Eval(ctx, tokens, pos)
			if err != nil {
				return 0, err
			}
			return llama.SampleLogits(logits, p, u), nil
		}
	}
	if err := e.check(tokens, pos); err != nil {
		return 0, err
	}
	var f flight
	if p.Greedy() && len(e.ahead) > 0 && len(tokens) == 1 && e.ahead[0].pos == pos && tokens[0] == e.lastID {
		f = e.ahead[0] // already queued
		e.ahead = e.ahead[1:]
	} else {
		e.drain()
		tail := "sample"
		if p.Greedy() {
			tail = "argmax"
		}
		f = flight{pos: pos, next: pos + len(tokens), slot: e.takeSlot()}
		err := e.forward(ctx, tokens, pos, tail, p, u, f.slot)
		// this id is wanted now: its batch is mapped without waiting for
		// the steps queued next
		e.submitted(f.slot, err == nil, true)
		if err != nil {
			return 0, err
		}
	}
	// Queue ahead only from single-token steps: a prefill's id should not
	// wait behind speculative decode steps (a readback may complete only
	// when the queue is idle, as in Deno).
	if p.Greedy() && e.lookahead > 1 && (len(tokens) == 1 || len(e.ahead) > 0) {
		next := f.next
		if n := len(e.ahead); n > 0 {
			next = e.ahead[n-1].next
		}
		for len(e.ahead) < e.depth()-1 && next < e.cfg.ContextLength && e.canTakeSlot() {
			g := flight{pos: next, next: next + 1, slot: e.takeSlot()}
			err := e.runList("chain+argmax", 1, next, p, 0, g.slot)
			e.submitted(g.slot, err == nil, false)
			if err != nil {
				break
			}
			e.ahead = append(e.ahead, g)
			next++
		}
	}
	id, err := e.finishMap(ctx, f)
	if err != nil {
		e.drain()
		return 0, err
	}
	e.lastID = int(id)
	if id == shaders.SampleOverflow && !p.Greedy() {
		if err := e.forward(ctx, tokens[len(tokens)-1:], pos+len(tokens)-1, "logits", p, u, noSlot); err != nil {
			return 0, err
		}
		if err := e.read(ctx, jsbridge.AsBytes(e.logitsBuf)); err != nil {
			return 0, err
		}
		return llama.SampleLogits(e.logitsBuf, p, u), nil
	}
	if int(id) >= e.cfg.VocabSize {
		e.drain()
		return 0, fmt.Errorf("%w: the GPU chose token %d (NaN logits?)", llama.ErrNonFinite, id)
	}
	return int(id), nil
}

// drain forgets the steps queued ahead, waiting for their readbacks so that
// their slots can be reused. Their keys and values are rewritten by whatever
// the caller evaluates next at those positions.
func (e *Engine) drain() {
	for _, f := range e.ahead {
		e.finishMap(context.Background(), f)
	}
	e.ahead = e.ahead[:0]
	if e.openBatch >= 0 {
		e.closeBatch(e.openBatch) // empty of flights: recycled
	}
}

// Close implements llama.Engine: it frees every GPU buffer (the device stays).
func (e *Engine) Close() error {
	if e.closed {
		return nil
	}
	e.drain()
	e.closed = true
	for _, b := range e.bufs {
		b.Destroy()
	}
	e.bufs = nil
	e.funcs.Release()
	e.run = js.Undefined()
	e.lists = nil
	return nil
}

// pipeline returns the index of the compute pipeline of kernel name with the
// given override constants, compiling the module once.
func (e *Engine) pipeline(ctx context.Context, name string, consts map[string]float64) (int, error) {
	keys := make([]string, 0, len(consts))
	for k := range consts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kb strings.Builder
	kb.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&kb, " %s=%v", k, consts[k])
	}
	key := kb.String()
	if i, ok := e.pipeIdx[key]; ok {
		return i, nil
	}
	k := shaders.Get(name)
	mod, ok := e.modules[name]
	if !ok {
		var err error
		mod, err = e.dev.CreateShaderModule(ctx, name, k.Source(e.dot))
		if err != nil {
			return 0, err
		}
		e.modules[name] = mod
	}
	p, err := e.dev.CreateComputePipelineAsync(ctx, webgpu.ComputePipelineDescriptor{
		Label: key, Module: mod, EntryPoint: name, Constants: consts,
	})
	if err != nil {
		return 0, fmt.Errorf("engine: pipeline %s: %w", key, err)
	}
	e.pipes = append(e.pipes, p)
	e.pipeIdx[key] = len(e.pipes) - 1
	return len(e.pipes) - 1, nil
}

// bind creates the bind group of pipeline pipe with buffers bound whole at
// bindings 0..n-1.
func (e *Engine) bind(pipe int, refs ...bufferRef) (int, error) {
	bufs := make([]*webgpu.Buffer, len(refs))
	for i, r := range refs {
		bufs[i] = e.bufs[r]
	}
	p := e.pipes[pipe]
	g, err := e.dev.BindBuffers(p.Label, p.GetBindGroupLayout(0), bufs...)
	if err != nil {
		return 0, err
	}
	e.groups = append(e.groups, g)
	return len(e.groups) - 1, nil
}
