package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testConfig() Config {
	return Config{Architecture: "llama", Dim: 8, HiddenDim: 12, NLayers: 1, NHeads: 2, NKVHeads: 1, HeadDim: 4,
		VocabSize: 6, ContextLength: 16, RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true,
		BOSTokenID: 1, EOSTokenIDs: []int{2}}
}

func testTokenizer() Tokenizer {
	return Tokenizer{Kind: TokenizerSentencePiece, Pieces: []string{"<unk>", "<s>", "</s>", "▁a", "b", "<x>"},
		Scores: []float32{0, 0, 0, -1, -2, -3}, BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true}
}

// writeTestBundle writes every tensor of testConfig: q8 matrices with f32
// per-row scales (or f16 group scales), f32 vectors; tensor bytes are a
// counter so parts can be checked.
func writeTestBundle(t testing.TB, dir string, shard int64, block bool) (*Manifest, map[string][]byte) {
	cfg := testConfig()
	w, err := Create(dir, shard)
	require.NoError(t, err)
	data := map[string][]byte{}
	k := byte(0)
	put := func(spec TensorSpec) {
		n := ByteLength(spec.DType, spec.Shape)
		b := make([]byte, n)
		for i := range b {
			b[i] = k
			k++
		}
		if spec.DType == F32 {
			for i := 0; i < len(b); i += 4 {
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(i)))
			}
		}
		data[spec.Name] = b
		require.NoError(t, w.WriteTensor(spec, bytes.NewReader(b)))
	}
	for name, shape := range cfg.ExpectedShapes() {
		if len(shape) == 1 {
			put(TensorSpec{Name: name, DType: F32, Shape: shape})
			continue
		}
		if block {
			put(TensorSpec{Name: name, DType: Q8, Shape: shape, Scale: name + ScaleSuffix, GroupSize: 32})
			put(TensorSpec{Name: name + ScaleSuffix, DType: F16, Shape: []int{shape[0], 1}})
		} else {
			put(TensorSpec{Name: name, DType: Q8, Shape: shape, Scale: name + ScaleSuffix, GroupSize: shape[1]})
			put(TensorSpec{Name: name + ScaleSuffix, DType: F32, Shape: []int{shape[0]}})
		}
	}
	m := &Manifest{Name: "test", Config: cfg, Tokenizer: testTokenizer(), Quantization: Quantization{Scheme: SchemeQ8Channel}}
	if block {
		m.Quantization = Quantization{Scheme: SchemeQ8Block32, GroupSize: 32}
	}
	require.NoError(t, w.Commit(m))
	return m, data
}

func TestWriteReadSplit(t *testing.T) {
	for _, shard := range []int64{256, 512, 1024, DefaultShardBytes} {
		for _, block := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "b")
			_, data := writeTestBundle(t, dir, shard, block)
			b, err := Open(dir)
			require.NoError(t, err)
			require.NoError(t, b.Verify())
			for _, s := range b.Manifest.Shards {
				require.LessOrEqual(t, s.Bytes, shard)
			}
			if shard == 256 {
				// 12 rows of 32 int8 = 384 bytes: split over two shards.
				w1, err := b.Manifest.Tensor(LayerTensor(0, W1))
				require.NoError(t, err)
				require.Len(t, w1.Parts, 2)
				require.Equal(t, int64(8*32), w1.Parts[0].Length)
			}
			for name, want := range data {
				_, got, err := b.ReadTensor(name)
				require.NoError(t, err)
				require.Equal(t, want, got, name)
			}
		}
	}
}

func TestVerifyFlippedByte(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	writeTestBundle(t, dir, 512, false)
	b, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, b.Verify())
	p := b.ShardPath(1)
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 1
	require.NoError(t, os.WriteFile(p, raw, 0o644))
	err = b.Verify()
	require.ErrorIs(t, err, ErrChecksum)
	require.Contains(t, err.Error(), ShardName(1))
	require.NotContains(t, err.Error(), ShardName(0))
}

func TestCommitReplacesAtomically(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	writeTestBundle(t, dir, 512, false)
	before, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	// A commit whose manifest does not validate leaves the old bundle.
	w, err := Create(dir, 0)
	require.NoError(t, err)
	require.NoError(t, w.WriteTensor(TensorSpec{Name: FinalNorm, DType: F32, Shape: []int{8}}, bytes.NewReader(make([]byte, 32))))
	err = w.Commit(&Manifest{Config: testConfig(), Tokenizer: testTokenizer(), Quantization: Quantization{Scheme: SchemeF32}})
	require.ErrorIs(t, err, ErrInvalidManifest)
	after, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	require.Equal(t, before, after)
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	// A short source aborts WriteTensor; Abort cleans up.
	w, err = Create(dir, 0)
	require.NoError(t, err)
	err = w.WriteTensor(TensorSpec{Name: FinalNorm, DType: F32, Shape: []int{8}}, bytes.NewReader(make([]byte, 31)))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	w.Abort()
	entries, err = os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestSign(t *testing.T) {
	privPEM, pubStr, err := GenerateKey(rand.Reader)
	require.NoError(t, err)
	priv, err := ParsePrivateKey(privPEM)
	require.NoError(t, err)
	pub, err := ParsePublicKey(pubStr)
	require.NoError(t, err)
	require.Equal(t, priv.Public(), pub)

	dir := filepath.Join(t.TempDir(), "b")
	writeTestBundle(t, dir, 0, false)
	b, err := Open(dir)
	require.NoError(t, err)
	require.ErrorIs(t, b.VerifySignature(pub), ErrSignature, "unsigned")
	require.NoError(t, SignDir(dir, priv))
	require.NoError(t, b.VerifySignature(pub))

	other, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	require.ErrorIs(t, b.VerifySignature(other), ErrSignature, "wrong key")

	m, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	m = bytes.Replace(m, []byte(`"name": "test"`), []byte(`"name": "tesT"`), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ManifestFile), m, 0o644))
	require.ErrorIs(t, b.VerifySignature(pub), ErrSignature, "tampered manifest")

	// The PEM SubjectPublicKeyInfo form (openssl pkey -pubout).
	spki := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	k, err := ParsePublicKey(spki)
	require.NoError(t, err)
	require.Len(t, k, 32)
	require.Equal(t, byte(0x19), k[0])
	for _, bad := range []string{"", "AAAA", strings.Repeat("A", 44), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"} {
		_, err := ParsePublicKey(bad)
		require.Error(t, err, bad)
	}
	_, err = ParsePrivateKey([]byte("not a key"))
	require.Error(t, err)
}

// RFC 8032 test vector 1 (empty message), through the PKCS#8 form.
func TestSignRFC8032(t *testing.T) {
	seed := mustHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	der := append(append([]byte(nil), pkcs8Prefix...), seed...)
	priv, err := ParsePrivateKey([]byte("-----BEGIN PRIVATE KEY-----\n" + b64(der) + "\n-----END PRIVATE KEY-----\n"))
	require.NoError(t, err)
	require.Equal(t, mustHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), []byte(priv.Public().(ed25519.PublicKey)))
	sig := Sign(priv, nil)
	require.Equal(t, b64(mustHex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"))+"\n", string(sig))
}

func TestParseRejects(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	writeTestBundle(t, dir, 512, true)
	good, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	_, err = Parse(good)
	require.NoError(t, err)
	cases := []struct{ from, to, want string }{
		{`"format": "ember-bundle"`, `"format": "other"`, "format"},
		{`"version": 1`, `"version": 2`, "version 2"},
		{`"dim": 8`, `"dim": 0`, "config.dim"},
		{`"scheme": "q8_block32"`, `"scheme": "q4"`, "scheme"},
		{`"file": "shard-00000.bin"`, `"file": "../x"`, "plain file name"},
		{`"dtype": "f16"`, `"dtype": "f64"`, "unknown dtype"},
		{`"name": "layers.0.attention.wq.weight.scale"`, `"name": "zz"`, "scale tensor"},
		{`"offset": 256`, `"offset": 100`, "multiple of 256"},
		{`"kind": "sentencepiece"`, `"kind": "wordpiece"`, "tokenizer.kind"},
		{`"name": "test"`, `"name": "test", "extra": 1`, "unknown field"},
	}
	for _, c := range cases {
		bad := bytes.Replace(good, []byte(c.from), []byte(c.to), 1)
		require.NotEqual(t, good, bad, c.from)
		_, err := Parse(bad)
		require.ErrorIs(t, err, ErrInvalidManifest, c.from)
		require.Contains(t, err.Error(), c.want)
	}
	_, err = Parse(append(append([]byte(nil), good...), '{', '}'))
	require.ErrorIs(t, err, ErrInvalidManifest)
}

// FuzzParse: Parse never panics, and whatever it accepts is self-consistent:
// it re-encodes to a manifest that parses again, and every tensor part lies
// inside its shard.
func FuzzParse(f *testing.F) {
	for _, block := range []bool{false, true} {
		dir := filepath.Join(f.TempDir(), "b")
		writeTestBundle(f, dir, 512, block)
		data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"format":"ember-bundle","version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error does not wrap ErrInvalidManifest: %v", err)
			}
			return
		}
		for _, tt := range m.Tensors {
			for _, p := range tt.PartsOrSelf() {
				if p.Offset+p.Length > m.Shards[p.Shard].Bytes {
					t.Fatalf("tensor %s part outside its shard", tt.Name)
				}
			}
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(again); err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v", err)
		}
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
