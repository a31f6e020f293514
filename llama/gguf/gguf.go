// Package gguf reads GGUF v2/v3 files (llama.cpp's model format): the
// metadata key/value table, the tensor table, and each tensor's raw bytes on
// demand.
//
// Every byte is treated as hostile: counts and lengths are checked against
// the bytes that remain before anything is allocated, size arithmetic is
// overflow-checked, tensor data must be aligned, inside the file and not
// overlapping. Errors wrap ErrInvalidFormat or ErrUnsupportedType and name
// the file and the key or tensor. Only F32, F16, BF16 and Q8_0 tensors are
// accepted. The package never decodes tensor data (quant does that) and
// never holds tensor data in memory beyond what a caller reads.
//
// Specification: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
package gguf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Sentinel errors.
var (
	ErrInvalidFormat   = errors.New("gguf: invalid file")
	ErrUnsupportedType = errors.New("gguf: unsupported type")
	ErrNotFound        = errors.New("gguf: not found")
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// Limits on what a reader accepts; generous for real models.
const (
	MaxStringLen  = 64 << 20 // one metadata string (chat templates are a few KiB)
	MaxKeyLen     = 65535
	MaxArrayLen   = 1 << 26 // elements of one metadata array (vocabularies are < 1M)
	MaxArrayDepth = 8
	MaxDims       = 4 // GGML_MAX_DIMS
	MaxTensors    = 1 << 20
)

// Type is a ggml tensor element type.
type Type uint32

// The tensor types this reader accepts.
const (
	TypeF32  Type = 0
	TypeF16  Type = 1
	TypeQ8_0 Type = 8
	TypeBF16 Type = 30
)

var typeNames = map[Type]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_2", 5: "Q4_3", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
	10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS",
	24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16",
	31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8", 34: "TQ1_0", 35: "TQ2_0",
	36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8", 39: "MXFP4",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// Supported lists the accepted tensor types, for error messages.
const Supported = "F32, F16, BF16, Q8_0"

// blockLayout returns elements per block and bytes per block.
func (t Type) blockLayout() (elems, bytes int64, ok bool) {
	switch t {
	case TypeF32:
		return 1, 4, true
	case TypeF16, TypeBF16:
		return 1, 2, true
	case TypeQ8_0:
		return 32, 34, true
	}
	return 0, 0, false
}

// TensorInfo describes one tensor of the file.
type TensorInfo struct {
	Name string
	Type Type
	// Dims in GGUF order: Dims[0] (ne0) is the innermost, contiguous
	// dimension. A [out, in] matrix has Dims = [in, out].
	Dims   []int
	Offset int64 // absolute byte offset of the data in the file
	Size   int64 // bytes of data
}

// Elements is the product of Dims.
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// Shape returns Dims reversed: outermost first, as Go and the bundle index.
func (t *TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = d
	}
	return s
}

// File is a parsed GGUF file.
type File struct {
	Name      string // file name used in error messages
	Version   uint32
	Alignment int64
	// Metadata values are uint8, int8, uint16, int16, uint32, int32, uint64,
	// int64, float32, float64, bool, string, or a slice of one of those
	// ([]string, []float32, []int32, …); nested arrays are []any.
	Metadata map[string]any
	// Keys lists the metadata keys in file order.
	Keys    []string
	Tensors []TensorInfo
	// DataOffset is where the tensor data section starts.
	DataOffset int64

	r      io.ReaderAt
	closer io.Closer
	index  map[string]int
}

// Open parses the GGUF file at path. Close releases it.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Close releases the underlying file (when opened with Open).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// Tensor returns the named tensor's description.
func (f *File) Tensor(name string) (*TensorInfo, error) {
	i, ok := f.index[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.Name, name, ErrNotFound)
	}
	return &f.Tensors[i], nil
}

// TensorReader returns a reader over the tensor's raw bytes.
func (f *File) TensorReader(t *TensorInfo) *io.SectionReader {
	return io.NewSectionReader(f.r, t.Offset, t.Size)
}

// ReadTensor reads the named tensor's raw bytes.
func (f *File) ReadTensor(name string) (*TensorInfo, []byte, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, t.Size)
	if _, err := io.ReadFull(f.TensorReader(t), buf); err != nil {
		return nil, nil, fmt.Errorf("%s: read tensor %q: %w", f.Name, name, err)
	}
	return t, buf, nil
}

func (f *File) invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidFormat, f.Name, fmt.Sprintf(format, args...))
}

// Parse reads a GGUF file of the given size from r; name is used in errors.
// The tensor data is not read.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	f := &File{Name: name, r: r, Metadata: map[string]any{}, index: map[string]int{}}
	d := &decoder{f: f, r: r, size: size}
	if err := d.header(); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *decoder) header() error {
	f := d.f
	magic, err := d.bytes(4, "magic")
	if err != nil {
		return err
	}
	if string(magic) != Magic {
		return f.invalid("magic is %q, want %q (not a GGUF file)", magic, Magic)
	}
	if f.Version, err = d.u32("version"); err != nil {
		return err
	}
	switch f.Version {
	case 2, 3:
	case 1:
		return fmt.Errorf("%w: %s: GGUF version 1 is not supported (want 2 or 3)", ErrUnsupportedType, f.Name)
	default:
		if f.Version != 0 && f.Version&0xffff == 0 {
			return fmt.Errorf("%w: %s: version %#x looks big-endian; only little-endian GGUF is supported", ErrUnsupportedType, f.Name, f.Version)
		}
		return f.invalid("version %d is unknown (want 2 or 3)", f.Version)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return err
	}
	// Smallest key/value: key length (8) + 1 byte key + type (4) + 1 byte value.
	if nKV > uint64(d.remaining()/14) {
		return f.invalid("metadata count %d is impossible for the %d bytes left", nKV, d.remaining())
	}
	// Smallest tensor info: name length (8) + 1 + n_dims (4) + 1 dim (8) + type (4) + offset (8).
	if nTensors > MaxTensors || nTensors > uint64(d.remaining()/33) {
		return f.invalid("tensor count %d is impossible for the %d bytes left", nTensors, d.remaining())
	}
	f.Keys = make([]string, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str(fmt.Sprintf("metadata key #%d", i), MaxKeyLen)
		if err != nil {
			return err
		}
		if key == "" {
			return f.invalid("metadata key #%d is empty", i)
		}
		if _, dup := f.Metadata[key]; dup {
			return f.invalid("metadata key %q appears twice", key)
		}
		vt, err := d.u32(fmt.Sprintf("metadata %q type", key))
		if err != nil {
			return err
		}
		v, err := d.value(key, vt, 0)
		if err != nil {
			return err
		}
		f.Metadata[key] = v
		f.Keys = append(f.Keys, key)
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.Metadata["general.alignment"]; ok {
		a, ok := v.(uint32)
		if !ok {
			return f.invalid("general.alignment has type %T, want uint32", v)
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return f.invalid("general.alignment %d is not a power of two up to 1 MiB", a)
		}
		f.Alignment = int64(a)
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo(i)
		if err != nil {
			return err
		}
		if _, dup := f.index[t.Name]; dup {
			return f.invalid("tensor %q appears twice", t.Name)
		}
		f.index[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	// The data section starts at the next alignment boundary.
	f.DataOffset = (d.pos + f.Alignment - 1) / f.Alignment * f.Alignment
	if len(f.Tensors) > 0 && f.DataOffset > d.size {
		return f.invalid("tensor data section starts at %d, past the end of the %d byte file (truncated?)", f.DataOffset, d.size)
	}
	return d.placeTensors()
}

func (d *decoder) tensorInfo(i uint64) (TensorInfo, error) {
	f := d.f
	name, err := d.str(fmt.Sprintf("tensor #%d name", i), MaxKeyLen)
	if err != nil {
		return TensorInfo{}, err
	}
	if name == "" {
		return TensorInfo{}, f.invalid("tensor #%d has an empty name", i)
	}
	what := fmt.Sprintf("tensor %q", name)
	nd, err := d.u32(what + " dimension count")
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > MaxDims {
		return TensorInfo{}, f.invalid("%s has %d dimensions (want 1..%d)", what, nd, MaxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]int, nd)}
	elems := int64(1)
	for j := range t.Dims {
		v, err := d.u64(fmt.Sprintf("%s dimension %d", what, j))
		if err != nil {
			return TensorInfo{}, err
		}
		if v == 0 || v > math.MaxInt64/uint64(elems) {
			return TensorInfo{}, f.invalid("%s dimension %d is %d (zero, or the element count overflows)", what, j, v)
		}
		elems *= int64(v)
		t.Dims[j] = int(v)
	}
	ty, err := d.u32(what + " type")
	if err != nil {
		return TensorInfo{}, err
	}
	t.Type = Type(ty)
	be, bb, ok := t.Type.blockLayout()
	if !ok {
		if _, known := typeNames[t.Type]; known {
			return TensorInfo{}, fmt.Errorf("%w: %s: %s: %s is not supported; supported: %s", ErrUnsupportedType, f.Name, what, t.Type, Supported)
		}
		return TensorInfo{}, fmt.Errorf("%w: %s: %s: type %d is unknown; supported: %s", ErrUnsupportedType, f.Name, what, ty, Supported)
	}
	if int64(t.Dims[0])%be != 0 {
		return TensorInfo{}, f.invalid("%s: %s needs dimension 0 (%d) to be a multiple of %d", what, t.Type, t.Dims[0], be)
	}
	blocks := elems / be
	if blocks > math.MaxInt64/bb {
		return TensorInfo{}, f.invalid("%s: size overflows", what)
	}
	t.Size = blocks * bb
	off, err := d.u64(what + " offset")
	if err != nil {
		return TensorInfo{}, err
	}
	if off > math.MaxInt64 {
		return TensorInfo{}, f.invalid("%s: offset %d is impossible", what, off)
	}
	t.Offset = int64(off) // relative until placeTensors
	return t, nil
}

func (d *decoder) placeTensors() error {
	f := d.f
	dataLen := d.size - f.DataOffset
	order := make([]int, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return f.invalid("tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return f.invalid("tensor %q: %d bytes at data offset %d run past the end of the file (%d data bytes; truncated?)",
				t.Name, t.Size, t.Offset, dataLen)
		}
		t.Offset += f.DataOffset
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		p, q := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if p.Offset+p.Size > q.Offset {
			return f.invalid("tensors %q and %q overlap", p.Name, q.Name)
		}
	}
	return nil
}

// Metadata value types (gguf_type).
const (
	tUint8 = iota
	tInt8
	tUint16
	tInt16
	tUint32
	tInt32
	tFloat32
	tBool
	tString
	tArray
	tUint64
	tInt64
	tFloat64
)

// minSize is the smallest encoding of one value of a type.
func minSize(vt uint32) int64 {
	switch vt {
	case tUint8, tInt8, tBool:
		return 1
	case tUint16, tInt16:
		return 2
	case tUint32, tInt32, tFloat32:
		return 4
	case tString, tUint64, tInt64, tFloat64:
		return 8
	case tArray:
		return 12
	}
	return 0
}

func typeName(vt uint32) string {
	names := []string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}
	if int(vt) < len(names) {
		return names[vt]
	}
	return fmt.Sprintf("type %d", vt)
}

func (d *decoder) value(key string, vt uint32, depth int) (any, error) {
	what := fmt.Sprintf("metadata %q", key)
	switch vt {
	case tUint8:
		b, err := d.bytes(1, what)
		if err != nil {
			return nil, err
		}
		return b[0], nil
	case tInt8:
		b, err := d.bytes(1, what)
		if err != nil {
			return nil, err
		}
		return int8(b[0]), nil
	case tUint16:
		v, err := d.u16(what)
		return v, err
	case tInt16:
		v, err := d.u16(what)
		return int16(v), err
	case tUint32:
		v, err := d.u32(what)
		return v, err
	case tInt32:
		v, err := d.u32(what)
		return int32(v), err
	case tFloat32:
		v, err := d.u32(what)
		return math.Float32frombits(v), err
	case tBool:
		b, err := d.bytes(1, what)
		if err != nil {
			return nil, err
		}
		if b[0] > 1 {
			return nil, d.f.invalid("%s: bool byte is %d", what, b[0])
		}
		return b[0] == 1, nil
	case tString:
		return d.str(what, MaxStringLen)
	case tUint64:
		v, err := d.u64(what)
		return v, err
	case tInt64:
		v, err := d.u64(what)
		return int64(v), err
	case tFloat64:
		v, err := d.u64(what)
		return math.Float64frombits(v), err
	case tArray:
		if depth >= MaxArrayDepth {
			return nil, d.f.invalid("%s: arrays nested deeper than %d", what, MaxArrayDepth)
		}
		et, err := d.u32(what + " array type")
		if err != nil {
			return nil, err
		}
		n, err := d.u64(what + " array length")
		if err != nil {
			return nil, err
		}
		ms := minSize(et)
		if ms == 0 {
			return nil, fmt.Errorf("%w: %s: %s: array element type %d is unknown", ErrInvalidFormat, d.f.Name, what, et)
		}
		if n > MaxArrayLen || n > uint64(d.remaining()/ms) {
			return nil, d.f.invalid("%s: array of %d %s is impossible for the %d bytes left", what, n, typeName(et), d.remaining())
		}
		return d.array(key, et, int(n), depth)
	}
	return nil, fmt.Errorf("%w: %s: %s: value type %d is unknown", ErrInvalidFormat, d.f.Name, what, vt)
}

func arrayOf[T any](d *decoder, n int, size int64, what string, conv func([]byte) T) (any, error) {
	out := make([]T, n)
	// Read in chunks so one huge array does not need a second full copy.
	const chunk = 1 << 16
	for i := 0; i < n; i += chunk {
		m := min(chunk, n-i)
		b, err := d.bytes(int64(m)*size, what)
		if err != nil {
			return nil, err
		}
		for j := 0; j < m; j++ {
			out[i+j] = conv(b[int64(j)*size:])
		}
	}
	return out, nil
}

func (d *decoder) array(key string, et uint32, n, depth int) (any, error) {
	what := fmt.Sprintf("metadata %q", key)
	switch et {
	case tUint8:
		return arrayOf(d, n, 1, what, func(b []byte) uint8 { return b[0] })
	case tInt8:
		return arrayOf(d, n, 1, what, func(b []byte) int8 { return int8(b[0]) })
	case tUint16:
		return arrayOf(d, n, 2, what, func(b []byte) uint16 { return le16(b) })
	case tInt16:
		return arrayOf(d, n, 2, what, func(b []byte) int16 { return int16(le16(b)) })
	case tUint32:
		return arrayOf(d, n, 4, what, func(b []byte) uint32 { return le32(b) })
	case tInt32:
		return arrayOf(d, n, 4, what, func(b []byte) int32 { return int32(le32(b)) })
	case tFloat32:
		return arrayOf(d, n, 4, what, func(b []byte) float32 { return math.Float32frombits(le32(b)) })
	case tUint64:
		return arrayOf(d, n, 8, what, func(b []byte) uint64 { return le64(b) })
	case tInt64:
		return arrayOf(d, n, 8, what, func(b []byte) int64 { return int64(le64(b)) })
	case tFloat64:
		return arrayOf(d, n, 8, what, func(b []byte) float64 { return math.Float64frombits(le64(b)) })
	case tBool:
		out := make([]bool, n)
		for i := range out {
			b, err := d.bytes(1, what)
			if err != nil {
				return nil, err
			}
			if b[0] > 1 {
				return nil, d.f.invalid("%s[%d]: bool byte is %d", what, i, b[0])
			}
			out[i] = b[0] == 1
		}
		return out, nil
	case tString:
		out := make([]string, n)
		for i := range out {
			s, err := d.strElem(what, i)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	case tArray:
		out := make([]any, n)
		for i := range out {
			v, err := d.value(fmt.Sprintf("%s[%d]", key, i), tArray, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, d.f.invalid("%s: array element type %d is unknown", what, et)
}

// decoder reads the header sequentially through a small buffer, checking
// every length against the bytes left in the file.
type decoder struct {
	f    *File
	r    io.ReaderAt
	size int64
	pos  int64
	buf  []byte
	bpos int64 // file offset of buf[0]
}

func (d *decoder) remaining() int64 { return d.size - d.pos }

// bytes returns the next n bytes (valid until the next call).
func (d *decoder) bytes(n int64, what string) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, d.f.invalid("%s: %d bytes needed at offset %d, only %d left (truncated?)", what, n, d.pos, d.remaining())
	}
	if d.pos < d.bpos || d.pos+n > d.bpos+int64(len(d.buf)) {
		want := max(n, min(1<<20, d.remaining()))
		if int64(cap(d.buf)) < want {
			d.buf = make([]byte, want)
		}
		d.buf = d.buf[:want]
		if _, err := d.r.ReadAt(d.buf, d.pos); err != nil && !(errors.Is(err, io.EOF) && d.pos+want == d.size) {
			return nil, fmt.Errorf("%w: %s: read %s at offset %d: %v", ErrInvalidFormat, d.f.Name, what, d.pos, err)
		}
		d.bpos = d.pos
	}
	b := d.buf[d.pos-d.bpos : d.pos-d.bpos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	b, err := d.bytes(2, what)
	if err != nil {
		return 0, err
	}
	return le16(b), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return le32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b, err := d.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return le64(b), nil
}

func (d *decoder) str(what string, limit int64) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(limit) || int64(n) > d.remaining() {
		return "", d.f.invalid("%s: string length %d exceeds the %d bytes left or the %d byte limit", what, n, d.remaining(), limit)
	}
	b, err := d.bytes(int64(n), what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// strElem reads element i of a string array; names are formatted only for
// errors (vocabularies hold 100k+ strings).
func (d *decoder) strElem(what string, i int) (string, error) {
	if b, err := d.bytes(8, what); err == nil {
		if n := le64(b); n <= MaxStringLen && int64(n) <= d.remaining() {
			b, err := d.bytes(int64(n), what)
			if err == nil {
				return string(b), nil
			}
		}
		d.pos -= 8 // rewind: the slow path reports the error
	}
	return d.str(fmt.Sprintf("%s[%d]", what, i), MaxStringLen)
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }
