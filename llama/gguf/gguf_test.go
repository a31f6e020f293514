package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func modelsDir(t testing.TB) string {
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Skipf("real test data not found in %s (set EMBER_MODELS): %v", dir, err)
	}
	return dir
}

func f32Bytes(x ...float32) []byte {
	var b []byte
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// tinyFile is a small valid GGUF v3 file with every metadata type and one
// tensor of each supported type.
func tinyFile(t testing.TB) []byte {
	var b Builder
	b.Set("general.architecture", "llama")
	b.Set("u8", uint8(200))
	b.Set("i8", int8(-5))
	b.Set("u16", uint16(60000))
	b.Set("i16", int16(-300))
	b.Set("u32", uint32(4000000000))
	b.Set("i32", int32(-7))
	b.Set("f32", float32(1e-5))
	b.Set("bool", true)
	b.Set("u64", uint64(1<<40))
	b.Set("i64", int64(-1<<40))
	b.Set("f64", 10000.0)
	b.Set("tokens", []string{"<unk>", "a", "▁b"})
	b.Set("scores", []float32{0, -1.5, 2})
	b.Set("types", []int32{2, 1, 1})
	b.Set("nested", []any{[]int32{1, 2}, []string{"x"}})
	b.Set("empty", []string{})
	b.AddTensor("f32", TypeF32, []int{3, 2}, f32Bytes(1, 2, 3, 4, 5, 6))
	b.AddTensor("f16", TypeF16, []int{4}, []byte{0, 0x3c, 0, 0xc0, 0, 0, 0xff, 0x7b})
	b.AddTensor("bf16", TypeBF16, []int{2}, []byte{0x80, 0x3f, 0, 0x40})
	q8 := make([]byte, 2*34)
	q8[0], q8[1], q8[2] = 0, 0x3c, 5
	b.AddTensor("q8", TypeQ8_0, []int{32, 2}, q8)
	data, err := b.Bytes()
	require.NoError(t, err)
	return data
}

func parse(data []byte) (*File, error) {
	return Parse(bytes.NewReader(data), int64(len(data)), "test.gguf")
}

func TestTinyFile(t *testing.T) {
	f, err := parse(tinyFile(t))
	require.NoError(t, err)
	require.Equal(t, uint32(3), f.Version)
	require.Equal(t, int64(32), f.Alignment)
	md := f.Metadata
	require.Equal(t, "llama", md["general.architecture"])
	require.Equal(t, uint8(200), md["u8"])
	require.Equal(t, int8(-5), md["i8"])
	require.Equal(t, uint16(60000), md["u16"])
	require.Equal(t, int16(-300), md["i16"])
	require.Equal(t, uint32(4000000000), md["u32"])
	require.Equal(t, int32(-7), md["i32"])
	require.Equal(t, float32(1e-5), md["f32"])
	require.Equal(t, true, md["bool"])
	require.Equal(t, uint64(1<<40), md["u64"])
	require.Equal(t, int64(-1<<40), md["i64"])
	require.Equal(t, 10000.0, md["f64"])
	require.Equal(t, []string{"<unk>", "a", "▁b"}, md["tokens"])
	require.Equal(t, []float32{0, -1.5, 2}, md["scores"])
	require.Equal(t, []int32{2, 1, 1}, md["types"])
	require.Equal(t, []any{[]int32{1, 2}, []string{"x"}}, md["nested"])
	require.Equal(t, []string{}, md["empty"])
	require.Equal(t, "general.architecture", f.Keys[0])

	n, err := f.Int("u32")
	require.NoError(t, err)
	require.Equal(t, int64(4000000000), n)
	n, err = f.Int("i8")
	require.NoError(t, err)
	require.Equal(t, int64(-5), n)
	x, err := f.Float("f32")
	require.NoError(t, err)
	require.InDelta(t, 1e-5, x, 1e-12)
	x, err = f.Float("u16")
	require.NoError(t, err)
	require.Equal(t, 60000.0, x)
	_, err = f.Int("missing")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = f.Int("tokens")
	require.ErrorIs(t, err, ErrInvalidFormat)
	l, err := f.ArrayLen("tokens")
	require.NoError(t, err)
	require.Equal(t, 3, l)

	require.Len(t, f.Tensors, 4)
	ti, data, err := f.ReadTensor("f32")
	require.NoError(t, err)
	require.Equal(t, []int{3, 2}, ti.Dims)
	require.Equal(t, []int{2, 3}, ti.Shape())
	require.Equal(t, int64(6), ti.Elements())
	require.Equal(t, f32Bytes(1, 2, 3, 4, 5, 6), data)
	require.Zero(t, ti.Offset%32)
	ti, data, err = f.ReadTensor("q8")
	require.NoError(t, err)
	require.Equal(t, int64(68), ti.Size)
	require.Equal(t, byte(5), data[2])
	ti, _ = f.Tensor("bf16")
	require.Equal(t, int64(4), ti.Size)
	require.Equal(t, "BF16", ti.Type.String())
	_, err = f.Tensor("nope")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestVersion2(t *testing.T) {
	data := tinyFile(t)
	data[4] = 2 // v2 has the same layout as v3 (64-bit counts and lengths)
	f, err := parse(data)
	require.NoError(t, err)
	require.Equal(t, uint32(2), f.Version)
	require.Len(t, f.Tensors, 4)
}

func TestAlignment(t *testing.T) {
	b := Builder{Alignment: 64}
	b.AddTensor("a", TypeF32, []int{1}, f32Bytes(1))
	b.AddTensor("b", TypeF32, []int{1}, f32Bytes(2))
	data, err := b.Bytes()
	require.NoError(t, err)
	f, err := parse(data)
	require.NoError(t, err)
	require.Equal(t, int64(64), f.Alignment)
	require.Equal(t, int64(64), f.Tensors[1].Offset-f.Tensors[0].Offset)
}

// corrupt applies edit to a copy of the tiny file.
func corrupt(t *testing.T, edit func(b []byte) []byte) error {
	data := edit(append([]byte(nil), tinyFile(t)...))
	_, err := parse(data)
	return err
}

func TestHostileInput(t *testing.T) {
	tiny := tinyFile(t)
	// Offsets inside the tiny file: header 24 bytes, then the first key.
	firstKeyLen := 24
	cases := []struct {
		name  string
		edit  func(b []byte) []byte
		is    error
		words string
	}{
		{"empty", func(b []byte) []byte { return nil }, ErrInvalidFormat, "truncated"},
		{"magic", func(b []byte) []byte { copy(b, "GGML"); return b }, ErrInvalidFormat, "not a GGUF file"},
		{"version 1", func(b []byte) []byte { b[4] = 1; return b }, ErrUnsupportedType, "version 1"},
		{"version 9", func(b []byte) []byte { b[4] = 9; return b }, ErrInvalidFormat, "version 9"},
		{"big endian", func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 3); return b }, ErrUnsupportedType, "big-endian"},
		{"tensor count", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:], 1<<62); return b }, ErrInvalidFormat, "tensor count"},
		{"kv count", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 1<<62); return b }, ErrInvalidFormat, "metadata count"},
		{"key length", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[firstKeyLen:], 1<<40); return b }, ErrInvalidFormat, "string length"},
		{"key length max", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[firstKeyLen:], math.MaxUint64); return b }, ErrInvalidFormat, "string length"},
		{"truncated header", func(b []byte) []byte { return b[:200] }, ErrInvalidFormat, "impossible for the 176 bytes left"},
		{"truncated data", func(b []byte) []byte { return b[:len(b)-1] }, ErrInvalidFormat, `tensor "q8"`},
		{"value type", func(b []byte) []byte {
			i := bytes.Index(b, []byte("general.architecture")) + len("general.architecture")
			binary.LittleEndian.PutUint32(b[i:], 77)
			return b
		}, ErrInvalidFormat, `"general.architecture": value type 77`},
		{"array length", func(b []byte) []byte {
			i := bytes.Index(b, []byte("scores")) + len("scores") + 8
			binary.LittleEndian.PutUint64(b[i:], 1<<50)
			return b
		}, ErrInvalidFormat, `"scores": array of`},
		{"array elem type", func(b []byte) []byte {
			i := bytes.Index(b, []byte("scores")) + len("scores") + 4
			binary.LittleEndian.PutUint32(b[i:], 99)
			return b
		}, ErrInvalidFormat, "element type 99"},
		{"bool", func(b []byte) []byte {
			i := bytes.Index(b, []byte("bool")) + len("bool") + 4
			b[i] = 7
			return b
		}, ErrInvalidFormat, "bool byte"},
		{"duplicate key", func(b []byte) []byte {
			i := bytes.Index(b, []byte("u16"))
			copy(b[i:], "u32")
			return b
		}, ErrInvalidFormat, `"u32" appears twice`},
		{"unsupported type", func(b []byte) []byte { return setTensorType(t, b, "f16", 12) }, ErrUnsupportedType, `tensor "f16": Q4_K is not supported; supported: F32, F16, BF16, Q8_0`},
		{"unknown type", func(b []byte) []byte { return setTensorType(t, b, "f16", 1000) }, ErrUnsupportedType, "type 1000 is unknown"},
		{"dims count", func(b []byte) []byte { return setTensorField(t, b, "f32", 0, 5, 4) }, ErrInvalidFormat, "5 dimensions"},
		{"zero dim", func(b []byte) []byte { return setTensorField(t, b, "f32", 4, 0, 8) }, ErrInvalidFormat, "dimension 0 is 0"},
		{"dims overflow", func(b []byte) []byte {
			b = setTensorField(t, b, "f32", 4, 1<<62, 8)
			return setTensorField(t, b, "f32", 12, 1<<62, 8)
		}, ErrInvalidFormat, "overflows"},
		{"q8 row", func(b []byte) []byte { return setTensorField(t, b, "q8", 4, 16, 8) }, ErrInvalidFormat, "multiple of 32"},
		{"misaligned offset", func(b []byte) []byte { return setTensorField(t, b, "f16", 4+8+4, 33, 8) }, ErrInvalidFormat, "not a multiple of the alignment"},
		{"offset past end", func(b []byte) []byte { return setTensorField(t, b, "f16", 4+8+4, 1<<40, 8) }, ErrInvalidFormat, "past the end"},
		{"overlap", func(b []byte) []byte { return setTensorField(t, b, "f16", 4+8+4, 0, 8) }, ErrInvalidFormat, "overlap"},
		{"bad alignment", func(b []byte) []byte {
			var bb Builder
			bb.Set("general.alignment", uint32(48))
			out, _ := bb.Bytes()
			return out
		}, ErrInvalidFormat, "power of two"},
		{"alignment type", func(b []byte) []byte {
			var bb Builder
			bb.Set("general.alignment", int32(32))
			out, _ := bb.Bytes()
			return out
		}, ErrInvalidFormat, "want uint32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := corrupt(t, c.edit)
			require.Error(t, err)
			require.True(t, errors.Is(err, c.is), "got %v", err)
			require.Contains(t, err.Error(), "test.gguf")
			require.Contains(t, err.Error(), c.words)
		})
	}
	_ = tiny
}

// tensorInfoAt finds the tensor info record of name (after its name string).
func tensorInfoAt(t *testing.T, b []byte, name string) int {
	var rec []byte
	rec = binary.LittleEndian.AppendUint64(rec, uint64(len(name)))
	rec = append(rec, name...)
	rec = binary.LittleEndian.AppendUint32(rec, 0)[:len(rec)]
	i := bytes.LastIndex(b, rec)
	require.GreaterOrEqual(t, i, 0)
	return i + len(rec)
}

func setTensorField(t *testing.T, b []byte, name string, off int, v uint64, width int) []byte {
	i := tensorInfoAt(t, b, name) + off
	if width == 4 {
		binary.LittleEndian.PutUint32(b[i:], uint32(v))
	} else {
		binary.LittleEndian.PutUint64(b[i:], v)
	}
	return b
}

func setTensorType(t *testing.T, b []byte, name string, ty uint32) []byte {
	i := tensorInfoAt(t, b, name)
	nd := int(binary.LittleEndian.Uint32(b[i:]))
	binary.LittleEndian.PutUint32(b[i+4+8*nd:], ty)
	return b
}

func TestDuplicateTensor(t *testing.T) {
	var b Builder
	b.AddTensor("w", TypeF32, []int{1}, f32Bytes(1))
	b.AddTensor("w", TypeF32, []int{1}, f32Bytes(2))
	data, err := b.Bytes()
	require.NoError(t, err)
	_, err = parse(data)
	require.ErrorIs(t, err, ErrInvalidFormat)
	require.Contains(t, err.Error(), `tensor "w" appears twice`)
}

func TestDeepNesting(t *testing.T) {
	var v any = []int32{1}
	for i := 0; i < MaxArrayDepth+1; i++ {
		v = []any{v}
	}
	var b Builder
	b.Set("deep", v)
	data, err := b.Bytes()
	require.NoError(t, err)
	_, err = parse(data)
	require.ErrorIs(t, err, ErrInvalidFormat)
	require.Contains(t, err.Error(), "nested deeper")
}

// Every prefix of a valid file is rejected cleanly (no panic, no success).
func TestEveryTruncation(t *testing.T) {
	data := tinyFile(t)
	for n := 0; n < len(data); n++ {
		_, err := parse(data[:n])
		require.Error(t, err, "prefix of %d bytes", n)
		require.ErrorIs(t, err, ErrInvalidFormat)
	}
}

func TestStories260K(t *testing.T) {
	path := filepath.Join(modelsDir(t), "stories260K", "stories260K.gguf")
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, uint32(3), f.Version)
	require.Len(t, f.Tensors, 48)
	require.Len(t, f.Metadata, 19)
	require.Equal(t, "llama", f.Metadata["general.architecture"])
	dim, err := f.Int("llama.embedding_length")
	require.NoError(t, err)
	require.Equal(t, int64(64), dim)
	ctx, err := f.Int("llama.context_length")
	require.NoError(t, err)
	require.Equal(t, int64(2048), ctx)
	ntok, err := f.ArrayLen("tokenizer.ggml.tokens")
	require.NoError(t, err)
	require.Equal(t, 512, ntok)
	require.IsType(t, []string{}, f.Metadata["tokenizer.ggml.tokens"])
	require.IsType(t, []float32{}, f.Metadata["tokenizer.ggml.scores"])
	require.IsType(t, []int32{}, f.Metadata["tokenizer.ggml.token_type"])
	emb, err := f.Tensor("token_embd.weight")
	require.NoError(t, err)
	require.Equal(t, TypeF32, emb.Type)
	require.Equal(t, []int{64, 512}, emb.Dims, "GGUF order: ne0 (dim) first")
	require.Equal(t, int64(64*512*4), emb.Size)
	var total int64
	for _, ti := range f.Tensors {
		require.Equal(t, TypeF32, ti.Type, ti.Name)
		total += ti.Size
	}
	st, _ := os.Stat(path)
	require.LessOrEqual(t, f.DataOffset+total, st.Size())
	_, raw, err := f.ReadTensor("output_norm.weight")
	require.NoError(t, err)
	require.Len(t, raw, 64*4)
}

func TestVocabOnlyFiles(t *testing.T) {
	dir := filepath.Join(modelsDir(t), "llamacpp-vocab")
	for _, c := range []struct {
		file   string
		model  string
		tokens int
		merges bool
	}{
		{"ggml-vocab-llama-spm.gguf", "llama", 32000, false},
		{"ggml-vocab-gpt-2.gguf", "gpt2", 50257, true},
	} {
		t.Run(c.file, func(t *testing.T) {
			f, err := Open(filepath.Join(dir, c.file))
			require.NoError(t, err)
			defer f.Close()
			require.Empty(t, f.Tensors)
			model, err := f.String("tokenizer.ggml.model")
			require.NoError(t, err)
			require.Equal(t, c.model, model)
			n, err := f.ArrayLen("tokenizer.ggml.tokens")
			require.NoError(t, err)
			require.Equal(t, c.tokens, n)
			if c.merges {
				require.IsType(t, []string{}, f.Metadata["tokenizer.ggml.merges"])
				m := f.Metadata["tokenizer.ggml.merges"].([]string)
				require.NotEmpty(t, m)
				require.True(t, strings.Contains(m[0], " "), "merges are \"a b\" pairs")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(tinyFile(f))
	var b Builder
	b.Set("general.architecture", "llama")
	empty, _ := b.Bytes()
	f.Add(empty)
	ab := Builder{Alignment: 64}
	ab.Set("nested", []any{[]any{[]uint8{1}}, []any{}})
	ab.AddTensor("x", TypeQ8_0, []int{32}, make([]byte, 34))
	aligned, _ := ab.Bytes()
	f.Add(aligned)
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidFormat) && !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		// A file that parses can have every tensor read without surprises.
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			if ti.Offset < file.DataOffset || ti.Offset+ti.Size > int64(len(data)) {
				t.Fatalf("tensor %q [%d,+%d) outside the file of %d bytes", ti.Name, ti.Offset, ti.Size, len(data))
			}
			if _, _, err := file.ReadTensor(ti.Name); err != nil {
				t.Fatalf("read %q: %v", ti.Name, err)
			}
		}
	})
}

// BenchmarkOpenVocab parses GPT-2's vocabulary-only GGUF (50,257 tokens and
// 50,000 merges): the metadata-heavy case.
func BenchmarkOpenVocab(b *testing.B) {
	path := filepath.Join(modelsDir(b), "llamacpp-vocab", "ggml-vocab-gpt-2.gguf")
	st, err := os.Stat(path)
	require.NoError(b, err)
	b.SetBytes(st.Size())
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// AddTensorReader streams a tensor's data through WriteTo: the file is the
// one AddTensor builds, and a short reader is an error naming the tensor.
func TestBuilderTensorReader(t *testing.T) {
	a, b := bytes.Repeat([]byte{1, 2, 3}, 23)[:67], bytes.Repeat([]byte{7}, 68) // a: one byte more than F16 [11][3] needs
	var whole, streamed Builder
	for _, bl := range []*Builder{&whole, &streamed} {
		bl.Set("general.architecture", "llama")
	}
	whole.AddTensor("a", TypeF16, []int{3, 11}, a[:len(a)-1])
	whole.AddTensor("b", TypeQ8_0, []int{64}, b)
	streamed.AddTensorReader("a", TypeF16, []int{3, 11}, int64(len(a)-1), bytes.NewReader(a))
	streamed.AddTensorReader("b", TypeQ8_0, []int{64}, int64(len(b)), bytes.NewReader(b))
	want, err := whole.Bytes()
	require.NoError(t, err)
	again, err := whole.Bytes()
	require.NoError(t, err)
	require.Equal(t, want, again, "AddTensor data can be encoded twice")
	var buf bytes.Buffer
	n, err := streamed.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), n)
	require.Equal(t, want, buf.Bytes())
	f, err := parse(want)
	require.NoError(t, err)
	require.Len(t, f.Tensors, 2)

	var short Builder
	short.AddTensorReader("s", TypeF32, []int{4}, 16, bytes.NewReader(make([]byte, 8)))
	_, err = short.WriteTo(&bytes.Buffer{})
	require.Error(t, err)
	require.Contains(t, err.Error(), `tensor "s"`)
}
