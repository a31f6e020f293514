//go:build js && wasm

package jsbridge

import (
	"fmt"
	"syscall/js"
	"unsafe"
)

var (
	uint8Array = js.Global().Get("Uint8Array")
	arrayBuf   = js.Global().Get("ArrayBuffer")
)

// Staging is a reused JS Uint8Array that Go slices are copied into with one
// js.CopyBytesToJS each. The views it returns are valid until the next call
// on the same Staging; hand them straight to writeBuffer. Not safe for
// concurrent use.
type Staging struct {
	buf js.Value
	cap int
}

// view returns a Uint8Array of n bytes at the start of the staging buffer.
func (s *Staging) view(n int) js.Value {
	if n > s.cap || s.buf.IsUndefined() {
		c := max(n, 2*s.cap, 4096)
		c = (c + 255) &^ 255
		s.buf = uint8Array.New(c)
		s.cap = c
	}
	if n == s.cap {
		return s.buf
	}
	return s.buf.Call("subarray", 0, n)
}

// Bytes copies b into the staging buffer and returns a Uint8Array view of it.
func (s *Staging) Bytes(b []byte) js.Value {
	v := s.view(len(b))
	if len(b) > 0 {
		js.CopyBytesToJS(v, b)
	}
	return v
}

// Float32s copies f (as little-endian bytes) and returns a Uint8Array view.
func (s *Staging) Float32s(f []float32) js.Value { return s.Bytes(AsBytes(f)) }

// Uint32s copies u (as little-endian bytes) and returns a Uint8Array view.
func (s *Staging) Uint32s(u []uint32) js.Value { return s.Bytes(AsBytes(u)) }

// Int32s copies i (as little-endian bytes) and returns a Uint8Array view.
func (s *Staging) Int32s(i []int32) js.Value { return s.Bytes(AsBytes(i)) }

// Release drops the staging buffer.
func (s *Staging) Release() { s.buf, s.cap = js.Undefined(), 0 }

// Elem is a fixed-size numeric element type that can be reinterpreted as bytes.
type Elem interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~float32 | ~int64 | ~uint64 | ~float64
}

// AsBytes reinterprets a numeric slice as its bytes (wasm is little-endian),
// without copying.
func AsBytes[T Elem](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}

// BytesToJS returns a new Uint8Array holding a copy of b (for values JS keeps).
func BytesToJS(b []byte) js.Value {
	v := uint8Array.New(len(b))
	if len(b) > 0 {
		js.CopyBytesToJS(v, b)
	}
	return v
}

// SliceToJS returns a new Uint8Array holding the bytes of s.
func SliceToJS[T Elem](s []T) js.Value { return BytesToJS(AsBytes(s)) }

// Uint8View returns a Uint8Array over the bytes of an ArrayBuffer, a typed
// array or a DataView (sharing memory, no copy).
func Uint8View(src js.Value) (js.Value, error) {
	if src.InstanceOf(uint8Array) {
		return src, nil
	}
	if src.InstanceOf(arrayBuf) {
		return uint8Array.New(src), nil
	}
	b := src.Get("buffer")
	if b.Type() != js.TypeObject || b.Get("byteLength").Type() != js.TypeNumber {
		return js.Undefined(), fmt.Errorf("jsbridge: %s is not an ArrayBuffer or a typed array", safeString(src))
	}
	return uint8Array.New(b, src.Get("byteOffset"), src.Get("byteLength")), nil
}

// ByteLength is src.byteLength (ArrayBuffer, typed array or DataView).
func ByteLength(src js.Value) int { return src.Get("byteLength").Int() }

// CopyToGo copies the bytes of src (ArrayBuffer or typed array) into dst with
// one js.CopyBytesToGo and returns the number of bytes copied
// (min(len(dst), byteLength)).
func CopyToGo(dst []byte, src js.Value) (int, error) {
	u8, err := Uint8View(src)
	if err != nil {
		return 0, err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	return js.CopyBytesToGo(dst, u8), nil
}

// BytesFromJS returns a copy of src's bytes.
func BytesFromJS(src js.Value) ([]byte, error) {
	u8, err := Uint8View(src)
	if err != nil {
		return nil, err
	}
	b := make([]byte, u8.Get("byteLength").Int())
	if len(b) > 0 {
		js.CopyBytesToGo(b, u8)
	}
	return b, nil
}

// SliceFromJS copies src's bytes into dst's elements; src must hold exactly
// len(dst) elements' worth of bytes.
func SliceFromJS[T Elem](dst []T, src js.Value) error {
	u8, err := Uint8View(src)
	if err != nil {
		return err
	}
	b := AsBytes(dst)
	if n := u8.Get("byteLength").Int(); n != len(b) {
		return fmt.Errorf("jsbridge: source holds %d bytes, destination %d", n, len(b))
	}
	if len(b) > 0 {
		js.CopyBytesToGo(b, u8)
	}
	return nil
}

// Float32sFromJS copies src (e.g. a mapped GPU range) into dst.
func Float32sFromJS(dst []float32, src js.Value) error { return SliceFromJS(dst, src) }

// Uint32sFromJS copies src into dst.
func Uint32sFromJS(dst []uint32, src js.Value) error { return SliceFromJS(dst, src) }
