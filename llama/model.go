package llama

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"unsafe"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/quant"
)

// Matrix is a weight matrix of shape (Rows, Cols), row-major, one row per
// output, held as stored: f32, or int8 with scales.
type Matrix struct {
	Rows, Cols int
	F32        []float32 // (Rows, Cols); nil for int8
	Q          []int8    // (Rows, Stride) int8 weights, each row zero-padded to Stride
	Stride     int       // bundle.PadQ8(Cols)
	GroupSize  int       // inputs sharing one scale: Cols (per-channel) or 32 (blocks)
	Groups     int       // scales per row: 1 or ceil(Cols/32)
	Scales     []float32 // (Rows, Groups)
}

// Quantized reports whether the matrix holds int8 weights.
func (w *Matrix) Quantized() bool { return w.Q != nil }

// Row writes row i, dequantized, to dst (len Cols).
func (w *Matrix) Row(i int, dst []float32) {
	if w.F32 != nil {
		copy(dst, w.F32[i*w.Cols:(i+1)*w.Cols])
		return
	}
	q := w.Q[i*w.Stride:]
	for j := 0; j < w.Cols; j++ {
		dst[j] = float32(q[j]) * w.Scales[i*w.Groups+j/w.GroupSize]
	}
}

// Layer holds one transformer block's weights.
type Layer struct {
	AttnNorm []float32 // (dim)
	WQ       Matrix    // (n_heads*head_dim, dim)
	WK       Matrix    // (n_kv_heads*head_dim, dim)
	WV       Matrix    // (n_kv_heads*head_dim, dim)
	WO       Matrix    // (dim, n_heads*head_dim)
	FFNNorm  []float32 // (dim)
	W1       Matrix    // (hidden_dim, dim) gate
	W2       Matrix    // (dim, hidden_dim) down
	W3       Matrix    // (hidden_dim, dim) up
}

// Weights holds every tensor of the model.
type Weights struct {
	TokEmbeddings Matrix    // (vocab_size, dim)
	Layers        []Layer   // (n_layers)
	FinalNorm     []float32 // (dim)
	Output        *Matrix   // (vocab_size, dim); &TokEmbeddings when tied
}

// TensorSource reads the stored bytes of a tensor (all parts, concatenated)
// into dst, whose length is t.Length.
type TensorSource interface {
	ReadTensor(t *bundle.Tensor, dst []byte) error
}

// DirSource reads tensors from the shard files of an opened bundle directory.
type DirSource struct{ B *bundle.Bundle }

// ReadTensor implements TensorSource.
func (s DirSource) ReadTensor(t *bundle.Tensor, dst []byte) error {
	if int64(len(dst)) != t.Length {
		return fmt.Errorf("tensor %q: buffer of %d bytes for %d", t.Name, len(dst), t.Length)
	}
	var off int64
	for _, p := range t.PartsOrSelf() {
		f, err := os.Open(s.B.ShardPath(p.Shard))
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		_, err = f.ReadAt(dst[off:off+p.Length], p.Offset)
		f.Close()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("tensor %q: read shard %d: %w (shard shorter than the manifest says)", t.Name, p.Shard, err)
		}
		off += p.Length
	}
	return nil
}

// Model is the CPU engine: weights, the run state and the KV cache. It
// implements Engine; like every Engine it is not safe for concurrent use.
type Model struct {
	cfg      bundle.Config
	manifest *bundle.Manifest
	W        Weights
	s        State

	threads  int
	workers  *poolHolder // helper goroutines when threads > 1
	closed   bool
	quantAct bool // int8 matrices multiply int8-quantized activations (runq.c style)

	invFreq []float64 // (head_dim/2) RoPE inverse frequencies, scaling applied
}

// LoadDir opens a bundle directory, verifies every shard's SHA-256 and loads
// the model.
func LoadDir(dir string) (*Model, error) {
	b, err := bundle.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := b.Verify(); err != nil {
		return nil, err
	}
	return Load(b.Manifest, DirSource{b})
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Load builds the CPU model from a manifest, reading each tensor once from
// src. Weights stay as stored: int8 matrices are not dequantized.
func Load(m *bundle.Manifest, src TensorSource) (*Model, error) {
	if !littleEndian {
		return nil, fmt.Errorf("%w: the CPU engine needs a little-endian machine", ErrBadModel)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	c := m.Config
	md := &Model{cfg: c, manifest: m, quantAct: true, workers: &poolHolder{}}
	runtime.AddCleanup(md, func(h *poolHolder) { h.set(nil) }, md.workers)
	md.SetThreads(0)
	md.cfg.EOSTokenIDs = append([]int(nil), c.EOSTokenIDs...)
	var err error
	mat := func(name string) Matrix {
		if err != nil {
			return Matrix{}
		}
		var w Matrix
		w, err = loadMatrix(m, src, name)
		return w
	}
	vec := func(name string) []float32 {
		if err != nil {
			return nil
		}
		var v []float32
		v, err = loadVector(m, src, name)
		return v
	}
	w := &md.W
	w.TokEmbeddings = mat(bundle.TokEmbeddings)
	w.Layers = make([]Layer, c.NLayers)
	for l := range w.Layers {
		L := &w.Layers[l]
		name := func(s string) string { return bundle.LayerTensor(l, s) }
		L.AttnNorm = vec(name(bundle.AttnNorm))
		L.WQ = mat(name(bundle.WQ))
		L.WK = mat(name(bundle.WK))
		L.WV = mat(name(bundle.WV))
		L.WO = mat(name(bundle.WO))
		L.FFNNorm = vec(name(bundle.FFNNorm))
		L.W1 = mat(name(bundle.W1))
		L.W2 = mat(name(bundle.W2))
		L.W3 = mat(name(bundle.W3))
	}
	w.FinalNorm = vec(bundle.FinalNorm)
	if c.TiedEmbeddings {
		w.Output = &w.TokEmbeddings
	} else {
		out := mat(bundle.Output)
		w.Output = &out
	}
	if err != nil {
		return nil, err
	}
	md.invFreq = RopeInvFreq(&c)
	md.allocState()
	return md, nil
}

func defaultThreads() int {
	if runtime.GOOS == "js" {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// SetThreads sets how many goroutines share the matrix work (n < 1: GOMAXPROCS;
// always 1 under js/wasm).
func (m *Model) SetThreads(n int) {
	if n < 1 {
		n = defaultThreads()
	}
	if runtime.GOOS == "js" {
		n = 1
	}
	if n == m.threads {
		return
	}
	m.threads = n
	if n > 1 {
		m.workers.set(newPool(n - 1))
	} else {
		m.workers.set(nil)
	}
}

// SetQuantizedActivations chooses, for int8 matrices, between multiplying
// int8-quantized activations (true, the default: see docs/PERFORMANCE.md) and
// f32 activations.
func (m *Model) SetQuantizedActivations(on bool) { m.quantAct = on }

// Config implements Engine.
func (m *Model) Config() *bundle.Config { return &m.cfg }

// Manifest is the manifest the model was loaded from.
func (m *Model) Manifest() *bundle.Manifest { return m.manifest }

// Close implements Engine; it drops the KV cache.
func (m *Model) Close() error {
	m.s.resetCache()
	m.workers.set(nil)
	m.closed = true
	return nil
}

// Reset empties the KV cache and frees its memory.
func (m *Model) Reset() { m.s.resetCache() }

// Truncate forgets the cached keys and values from position n on. Eval at
// position n does this implicitly; Truncate also releases memory when n is 0.
func (m *Model) Truncate(n int) {
	if n <= 0 {
		m.s.resetCache()
	}
}

func tensorEntry(m *bundle.Manifest, name string) (*bundle.Tensor, error) {
	t, err := m.Tensor(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	return t, nil
}

func loadVector(m *bundle.Manifest, src TensorSource, name string) ([]float32, error) {
	t, err := tensorEntry(m, name)
	if err != nil {
		return nil, err
	}
	n := t.Rows() * t.Cols()
	switch t.DType {
	case bundle.F32:
		v := make([]float32, n)
		if err := src.ReadTensor(t, f32Bytes(v)); err != nil {
			return nil, err
		}
		return v, nil
	case bundle.F16:
		buf := make([]byte, t.Length)
		if err := src.ReadTensor(t, buf); err != nil {
			return nil, err
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = quant.F16ToF32(binary.LittleEndian.Uint16(buf[2*i:]))
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: tensor %q has dtype %s, want f32 or f16", ErrBadModel, name, t.DType)
}

func loadMatrix(m *bundle.Manifest, src TensorSource, name string) (Matrix, error) {
	t, err := tensorEntry(m, name)
	if err != nil {
		return Matrix{}, err
	}
	if len(t.Shape) != 2 {
		return Matrix{}, fmt.Errorf("%w: tensor %q has shape %v, want a matrix", ErrBadModel, name, t.Shape)
	}
	w := Matrix{Rows: t.Shape[0], Cols: t.Shape[1]}
	switch t.DType {
	case bundle.F32, bundle.F16:
		w.F32, err = loadVector(m, src, name)
		return w, err
	case bundle.Q8:
		w.Stride = bundle.PadQ8(w.Cols)
		w.GroupSize = t.GroupSize
		w.Groups = (w.Cols + t.GroupSize - 1) / t.GroupSize
		w.Q = make([]int8, w.Rows*w.Stride)
		if err := src.ReadTensor(t, unsafe.Slice((*byte)(unsafe.Pointer(&w.Q[0])), len(w.Q))); err != nil {
			return Matrix{}, err
		}
		w.Scales, err = loadVector(m, src, t.Scale)
		if err != nil {
			return Matrix{}, err
		}
		if len(w.Scales) != w.Rows*w.Groups {
			return Matrix{}, fmt.Errorf("%w: tensor %q: %d scales for %d rows × %d groups", ErrBadModel, name, len(w.Scales), w.Rows, w.Groups)
		}
		for i, s := range w.Scales {
			if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
				return Matrix{}, fmt.Errorf("%w: tensor %q: scale %d is %v", ErrBadModel, t.Scale, i, s)
			}
		}
		return w, nil
	}
	return Matrix{}, fmt.Errorf("%w: tensor %q has dtype %s", ErrBadModel, name, t.DType)
}

func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// RopeInvFreq returns the inverse frequency of each rotated pair of a head,
// with the config's RoPE scaling applied (linear: all divided by the factor;
// llama3: Llama 3.1's wavelength-dependent blend). The GPU engine builds its
// cos/sin table from the same values, so both engines rotate identically.
func RopeInvFreq(c *bundle.Config) []float64 {
	f := make([]float64, c.HeadDim/2)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	s := c.RopeScaling
	if s == nil {
		return f
	}
	switch s.Type {
	case "linear":
		for i := range f {
			f[i] /= s.Factor
		}
	case "llama3":
		old := float64(s.OriginalContextLength)
		lowWavelen := old / s.LowFreqFactor
		highWavelen := old / s.HighFreqFactor
		for i, freq := range f {
			wavelen := 2 * math.Pi / freq
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				f[i] = freq / s.Factor
			default:
				smooth := (old/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f[i] = (1-smooth)*freq/s.Factor + smooth*freq
			}
		}
	}
	return f
}
