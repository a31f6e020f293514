package llama2c

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/stretchr/testify/require"
)

// modelsDir returns $EMBER_MODELS (default ../shared/models from the repo
// root) or skips the test.
func modelsDir(t testing.TB) string {
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "stories260K", "stories260K.bin")); err != nil {
		t.Skipf("real models not found in %s (set EMBER_MODELS): %v", dir, err)
	}
	return dir
}

func TestStories260K(t *testing.T) {
	dir := modelsDir(t)
	fp, err := Open(filepath.Join(dir, "stories260K", "stories260K.bin"))
	require.NoError(t, err)
	defer fp.Close()
	require.Equal(t, Header{Version: Legacy, Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4,
		VocabSize: 512, SeqLen: 512, SharedClassifier: true}, fp.Header)
	cfg := fp.Config()
	require.NoError(t, cfg.Validate())
	require.Len(t, fp.Names(), 1+5*9+1)

	q8, err := Open(filepath.Join(dir, "stories260K", "stories260K_q80.bin"))
	require.NoError(t, err)
	defer q8.Close()
	require.Equal(t, VersionQ, q8.Version)
	require.Equal(t, 32, q8.GroupSize)
	require.True(t, q8.SharedClassifier)
	require.ElementsMatch(t, fp.Names(), q8.Names())

	// The int8 import dequantizes to the f32 weights within half a
	// quantization step of each 32-value group (the best Q8_0 can do), and
	// within 0.005 on average. (The largest single error, 0.0070 in
	// layers.1 wq, is half the step of a group whose largest weight is 1.83.)
	for _, name := range fp.Names() {
		a, err := fp.Float32(name)
		require.NoError(t, err)
		b, err := q8.Float32(name)
		require.NoError(t, err)
		require.Len(t, b, len(a), name)
		var sum float64
		for g := 0; g < len(a); g += 32 {
			var amax float64
			for _, v := range a[g:min(g+32, len(a))] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for i := g; i < min(g+32, len(a)); i++ {
				e := math.Abs(float64(a[i] - b[i]))
				sum += e
				require.LessOrEqual(t, e, amax/254*(1+1e-5)+1e-7, "%s[%d]", name, i)
			}
		}
		require.Less(t, sum/float64(len(a)), 0.005, name)
		if !q8.IsQuantized(name) {
			require.Equal(t, a, b, "norm %s is stored f32 in both", name)
		}
	}
}

// legacyFile builds a tiny legacy checkpoint whose weights count up.
func legacyFile(h Header) []byte {
	var buf bytes.Buffer
	vocab := int32(h.VocabSize)
	if !h.SharedClassifier {
		vocab = -vocab
	}
	binary.Write(&buf, binary.LittleEndian, []int32{int32(h.Dim), int32(h.HiddenDim), int32(h.NLayers),
		int32(h.NHeads), int32(h.NKVHeads), vocab, int32(h.SeqLen)})
	hd := h.Dim / h.NHeads
	kv := h.NKVHeads * hd
	n := h.VocabSize*h.Dim + h.NLayers*(2*h.Dim+2*h.Dim*h.Dim+2*h.Dim*kv+3*h.Dim*h.HiddenDim) + h.Dim + h.SeqLen*hd
	if !h.SharedClassifier {
		n += h.VocabSize * h.Dim
	}
	for i := range n {
		binary.Write(&buf, binary.LittleEndian, float32(i%97)/97)
	}
	return buf.Bytes()
}

var tinyHeader = Header{Dim: 8, HiddenDim: 12, NLayers: 2, NHeads: 2, NKVHeads: 1, VocabSize: 5, SeqLen: 4, SharedClassifier: true}

func TestLegacySynthetic(t *testing.T) {
	for _, shared := range []bool{true, false} {
		h := tinyHeader
		h.SharedClassifier = shared
		data := legacyFile(h)
		f, err := New(bytes.NewReader(data), int64(len(data)), "tiny.bin")
		require.NoError(t, err)
		require.Equal(t, h, f.Header)
		_, err = f.Shape(bundle.Output)
		require.Equal(t, shared, err != nil)
		w, err := f.Float32(bundle.TokEmbeddings)
		require.NoError(t, err)
		require.Equal(t, float32(1)/97, w[1])
		// The last tensor ends exactly at the end of the file, or the
		// final norm just before the freq_cis blocks.
		last, end := bundle.Output, len(data)
		if shared {
			last, end = bundle.FinalNorm, len(data)-4*h.SeqLen*h.Dim/h.NHeads
		}
		v, err := f.Float32(last)
		require.NoError(t, err)
		raw := data[end-4:]
		require.Equal(t, math.Float32frombits(binary.LittleEndian.Uint32(raw)), v[len(v)-1])
	}
}

func TestBadInput(t *testing.T) {
	good := legacyFile(tinyHeader)
	setI32 := func(b []byte, off int, v int32) []byte {
		b = append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(b[off:], uint32(v))
		return b
	}
	q80 := func(mut func(b []byte)) []byte {
		b := make([]byte, HeaderBytes)
		binary.LittleEndian.PutUint32(b, Magic)
		binary.LittleEndian.PutUint32(b[4:], 2)
		for i, v := range []int32{8, 12, 2, 2, 1, 8, 4} {
			binary.LittleEndian.PutUint32(b[8+4*i:], uint32(v))
		}
		b[36] = 1
		binary.LittleEndian.PutUint32(b[37:], 32)
		mut(b)
		return b
	}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "too short", nil},
		{"truncated", "truncated", good[:len(good)-3]},
		{"trailing", "trailing", append(append([]byte(nil), good...), 1, 2, 3, 4)},
		{"zero dim", "dim = 0", setI32(good, 0, 0)},
		{"huge layers", "n_layers = 1000000", setI32(good, 8, 1000000)},
		{"heads do not divide dim", "not a multiple of n_heads", setI32(good, 12, 3)},
		{"kv heads", "n_kv_heads", setI32(good, 16, 2*int32(tinyHeader.NHeads))},
		{"min int vocab", "vocab_size", setI32(good, 20, math.MinInt32)},
		{"wrong magic", "not a llama2.c checkpoint", []byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"version 3", "unsupported checkpoint version", q80(func(b []byte) { b[4] = 3 })},
		{"bad shared flag", "shared_classifier flag", q80(func(b []byte) { b[36] = 7 })},
		{"group size 0", "group_size 0", q80(func(b []byte) { b[37] = 0 })},
		{"group does not divide", "not a multiple of group_size", q80(func(b []byte) { b[37] = 7 })},
		{"q80 truncated", "truncated", q80(func(b []byte) {})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(bytes.NewReader(c.data), int64(len(c.data)), "bad.bin")
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalidFormat) || errors.Is(err, ErrUnsupportedVersion), "%v", err)
			require.Contains(t, err.Error(), "bad.bin")
			require.Contains(t, err.Error(), c.want)
			require.False(t, strings.Contains(err.Error(), "%!"), err.Error())
		})
	}
}

// Reading a range (as the converter does, a few rows at a time) gives the
// same values as reading the whole tensor, also for ranges that start or
// end inside a Q8_0 group.
func TestReadFloat32Range(t *testing.T) {
	dir := modelsDir(t)
	f, err := Open(filepath.Join(dir, "stories260K", "stories260K_q80.bin"))
	require.NoError(t, err)
	defer f.Close()
	name := bundle.LayerTensor(3, bundle.W2) // [64, 172]: groups straddle rows
	all, err := f.Float32(name)
	require.NoError(t, err)
	for _, r := range [][2]int{{0, 172}, {172, 344}, {5, 6}, {31, 33}, {100, 11008}, {11007, 11008}} {
		got := make([]float32, r[1]-r[0])
		require.NoError(t, f.ReadFloat32(name, int64(r[0]), got))
		require.Equal(t, all[r[0]:r[1]], got, r)
	}
	require.Error(t, f.ReadFloat32(name, 11000, make([]float32, 9)))
	require.Error(t, f.ReadFloat32(name, -1, make([]float32, 1)))
}

// Version 1 (export.py version1_export): 256-byte header, then norms, then
// f32 embeddings and matrices, then the classifier when not shared.
func TestVersion1(t *testing.T) {
	h := tinyHeader
	h.Version, h.SharedClassifier = VersionF, false
	hdr := make([]byte, HeaderBytes)
	binary.LittleEndian.PutUint32(hdr, Magic)
	binary.LittleEndian.PutUint32(hdr[4:], VersionF)
	for i, v := range []int{h.Dim, h.HiddenDim, h.NLayers, h.NHeads, h.NKVHeads, h.VocabSize, h.SeqLen} {
		binary.LittleEndian.PutUint32(hdr[8+4*i:], uint32(v))
	}
	hd := h.Dim / h.NHeads
	kv := h.NKVHeads * hd
	// Each tensor is filled with its index in file order.
	counts := []int{}
	for range 2 * h.NLayers {
		counts = append(counts, h.Dim) // attention norms, then ffn norms
	}
	counts = append(counts, h.Dim, h.VocabSize*h.Dim)
	for _, n := range []int{h.Dim * h.Dim, h.Dim * kv, h.Dim * kv, h.Dim * h.Dim, h.Dim * h.HiddenDim, h.Dim * h.HiddenDim, h.Dim * h.HiddenDim} {
		for range h.NLayers {
			counts = append(counts, n)
		}
	}
	counts = append(counts, h.VocabSize*h.Dim)
	var buf bytes.Buffer
	buf.Write(hdr)
	for k, n := range counts {
		for range n {
			binary.Write(&buf, binary.LittleEndian, float32(k))
		}
	}
	data := buf.Bytes()
	f, err := New(bytes.NewReader(data), int64(len(data)), "v1.bin")
	require.NoError(t, err)
	require.Equal(t, h, f.Header)
	for name, want := range map[string]float32{
		bundle.LayerTensor(1, bundle.AttnNorm): 1, bundle.LayerTensor(0, bundle.FFNNorm): 2, bundle.FinalNorm: 4,
		bundle.TokEmbeddings: 5, bundle.LayerTensor(1, bundle.WK): 9, bundle.LayerTensor(0, bundle.W3): 18, bundle.Output: 20,
	} {
		x, err := f.Float32(name)
		require.NoError(t, err)
		require.Equal(t, want, x[0], name)
		require.Equal(t, want, x[len(x)-1], name)
	}
}
