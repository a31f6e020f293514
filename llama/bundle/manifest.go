// Package bundle reads and writes the Ember model bundle: a manifest.json
// (config, tokenizer, tensor table, shard list with SHA-256) and shards of at
// most a few tens of MiB holding GPU-ready tensor bytes. docs/FORMAT.md is the
// specification; this package is its reference implementation.
//
// It is pure Go and must stay so: the converter, the CPU engine and the wasm
// loader all use it. It never parses checkpoint formats (GGUF, safetensors).
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
)

// Format identification written at the top of every manifest.
const (
	FormatName    = "ember-bundle"
	FormatVersion = 1
	ManifestFile  = "manifest.json"
)

// Alignment is the byte alignment of every tensor (and tensor part) inside a
// shard: WebGPU's default minStorageBufferOffsetAlignment.
const Alignment = 256

// DefaultShardBytes is the default maximum shard size (64 MiB).
const DefaultShardBytes = 64 << 20

// MaxManifestBytes bounds the manifest a reader accepts (a 128k-vocabulary
// byte-level BPE tokenizer with its merges is about 10 MiB).
const MaxManifestBytes = 64 << 20

// Sentinel errors; every error returned by this package wraps one of them.
var (
	ErrInvalidManifest = errors.New("bundle: invalid manifest")
	ErrChecksum        = errors.New("bundle: shard checksum mismatch")
	ErrNotFound        = errors.New("bundle: not found")
)

// Manifest is the content of manifest.json.
type Manifest struct {
	Format       string       `json:"format"`  // FormatName
	Version      int          `json:"version"` // FormatVersion
	Name         string       `json:"name,omitempty"`
	Source       string       `json:"source,omitempty"` // provenance, informative only
	Config       Config       `json:"config"`
	Tokenizer    Tokenizer    `json:"tokenizer"`
	Quantization Quantization `json:"quantization"`
	Tensors      []Tensor     `json:"tensors"`
	Shards       []Shard      `json:"shards"`
}

// Config is the model hyper-parameters.
type Config struct {
	Architecture  string       `json:"architecture"` // "llama"
	Dim           int          `json:"dim"`          // residual stream width
	HiddenDim     int          `json:"hidden_dim"`   // SwiGLU inner width
	NLayers       int          `json:"n_layers"`
	NHeads        int          `json:"n_heads"`
	NKVHeads      int          `json:"n_kv_heads"`
	HeadDim       int          `json:"head_dim"`
	VocabSize     int          `json:"vocab_size"`
	ContextLength int          `json:"context_length"`
	RopeTheta     float64      `json:"rope_theta"`
	RopeScaling   *RopeScaling `json:"rope_scaling,omitempty"`
	NormEps       float64      `json:"norm_eps"`
	// TiedEmbeddings: the classifier reuses tok_embeddings.weight (no output.weight tensor).
	TiedEmbeddings bool  `json:"tied_embeddings"`
	BOSTokenID     int   `json:"bos_token_id"`  // -1 when none
	EOSTokenIDs    []int `json:"eos_token_ids"` // generation stops on any of these
}

// RopeScaling describes a RoPE frequency scaling. Type "linear" divides
// positions by Factor; type "llama3" applies Llama 3.1's frequency-dependent
// scaling with LowFreqFactor, HighFreqFactor and OriginalContextLength.
type RopeScaling struct {
	Type                  string  `json:"type"`
	Factor                float64 `json:"factor"`
	LowFreqFactor         float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor        float64 `json:"high_freq_factor,omitempty"`
	OriginalContextLength int     `json:"original_context_length,omitempty"`
}

// KVDim is the width of one token's keys (or values) in one layer.
func (c *Config) KVDim() int { return c.NKVHeads * c.HeadDim }

// QDim is the width of one token's queries in one layer.
func (c *Config) QDim() int { return c.NHeads * c.HeadDim }

// Tokenizer kinds.
const (
	TokenizerSentencePiece = "sentencepiece" // SentencePiece BPE: merges chosen by piece score
	TokenizerByteBPE       = "bpe"           // GPT-2 style byte-level BPE: merges by rank
)

// SentencePiece piece types (sentencepiece_model.proto ModelProto.SentencePiece.Type),
// also used by GGUF's tokenizer.ggml.token_type.
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// Tokenizer is everything needed to encode and decode text, independent of
// the file it came from.
type Tokenizer struct {
	Kind   string    `json:"kind"`             // TokenizerSentencePiece or TokenizerByteBPE
	Pieces []string  `json:"pieces"`           // id → piece text (SentencePiece: with ▁; byte BPE: byte-to-unicode mapped)
	Scores []float32 `json:"scores,omitempty"` // id → score (SentencePiece)
	Types  []int32   `json:"types,omitempty"`  // id → Token* type; absent means all normal
	Merges []string  `json:"merges,omitempty"` // byte BPE merges "a b", highest priority first
	// PreTokenizer names the byte BPE split pattern: "gpt2", "llama3", ...
	PreTokenizer string `json:"pre_tokenizer,omitempty"`

	BOS int `json:"bos_id"` // -1 when none
	EOS int `json:"eos_id"` // -1 when none
	UNK int `json:"unk_id"` // -1 when none
	PAD int `json:"pad_id"` // -1 when none
	// EOT lists further ids that end a turn (e.g. <|eot_id|>, <|im_end|>).
	EOT []int `json:"eot_ids,omitempty"`

	AddBOS         bool `json:"add_bos"`
	AddEOS         bool `json:"add_eos"`
	AddDummyPrefix bool `json:"add_dummy_prefix"` // SentencePiece: prepend ▁ to the text
	ByteFallback   bool `json:"byte_fallback"`    // SentencePiece: unknown chars become <0xNN>
	// RemoveExtraWhitespaces: SentencePiece normalizer option (collapse runs of spaces).
	RemoveExtraWhitespaces bool `json:"remove_extra_whitespaces,omitempty"`

	ChatTemplate string `json:"chat_template,omitempty"` // Jinja, as shipped with the model
}

// Quantization schemes.
const (
	SchemeF32       = "f32"        // everything f32
	SchemeQ8Channel = "q8_channel" // int8 weights, one f32 scale per output row
	SchemeQ8Block32 = "q8_block32" // int8 weights, one f16 scale per 32 inputs (GGUF Q8_0 values)
)

// Quantization names the scheme used for the 2-D weight matrices.
type Quantization struct {
	Scheme    string `json:"scheme"`
	GroupSize int    `json:"group_size,omitempty"` // 32 for q8_block32
}

// DType is a tensor element type.
type DType string

const (
	F32 DType = "f32"
	F16 DType = "f16" // IEEE binary16 little-endian (scales of q8_block32)
	Q8  DType = "q8"  // int8, 4 per little-endian u32, rows padded to a multiple of 32
)

// Q8RowAlign is the number of int8 values each q8 row is padded to.
const Q8RowAlign = 32

// Tensor is one entry of the tensor table.
type Tensor struct {
	Name  string `json:"name"`
	DType DType  `json:"dtype"`
	// Shape is the logical shape, outermost first: [rows, cols] = [out, in]
	// for a weight matrix, [n] for a vector. For q8 the stored row is padded
	// (see RowBytes).
	Shape  []int  `json:"shape"`
	Shard  int    `json:"shard"`  // shard index of the first byte
	Offset int64  `json:"offset"` // byte offset in that shard (multiple of Alignment)
	Length int64  `json:"length"` // total stored bytes
	Parts  []Part `json:"parts,omitempty"`
	// Scale names the tensor holding this q8 tensor's scales; GroupSize is
	// the number of consecutive inputs of one row sharing one scale (equal
	// to the row length for per-channel scales).
	Scale     string `json:"scale,omitempty"`
	GroupSize int    `json:"group_size,omitempty"`
}

// Part is a contiguous run of a tensor's bytes inside one shard. A tensor
// larger than a shard is stored as several parts in consecutive shards,
// each holding whole rows.
type Part struct {
	Shard  int   `json:"shard"`
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// Shard is one file of the bundle.
type Shard struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// Rows is the number of rows of the tensor (1 for a vector).
func (t *Tensor) Rows() int {
	if len(t.Shape) < 2 {
		return 1
	}
	r := 1
	for _, d := range t.Shape[:len(t.Shape)-1] {
		r *= d
	}
	return r
}

// Cols is the innermost dimension.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 0
	}
	return t.Shape[len(t.Shape)-1]
}

// PaddedCols is the number of stored elements per row.
func (t *Tensor) PaddedCols() int {
	if t.DType == Q8 {
		return PadQ8(t.Cols())
	}
	return t.Cols()
}

// PadQ8 rounds n up to a multiple of Q8RowAlign.
func PadQ8(n int) int { return (n + Q8RowAlign - 1) / Q8RowAlign * Q8RowAlign }

// RowBytes is the stored size of one row.
func (t *Tensor) RowBytes() int64 { return RowBytes(t.DType, t.Shape) }

// RowBytes is the stored size of one row of a tensor with this type and shape.
func RowBytes(dt DType, shape []int) int64 {
	if len(shape) == 0 {
		return 0
	}
	cols := int64(shape[len(shape)-1])
	switch dt {
	case F32:
		return cols * 4
	case F16:
		return cols * 2
	case Q8:
		return int64(PadQ8(int(cols)))
	}
	return 0
}

// ByteLength is the stored size of a tensor of this type and shape, or -1
// when it is invalid or would overflow. f16 tensors are padded to 4 bytes so
// that WGSL can read them as array<u32>.
func ByteLength(dt DType, shape []int) int64 {
	if len(shape) == 0 || len(shape) > 4 {
		return -1
	}
	rows := int64(1)
	for _, d := range shape[:len(shape)-1] {
		if d <= 0 || rows > math.MaxInt64/int64(d) {
			return -1
		}
		rows *= int64(d)
	}
	cols := shape[len(shape)-1]
	if cols <= 0 || cols > 1<<40 {
		return -1
	}
	rb := RowBytes(dt, shape)
	if rb <= 0 || rows > math.MaxInt64/rb/2 {
		return -1
	}
	n := rows * rb
	if dt == F16 {
		n = (n + 3) &^ 3
	}
	return n
}

// PartsOrSelf returns the tensor's parts; a single-part tensor yields one Part.
func (t *Tensor) PartsOrSelf() []Part {
	if len(t.Parts) > 0 {
		return t.Parts
	}
	return []Part{{Shard: t.Shard, Offset: t.Offset, Length: t.Length}}
}

// Tensor returns the named tensor entry.
func (m *Manifest) Tensor(name string) (*Tensor, error) {
	for i := range m.Tensors {
		if m.Tensors[i].Name == name {
			return &m.Tensors[i], nil
		}
	}
	return nil, fmt.Errorf("tensor %q: %w", name, ErrNotFound)
}

// TotalBytes is the sum of all shard sizes.
func (m *Manifest) TotalBytes() int64 {
	var n int64
	for _, s := range m.Shards {
		n += s.Bytes
	}
	return n
}

// Parse decodes and validates a manifest.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalidManifest, len(data), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidManifest, ManifestFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s: trailing data after the JSON object", ErrInvalidManifest, ManifestFile)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal encodes the manifest as indented JSON.
// Tokenizer pieces such as "<s>" are written as they are, not \u003c-escaped.
func (m *Manifest) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var shardFileRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
var hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
}

// Validate checks every structural rule of docs/FORMAT.md: a manifest that
// passes can be read without further bounds checks.
func (m *Manifest) Validate() error {
	if err := m.ValidateHeader(); err != nil {
		return err
	}
	return m.validateTables()
}

// ValidateHeader checks the format, config, tokenizer and quantization
// (everything but the tensor and shard tables), so that a writer can refuse
// bad metadata before it writes gigabytes of shards.
func (m *Manifest) ValidateHeader() error {
	if m.Format != FormatName {
		return invalid("format is %q, want %q", m.Format, FormatName)
	}
	if m.Version != FormatVersion {
		return invalid("version %d is not supported (this reader knows version %d)", m.Version, FormatVersion)
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if err := m.validateTokenizer(); err != nil {
		return err
	}
	switch m.Quantization.Scheme {
	case SchemeF32, SchemeQ8Channel:
	case SchemeQ8Block32:
		if m.Quantization.GroupSize != 32 {
			return invalid("quantization.group_size is %d, q8_block32 needs 32", m.Quantization.GroupSize)
		}
	default:
		return invalid("quantization.scheme %q is unknown (want f32, q8_channel or q8_block32)", m.Quantization.Scheme)
	}
	return nil
}

func (m *Manifest) validateTables() error {
	seen := map[string]bool{}
	for i, s := range m.Shards {
		if !shardFileRE.MatchString(s.File) || s.File == "." || s.File == ".." || s.File == ManifestFile {
			return invalid("shards[%d].file %q is not a plain file name", i, s.File)
		}
		if seen[s.File] {
			return invalid("shards[%d].file %q is listed twice", i, s.File)
		}
		seen[s.File] = true
		if s.Bytes < 0 || s.Bytes > 1<<40 {
			return invalid("shards[%d] (%s): impossible size %d", i, s.File, s.Bytes)
		}
		if !hexRE.MatchString(s.SHA256) {
			return invalid("shards[%d] (%s): sha256 %q is not 64 lowercase hex digits", i, s.File, s.SHA256)
		}
	}
	names := map[string]int{}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.Name == "" {
			return invalid("tensors[%d] has no name", i)
		}
		if _, dup := names[t.Name]; dup {
			return invalid("tensor %q is listed twice", t.Name)
		}
		names[t.Name] = i
		if err := m.validateTensor(t); err != nil {
			return err
		}
	}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.DType != Q8 {
			continue
		}
		j, ok := names[t.Scale]
		if !ok {
			return invalid("tensor %q: scale tensor %q is missing", t.Name, t.Scale)
		}
		s := &m.Tensors[j]
		if s.DType != F32 && s.DType != F16 {
			return invalid("tensor %q: scale %q has dtype %s, want f32 or f16", t.Name, s.Name, s.DType)
		}
		// f32 scales of a per-row (per-channel) tensor are a vector [rows];
		// group scales are a matrix [rows, groups].
		groups := (t.Cols() + t.GroupSize - 1) / t.GroupSize
		want := []int{t.Rows(), groups}
		if groups == 1 && s.DType == F32 {
			want = []int{t.Rows()}
		}
		if !sameShape(s.Shape, want) {
			return invalid("tensor %q: scale %q has shape %v, want %v", t.Name, s.Name, s.Shape, want)
		}
	}
	return m.CheckTensors()
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (m *Manifest) validateTensor(t *Tensor) error {
	switch t.DType {
	case F32, F16:
		if t.Scale != "" || t.GroupSize != 0 {
			return invalid("tensor %q: dtype %s takes no scale or group_size", t.Name, t.DType)
		}
	case Q8:
		if len(t.Shape) != 2 {
			return invalid("tensor %q: q8 tensors are matrices, shape is %v", t.Name, t.Shape)
		}
		if t.Scale == "" {
			return invalid("tensor %q: q8 tensor without scale", t.Name)
		}
		if t.GroupSize != t.Cols() && (t.GroupSize != Q8RowAlign) {
			return invalid("tensor %q: group_size %d must be 32 or the row length %d", t.Name, t.GroupSize, t.Cols())
		}
	default:
		return invalid("tensor %q: unknown dtype %q (want f32, f16 or q8)", t.Name, t.DType)
	}
	want := ByteLength(t.DType, t.Shape)
	if want < 0 {
		return invalid("tensor %q: impossible shape %v", t.Name, t.Shape)
	}
	if t.Length != want {
		return invalid("tensor %q: length %d, but dtype %s shape %v needs %d bytes", t.Name, t.Length, t.DType, t.Shape, want)
	}
	parts := t.PartsOrSelf()
	if len(t.Parts) > 0 && (t.Parts[0].Shard != t.Shard || t.Parts[0].Offset != t.Offset) {
		return invalid("tensor %q: parts[0] does not start at shard %d offset %d", t.Name, t.Shard, t.Offset)
	}
	var sum int64
	rb := t.RowBytes()
	for k, p := range parts {
		if p.Shard < 0 || p.Shard >= len(m.Shards) {
			return invalid("tensor %q: part %d names shard %d of %d", t.Name, k, p.Shard, len(m.Shards))
		}
		if k > 0 && p.Shard != parts[k-1].Shard+1 {
			return invalid("tensor %q: part %d is not in the shard after part %d", t.Name, k, k-1)
		}
		if p.Offset < 0 || p.Offset%Alignment != 0 {
			return invalid("tensor %q: part %d offset %d is not a multiple of %d", t.Name, k, p.Offset, Alignment)
		}
		if p.Length <= 0 || p.Length > m.Shards[p.Shard].Bytes || p.Offset > m.Shards[p.Shard].Bytes-p.Length {
			return invalid("tensor %q: part %d [%d, +%d) lies outside shard %s (%d bytes)", t.Name, k, p.Offset, p.Length, m.Shards[p.Shard].File, m.Shards[p.Shard].Bytes)
		}
		if len(parts) > 1 && p.Length%rb != 0 && k < len(parts)-1 {
			return invalid("tensor %q: part %d does not hold whole rows", t.Name, k)
		}
		sum += p.Length
	}
	if sum != t.Length {
		return invalid("tensor %q: parts hold %d bytes, length is %d", t.Name, sum, t.Length)
	}
	return nil
}

// Validate checks the hyper-parameters for consistency and sane bounds.
func (c *Config) Validate() error {
	if c.Architecture != "llama" {
		return invalid("config.architecture %q is not supported (want \"llama\")", c.Architecture)
	}
	pos := []struct {
		name string
		v    int
		max  int
	}{
		{"dim", c.Dim, 1 << 16}, {"hidden_dim", c.HiddenDim, 1 << 18}, {"n_layers", c.NLayers, 1024},
		{"n_heads", c.NHeads, 1024}, {"n_kv_heads", c.NKVHeads, 1024}, {"head_dim", c.HeadDim, 1024},
		{"vocab_size", c.VocabSize, 1 << 22}, {"context_length", c.ContextLength, 1 << 22},
	}
	for _, p := range pos {
		if p.v <= 0 || p.v > p.max {
			return invalid("config.%s = %d is out of range (1..%d)", p.name, p.v, p.max)
		}
	}
	if c.NHeads%c.NKVHeads != 0 {
		return invalid("config.n_heads %d is not a multiple of n_kv_heads %d", c.NHeads, c.NKVHeads)
	}
	if c.HeadDim%2 != 0 {
		return invalid("config.head_dim %d is odd (RoPE rotates pairs)", c.HeadDim)
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return invalid("config.rope_theta %v must be positive", c.RopeTheta)
	}
	if !(c.NormEps > 0 && c.NormEps < 1) {
		return invalid("config.norm_eps %v must be in (0, 1)", c.NormEps)
	}
	if s := c.RopeScaling; s != nil {
		switch s.Type {
		case "linear":
		case "llama3":
			if s.OriginalContextLength <= 0 || !(s.HighFreqFactor > s.LowFreqFactor) {
				return invalid("config.rope_scaling: llama3 needs original_context_length > 0 and high_freq_factor > low_freq_factor")
			}
		default:
			return invalid("config.rope_scaling.type %q is not supported (want linear or llama3)", s.Type)
		}
		if !(s.Factor > 0) || math.IsInf(s.Factor, 0) {
			return invalid("config.rope_scaling.factor %v must be positive", s.Factor)
		}
	}
	if c.BOSTokenID < -1 || c.BOSTokenID >= c.VocabSize {
		return invalid("config.bos_token_id %d is outside the vocabulary", c.BOSTokenID)
	}
	for _, id := range c.EOSTokenIDs {
		if id < 0 || id >= c.VocabSize {
			return invalid("config.eos_token_ids has %d, outside the vocabulary", id)
		}
	}
	return nil
}

func (m *Manifest) validateTokenizer() error {
	t := &m.Tokenizer
	switch t.Kind {
	case TokenizerSentencePiece, TokenizerByteBPE:
	default:
		return invalid("tokenizer.kind %q is unknown (want sentencepiece or bpe)", t.Kind)
	}
	n := len(t.Pieces)
	if n == 0 {
		return invalid("tokenizer.pieces is empty")
	}
	if n > m.Config.VocabSize {
		return invalid("tokenizer has %d pieces but config.vocab_size is %d", n, m.Config.VocabSize)
	}
	if len(t.Scores) != 0 && len(t.Scores) != n {
		return invalid("tokenizer.scores has %d entries for %d pieces", len(t.Scores), n)
	}
	if len(t.Types) != 0 && len(t.Types) != n {
		return invalid("tokenizer.types has %d entries for %d pieces", len(t.Types), n)
	}
	for i, ty := range t.Types {
		if ty < TokenNormal || ty > TokenByte {
			return invalid("tokenizer.types[%d] = %d is not a piece type (1..6)", i, ty)
		}
	}
	for _, f := range []struct {
		name string
		id   int
	}{{"bos_id", t.BOS}, {"eos_id", t.EOS}, {"unk_id", t.UNK}, {"pad_id", t.PAD}} {
		if f.id < -1 || f.id >= n {
			return invalid("tokenizer.%s = %d is outside the %d pieces", f.name, f.id, n)
		}
	}
	for _, id := range t.EOT {
		if id < 0 || id >= n {
			return invalid("tokenizer.eot_ids has %d, outside the %d pieces", id, n)
		}
	}
	return nil
}
