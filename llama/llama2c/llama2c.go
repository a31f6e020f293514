// Package llama2c reads llama2.c checkpoints: the legacy format (a 7×int32
// header followed by f32 weights, as written by run.c's export) and the
// versioned formats of llama2.c's export.py (magic "ak42", a 256-byte
// header; version 1 holds f32 weights, version 2 int8 Q8_0-style groups with
// f32 scales).
//
// The reader distrusts its input: every header value is range-checked, every
// size is overflow-checked and the whole layout is checked against the file
// size before a weight is read. Errors name the file and, where it applies,
// the tensor. It only reads; quantization for bundles lives in quant/.
package llama2c

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/ember-llm/ember/llama/bundle"
)

// Magic is the first uint32 of a versioned checkpoint ("ak42" little-endian).
const Magic = 0x616b3432

// HeaderBytes is the size of a versioned checkpoint's header.
const HeaderBytes = 256

// Sentinel errors; every error returned by this package wraps one of them.
var (
	ErrInvalidFormat      = errors.New("llama2c: invalid checkpoint")
	ErrUnsupportedVersion = errors.New("llama2c: unsupported checkpoint version")
)

// Format versions. Legacy is the headerless-magic format of run.c.
const (
	Legacy   = 0
	VersionF = 1 // export.py version1_export: f32 weights
	VersionQ = 2 // export.py version2_export: Q8_0 int8 weights
)

// Header holds the hyper-parameters of a checkpoint.
type Header struct {
	Version   int // Legacy, VersionF or VersionQ
	Dim       int
	HiddenDim int
	NLayers   int
	NHeads    int
	NKVHeads  int
	VocabSize int // always positive here; the legacy sign is in SharedClassifier
	SeqLen    int
	// SharedClassifier: the output projection reuses the token embeddings.
	SharedClassifier bool
	GroupSize        int // VersionQ only
}

// HeadDim is the width of one attention head.
func (h *Header) HeadDim() int { return h.Dim / h.NHeads }

// Config returns the bundle hyper-parameters; llama2.c models use BOS 1,
// EOS 2, RoPE theta 10000 and RMSNorm epsilon 1e-5.
func (h *Header) Config() bundle.Config {
	return bundle.Config{
		Architecture:   "llama",
		Dim:            h.Dim,
		HiddenDim:      h.HiddenDim,
		NLayers:        h.NLayers,
		NHeads:         h.NHeads,
		NKVHeads:       h.NKVHeads,
		HeadDim:        h.HeadDim(),
		VocabSize:      h.VocabSize,
		ContextLength:  h.SeqLen,
		RopeTheta:      10000,
		NormEps:        1e-5,
		TiedEmbeddings: h.SharedClassifier,
		BOSTokenID:     1,
		EOSTokenIDs:    []int{2},
	}
}

// Limits on header values; far above any real Llama, low enough that size
// arithmetic cannot overflow int64.
const (
	maxDim    = 1 << 16
	maxHidden = 1 << 18
	maxLayers = 1024
	maxHeads  = 1024
	maxVocab  = 1 << 22
	maxSeqLen = 1 << 22
)

func (h *Header) check() error {
	vals := []struct {
		name   string
		v, max int
	}{
		{"dim", h.Dim, maxDim}, {"hidden_dim", h.HiddenDim, maxHidden}, {"n_layers", h.NLayers, maxLayers},
		{"n_heads", h.NHeads, maxHeads}, {"n_kv_heads", h.NKVHeads, maxHeads}, {"vocab_size", h.VocabSize, maxVocab},
		{"seq_len", h.SeqLen, maxSeqLen},
	}
	for _, v := range vals {
		if v.v <= 0 || v.v > v.max {
			return fmt.Errorf("header %s = %d is out of range (1..%d)", v.name, v.v, v.max)
		}
	}
	if h.Dim%h.NHeads != 0 {
		return fmt.Errorf("header dim %d is not a multiple of n_heads %d", h.Dim, h.NHeads)
	}
	if h.HeadDim()%2 != 0 {
		return fmt.Errorf("header head size %d is odd", h.HeadDim())
	}
	if h.NKVHeads > h.NHeads || h.NHeads%h.NKVHeads != 0 {
		return fmt.Errorf("header n_heads %d is not a multiple of n_kv_heads %d", h.NHeads, h.NKVHeads)
	}
	if h.Version == VersionQ {
		if h.GroupSize <= 0 || h.GroupSize > 1<<16 {
			return fmt.Errorf("header group_size %d is out of range (1..65536)", h.GroupSize)
		}
	}
	return nil
}

// entry locates one tensor in the file.
type entry struct {
	shape  []int
	off    int64 // f32 data, or int8 data for a q8 entry
	q8     bool
	scales int64 // q8: offset of the f32 group scales
}

func (e *entry) numel() int64 {
	n := int64(1)
	for _, d := range e.shape {
		n *= int64(d)
	}
	return n
}

// File is an opened checkpoint.
type File struct {
	Header
	Name string // file name used in errors
	r    io.ReaderAt
	c    io.Closer
	size int64

	names   []string // tensor names in file order
	entries map[string]*entry
}

// Open opens a checkpoint and checks its layout against the file size.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("llama2c: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("llama2c: %w", err)
	}
	cf, err := New(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	cf.c = f
	return cf, nil
}

// New reads a checkpoint of the given size from r; name is used in errors.
func New(r io.ReaderAt, size int64, name string) (*File, error) {
	f := &File{Name: name, r: r, size: size, entries: map[string]*entry{}}
	if err := f.readHeader(); err != nil {
		return nil, err
	}
	if err := f.layout(); err != nil {
		return nil, err
	}
	return f, nil
}

// Close closes the underlying file (if Open opened it).
func (f *File) Close() error {
	if f.c != nil {
		return f.c.Close()
	}
	return nil
}

func (f *File) errf(base error, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", base, f.Name, fmt.Sprintf(format, args...))
}

func (f *File) readHeader() error {
	var b [HeaderBytes]byte
	n := HeaderBytes
	if f.size < int64(n) {
		n = int(f.size)
	}
	if n < 28 {
		return f.errf(ErrInvalidFormat, "%d bytes is too short for a llama2.c header", f.size)
	}
	if _, err := f.r.ReadAt(b[:n], 0); err != nil && !errors.Is(err, io.EOF) {
		return f.errf(ErrInvalidFormat, "read header: %v", err)
	}
	i32 := func(off int) int { return int(int32(binary.LittleEndian.Uint32(b[off:]))) }
	h := &f.Header
	var params int
	if binary.LittleEndian.Uint32(b[:]) == Magic {
		if n < HeaderBytes {
			return f.errf(ErrInvalidFormat, "%d bytes is too short for the %d-byte versioned header", f.size, HeaderBytes)
		}
		h.Version = i32(4)
		if h.Version != VersionF && h.Version != VersionQ {
			return f.errf(ErrUnsupportedVersion, "version %d (supported: legacy, 1 = f32, 2 = int8 Q8_0)", h.Version)
		}
		params = 8
	}
	h.Dim, h.HiddenDim, h.NLayers = i32(params), i32(params+4), i32(params+8)
	h.NHeads, h.NKVHeads, h.VocabSize, h.SeqLen = i32(params+12), i32(params+16), i32(params+20), i32(params+24)
	if h.Version == Legacy {
		// A negative vocabulary size means a separate classifier follows.
		h.SharedClassifier = h.VocabSize > 0
		if h.VocabSize < 0 && h.VocabSize != math.MinInt32 {
			h.VocabSize = -h.VocabSize
		}
	} else {
		switch b[36] {
		case 0, 1:
			h.SharedClassifier = b[36] == 1
		default:
			return f.errf(ErrInvalidFormat, "shared_classifier flag is %d, want 0 or 1", b[36])
		}
		if h.Version == VersionQ {
			h.GroupSize = int(int32(binary.LittleEndian.Uint32(b[37:])))
		}
	}
	if err := h.check(); err != nil {
		if h.Version == Legacy {
			return f.errf(ErrInvalidFormat, "no \"ak42\" magic and the legacy %s: not a llama2.c checkpoint, or a corrupt one", err)
		}
		return f.errf(ErrInvalidFormat, "%s", err)
	}
	return nil
}

// layout computes every tensor's offset in file order and checks that the
// file holds exactly that many bytes.
func (f *File) layout() error {
	h := &f.Header
	dim, hid, kv, q := h.Dim, h.HiddenDim, h.NKVHeads*h.HeadDim(), h.NHeads*h.HeadDim()
	off := int64(0)
	if h.Version != Legacy {
		off = HeaderBytes
	} else {
		off = 28
	}
	add := func(name string, shape []int, q8 bool) error {
		e := &entry{shape: shape, off: off, q8: q8}
		n := e.numel()
		if q8 {
			gs := int64(h.GroupSize)
			if n%gs != 0 {
				return f.errf(ErrInvalidFormat, "tensor %q has %d values, not a multiple of group_size %d", name, n, gs)
			}
			e.scales = off + n
			off += n + n/gs*4
		} else {
			off += n * 4
		}
		f.names = append(f.names, name)
		f.entries[name] = e
		return nil
	}
	perLayer := func(suffix string, shape []int, q8 bool) error {
		for l := 0; l < h.NLayers; l++ {
			if err := add(bundle.LayerTensor(l, suffix), shape, q8); err != nil {
				return err
			}
		}
		return nil
	}
	matrices := []struct {
		suffix string
		shape  []int
	}{
		{bundle.WQ, []int{q, dim}}, {bundle.WK, []int{kv, dim}}, {bundle.WV, []int{kv, dim}}, {bundle.WO, []int{dim, q}},
	}
	ffn := []struct {
		suffix string
		shape  []int
	}{
		{bundle.W1, []int{hid, dim}}, {bundle.W2, []int{dim, hid}}, {bundle.W3, []int{hid, dim}},
	}
	var err error
	switch h.Version {
	case Legacy:
		// run.c order: embeddings, attention norms, wq, wk, wv, wo, ffn norms,
		// w1, w2, w3, final norm, two freq_cis blocks, classifier.
		err = errors.Join(
			add(bundle.TokEmbeddings, []int{h.VocabSize, dim}, false),
			perLayer(bundle.AttnNorm, []int{dim}, false))
		for _, m := range matrices {
			err = errors.Join(err, perLayer(m.suffix, m.shape, false))
		}
		err = errors.Join(err, perLayer(bundle.FFNNorm, []int{dim}, false))
		for _, m := range ffn {
			err = errors.Join(err, perLayer(m.suffix, m.shape, false))
		}
		err = errors.Join(err, add(bundle.FinalNorm, []int{dim}, false))
		off += int64(h.SeqLen) * int64(h.HeadDim()) / 2 * 4 * 2 // freq_cis_real, freq_cis_imag
	default:
		// export.py order: all norms (f32), then embeddings and matrices
		// (f32 for version 1, Q8_0 for version 2), then the classifier.
		q8 := h.Version == VersionQ
		err = errors.Join(
			perLayer(bundle.AttnNorm, []int{dim}, false),
			perLayer(bundle.FFNNorm, []int{dim}, false),
			add(bundle.FinalNorm, []int{dim}, false),
			add(bundle.TokEmbeddings, []int{h.VocabSize, dim}, q8))
		for _, m := range matrices {
			err = errors.Join(err, perLayer(m.suffix, m.shape, q8))
		}
		for _, m := range ffn {
			err = errors.Join(err, perLayer(m.suffix, m.shape, q8))
		}
		if !h.SharedClassifier {
			err = errors.Join(err, add(bundle.Output, []int{h.VocabSize, dim}, q8))
		}
	}
	if err != nil {
		return err
	}
	if h.Version == Legacy && !h.SharedClassifier {
		if err := add(bundle.Output, []int{h.VocabSize, dim}, false); err != nil {
			return err
		}
	}
	if off > f.size {
		last := f.names[len(f.names)-1]
		for _, name := range f.names {
			e := f.entries[name]
			if end := e.off + f.byteLen(e); end > f.size {
				last = name
				break
			}
		}
		return f.errf(ErrInvalidFormat, "truncated: the header (dim %d, hidden_dim %d, %d layers, vocab %d) needs %d bytes, the file has %d (tensor %q is cut off)",
			h.Dim, h.HiddenDim, h.NLayers, h.VocabSize, off, f.size, last)
	}
	if off < f.size {
		return f.errf(ErrInvalidFormat, "the header (dim %d, hidden_dim %d, %d layers, vocab %d) needs %d bytes, the file has %d (%d unexplained trailing bytes)",
			h.Dim, h.HiddenDim, h.NLayers, h.VocabSize, off, f.size, f.size-off)
	}
	return nil
}

func (f *File) byteLen(e *entry) int64 {
	n := e.numel()
	if e.q8 {
		return n + n/int64(f.GroupSize)*4
	}
	return n * 4
}

// Names lists the tensors in file order, by canonical bundle name.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Shape returns the shape of the named tensor.
func (f *File) Shape(name string) ([]int, error) {
	e, ok := f.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s: no tensor %q in this checkpoint", ErrInvalidFormat, f.Name, name)
	}
	return append([]int(nil), e.shape...), nil
}

// IsQuantized reports whether the named tensor is stored as int8 groups.
func (f *File) IsQuantized(name string) bool {
	e, ok := f.entries[name]
	return ok && e.q8
}

// Float32 reads the named tensor as f32 values, dequantizing int8 groups
// (value = q * scale of its group, groups running over the flattened tensor).
func (f *File) Float32(name string) ([]float32, error) {
	e, ok := f.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s: no tensor %q in this checkpoint", ErrInvalidFormat, f.Name, name)
	}
	out := make([]float32, e.numel())
	if err := f.ReadFloat32(name, 0, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadFloat32 reads len(dst) values of the named tensor, starting at flat
// element index start, dequantizing int8 groups (a range may begin and end
// inside a group). Reading a tensor a few rows at a time keeps memory
// bounded whatever the model size.
func (f *File) ReadFloat32(name string, start int64, dst []float32) error {
	e, ok := f.entries[name]
	if !ok {
		return fmt.Errorf("%w: %s: no tensor %q in this checkpoint", ErrInvalidFormat, f.Name, name)
	}
	n := int64(len(dst))
	if start < 0 || start > e.numel()-n {
		return fmt.Errorf("%w: %s: tensor %q: values [%d, %d) are outside its %d values", ErrInvalidFormat, f.Name, name, start, start+n, e.numel())
	}
	if !e.q8 {
		return f.readF32(name, e.off+start*4, dst)
	}
	if n == 0 {
		return nil
	}
	q := make([]byte, n)
	if _, err := f.r.ReadAt(q, e.off+start); err != nil {
		return fmt.Errorf("%w: %s: read tensor %q: %v", ErrInvalidFormat, f.Name, name, err)
	}
	gs := int64(f.GroupSize)
	g0, g1 := start/gs, (start+n-1)/gs
	scales := make([]float32, g1-g0+1)
	if err := f.readF32(name+" scales", e.scales+g0*4, scales); err != nil {
		return err
	}
	for i := range dst {
		dst[i] = float32(int8(q[i])) * scales[(start+int64(i))/gs-g0]
	}
	return nil
}

func (f *File) readF32(name string, off int64, dst []float32) error {
	const chunk = 1 << 16
	buf := make([]byte, 4*min(len(dst), chunk))
	for i := 0; i < len(dst); i += chunk {
		m := min(chunk, len(dst)-i)
		b := buf[:4*m]
		if _, err := f.r.ReadAt(b, off+int64(i)*4); err != nil {
			return fmt.Errorf("%w: %s: read tensor %q: %v", ErrInvalidFormat, f.Name, name, err)
		}
		for j := range m {
			dst[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
	}
	return nil
}
