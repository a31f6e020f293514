package llama2c

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzNew: any input either fails with a sentinel error or yields a
// checkpoint whose every tensor reads back with the advertised size.
func FuzzNew(f *testing.F) {
	f.Add(legacyFile(tinyHeader))
	h := tinyHeader
	h.SharedClassifier = false
	f.Add(legacyFile(h))
	// A version 2 file: header, norms, then Q8_0 groups of 32.
	q := make([]byte, HeaderBytes)
	binary.LittleEndian.PutUint32(q, Magic)
	binary.LittleEndian.PutUint32(q[4:], 2)
	for i, v := range []int32{8, 16, 1, 2, 1, 8, 4} {
		binary.LittleEndian.PutUint32(q[8+4*i:], uint32(v))
	}
	q[36] = 1
	binary.LittleEndian.PutUint32(q[37:], 32)
	n := (2*8 + 8) * 4
	for _, numel := range []int{64, 64, 32, 32, 64, 128, 128, 128} {
		n += numel + numel/32*4
	}
	f.Add(append(q, make([]byte, n)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := New(bytes.NewReader(data), int64(len(data)), "fuzz.bin")
		if err != nil {
			if !errors.Is(err, ErrInvalidFormat) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		for _, name := range cf.Names() {
			shape, err := cf.Shape(name)
			if err != nil {
				t.Fatal(err)
			}
			numel := 1
			for _, d := range shape {
				numel *= d
			}
			if numel > len(data) {
				t.Fatalf("tensor %s has %d values in a %d-byte file", name, numel, len(data))
			}
			x, err := cf.Float32(name)
			if err != nil {
				t.Fatalf("tensor %s: %v", name, err)
			}
			if len(x) != numel {
				t.Fatalf("tensor %s: %d values, shape %v", name, len(x), shape)
			}
		}
		c := cf.Config()
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted header gives an invalid config: %v", err)
		}
	})
}
