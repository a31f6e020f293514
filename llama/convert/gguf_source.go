package convert

import (
	"bytes"
	"fmt"
	"io"
	"math"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/gguf"
	"github.com/ember-llm/ember/quant"
	"github.com/ember-llm/ember/tokenizer"
)

// ggufSource reads a llama.cpp GGUF file (general.architecture "llama").
// GGUF q/k weights are already interleaved (llama.cpp's convert_hf_to_gguf
// permutes HF checkpoints), so tensors are only renamed and their dims
// reversed ([ne0=in, ne1=out] → [out, in]); the data is row-major as is.
// Every tensor streams a few rows at a time: Q8_0 matrices as Q8 blocks
// (Q8RowSource, kept bit for bit), the rest as f32 (RowSource).
type ggufSource struct {
	path  string
	f     *gguf.File
	cfg   bundle.Config
	names map[string]string // canonical → GGUF tensor name
}

// GGUF tensor names of one layer, by canonical suffix.
var ggufLayerNames = map[string]string{
	bundle.AttnNorm: "attn_norm.weight",
	bundle.WQ:       "attn_q.weight",
	bundle.WK:       "attn_k.weight",
	bundle.WV:       "attn_v.weight",
	bundle.WO:       "attn_output.weight",
	bundle.FFNNorm:  "ffn_norm.weight",
	bundle.W1:       "ffn_gate.weight",
	bundle.W2:       "ffn_down.weight",
	bundle.W3:       "ffn_up.weight",
}

// OpenGGUF opens a GGUF v2/v3 Llama file. Metadata and the tensor table are
// read here; tensor data only when Tensor or TensorRows asks for it.
func OpenGGUF(path string) (Source, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	s := &ggufSource{path: path, f: f, names: map[string]string{}}
	if err := s.readConfig(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *ggufSource) bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInput, s.path, fmt.Sprintf(format, args...))
}

// intKey reads an integer key; def is used when the key is absent.
func (s *ggufSource) intKey(key string, def int64, required bool) (int, error) {
	if !s.f.Has(key) {
		if required {
			return 0, s.bad("metadata %s is missing", key)
		}
		return int(def), nil
	}
	v, err := s.f.Int(key)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if v < -1 || v > math.MaxInt32 {
		return int(def), nil // e.g. 0xFFFFFFFF meaning "none" for token ids
	}
	return int(v), nil
}

func (s *ggufSource) floatKey(key string, def float64) (float64, error) {
	if !s.f.Has(key) {
		return def, nil
	}
	v, err := s.f.Float(key)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return v, nil
}

func (s *ggufSource) readConfig() error {
	arch, err := s.f.String("general.architecture")
	if err != nil {
		return s.bad("general.architecture is missing: not a model file")
	}
	if arch != "llama" {
		return s.bad("general.architecture %q is not supported (want llama)", arch)
	}
	c := bundle.Config{Architecture: "llama"}
	ints := []struct {
		key      string
		dst      *int
		def      int64
		required bool
	}{
		{"llama.embedding_length", &c.Dim, 0, true},
		{"llama.feed_forward_length", &c.HiddenDim, 0, true},
		{"llama.block_count", &c.NLayers, 0, true},
		{"llama.attention.head_count", &c.NHeads, 0, true},
		{"llama.context_length", &c.ContextLength, 0, true},
		{"tokenizer.ggml.bos_token_id", &c.BOSTokenID, -1, false},
	}
	for _, k := range ints {
		if *k.dst, err = s.intKey(k.key, k.def, k.required); err != nil {
			return err
		}
	}
	if c.NKVHeads, err = s.intKey("llama.attention.head_count_kv", int64(c.NHeads), false); err != nil {
		return err
	}
	if c.NHeads > 0 {
		c.HeadDim = c.Dim / c.NHeads
	}
	if c.HeadDim, err = s.intKey("llama.attention.key_length", int64(c.HeadDim), false); err != nil {
		return err
	}
	if vd, err := s.intKey("llama.attention.value_length", int64(c.HeadDim), false); err != nil {
		return err
	} else if vd != c.HeadDim {
		return s.bad("llama.attention.value_length %d differs from key_length %d: not supported", vd, c.HeadDim)
	}
	if rd, err := s.intKey("llama.rope.dimension_count", int64(c.HeadDim), false); err != nil {
		return err
	} else if rd != c.HeadDim {
		return s.bad("llama.rope.dimension_count %d is not the head size %d: partial RoPE is not supported", rd, c.HeadDim)
	}
	if c.RopeTheta, err = s.floatKey("llama.rope.freq_base", 10000); err != nil {
		return err
	}
	if c.NormEps, err = s.floatKey("llama.attention.layer_norm_rms_epsilon", 1e-5); err != nil {
		return err
	}
	if err := s.ropeScaling(&c); err != nil {
		return err
	}

	// Vocabulary: llama.vocab_size, else the token list, else the embedding.
	emb, embErr := s.f.Tensor("token_embd.weight")
	switch {
	case s.f.Has("llama.vocab_size"):
		if c.VocabSize, err = s.intKey("llama.vocab_size", 0, true); err != nil {
			return err
		}
	case s.f.Has("tokenizer.ggml.tokens"):
		if c.VocabSize, err = s.f.ArrayLen("tokenizer.ggml.tokens"); err != nil {
			return fmt.Errorf("%w: %w", ErrInput, err)
		}
	case embErr == nil && len(emb.Dims) == 2:
		c.VocabSize = emb.Dims[1]
	}
	var eos []int
	for _, key := range []string{"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		id, err := s.intKey(key, -1, false)
		if err != nil {
			return err
		}
		if id >= 0 {
			eos = append(eos, id)
		}
	}
	c.EOSTokenIDs = dedupe(eos)
	if c.BOSTokenID >= c.VocabSize {
		c.BOSTokenID = -1
	}

	s.names[bundle.TokEmbeddings] = "token_embd.weight"
	s.names[bundle.FinalNorm] = "output_norm.weight"
	for l := 0; l < c.NLayers && l < 1<<16; l++ {
		for suffix, g := range ggufLayerNames {
			s.names[bundle.LayerTensor(l, suffix)] = fmt.Sprintf("blk.%d.%s", l, g)
		}
	}
	tied, err := s.outputTied()
	if err != nil {
		return err
	}
	c.TiedEmbeddings = tied
	if !tied {
		s.names[bundle.Output] = "output.weight"
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInput, s.path, err)
	}
	s.cfg = c
	return nil
}

// ropeScaling reads llama.rope.scaling.* (and the older rope.scale_linear),
// and recognises Llama 3.1-style scaling stored as a rope_freqs tensor.
func (s *ggufSource) ropeScaling(c *bundle.Config) error {
	typ := ""
	if s.f.Has("llama.rope.scaling.type") {
		var err error
		if typ, err = s.f.String("llama.rope.scaling.type"); err != nil {
			return fmt.Errorf("%w: %w", ErrInput, err)
		}
	}
	factor, err := s.floatKey("llama.rope.scaling.factor", 0)
	if err != nil {
		return err
	}
	if typ == "" && s.f.Has("llama.rope.scale_linear") {
		if factor, err = s.floatKey("llama.rope.scale_linear", 1); err != nil {
			return err
		}
		if factor != 1 {
			typ = "linear"
		}
	}
	switch typ {
	case "", "none":
	case "linear":
		c.RopeScaling = &bundle.RopeScaling{Type: "linear", Factor: factor}
	default:
		return s.bad("llama.rope.scaling.type %q is not supported (want none or linear)", typ)
	}
	if t, err := s.f.Tensor("rope_freqs.weight"); err == nil {
		rs, err := s.llama3Scaling(t, c)
		if err != nil {
			return err
		}
		c.RopeScaling = rs
	}
	return nil
}

// llama3Scaling matches a rope_freqs tensor (llama.cpp's per-frequency
// divisors for Llama 3.1 RoPE scaling) against the published Llama 3.x
// parameters: factor = the largest divisor, low/high frequency factors 1
// and 4, original context 8192.
func (s *ggufSource) llama3Scaling(t *gguf.TensorInfo, c *bundle.Config) (*bundle.RopeScaling, error) {
	half := c.HeadDim / 2
	if t.Type != gguf.TypeF32 || len(t.Dims) != 1 || t.Dims[0] != half {
		return nil, s.bad("rope_freqs.weight: %s %v, want F32 [%d]", t.Type, t.Dims, half)
	}
	_, raw, err := s.f.ReadTensor(t.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	got := make([]float32, half)
	quant.DecodeF32LE(got, raw)
	factor := 0.0
	for _, v := range got {
		factor = math.Max(factor, float64(v))
	}
	rs := &bundle.RopeScaling{Type: "llama3", Factor: factor, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContextLength: 8192}
	for i, v := range got {
		want := llama3Divisor(i, c.HeadDim, c.RopeTheta, rs)
		if math.Abs(want-float64(v)) > 1e-3*want {
			return nil, s.bad("rope_freqs.weight[%d] = %g does not match Llama 3 RoPE scaling (factor %g, low 1, high 4, original context 8192: %g); other scalings are not supported", i, v, factor, want)
		}
	}
	return rs, nil
}

// llama3Divisor is the factor by which Llama 3 scaling divides frequency i.
func llama3Divisor(i, headDim int, theta float64, rs *bundle.RopeScaling) float64 {
	freq := 1 / math.Pow(theta, float64(2*i)/float64(headDim))
	wavelen := 2 * math.Pi / freq
	lowWavelen := float64(rs.OriginalContextLength) / rs.LowFreqFactor
	highWavelen := float64(rs.OriginalContextLength) / rs.HighFreqFactor
	switch {
	case wavelen < highWavelen:
		return 1
	case wavelen > lowWavelen:
		return rs.Factor
	}
	smooth := (float64(rs.OriginalContextLength)/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
	return 1 / ((1-smooth)/rs.Factor + smooth)
}

// outputTied reports whether the classifier is the embedding: no
// output.weight, or one whose bytes equal token_embd.weight's (llama2.c
// exports write the shared matrix twice).
func (s *ggufSource) outputTied() (bool, error) {
	out, err := s.f.Tensor("output.weight")
	if err != nil {
		return true, nil
	}
	emb, err := s.f.Tensor("token_embd.weight")
	if err != nil || emb.Type != out.Type || emb.Size != out.Size || fmt.Sprint(emb.Dims) != fmt.Sprint(out.Dims) {
		return false, nil
	}
	a, b := s.f.TensorReader(emb), s.f.TensorReader(out)
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return true, nil
		}
		if ea != nil || eb != nil {
			return false, fmt.Errorf("%w: %s: compare output.weight with token_embd.weight: %v %v", ErrInput, s.path, ea, eb)
		}
	}
}

func (s *ggufSource) Config() bundle.Config { return s.cfg }

// Tokenizer builds the embedded tokenizer (tokenizer.ggml.*); nil, nil when
// the file has none.
func (s *ggufSource) Tokenizer() (*bundle.Tokenizer, error) {
	if !s.f.Has("tokenizer.ggml.model") {
		return nil, nil
	}
	t, err := tokenizer.FromGGUF(s.f.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return t, nil
}

func (s *ggufSource) Close() error { return s.f.Close() }

func (s *ggufSource) lookup(name string) (*gguf.TensorInfo, error) {
	g, ok := s.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s: tensor %q is not part of this model", ErrInput, s.path, name)
	}
	t, err := s.f.Tensor(g)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: tensor %q (%s) is missing", ErrInput, s.path, name, g)
	}
	return t, nil
}

// Tensor reads one whole tensor: Q8_0 matrices as Q8Blocks (bit for bit),
// the rest widened to f32. Convert streams rows instead (TensorQ8Rows,
// TensorRows).
func (s *ggufSource) Tensor(name string) (*SourceTensor, error) {
	t, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	shape := t.Shape()
	rows, cols := rowsCols2(shape)
	if t.Type == gguf.TypeQ8_0 && len(shape) == 2 {
		q, scales := make([]int8, rows*cols), make([]uint16, rows*(cols/quant.GroupSize))
		if err := s.q8Rows(t, rows, cols)(q, scales); err != nil {
			return nil, err
		}
		return &SourceTensor{Shape: shape, Q8: &Q8Blocks{Q: q, Scales: scales}}, nil
	}
	return WholeTensor(s, name)
}

// rowsCols2 flattens a shape of any rank to rows of its last dimension.
func rowsCols2(shape []int) (int, int) {
	rows, cols := 1, shape[len(shape)-1]
	for _, d := range shape[:len(shape)-1] {
		rows *= d
	}
	return rows, cols
}

// q8Rows returns a function filling q and scales with the next rows of a
// Q8_0 tensor of rows rows of cols values (cols/32 blocks of 34 bytes),
// reading only those rows. A NaN or infinite scale is an error naming the
// row and group.
func (s *ggufSource) q8Rows(t *gguf.TensorInfo, rows, cols int) func([]int8, []uint16) error {
	g := cols / quant.GroupSize
	rowBytes := int64(g) * quant.Q8_0BlockBytes
	r := s.f.TensorReader(t)
	next := 0
	var buf []byte
	return func(q []int8, scales []uint16) error {
		n := len(scales) / g
		if len(scales) != n*g || len(q) != n*cols {
			return fmt.Errorf("convert: %s: tensor %s: read of %d values and %d scales is not a whole number of rows", s.path, t.Name, len(q), len(scales))
		}
		if next+n > rows {
			return fmt.Errorf("convert: %s: tensor %s: %w (read past row %d)", s.path, t.Name, io.ErrUnexpectedEOF, rows)
		}
		need := int64(n) * rowBytes
		if int64(cap(buf)) < need {
			buf = make([]byte, need)
		}
		buf = buf[:need]
		if _, err := r.ReadAt(buf, int64(next)*rowBytes); err != nil {
			return fmt.Errorf("%w: %s: read tensor %s: %v", ErrInput, s.path, t.Name, err)
		}
		splitQ8_0(q, scales, buf)
		for i, d := range scales {
			if d&0x7c00 == 0x7c00 {
				return fmt.Errorf("%w: %s: tensor %s: Q8_0 row %d group %d has scale bits %#04x: %w",
					ErrInput, s.path, t.Name, next+i/g, i%g, d, quant.ErrNonFinite)
			}
		}
		next += n
		return nil
	}
}

// TensorQ8Rows streams a Q8_0 matrix as Q8 blocks (Q8RowSource); other
// tensors answer ok = false.
func (s *ggufSource) TensorQ8Rows(name string) ([]int, func([]int8, []uint16) error, bool, error) {
	t, err := s.lookup(name)
	if err != nil {
		return nil, nil, false, err
	}
	shape := t.Shape()
	if t.Type != gguf.TypeQ8_0 || len(shape) != 2 {
		return nil, nil, false, nil
	}
	return shape, s.q8Rows(t, shape[0], shape[1]), true, nil
}

func ggufDecoder(t gguf.Type) func([]float32, []byte) {
	switch t {
	case gguf.TypeF16:
		return quant.DecodeF16LE
	case gguf.TypeBF16:
		return quant.DecodeBF16LE
	}
	return quant.DecodeF32LE
}

// TensorRows streams a tensor a few rows at a time as f32: F32/F16/BF16
// widened, Q8_0 dequantized.
func (s *ggufSource) TensorRows(name string) ([]int, func([]float32) error, error) {
	t, err := s.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	shape := t.Shape()
	es := 4
	switch t.Type {
	case gguf.TypeF32:
	case gguf.TypeF16, gguf.TypeBF16:
		es = 2
	case gguf.TypeQ8_0:
		rows, cols := rowsCols2(shape)
		return shape, dequantRows(name, cols, s.q8Rows(t, rows, cols)), nil
	default:
		return nil, nil, fmt.Errorf("%w: %s: tensor %s: %s is not supported; supported: %s", ErrInput, s.path, t.Name, t.Type, gguf.Supported)
	}
	return shape, rowReader(s.f.TensorReader(t), shape, es, ggufDecoder(t.Type), nil, s.path+": tensor "+t.Name), nil
}
