package convert

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/safetensors"
	"github.com/ember-llm/ember/quant"
	"github.com/ember-llm/ember/tokenizer"
)

// hfConfig is the part of a HuggingFace Llama config.json read here.
type hfConfig struct {
	ModelType             string          `json:"model_type"`
	Architectures         []string        `json:"architectures"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RopeTheta             *float64        `json:"rope_theta"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	TieWordEmbeddings     bool            `json:"tie_word_embeddings"`
	HiddenAct             string          `json:"hidden_act"`
	AttentionBias         bool            `json:"attention_bias"`
	MLPBias               bool            `json:"mlp_bias"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	RopeScaling           *struct {
		Type                  string  `json:"type"`
		RopeType              string  `json:"rope_type"`
		Factor                float64 `json:"factor"`
		LowFreqFactor         float64 `json:"low_freq_factor"`
		HighFreqFactor        float64 `json:"high_freq_factor"`
		OriginalMaxPositionEm int     `json:"original_max_position_embeddings"`
	} `json:"rope_scaling"`
}

// ids reads a token id given as a number, a list of numbers or null.
func ids(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want a token id or a list of ids, got %s", raw)
	}
	return many, nil
}

// hfSource reads a HuggingFace Llama checkpoint directory. Tensors stream
// row by row (RowSource); q_proj/k_proj rows are permuted back from HF's
// rotate-half layout to the interleaved one as they are read.
type hfSource struct {
	dir string
	m   *safetensors.Model
	cfg bundle.Config
}

// OpenHF opens a HuggingFace model directory: config.json, model.safetensors
// or model.safetensors.index.json with its shards, and tokenizer.json or
// tokenizer.model. Only tensor headers are read here.
func OpenHF(dir string) (Source, error) {
	cfgPath := filepath.Join(dir, "config.json")
	data, err := readSmall(cfgPath, 1<<20)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInput, cfgPath, fmt.Sprintf(format, args...))
	}
	var hc hfConfig
	if err := json.Unmarshal(data, &hc); err != nil {
		return nil, bad("not a model config: %v", err)
	}
	if hc.ModelType != "llama" {
		return nil, bad("model_type %q is not supported (want llama)", hc.ModelType)
	}
	if hc.HiddenAct != "" && hc.HiddenAct != "silu" {
		return nil, bad("hidden_act %q is not supported (Llama uses silu)", hc.HiddenAct)
	}
	if hc.AttentionBias || hc.MLPBias {
		return nil, bad("attention_bias/mlp_bias are not supported (Llama has no biases)")
	}
	c := bundle.Config{Architecture: "llama", Dim: hc.HiddenSize, HiddenDim: hc.IntermediateSize,
		NLayers: hc.NumHiddenLayers, NHeads: hc.NumAttentionHeads, NKVHeads: hc.NumAttentionHeads,
		VocabSize: hc.VocabSize, ContextLength: hc.MaxPositionEmbeddings, RopeTheta: 10000, NormEps: 1e-6,
		TiedEmbeddings: hc.TieWordEmbeddings, BOSTokenID: -1}
	if hc.NumKeyValueHeads != nil {
		c.NKVHeads = *hc.NumKeyValueHeads
	}
	if hc.NumAttentionHeads > 0 {
		c.HeadDim = hc.HiddenSize / hc.NumAttentionHeads
	}
	if hc.HeadDim != nil {
		c.HeadDim = *hc.HeadDim
	} else if hc.NumAttentionHeads > 0 && hc.HiddenSize%hc.NumAttentionHeads != 0 {
		return nil, bad("hidden_size %d is not a multiple of num_attention_heads %d (and no head_dim)", hc.HiddenSize, hc.NumAttentionHeads)
	}
	if hc.RopeTheta != nil {
		c.RopeTheta = *hc.RopeTheta
	}
	if hc.RMSNormEps != nil {
		c.NormEps = *hc.RMSNormEps
	}
	if rs := hc.RopeScaling; rs != nil {
		typ := rs.RopeType
		if typ == "" {
			typ = rs.Type
		}
		switch typ {
		case "default", "":
		case "linear":
			c.RopeScaling = &bundle.RopeScaling{Type: "linear", Factor: rs.Factor}
		case "llama3":
			c.RopeScaling = &bundle.RopeScaling{Type: "llama3", Factor: rs.Factor, LowFreqFactor: rs.LowFreqFactor,
				HighFreqFactor: rs.HighFreqFactor, OriginalContextLength: rs.OriginalMaxPositionEm}
		default:
			return nil, bad("rope_scaling type %q is not supported (want linear or llama3)", typ)
		}
	}
	bos, err := ids(hc.BOSTokenID)
	if err != nil || len(bos) > 1 {
		return nil, bad("bos_token_id: %v", err)
	}
	if len(bos) == 1 {
		c.BOSTokenID = bos[0]
	}
	eos, err := ids(hc.EOSTokenID)
	if err != nil {
		return nil, bad("eos_token_id: %v", err)
	}
	// generation_config.json often lists more stop ids (Llama 3 instruct).
	if g, err := readSmall(filepath.Join(dir, "generation_config.json"), 1<<20); err == nil {
		var gc struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if json.Unmarshal(g, &gc) == nil {
			more, _ := ids(gc.EOS)
			eos = append(eos, more...)
		}
	}
	c.EOSTokenIDs = dedupe(eos)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, cfgPath, err)
	}
	m, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	s := &hfSource{dir: dir, m: m, cfg: c}
	if !c.TiedEmbeddings {
		if _, err := m.Tensor("lm_head.weight"); err != nil {
			// Exported checkpoints that tie the head sometimes omit the flag.
			s.cfg.TiedEmbeddings = true
		}
	}
	return s, nil
}

func dedupe(xs []int) []int {
	var out []int
	seen := map[int]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("convert: read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInput, path, limit)
	}
	return data, nil
}

func (s *hfSource) Config() bundle.Config { return s.cfg }

// Tokenizer loads tokenizer.json (with tokenizer_config.json beside it) or
// tokenizer.model from the directory; nil, nil when there is neither.
func (s *hfSource) Tokenizer() (*bundle.Tokenizer, error) {
	for _, name := range []string{"tokenizer.json", "tokenizer.model"} {
		p := filepath.Join(s.dir, name)
		if _, err := os.Stat(p); err == nil {
			return tokenizer.LoadFile(p, s.cfg.VocabSize)
		}
	}
	return nil, nil
}

func (s *hfSource) Close() error { return s.m.Close() }

// hfTensorName maps a canonical tensor name to its HF name and, for wq/wk,
// the number of heads whose rows HF permuted.
func (s *hfSource) hfTensorName(name string) (hf string, heads int, ok bool) {
	switch name {
	case bundle.TokEmbeddings:
		return "model.embed_tokens.weight", 0, true
	case bundle.FinalNorm:
		return "model.norm.weight", 0, true
	case bundle.Output:
		if s.cfg.TiedEmbeddings {
			return "", 0, false
		}
		return "lm_head.weight", 0, true
	}
	l, suffix, ok := splitLayerName(name, s.cfg.NLayers)
	if !ok {
		return "", 0, false
	}
	parts := map[string]string{
		bundle.AttnNorm: "input_layernorm.weight",
		bundle.WQ:       "self_attn.q_proj.weight",
		bundle.WK:       "self_attn.k_proj.weight",
		bundle.WV:       "self_attn.v_proj.weight",
		bundle.WO:       "self_attn.o_proj.weight",
		bundle.FFNNorm:  "post_attention_layernorm.weight",
		bundle.W1:       "mlp.gate_proj.weight",
		bundle.W2:       "mlp.down_proj.weight",
		bundle.W3:       "mlp.up_proj.weight",
	}
	p, ok := parts[suffix]
	if !ok {
		return "", 0, false
	}
	switch suffix {
	case bundle.WQ:
		heads = s.cfg.NHeads
	case bundle.WK:
		heads = s.cfg.NKVHeads
	}
	return fmt.Sprintf("model.layers.%d.%s", l, p), heads, true
}

// splitLayerName parses "layers.L.suffix" with 0 <= L < nLayers.
func splitLayerName(name string, nLayers int) (int, string, bool) {
	rest, ok := strings.CutPrefix(name, "layers.")
	if !ok {
		return 0, "", false
	}
	num, suffix, ok := strings.Cut(rest, ".")
	if !ok || num == "" || len(num) > 6 {
		return 0, "", false
	}
	l := 0
	for _, ch := range num {
		if ch < '0' || ch > '9' {
			return 0, "", false
		}
		l = l*10 + int(ch-'0')
	}
	if l >= nLayers || (len(num) > 1 && num[0] == '0') {
		return 0, "", false
	}
	return l, suffix, true
}

func (s *hfSource) lookup(name string) (*safetensors.TensorInfo, int, error) {
	hf, heads, ok := s.hfTensorName(name)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s: tensor %q is not part of this model", ErrInput, s.dir, name)
	}
	t, err := s.m.Tensor(hf)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: tensor %q (%s) is missing", ErrInput, s.dir, name, hf)
	}
	if heads > 0 {
		if len(t.Shape) != 2 || t.Shape[0] != heads*s.cfg.HeadDim {
			return nil, 0, fmt.Errorf("%w: %s: %s has shape %v, want [%d, …] for %d heads of %d",
				ErrInput, t.File.Name, hf, t.Shape, heads*s.cfg.HeadDim, heads, s.cfg.HeadDim)
		}
	}
	return t, heads, nil
}

// hfRowMap returns, for q/k of heads heads of headDim rows, the HF row that
// holds interleaved row m: HF stores the even elements of each head's
// rotation pairs in the first half and the odd ones in the second
// (HF row h*hd + s*hd/2 + i = interleaved row h*hd + 2i + s).
func hfRowMap(headDim int) func(int) int {
	half := headDim / 2
	return func(m int) int {
		h, j := m/headDim, m%headDim
		return h*headDim + (j%2)*half + j/2
	}
}

// Tensor reads one whole tensor; prefer TensorRows for large ones.
func (s *hfSource) Tensor(name string) (*SourceTensor, error) {
	return WholeTensor(s, name)
}

// TensorRows streams a tensor in canonical row order.
func (s *hfSource) TensorRows(name string) ([]int, func([]float32) error, error) {
	t, heads, err := s.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	var rowMap func(int) int
	if heads > 0 {
		rowMap = hfRowMap(s.cfg.HeadDim)
	}
	decode, es := decoderFor(t.DType)
	shape := append([]int(nil), t.Shape...)
	next := rowReader(t.Reader(), shape, es, decode, rowMap, fmt.Sprintf("%s: tensor %s", t.File.Name, t.Name))
	return shape, next, nil
}

func decoderFor(dtype string) (func([]float32, []byte), int) {
	switch dtype {
	case safetensors.F16:
		return quant.DecodeF16LE, 2
	case safetensors.BF16:
		return quant.DecodeBF16LE, 2
	}
	return quant.DecodeF32LE, 4
}

// rowReader returns a function filling dst (whole rows) with the next rows
// of a row-major tensor stored at r, elemSize bytes per element; with
// rowMap, canonical row m is read from stored row rowMap(m).
func rowReader(r io.ReaderAt, shape []int, elemSize int, decode func([]float32, []byte), rowMap func(int) int, what string) func([]float32) error {
	rows, cols := 1, 1
	if len(shape) > 0 {
		cols = shape[len(shape)-1]
		for _, d := range shape[:len(shape)-1] {
			rows *= d
		}
	}
	rowBytes := int64(cols) * int64(elemSize)
	next := 0
	var buf []byte
	return func(dst []float32) error {
		if cols == 0 || len(dst)%cols != 0 {
			return fmt.Errorf("convert: %s: read of %d values is not a whole number of %d-value rows", what, len(dst), cols)
		}
		n := len(dst) / cols
		if next+n > rows {
			return fmt.Errorf("convert: %s: %w (read past row %d)", what, io.ErrUnexpectedEOF, rows)
		}
		if rowMap == nil {
			need := int64(n) * rowBytes
			if int64(cap(buf)) < need {
				buf = make([]byte, need)
			}
			buf = buf[:need]
			if _, err := r.ReadAt(buf, int64(next)*rowBytes); err != nil {
				return fmt.Errorf("convert: %s: %w", what, err)
			}
			decode(dst, buf)
		} else {
			if int64(cap(buf)) < rowBytes {
				buf = make([]byte, rowBytes)
			}
			buf = buf[:rowBytes]
			for k := 0; k < n; k++ {
				src := rowMap(next + k)
				if _, err := r.ReadAt(buf, int64(src)*rowBytes); err != nil {
					return fmt.Errorf("convert: %s row %d: %w", what, src, err)
				}
				decode(dst[k*cols:(k+1)*cols], buf)
			}
		}
		next += n
		return nil
	}
}
