package convert

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/llama2c"
	"github.com/ember-llm/ember/quant"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/stretchr/testify/require"
)

// stories returns the path of a file in $EMBER_MODELS/stories260K, or skips.
func stories(t testing.TB, file string) string {
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "models")
	}
	p := filepath.Join(dir, "stories260K", file)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real model data not found (set EMBER_MODELS to the shared models directory): %v", err)
	}
	return p
}

func storiesTokenizer(t *testing.T) *bundle.Tokenizer {
	tok, err := tokenizer.LoadFile(stories(t, "tok512.bin"), 512)
	require.NoError(t, err)
	return tok
}

func convertFile(t *testing.T, in string, tok *bundle.Tokenizer, scheme string) *bundle.Bundle {
	src, err := Open(in)
	require.NoError(t, err)
	defer src.Close()
	out := filepath.Join(t.TempDir(), "b")
	_, err = Convert(src, tok, Options{Out: out, Quant: scheme, ShardBytes: 256 << 10})
	require.NoError(t, err)
	b, err := bundle.Open(out)
	require.NoError(t, err)
	require.NoError(t, b.Verify())
	return b
}

func f32s(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	quant.DecodeF32LE(x, b)
	return x
}

// dequant reads a tensor of any dtype back as f32.
func dequant(t *testing.T, b *bundle.Bundle, name string) []float32 {
	tt, data, err := b.ReadTensor(name)
	require.NoError(t, err)
	if tt.DType == bundle.F32 {
		return f32s(data)
	}
	require.Equal(t, bundle.Q8, tt.DType)
	st, sdata, err := b.ReadTensor(tt.Scale)
	require.NoError(t, err)
	rows, cols := tt.Rows(), tt.Cols()
	if st.DType == bundle.F32 {
		x, err := quant.DequantizeChannel(quant.BytesInt8(data), f32s(sdata), rows, cols)
		require.NoError(t, err)
		return x
	}
	scales := make([]uint16, rows*quant.Groups(cols))
	for i := range scales {
		scales[i] = binary.LittleEndian.Uint16(sdata[2*i:])
	}
	x, err := quant.DequantizeBlock32(quant.BytesInt8(data), scales, rows, cols)
	require.NoError(t, err)
	return x
}

func TestStories260KF32(t *testing.T) {
	in := stories(t, "stories260K.bin")
	b := convertFile(t, in, storiesTokenizer(t), bundle.SchemeF32)
	m := b.Manifest
	require.Equal(t, "sentencepiece", m.Tokenizer.Kind)
	require.Len(t, m.Tokenizer.Pieces, 512)
	require.Equal(t, 47, len(m.Tensors))
	require.Greater(t, len(m.Shards), 1, "256 KiB shards split the model")
	ck, err := llama2c.Open(in)
	require.NoError(t, err)
	defer ck.Close()
	for _, name := range ck.Names() {
		want, err := ck.Float32(name)
		require.NoError(t, err)
		_, got, err := b.ReadTensor(name)
		require.NoError(t, err)
		require.Equal(t, quant.AppendF32LE(nil, want), got, name)
	}
}

// The GGUF copy of stories260K converts to the same f32 bytes.
func TestStories260KGGUFMatchesBin(t *testing.T) {
	gg := stories(t, "stories260K.gguf")
	fromGGUF, err := Open(gg)
	if err != nil {
		t.Skipf("GGUF input unavailable: %v", err)
	}
	fromGGUF.Close()
	tok := storiesTokenizer(t)
	a := convertFile(t, stories(t, "stories260K.bin"), tok, bundle.SchemeF32)
	b := convertFile(t, gg, nil, bundle.SchemeF32)
	require.Equal(t, len(a.Manifest.Tensors), len(b.Manifest.Tensors))
	for _, ta := range a.Manifest.Tensors {
		_, da, err := a.ReadTensor(ta.Name)
		require.NoError(t, err)
		_, db, err := b.ReadTensor(ta.Name)
		require.NoError(t, err)
		require.True(t, bytes.Equal(da, db), "tensor %s differs between the .bin and .gguf bundles", ta.Name)
	}
}

// The int8 checkpoint imports within Q8_0's error of the f32 weights: every
// value within half a quantization step (largest |w| of its 32-group / 254)
// plus the f16 rounding of the scale, and within 0.005 on average.
func TestStories260KQ80(t *testing.T) {
	tok := storiesTokenizer(t)
	ref := convertFile(t, stories(t, "stories260K.bin"), tok, bundle.SchemeF32)
	for _, scheme := range []string{bundle.SchemeQ8Block32, bundle.SchemeQ8Channel, bundle.SchemeF32} {
		t.Run(scheme, func(t *testing.T) {
			b := convertFile(t, stories(t, "stories260K_q80.bin"), tok, scheme)
			for _, tt := range ref.Manifest.Tensors {
				want := dequant(t, ref, tt.Name)
				got := dequant(t, b, tt.Name)
				var sum, maxErr float64
				for i := range want {
					e := math.Abs(float64(want[i] - got[i]))
					sum += e
					maxErr = math.Max(maxErr, e)
				}
				require.Less(t, sum/float64(len(want)), 0.005, tt.Name)
				// q8_channel requantizes per row: up to half a step of the row.
				require.Less(t, maxErr, 0.02, tt.Name)
			}
		})
	}
	// For row-aligned groups, q8_block32 keeps the checkpoint's int8 values.
	ck, err := llama2c.Open(stories(t, "stories260K_q80.bin"))
	require.NoError(t, err)
	defer ck.Close()
	b := convertFile(t, stories(t, "stories260K_q80.bin"), tok, bundle.SchemeQ8Block32)
	_, q, err := b.ReadTensor(bundle.LayerTensor(0, bundle.WQ))
	require.NoError(t, err)
	raw, err := os.ReadFile(stories(t, "stories260K_q80.bin"))
	require.NoError(t, err)
	// layers.0 wq follows the 256-byte header, 11 norms of 64 and the
	// embeddings (32768 int8 + 1024 f32 scales).
	off := 256 + (5*2+1)*64*4 + 32768 + 1024*4
	require.Equal(t, raw[off:off+64*64], q)
}

func TestSchemesRoundTrip(t *testing.T) {
	src, err := Synthetic("tiny")
	require.NoError(t, err)
	ref := map[string][]float32{}
	cfg := src.Config()
	for _, name := range TensorOrder(&cfg) {
		st, err := src.Tensor(name)
		require.NoError(t, err)
		ref[name] = st.F32
	}
	for _, scheme := range []string{bundle.SchemeF32, bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
		out := filepath.Join(t.TempDir(), scheme)
		m, err := Convert(src, nil, Options{Out: out, Quant: scheme, ShardBytes: 64 << 10, Name: "synthetic-tiny", Source: "synthetic"})
		require.NoError(t, err)
		require.Equal(t, scheme, m.Quantization.Scheme)
		b, err := bundle.Open(out)
		require.NoError(t, err)
		require.NoError(t, b.Verify())
		for name, want := range ref {
			tt, err := b.Manifest.Tensor(name)
			require.NoError(t, err)
			if len(tt.Shape) == 1 || scheme == bundle.SchemeF32 {
				require.Equal(t, bundle.F32, tt.DType, name)
			} else {
				require.Equal(t, bundle.Q8, tt.DType, name)
			}
			got := dequant(t, b, name)
			st := quant.Compare(want, got)
			if scheme == bundle.SchemeF32 {
				require.Equal(t, want, got, name)
			} else {
				require.Greater(t, st.SNR(), 30.0, "%s: %s SNR", scheme, name)
			}
		}
	}
}

func TestSyntheticDeterministic(t *testing.T) {
	var hashes [2][]bundle.Shard
	for i := range hashes {
		src, err := Synthetic("tiny")
		require.NoError(t, err)
		m, err := Convert(src, nil, Options{Out: filepath.Join(t.TempDir(), "b"), Quant: bundle.SchemeQ8Channel})
		require.NoError(t, err)
		require.Equal(t, 512, len(m.Tokenizer.Pieces))
		hashes[i] = m.Shards
	}
	require.Equal(t, hashes[0], hashes[1])
	for _, p := range SyntheticPresets() {
		c, err := SyntheticConfig(p)
		require.NoError(t, err)
		require.NoError(t, c.Validate(), p)
		tok := SyntheticTokenizer(c.VocabSize)
		require.Len(t, tok.Pieces, c.VocabSize, p)
		seen := map[string]bool{}
		for _, piece := range tok.Pieces {
			require.False(t, seen[piece], "%s: piece %q twice", p, piece)
			seen[piece] = true
		}
		tk, err := tokenizer.New(tok)
		require.NoError(t, err, p)
		text := "Once upon a time, 42 cats!"
		require.Equal(t, text, tk.Decode(tk.Encode(text, tokenizer.EncodeOptions{})), p)
	}
	c, _ := SyntheticConfig("llama3-8b")
	require.Equal(t, 128256, c.VocabSize)
	require.Equal(t, 8, c.NKVHeads)
}

// mapSource is a Source over in-memory tensors, for bad-input tests.
type mapSource struct {
	cfg     bundle.Config
	tensors map[string]*SourceTensor
}

func (s *mapSource) Config() bundle.Config { return s.cfg }
func (s *mapSource) Tokenizer() (*bundle.Tokenizer, error) {
	return SyntheticTokenizer(s.cfg.VocabSize), nil
}
func (s *mapSource) Close() error { return nil }
func (s *mapSource) Tensor(name string) (*SourceTensor, error) {
	t, ok := s.tensors[name]
	if !ok {
		return nil, ErrInput
	}
	return t, nil
}

func tinySource(t *testing.T) *mapSource {
	src, err := Synthetic("tiny")
	require.NoError(t, err)
	cfg := src.Config()
	m := &mapSource{cfg: cfg, tensors: map[string]*SourceTensor{}}
	for _, name := range TensorOrder(&cfg) {
		st, err := src.Tensor(name)
		require.NoError(t, err)
		m.tensors[name] = st
	}
	return m
}

func TestBadInput(t *testing.T) {
	wq := bundle.LayerTensor(1, bundle.WQ)
	cases := []struct {
		name, want string
		mut        func(s *mapSource)
	}{
		{"NaN weight", `tensor "layers.1.attention.wq.weight": row 3 column 5 is NaN`, func(s *mapSource) {
			s.tensors[wq].F32[3*64+5] = float32(math.NaN())
		}},
		{"Inf norm", `tensor "norm.weight": row 0 column 7 is +Inf`, func(s *mapSource) {
			s.tensors[bundle.FinalNorm].F32[7] = float32(math.Inf(1))
		}},
		{"shape disagrees", `tensor "layers.1.attention.wq.weight" has shape [64 32], the config needs [64 64]`, func(s *mapSource) {
			s.tensors[wq] = &SourceTensor{Shape: []int{64, 32}, F32: make([]float32, 64*32)}
		}},
		{"short data", `tensor "layers.1.attention.wq.weight" has 10 values`, func(s *mapSource) {
			s.tensors[wq].F32 = s.tensors[wq].F32[:10]
		}},
		{"missing tensor", `tensor "layers.4.feed_forward.w2.weight"`, func(s *mapSource) {
			delete(s.tensors, bundle.LayerTensor(4, bundle.W2))
		}},
		{"impossible config", "n_heads", func(s *mapSource) { s.cfg.NKVHeads = 3 }},
	}
	for _, scheme := range []string{bundle.SchemeF32, bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
		for _, c := range cases {
			t.Run(scheme+"/"+c.name, func(t *testing.T) {
				src := tinySource(t)
				c.mut(src)
				dir := t.TempDir()
				out := filepath.Join(dir, "bundle")
				// An existing bundle survives a failed conversion.
				require.NoError(t, os.MkdirAll(out, 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(out, "manifest.json"), []byte("old"), 0o644))
				_, err := Convert(src, nil, Options{Out: out, Quant: scheme})
				require.Error(t, err)
				require.Contains(t, err.Error(), c.want)
				old, rerr := os.ReadFile(filepath.Join(out, "manifest.json"))
				require.NoError(t, rerr)
				require.Equal(t, "old", string(old))
				entries, _ := os.ReadDir(dir)
				require.Len(t, entries, 1, "temporary directory left behind: %v", entries)
			})
		}
	}
}

// Bad checkpoint files fail in Open with the file named and leave nothing.
func TestBadFiles(t *testing.T) {
	good, err := os.ReadFile(stories(t, "stories260K.bin"))
	require.NoError(t, err)
	nan := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(nan[28+4*100:], math.Float32bits(float32(math.NaN())))
	impossible := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(impossible[12:], 7) // n_heads 7 does not divide dim 64
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"truncated", "truncated", good[:len(good)/2]},
		{"wrong magic", "not a llama2.c checkpoint", append([]byte("GGML\x00\x00\x00\x00"), good[8:]...)},
		{"impossible header", "not a multiple of n_heads", impossible},
		{"NaN weight", `tensor "tok_embeddings.weight": row 1 column 36 is NaN`, nan},
	}
	tok := storiesTokenizer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "model.bin")
			require.NoError(t, os.WriteFile(in, c.data, 0o644))
			out := filepath.Join(dir, "out")
			src, err := Open(in)
			if err == nil {
				_, err = Convert(src, tok, Options{Out: out, Quant: bundle.SchemeQ8Channel})
				src.Close()
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			if c.name != "NaN weight" {
				require.Contains(t, err.Error(), in)
			}
			entries, _ := os.ReadDir(dir)
			require.Len(t, entries, 1, "left behind: %v", entries)
		})
	}
}

func TestSignedConversion(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	src, err := Synthetic("tiny")
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "b")
	_, err = Convert(src, nil, Options{Out: out, SignKey: priv})
	require.NoError(t, err)
	b, err := bundle.Open(out)
	require.NoError(t, err)
	require.NoError(t, b.VerifySignature(pub))
}

// Pre-quantized Q8_0 tensors (GGUF) are stored as they are under
// q8_block32 and requantized under the other schemes.
func TestQ8BlocksImport(t *testing.T) {
	src := tinySource(t)
	q8 := map[string]*Q8Blocks{}
	for name, st := range src.tensors {
		if len(st.Shape) != 2 {
			continue
		}
		q, s, err := quant.QuantizeBlock32(st.F32, st.Shape[0], st.Shape[1])
		require.NoError(t, err)
		q8[name] = &Q8Blocks{Q: q, Scales: s}
		st.Q8, st.F32 = q8[name], nil
	}
	for _, scheme := range []string{bundle.SchemeQ8Block32, bundle.SchemeQ8Channel, bundle.SchemeF32} {
		out := filepath.Join(t.TempDir(), "b")
		_, err := Convert(src, nil, Options{Out: out, Quant: scheme})
		require.NoError(t, err, scheme)
		b, err := bundle.Open(out)
		require.NoError(t, err)
		for name, blocks := range q8 {
			if scheme == bundle.SchemeQ8Block32 {
				_, q, err := b.ReadTensor(name)
				require.NoError(t, err)
				require.Equal(t, quant.Int8Bytes(blocks.Q), q, name)
				_, s, err := b.ReadTensor(name + bundle.ScaleSuffix)
				require.NoError(t, err)
				require.Equal(t, quant.AppendU16LE(nil, blocks.Scales), s[:2*len(blocks.Scales)], name)
				continue
			}
			shape := src.tensors[name].Shape
			want, err := quant.DequantizeBlock32(blocks.Q, blocks.Scales, shape[0], shape[1])
			require.NoError(t, err)
			got := dequant(t, b, name)
			if scheme == bundle.SchemeF32 {
				require.Equal(t, want, got, name)
			} else {
				st := quant.Compare(want, got)
				require.Greater(t, st.SNR(), 30.0, name)
			}
		}
	}
	// A NaN scale is refused with the tensor named.
	wk := bundle.LayerTensor(2, bundle.WK)
	q8[wk].Scales[5] = 0x7e00
	_, err := Convert(src, nil, Options{Out: filepath.Join(t.TempDir(), "b"), Quant: bundle.SchemeQ8Block32})
	require.ErrorIs(t, err, ErrInput)
	require.Contains(t, err.Error(), `tensor "layers.2.attention.wk.weight": row 2 group 1 has a NaN or infinite scale`)
}

func TestF16Reader(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 40001} {
		s := make([]uint16, n)
		for i := range s {
			s[i] = uint16(i*7 + 1)
		}
		got, err := io.ReadAll(&f16Reader{s: s, pad: n%2 == 1})
		require.NoError(t, err)
		want := quant.AppendU16LE([]byte{}, s)
		if n%2 == 1 {
			want = append(want, 0, 0)
		}
		require.Equal(t, want, got, n)
	}
}
