package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
)

// Builder assembles a GGUF v3 file in memory. It exists for tests and
// fixtures (tiny files); converting real models never writes GGUF.
type Builder struct {
	Alignment int64 // 0: DefaultAlignment (general.alignment is written when different)
	kvs       []kv
	tensors   []builderTensor
}

type kv struct {
	key string
	val any
}

type builderTensor struct {
	name string
	typ  Type
	dims []int
	size int64
	data func() io.Reader
}

// Set adds a metadata key. v is one of the Go types Metadata holds:
// uint8 … float64, bool, string, a slice of one of those, or []any of slices.
// Setting a key again replaces its value in place.
func (b *Builder) Set(key string, v any) {
	for i := range b.kvs {
		if b.kvs[i].key == key {
			b.kvs[i].val = v
			return
		}
	}
	b.kvs = append(b.kvs, kv{key, v})
}

// AddTensor adds a tensor; dims are in GGUF order (innermost first) and
// data is its raw bytes.
func (b *Builder) AddTensor(name string, typ Type, dims []int, data []byte) {
	b.tensors = append(b.tensors, builderTensor{name, typ, append([]int(nil), dims...), int64(len(data)),
		func() io.Reader { return bytes.NewReader(data) }})
}

// AddTensorReader adds a tensor whose size bytes of data WriteTo copies
// from r, so that a file larger than memory can be written (r is read
// once: encode the Builder only once).
func (b *Builder) AddTensorReader(name string, typ Type, dims []int, size int64, r io.Reader) {
	b.tensors = append(b.tensors, builderTensor{name, typ, append([]int(nil), dims...), size,
		func() io.Reader { return r }})
}

// Bytes encodes the file.
func (b *Builder) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteTo writes the encoded file to w, streaming the tensor data.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	align := b.Alignment
	if align == 0 {
		align = DefaultAlignment
	}
	var out []byte
	out = append(out, Magic...)
	out = binary.LittleEndian.AppendUint32(out, 3)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(b.tensors)))
	kvs := b.kvs
	if align != DefaultAlignment {
		kvs = append([]kv{{"general.alignment", uint32(align)}}, kvs...)
	}
	out = binary.LittleEndian.AppendUint64(out, uint64(len(kvs)))
	var err error
	for _, e := range kvs {
		out = appendString(out, e.key)
		vt, ok := valueType(e.val)
		if !ok {
			return 0, fmt.Errorf("gguf: metadata %q: cannot encode %T", e.key, e.val)
		}
		out = binary.LittleEndian.AppendUint32(out, vt)
		if out, err = appendValue(out, e.val); err != nil {
			return 0, fmt.Errorf("gguf: metadata %q: %w", e.key, err)
		}
	}
	var offset int64
	offsets := make([]int64, len(b.tensors))
	for i, t := range b.tensors {
		offsets[i] = offset
		offset = (offset + t.size + align - 1) / align * align
	}
	for i, t := range b.tensors {
		out = appendString(out, t.name)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(t.dims)))
		for _, d := range t.dims {
			out = binary.LittleEndian.AppendUint64(out, uint64(d))
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(t.typ))
		out = binary.LittleEndian.AppendUint64(out, uint64(offsets[i]))
	}
	pad := func(n int64) []byte {
		return make([]byte, (align-n%align)%align)
	}
	out = append(out, pad(int64(len(out)))...)
	total, err := writeAll(w, out, 0)
	for i, t := range b.tensors {
		if err != nil {
			return total, err
		}
		var n int64
		n, err = io.CopyN(w, t.data(), t.size)
		total += n
		if err != nil {
			return total, fmt.Errorf("gguf: tensor %q: %w", t.name, err)
		}
		if i < len(b.tensors)-1 {
			total, err = writeAll(w, pad(t.size), total)
		}
	}
	return total, err
}

func writeAll(w io.Writer, p []byte, total int64) (int64, error) {
	n, err := w.Write(p)
	return total + int64(n), err
}

func appendString(out []byte, s string) []byte {
	out = binary.LittleEndian.AppendUint64(out, uint64(len(s)))
	return append(out, s...)
}

func valueType(v any) (uint32, bool) {
	switch v.(type) {
	case uint8:
		return tUint8, true
	case int8:
		return tInt8, true
	case uint16:
		return tUint16, true
	case int16:
		return tInt16, true
	case uint32:
		return tUint32, true
	case int32:
		return tInt32, true
	case float32:
		return tFloat32, true
	case bool:
		return tBool, true
	case string:
		return tString, true
	case uint64:
		return tUint64, true
	case int64:
		return tInt64, true
	case float64:
		return tFloat64, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		return tArray, true
	}
	return 0, false
}

func appendValue(out []byte, v any) ([]byte, error) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(out, x), nil
	case int8:
		return append(out, byte(x)), nil
	case uint16:
		return le.AppendUint16(out, x), nil
	case int16:
		return le.AppendUint16(out, uint16(x)), nil
	case uint32:
		return le.AppendUint32(out, x), nil
	case int32:
		return le.AppendUint32(out, uint32(x)), nil
	case float32:
		return le.AppendUint32(out, math.Float32bits(x)), nil
	case bool:
		if x {
			return append(out, 1), nil
		}
		return append(out, 0), nil
	case string:
		return appendString(out, x), nil
	case uint64:
		return le.AppendUint64(out, x), nil
	case int64:
		return le.AppendUint64(out, uint64(x)), nil
	case float64:
		return le.AppendUint64(out, math.Float64bits(x)), nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("cannot encode %T", v)
	}
	var et uint32
	if rv.Len() > 0 {
		var ok bool
		if et, ok = valueType(rv.Index(0).Interface()); !ok {
			return nil, fmt.Errorf("cannot encode %T", v)
		}
	} else {
		zero := reflect.Zero(rv.Type().Elem()).Interface()
		if t, ok := valueType(zero); ok {
			et = t
		} else {
			et = tArray // empty []any
		}
	}
	out = le.AppendUint32(out, et)
	out = le.AppendUint64(out, uint64(rv.Len()))
	for i := 0; i < rv.Len(); i++ {
		e := rv.Index(i).Interface()
		if t, ok := valueType(e); !ok || t != et {
			return nil, fmt.Errorf("array element %d has type %T, not the first element's", i, e)
		}
		var err error
		if out, err = appendValue(out, e); err != nil {
			return nil, err
		}
	}
	return out, nil
}
