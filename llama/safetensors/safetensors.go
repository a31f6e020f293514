// Package safetensors reads HuggingFace safetensors checkpoints: a single
// model.safetensors file, or shards listed by model.safetensors.index.json.
//
// Input is hostile: the header length is bounded, the JSON header is decoded
// strictly (duplicate names, unknown fields of a tensor entry, impossible
// shapes and offsets are errors), every tensor's byte range must match its
// dtype and shape, lie inside the file and not overlap another. Only F32,
// F16 and BF16 tensors are accepted. Tensor bytes are read only on request.
//
// Format: https://github.com/huggingface/safetensors (README, "Format").
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Sentinel errors.
var (
	ErrInvalidFormat   = errors.New("safetensors: invalid file")
	ErrUnsupportedType = errors.New("safetensors: unsupported dtype")
	ErrNotFound        = errors.New("safetensors: not found")
)

// MaxHeaderBytes bounds the JSON header (the reference implementation's limit).
const MaxHeaderBytes = 100 << 20

// MaxDims bounds a tensor's rank.
const MaxDims = 8

// Supported dtypes.
const (
	F32  = "F32"
	F16  = "F16"
	BF16 = "BF16"
)

var knownDTypes = map[string]bool{"F64": true, "F32": true, "F16": true, "BF16": true, "I64": true, "I32": true,
	"I16": true, "I8": true, "U64": true, "U32": true, "U16": true, "U8": true, "BOOL": true,
	"F8_E4M3": true, "F8_E5M2": true, "F8_E8M0": true, "F6_E2M3": true, "F6_E3M2": true, "F4": true, "C64": true}

// ElemSize is the byte size of one element of a supported dtype (0 otherwise).
func ElemSize(dtype string) int64 {
	switch dtype {
	case F32:
		return 4
	case F16, BF16:
		return 2
	}
	return 0
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name   string
	DType  string // F32, F16 or BF16
	Shape  []int  // outermost first, as PyTorch
	Offset int64  // absolute byte offset in its file
	Size   int64
	File   *File // the file holding it
}

// Elements is the product of Shape (1 for a scalar).
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// File is one parsed safetensors file.
type File struct {
	Name     string            // path, used in errors
	Metadata map[string]string // __metadata__, informative only
	Tensors  []TensorInfo      // in data order
	// DataOffset is where the byte buffer starts (8 + header length).
	DataOffset int64

	r      io.ReaderAt
	closer io.Closer
	index  map[string]int
}

// Open parses the safetensors file at path.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Close releases the file opened by Open.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

func (f *File) invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidFormat, f.Name, fmt.Sprintf(format, args...))
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*TensorInfo, error) {
	i, ok := f.index[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.Name, name, ErrNotFound)
	}
	return &f.Tensors[i], nil
}

// Reader returns a reader over the tensor's bytes.
func (t *TensorInfo) Reader() *io.SectionReader {
	return io.NewSectionReader(t.File.r, t.Offset, t.Size)
}

// ReadBytes reads the tensor's raw little-endian bytes.
func (t *TensorInfo) ReadBytes() ([]byte, error) {
	buf := make([]byte, t.Size)
	if _, err := io.ReadFull(t.Reader(), buf); err != nil {
		return nil, fmt.Errorf("%s: read tensor %q: %w", t.File.Name, t.Name, err)
	}
	return buf, nil
}

type entry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Parse reads the header of a safetensors file of the given size from r.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	f := &File{Name: name, r: r, index: map[string]int{}}
	if size < 8 {
		return nil, f.invalid("%d bytes is too short for the 8-byte header length (truncated?)", size)
	}
	var lb [8]byte
	if _, err := r.ReadAt(lb[:], 0); err != nil {
		return nil, f.invalid("read header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	if n < 2 || n > MaxHeaderBytes || n > uint64(size-8) {
		return nil, f.invalid("header length %d is impossible (file has %d bytes, limit %d)", n, size, MaxHeaderBytes)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, f.invalid("read header: %v", err)
	}
	f.DataOffset = 8 + int64(n)
	if hdr[0] != '{' {
		return nil, f.invalid("header does not start with '{'")
	}
	if err := f.parseHeader(hdr, size-f.DataOffset); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) parseHeader(hdr []byte, dataLen int64) error {
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimRight(hdr, " "))) // the writer pads with spaces
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return f.invalid("header JSON: %v", err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f.invalid("header JSON: %v", err)
		}
		name, _ := tok.(string)
		if name == "__metadata__" {
			if f.Metadata != nil {
				return f.invalid("__metadata__ appears twice")
			}
			f.Metadata = map[string]string{}
			if err := dec.Decode(&f.Metadata); err != nil {
				return f.invalid("__metadata__ is not a string → string object: %v", err)
			}
			continue
		}
		if _, dup := f.index[name]; dup {
			return f.invalid("tensor %q appears twice", name)
		}
		if name == "" {
			return f.invalid("a tensor has an empty name")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return f.invalid("tensor %q: %v", name, err)
		}
		ed := json.NewDecoder(bytes.NewReader(raw))
		ed.DisallowUnknownFields()
		var e entry
		if err := ed.Decode(&e); err != nil {
			return f.invalid("tensor %q: %v", name, err)
		}
		t, err := f.tensor(name, e, dataLen)
		if err != nil {
			return err
		}
		f.index[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return f.invalid("header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return f.invalid("trailing data after the header object")
	}
	sort.Slice(f.Tensors, func(a, b int) bool { return f.Tensors[a].Offset < f.Tensors[b].Offset })
	for i := range f.Tensors {
		f.index[f.Tensors[i].Name] = i
		if i > 0 {
			p, q := &f.Tensors[i-1], &f.Tensors[i]
			if p.Offset+p.Size > q.Offset {
				return f.invalid("tensors %q and %q overlap", p.Name, q.Name)
			}
		}
	}
	return nil
}

func (f *File) tensor(name string, e entry, dataLen int64) (TensorInfo, error) {
	es := ElemSize(e.DType)
	if es == 0 {
		if knownDTypes[e.DType] {
			return TensorInfo{}, fmt.Errorf("%w: %s: tensor %q: %s is not supported; supported: F32, F16, BF16", ErrUnsupportedType, f.Name, name, e.DType)
		}
		return TensorInfo{}, fmt.Errorf("%w: %s: tensor %q: dtype %q is unknown; supported: F32, F16, BF16", ErrUnsupportedType, f.Name, name, e.DType)
	}
	if e.Shape == nil || len(e.Shape) > MaxDims {
		return TensorInfo{}, f.invalid("tensor %q: shape %v must be a list of at most %d dimensions", name, e.Shape, MaxDims)
	}
	elems := int64(1)
	t := TensorInfo{Name: name, DType: e.DType, Shape: make([]int, len(e.Shape)), File: f}
	for i, d := range e.Shape {
		if d < 0 || (d > 0 && elems > math.MaxInt64/es/d) {
			return TensorInfo{}, f.invalid("tensor %q: shape %v is impossible (negative or overflowing)", name, e.Shape)
		}
		elems *= d
		t.Shape[i] = int(d)
	}
	if len(e.DataOffsets) != 2 {
		return TensorInfo{}, f.invalid("tensor %q: data_offsets %v must be [begin, end]", name, e.DataOffsets)
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin < 0 || end < begin || end > dataLen {
		return TensorInfo{}, f.invalid("tensor %q: data_offsets [%d, %d] are outside the %d data bytes (truncated?)", name, begin, end, dataLen)
	}
	if end-begin != elems*es {
		return TensorInfo{}, f.invalid("tensor %q: %s shape %v needs %d bytes, data_offsets give %d", name, e.DType, e.Shape, elems*es, end-begin)
	}
	t.Offset, t.Size = f.DataOffset+begin, end-begin
	return t, nil
}
