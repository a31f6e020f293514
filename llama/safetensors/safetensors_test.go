package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func f32Bytes(x ...float32) []byte {
	var b []byte
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func tinyEntries() []Entry {
	return []Entry{
		{Name: "a.weight", DType: F32, Shape: []int{2, 3}, Data: f32Bytes(1, 2, 3, 4, 5, 6)},
		{Name: "b.weight", DType: BF16, Shape: []int{2}, Data: []byte{0x80, 0x3f, 0x20, 0xc0}},
		{Name: "c.weight", DType: F16, Shape: []int{3}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b}},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: f32Bytes(7)},
	}
}

func tinyFile(t testing.TB) []byte {
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, map[string]string{"format": "pt"}, tinyEntries()))
	return buf.Bytes()
}

func parse(data []byte) (*File, error) {
	return Parse(bytes.NewReader(data), int64(len(data)), "test.safetensors")
}

func TestTiny(t *testing.T) {
	f, err := parse(tinyFile(t))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"format": "pt"}, f.Metadata)
	require.Len(t, f.Tensors, 4)
	require.Zero(t, f.DataOffset%8)
	a, err := f.Tensor("a.weight")
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, a.Shape)
	x, err := a.ReadF32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4, 5, 6}, x)
	b, _ := f.Tensor("b.weight")
	x, err = b.ReadF32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, -2.5}, x)
	c, _ := f.Tensor("c.weight")
	x, err = c.ReadF32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, -2, 65504}, x)
	s, _ := f.Tensor("scalar")
	require.Equal(t, int64(1), s.Elements())
	_, err = f.Tensor("nope")
	require.ErrorIs(t, err, ErrNotFound)
}

func withHeader(hdr string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(out, hdr...), data...)
}

func TestHostileInput(t *testing.T) {
	data8 := make([]byte, 8)
	cases := []struct {
		name  string
		file  []byte
		is    error
		words string
	}{
		{"empty", nil, ErrInvalidFormat, "too short"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<60), ErrInvalidFormat, "header length"},
		{"header past end", withHeader(`{}`, nil)[:9], ErrInvalidFormat, "header length"},
		{"not json", withHeader(`{"a":`, nil), ErrInvalidFormat, `tensor "a"`},
		{"not object", withHeader(`[1,2]`, nil), ErrInvalidFormat, "start with '{'"},
		{"trailing", withHeader(`{} {}`, nil), ErrInvalidFormat, "trailing"},
		{"dtype", withHeader(`{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, data8), ErrUnsupportedType, `tensor "w": I64 is not supported; supported: F32, F16, BF16`},
		{"unknown dtype", withHeader(`{"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,8]}}`, data8), ErrUnsupportedType, `dtype "Q9" is unknown`},
		{"shape vs offsets", withHeader(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data8), ErrInvalidFormat, "needs 12 bytes"},
		{"negative dim", withHeader(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, data8), ErrInvalidFormat, "impossible"},
		{"overflow", withHeader(`{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, data8), ErrInvalidFormat, "impossible"},
		{"past end", withHeader(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data8), ErrInvalidFormat, "outside the 8 data bytes"},
		{"reversed", withHeader(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, data8), ErrInvalidFormat, "outside"},
		{"offsets arity", withHeader(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, data8), ErrInvalidFormat, "[begin, end]"},
		{"no shape", withHeader(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, data8), ErrInvalidFormat, "shape"},
		{"unknown field", withHeader(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, data8), ErrInvalidFormat, "unknown field"},
		{"float offset", withHeader(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}`, data8), ErrInvalidFormat, `tensor "w"`},
		{"overlap", withHeader(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8), ErrInvalidFormat, "overlap"},
		{"duplicate", withHeader(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8), ErrInvalidFormat, `"w" appears twice`},
		{"metadata type", withHeader(`{"__metadata__":{"a":1}}`, nil), ErrInvalidFormat, "__metadata__"},
		{"null entry", withHeader(`{"w":null}`, nil), ErrUnsupportedType, `tensor "w"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(c.file)
			require.Error(t, err)
			require.True(t, errors.Is(err, c.is), "got %v", err)
			require.Contains(t, err.Error(), "test.safetensors")
			require.Contains(t, err.Error(), c.words)
		})
	}
	// Metadata is ignored (beyond its type), tensors in any header order.
	f, err := parse(withHeader(`{"v":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},"__metadata__":{"x":"y"},"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, data8))
	require.NoError(t, err)
	require.Equal(t, "w", f.Tensors[0].Name, "tensors are listed in data order")
}

func TestEveryTruncation(t *testing.T) {
	data := tinyFile(t)
	for n := 0; n < len(data); n++ {
		_, err := parse(data[:n])
		require.ErrorIs(t, err, ErrInvalidFormat, "prefix of %d bytes", n)
	}
}

func writeSharded(t *testing.T, dir string) {
	e := tinyEntries()
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), nil, e[:2]))
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), nil, e[2:]))
	require.NoError(t, WriteIndex(filepath.Join(dir, IndexFile), 100, map[string]string{
		"a.weight": "model-00001-of-00002.safetensors",
		"b.weight": "model-00001-of-00002.safetensors",
		"c.weight": "model-00002-of-00002.safetensors",
		"scalar":   "model-00002-of-00002.safetensors",
	}))
}

func TestModelSharded(t *testing.T) {
	dir := t.TempDir()
	writeSharded(t, dir)
	m, err := OpenModel(dir)
	require.NoError(t, err)
	defer m.Close()
	require.Len(t, m.Files, 2)
	require.Len(t, m.Tensors, 4)
	c, err := m.Tensor("c.weight")
	require.NoError(t, err)
	x, err := c.ReadF32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, -2, 65504}, x)
	_, err = m.Tensor("zzz")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestModelSingle(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteFile(filepath.Join(dir, SingleFile), nil, tinyEntries()))
	m, err := OpenModel(dir)
	require.NoError(t, err)
	defer m.Close()
	require.Len(t, m.Tensors, 4)
	require.Equal(t, "a.weight", m.Tensors[0].Name)
}

func TestModelBadIndex(t *testing.T) {
	for _, c := range []struct {
		name, index, words string
	}{
		{"escape", `{"weight_map":{"a.weight":"../x.safetensors"}}`, "not a plain file name"},
		{"wrong shard", `{"weight_map":{"a.weight":"model-00002-of-00002.safetensors"}}`, "does not hold it"},
		{"unlisted", `{"weight_map":{"a.weight":"model-00001-of-00002.safetensors"}}`, `"b.weight"`},
		{"empty", `{"weight_map":{}}`, "empty"},
		{"json", `{"weight_map":`, "index.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSharded(t, dir)
			require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFile), []byte(c.index), 0o644))
			_, err := OpenModel(dir)
			require.ErrorIs(t, err, ErrInvalidFormat)
			require.Contains(t, err.Error(), c.words)
		})
	}
	_, err := OpenModel(t.TempDir())
	require.Error(t, err, "an empty directory has no model")
	dir := t.TempDir()
	writeSharded(t, dir)
	require.NoError(t, os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors")))
	_, err = OpenModel(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), "model-00002-of-00002.safetensors")
}

func FuzzParse(f *testing.F) {
	f.Add(tinyFile(f))
	f.Add(withHeader(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"a":"b"}}`, make([]byte, 8)))
	f.Add(withHeader(`{}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidFormat) && !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			if ti.Offset < file.DataOffset || ti.Offset+ti.Size > int64(len(data)) {
				t.Fatalf("tensor %q outside the file", ti.Name)
			}
			x, err := ti.ReadF32()
			if err != nil || int64(len(x)) != ti.Elements() {
				t.Fatalf("read %q: %d values, err %v", ti.Name, len(x), err)
			}
		}
	})
}

// BenchmarkReadBF16 reads and widens a 16 MiB bf16 tensor from a file.
func BenchmarkReadBF16(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	path := filepath.Join(dir, SingleFile)
	require.NoError(b, WriteFile(path, nil, []Entry{{Name: "w", DType: BF16, Shape: []int{2048, 4096}, Data: data}}))
	f, err := Open(path)
	require.NoError(b, err)
	defer f.Close()
	ti, _ := f.Tensor("w")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ti.ReadF32(); err != nil {
			b.Fatal(err)
		}
	}
}
