//go:build js && wasm

package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/ember-llm/ember/wasm/shards"
	"github.com/ember-llm/ember/webgpu"
	"github.com/ember-llm/ember/webgpu/engine"
)

// Backends.
const (
	BackendAuto   = "auto"
	BackendWebGPU = "webgpu"
	BackendCPU    = "cpu"
)

// MaxCPUModelBytes is the largest bundle the CPU fallback accepts: the
// weights are copied into the wasm heap (4 GiB at most, and browsers often
// grant less), next to the KV cache and the runtime.
const MaxCPUModelBytes = 1536 << 20

// LoadOptions are load()'s arguments.
type LoadOptions struct {
	BaseURL   string
	Backend   string // auto, webgpu, cpu
	PublicKey ed25519.PublicKey
	// Files reads the bundle from the local file system (Deno) instead of
	// fetch + IndexedDB; set for file:// URLs and plain paths under Deno.
	Files         bool
	MaxContext    int
	MaxBatch      int
	Lookahead     int   // engine.Options.Lookahead
	ReadbackBatch int   // engine.Options.ReadbackBatch
	AttnChunk     int   // engine.Options.AttnChunk
	NormWG        int   // engine.Options.NormWG
	MaxBinding    int64 // engine.Options.MaxBinding (bytes; 0: the device's limit)
	Progress      func(done, total int64, shard int)
}

// GenerateOptions are generate()'s arguments.
type GenerateOptions struct {
	Prompt   string
	Messages []tokenizer.Message
	Opts     llama.Options
	OnText   func(string)
}

// Info is what info() reports.
type Info struct {
	Backend       string // webgpu or cpu; "" before load
	Adapter       string
	Reason        string // why the CPU fallback runs
	Model         string
	Config        *bundle.Config
	ContextLength int
	Synthetic     bool
	LoadMS        float64
	GPUBytes      int64
	MaxBatch      int
	Splits        []engine.Split // weight matrices stored in several chunks (WebGPU)
}

// Runtime holds the loaded model; its methods back the JS API and the CLI.
type Runtime struct {
	mu      sync.Mutex
	info    Info
	eng     llama.Engine
	sess    *llama.Session
	dev     *webgpu.Device
	closeFn func()
	cancel  context.CancelFunc // of the running generation
	busy    bool
	gen     int // load generation, to drop stale loads
}

// Info returns the current info.
func (r *Runtime) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// Load opens the bundle and builds the engine, replacing any loaded model.
func (r *Runtime) Load(ctx context.Context, o LoadOptions) (Info, error) {
	r.Unload()
	start := time.Now()
	if o.Backend == "" {
		o.Backend = BackendAuto
	}
	switch o.Backend {
	case BackendAuto, BackendWebGPU, BackendCPU:
	default:
		return Info{}, fmt.Errorf("unknown backend %q (use auto, webgpu or cpu)", o.Backend)
	}
	if o.BaseURL == "" {
		return Info{}, errors.New("load needs a baseURL: the address of the model's folder (the one holding manifest.json)")
	}
	// The backend is settled before the manifest is fetched: when only the
	// CPU engine can run, a model too large for wasm memory is refused before
	// it is stored or a byte of it is downloaded.
	var info Info
	var dev *webgpu.Device
	var reason string
	var err error
	if o.Backend != BackendCPU {
		dev, info.Adapter, reason, err = openGPU(ctx)
		if err != nil && o.Backend == BackendWebGPU {
			return Info{}, errors.New(reason)
		}
	} else {
		reason = "the CPU backend was requested"
	}
	var check func(*bundle.Manifest) error
	if dev == nil {
		check = checkCPUFits
	}
	m, src, closeSrc, selfProgress, err := openSource(ctx, o, check)
	if err != nil {
		if dev != nil {
			dev.Destroy()
		}
		return Info{}, err
	}
	defer closeSrc()
	if selfProgress {
		o.Progress = nil // the shard source reports download progress
	}

	info.Model, info.Synthetic = m.Name, strings.Contains(strings.ToLower(m.Source), "synthetic")
	if info.Model == "" {
		info.Model = o.BaseURL
	}
	tok, err := tokenizer.New(&m.Tokenizer)
	if err != nil {
		if dev != nil {
			dev.Destroy()
		}
		return Info{}, fmt.Errorf("the model's tokenizer is unusable: %w", err)
	}

	var eng llama.Engine
	if dev != nil {
		maxCtx := o.MaxContext
		if maxCtx <= 0 {
			maxCtx = defaultContext(&m.Config)
		}
		ge, err := engine.Load(ctx, dev, m, src, engine.Options{MaxContext: maxCtx, MaxBatch: o.MaxBatch,
			Lookahead: o.Lookahead, ReadbackBatch: o.ReadbackBatch, AttnChunk: o.AttnChunk, NormWG: o.NormWG, MaxBinding: o.MaxBinding, Progress: o.Progress})
		if err == nil {
			eng = ge
			info.Backend = BackendWebGPU
			info.GPUBytes = ge.GPUBytes()
			info.MaxBatch = ge.MaxBatch()
			info.Splits = ge.Splits()
		} else {
			dev.Destroy()
			dev = nil
			if o.Backend == BackendWebGPU || errors.Is(err, context.Canceled) {
				return Info{}, plain("The model could not be loaded on the GPU", err)
			}
			reason = "the GPU could not hold this model: " + err.Error()
		}
	}
	if eng == nil {
		info.Reason = reason
		cpu, err := loadCPU(ctx, m, src, o.Progress)
		if err != nil {
			return Info{}, err
		}
		eng = yieldingEngine{cpu, new(time.Time)}
		info.Backend = BackendCPU
	}
	cfg := *eng.Config()
	info.Config = &cfg
	info.ContextLength = cfg.ContextLength
	info.LoadMS = float64(time.Since(start).Microseconds()) / 1000

	r.mu.Lock()
	defer r.mu.Unlock()
	r.info, r.eng, r.dev = info, eng, dev
	r.sess = llama.NewSession(eng, tok)
	return info, nil
}

// DefaultKVBytes bounds the GPU KV cache when load() names no maxContext:
// the model's full context (4096 positions of f32 keys and values are 4 GiB
// for Llama-2-7B) would not fit most GPUs next to the weights.
const DefaultKVBytes = 1 << 30

func defaultContext(c *bundle.Config) int {
	per := int64(2*c.NLayers*c.KVDim()) * 4
	n := int(DefaultKVBytes / max(per, 1))
	return max(min(n, c.ContextLength), min(512, c.ContextLength))
}

// openSource picks where shard bytes come from. selfProgress reports that
// the source calls o.Progress itself (download progress).
func openSource(ctx context.Context, o LoadOptions, check func(*bundle.Manifest) error) (m *bundle.Manifest, src engine.ShardSource, closeFn func(), selfProgress bool, err error) {
	files := o.Files
	if !files && shards.IsDeno() {
		u := strings.ToLower(o.BaseURL)
		files = !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://")
	}
	if files {
		d, err := shards.OpenDenoBundle(ctx, o.BaseURL)
		if err != nil {
			return nil, nil, nil, false, plain("The model could not be opened", err)
		}
		if check != nil {
			if err := check(d.Manifest); err != nil {
				return nil, nil, nil, false, err
			}
		}
		return d.Manifest, d, func() {}, false, nil
	}
	var prog func(shards.Progress)
	if o.Progress != nil {
		prog = func(p shards.Progress) { o.Progress(p.Done, p.Total, p.Shard) }
	}
	m, l, err := shards.Open(ctx, o.BaseURL, shards.Options{PublicKey: o.PublicKey, Progress: prog, Check: check})
	if errors.Is(err, ErrTooLargeForCPU) {
		return nil, nil, nil, false, err // already plain words, and nothing was downloaded
	}
	if err != nil {
		return nil, nil, nil, false, plain("The model could not be downloaded", err)
	}
	return m, l, l.Close, o.Progress != nil, nil
}

// openGPU requests an adapter and a device; on failure reason says why in
// plain words for the page.
func openGPU(ctx context.Context) (dev *webgpu.Device, adapter, reason string, err error) {
	gpu, err := webgpu.Get()
	if err != nil {
		return nil, "", "WebGPU is not available in this browser", err
	}
	a, err := gpu.RequestAdapter(ctx, webgpu.AdapterOptions{PowerPreference: "high-performance"})
	if err != nil {
		return nil, "", "no GPU adapter: " + err.Error(), err
	}
	if a == nil {
		return nil, "", "no GPU adapter", webgpu.ErrNoWebGPU
	}
	adapter = a.Info.String()
	dev, err = a.RequestDevice(ctx, nil)
	if err != nil {
		return nil, adapter, "the GPU device could not be created: " + err.Error(), err
	}
	return dev, adapter, "", nil
}

// plain wraps err with a sentence for the page.
func plain(what string, err error) error {
	return fmt.Errorf("%s: %w", what, err)
}

// Unload aborts any generation and frees the model.
func (r *Runtime) Unload() {
	r.Abort()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.eng != nil {
		r.eng.Close()
	}
	if r.dev != nil {
		r.dev.Destroy()
	}
	r.eng, r.sess, r.dev = nil, nil, nil
	r.info = Info{}
}

// Abort cancels the running generation, if any; it returns at once.
func (r *Runtime) Abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
}

// Generate runs one generation on the loaded model.
func (r *Runtime) Generate(ctx context.Context, g GenerateOptions) (*llama.Result, error) {
	r.mu.Lock()
	if r.sess == nil {
		r.mu.Unlock()
		return nil, errors.New("no model is loaded: call load first")
	}
	if r.busy {
		r.mu.Unlock()
		return nil, errors.New("a generation is already running: abort it or wait for it to finish")
	}
	ctx, cancel := context.WithCancel(ctx)
	r.busy, r.cancel = true, cancel
	sess := r.sess
	r.mu.Unlock()
	defer func() {
		cancel()
		r.mu.Lock()
		r.busy, r.cancel = false, nil
		r.mu.Unlock()
	}()
	if len(g.Messages) > 0 {
		return sess.Chat(ctx, g.Messages, g.Opts, g.OnText)
	}
	return sess.Generate(ctx, g.Prompt, g.Opts, g.OnText)
}

// yieldingEngine gives the JS event loop a turn after a CPU forward pass
// when 16 ms have passed since the last one, so that abort messages get
// through while the CPU works (a timer turn costs a few ms: not every token).
type yieldingEngine struct {
	*llama.Model
	last *time.Time
}

func (y yieldingEngine) Eval(ctx context.Context, tokens []int, pos int) ([]float32, error) {
	l, err := y.Model.Eval(ctx, tokens, pos)
	if err == nil && time.Since(*y.last) > 16*time.Millisecond {
		yieldJS()
		*y.last = time.Now()
	}
	return l, err
}

// yieldJS lets the JS event loop run (abort messages, progress) between CPU
// forward passes: a setTimeout(0) macrotask, without building JS from
// strings (the page's Content-Security-Policy forbids eval).
func yieldJS() {
	done := make(chan struct{}, 1)
	cb := js.FuncOf(func(js.Value, []js.Value) any {
		done <- struct{}{}
		return nil
	})
	defer cb.Release()
	js.Global().Call("setTimeout", cb, 0)
	<-done // setTimeout(0) always fires promptly; releasing cb before it would make it throw
}

// cpuSource reads tensors out of shards kept as JS Uint8Arrays: each tensor
// is copied once into the Go heap by llama.Load.
type cpuSource struct{ shards []js.Value }

func (s cpuSource) ReadTensor(t *bundle.Tensor, dst []byte) error {
	if int64(len(dst)) != t.Length {
		return fmt.Errorf("tensor %q: buffer of %d bytes for %d", t.Name, len(dst), t.Length)
	}
	var off int64
	for _, p := range t.PartsOrSelf() {
		if p.Shard < 0 || p.Shard >= len(s.shards) {
			return fmt.Errorf("tensor %q: shard %d missing", t.Name, p.Shard)
		}
		sub := s.shards[p.Shard].Call("subarray", float64(p.Offset), float64(p.Offset+p.Length))
		if n := js.CopyBytesToGo(dst[off:off+p.Length], sub); int64(n) != p.Length {
			return fmt.Errorf("tensor %q: shard %d is shorter than the manifest says", t.Name, p.Shard)
		}
		off += p.Length
	}
	return nil
}

// loadCPU builds the Go CPU engine, refusing models the wasm heap cannot hold.
// ErrTooLargeForCPU: the model does not fit the CPU engine's wasm memory.
var ErrTooLargeForCPU = errors.New("This model is too large for the CPU fallback")

// checkCPUFits refuses a model the CPU engine cannot hold in wasm memory.
func checkCPUFits(m *bundle.Manifest) error {
	if total := m.TotalBytes(); total > MaxCPUModelBytes {
		return fmt.Errorf("%w: it needs %.1f GiB of memory and WebAssembly can hold about %.1f GiB. Use a browser with WebGPU, or a smaller model.",
			ErrTooLargeForCPU, float64(total)/(1<<30), float64(MaxCPUModelBytes)/(1<<30))
	}
	return nil
}

func loadCPU(ctx context.Context, m *bundle.Manifest, src engine.ShardSource, progress func(done, total int64, shard int)) (*llama.Model, error) {
	if err := checkCPUFits(m); err != nil {
		return nil, err
	}
	total := m.TotalBytes()
	cs := cpuSource{shards: make([]js.Value, len(m.Shards))}
	var done int64
	for i := range m.Shards {
		arr, err := src.Shard(ctx, i, nil)
		if err != nil {
			return nil, plain("The model could not be loaded", err)
		}
		cs.shards[i] = arr
		done += m.Shards[i].Bytes
		if progress != nil {
			progress(done, total, i)
		}
	}
	md, err := llama.Load(m, cs)
	if err != nil {
		return nil, plain("The model could not be loaded", err)
	}
	return md, nil
}

// parsePublicKey accepts an Ed25519 public key as hex or base64.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return b, nil
		}
	}
	return nil, errors.New("publicKey must be an Ed25519 public key (32 bytes) in hex or base64")
}
