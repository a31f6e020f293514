// Package hffixture writes a small HuggingFace-layout Llama checkpoint
// directory from deterministic random weights, for tests: config.json
// (model_type llama, GQA via num_key_value_heads), bf16 tensors under HF
// names sharded over several model-0000k-of-0000n.safetensors files with
// model.safetensors.index.json, q_proj/k_proj rows in HF's rotate-half
// layout, and a tokenizer (a small byte-level BPE tokenizer.json built here,
// or a tokenizer file the caller names, copied into the directory).
//
// Write also returns the same weights in Ember's canonical form (bundle
// names, [out, in], interleaved RoPE rows, exactly the stored bf16 values
// widened to f32), so tests can check a conversion bit for bit.
//
// Test support only: nothing in the product imports it.
package hffixture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/safetensors"
	"github.com/ember-llm/ember/quant"
)

// Config is the shape of the checkpoint to write.
type Config struct {
	Dim, HiddenDim, NLayers, NHeads, NKVHeads, VocabSize int
	HeadDim                                              int // 0: Dim/NHeads (written to config.json only when different)
	ContextLength                                        int // max_position_embeddings
	RopeTheta, NormEps                                   float64
	TiedEmbeddings                                       bool   // tie_word_embeddings; no lm_head.weight when true
	Shards                                               int    // safetensors files (>= 2 gives an index; 1 writes model.safetensors)
	DType                                                string // "BF16" (default), "F16" or "F32"
	// TokenizerFile, when set, is copied into the directory under its own
	// base name (tokenizer.model or tokenizer.json) instead of the generated
	// byte-level BPE tokenizer.json.
	TokenizerFile string
	BOSTokenID    int // used only with TokenizerFile; the generated tokenizer sets its own
	EOSTokenID    int
}

// Tiny is a small GQA configuration that still exercises every code path.
func Tiny() Config {
	return Config{Dim: 64, HiddenDim: 160, NLayers: 2, NHeads: 4, NKVHeads: 2, VocabSize: 320,
		ContextLength: 256, RopeTheta: 10000, NormEps: 1e-5, Shards: 2}
}

// Weights is the checkpoint in Ember's canonical form.
type Weights struct {
	Config  bundle.Config        // what a converter should derive from config.json
	Tensors map[string][]float32 // canonical name → values, [out, in] row-major, interleaved q/k
	Shapes  map[string][]int
}

func (c *Config) headDim() int {
	if c.HeadDim > 0 {
		return c.HeadDim
	}
	return c.Dim / max(c.NHeads, 1)
}

func (c *Config) validate() error {
	switch {
	case c.Dim <= 0 || c.HiddenDim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0:
		return errors.New("hffixture: dimensions must be positive")
	case c.NHeads%c.NKVHeads != 0:
		return errors.New("hffixture: n_heads must be a multiple of n_kv_heads")
	case c.HeadDim == 0 && c.Dim%c.NHeads != 0:
		return errors.New("hffixture: dim must be a multiple of n_heads")
	case c.headDim()%2 != 0:
		return errors.New("hffixture: head_dim must be even (RoPE rotates pairs)")
	case c.TokenizerFile == "" && c.VocabSize < minVocab:
		return fmt.Errorf("hffixture: the generated tokenizer needs vocab_size >= %d", minVocab)
	case c.VocabSize <= 0:
		return errors.New("hffixture: vocab_size must be positive")
	}
	return nil
}

// hfName maps a canonical tensor name to its HuggingFace name.
func hfName(name string) string {
	switch name {
	case bundle.TokEmbeddings:
		return "model.embed_tokens.weight"
	case bundle.FinalNorm:
		return "model.norm.weight"
	case bundle.Output:
		return "lm_head.weight"
	}
	var l int
	var suffix string
	if _, err := fmt.Sscanf(name, "layers.%d.%s", &l, &suffix); err != nil {
		panic("hffixture: unexpected tensor " + name)
	}
	hf := map[string]string{
		bundle.AttnNorm: "input_layernorm.weight",
		bundle.WQ:       "self_attn.q_proj.weight",
		bundle.WK:       "self_attn.k_proj.weight",
		bundle.WV:       "self_attn.v_proj.weight",
		bundle.WO:       "self_attn.o_proj.weight",
		bundle.FFNNorm:  "post_attention_layernorm.weight",
		bundle.W1:       "mlp.gate_proj.weight",
		bundle.W2:       "mlp.down_proj.weight",
		bundle.W3:       "mlp.up_proj.weight",
	}[suffix]
	return fmt.Sprintf("model.layers.%d.%s", l, hf)
}

// permuteToHF is HF's convert_llama_weights_to_hf.py permute, written as
// its tensor operations: view (heads, hd/2, 2, cols), swap axes 1 and 2,
// reshape back. Meta row h*hd+2i+s becomes HF row h*hd+s*hd/2+i.
func permuteToHF(w []float32, heads, headDim, cols int) []float32 {
	out := make([]float32, len(w))
	half := headDim / 2
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for s := 0; s < 2; s++ {
				src := (h*headDim + 2*i + s) * cols    // view index (h, i, s)
				dst := (h*headDim + s*half + i) * cols // transposed index (h, s, i)
				copy(out[dst:dst+cols], w[src:src+cols])
			}
		}
	}
	return out
}

// Write writes the checkpoint into dir (created if needed) and returns the
// canonical weights.
func Write(dir string, cfg Config, seed uint64) (*Weights, error) {
	if cfg.Shards <= 0 {
		cfg.Shards = 2
	}
	if cfg.DType == "" {
		cfg.DType = safetensors.BF16
	}
	if cfg.ContextLength <= 0 {
		cfg.ContextLength = 256
	}
	if cfg.RopeTheta == 0 {
		cfg.RopeTheta = 10000
	}
	if cfg.NormEps == 0 {
		cfg.NormEps = 1e-5
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	hd := cfg.headDim()
	bc := bundle.Config{Architecture: "llama", Dim: cfg.Dim, HiddenDim: cfg.HiddenDim, NLayers: cfg.NLayers,
		NHeads: cfg.NHeads, NKVHeads: cfg.NKVHeads, HeadDim: hd, VocabSize: cfg.VocabSize,
		ContextLength: cfg.ContextLength, RopeTheta: cfg.RopeTheta, NormEps: cfg.NormEps,
		TiedEmbeddings: cfg.TiedEmbeddings, BOSTokenID: cfg.BOSTokenID, EOSTokenIDs: []int{cfg.EOSTokenID}}

	// Tokenizer first: the generated one fixes the special ids.
	if cfg.TokenizerFile != "" {
		if err := copyFile(cfg.TokenizerFile, filepath.Join(dir, filepath.Base(cfg.TokenizerFile))); err != nil {
			return nil, err
		}
	} else {
		bos, eos, err := writeTokenizer(dir, cfg.VocabSize)
		if err != nil {
			return nil, err
		}
		bc.BOSTokenID, bc.EOSTokenIDs = bos, []int{eos}
	}

	w := &Weights{Config: bc, Tensors: map[string][]float32{}, Shapes: bc.ExpectedShapes()}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	names := orderedNames(&bc)
	var entries []safetensors.Entry
	for _, name := range names {
		shape := w.Shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			if len(shape) == 1 {
				x[i] = float32(1 + 0.1*rng.NormFloat64())
			} else {
				x[i] = float32(0.05 * rng.NormFloat64())
			}
		}
		raw := encode(x, cfg.DType) // also rounds x to the stored precision
		w.Tensors[name] = x
		stored := x
		suffix := ""
		if len(name) > len(bundle.WQ) {
			suffix = name[len(name)-len(bundle.WQ):]
		}
		switch suffix {
		case bundle.WQ:
			stored = permuteToHF(x, cfg.NHeads, hd, cfg.Dim)
		case bundle.WK:
			stored = permuteToHF(x, cfg.NKVHeads, hd, cfg.Dim)
		}
		if suffix == bundle.WQ || suffix == bundle.WK {
			raw = encode(stored, cfg.DType)
		}
		entries = append(entries, safetensors.Entry{Name: hfName(name), DType: cfg.DType, Shape: shape, Data: raw})
	}
	if err := writeShards(dir, entries, cfg.Shards); err != nil {
		return nil, err
	}
	if err := writeConfig(dir, &cfg, &bc); err != nil {
		return nil, err
	}
	return w, nil
}

// orderedNames lists the tensors in checkpoint order (embedding, layers, norm, head).
func orderedNames(c *bundle.Config) []string {
	names := []string{bundle.TokEmbeddings}
	for l := 0; l < c.NLayers; l++ {
		for _, s := range []string{bundle.AttnNorm, bundle.WQ, bundle.WK, bundle.WV, bundle.WO, bundle.FFNNorm, bundle.W1, bundle.W2, bundle.W3} {
			names = append(names, bundle.LayerTensor(l, s))
		}
	}
	names = append(names, bundle.FinalNorm)
	if !c.TiedEmbeddings {
		names = append(names, bundle.Output)
	}
	return names
}

// encode stores x in dtype and rounds x in place to the stored value.
func encode(x []float32, dtype string) []byte {
	var out []byte
	switch dtype {
	case safetensors.BF16:
		for i, v := range x {
			h := quant.F32ToBF16(v)
			x[i] = quant.BF16ToF32(h)
			out = append(out, byte(h), byte(h>>8))
		}
	case safetensors.F16:
		for i, v := range x {
			h := quant.F32ToF16(v)
			x[i] = quant.F16ToF32(h)
			out = append(out, byte(h), byte(h>>8))
		}
	default:
		out = quant.AppendF32LE(out, x)
	}
	return out
}

func writeShards(dir string, entries []safetensors.Entry, shards int) error {
	if shards == 1 {
		return safetensors.WriteFile(filepath.Join(dir, safetensors.SingleFile), map[string]string{"format": "pt"}, entries)
	}
	shards = min(shards, len(entries))
	weightMap := map[string]string{}
	var total int64
	per := (len(entries) + shards - 1) / shards
	for k := 0; k < shards; k++ {
		part := entries[min(k*per, len(entries)):min((k+1)*per, len(entries))]
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", k+1, shards)
		if err := safetensors.WriteFile(filepath.Join(dir, file), map[string]string{"format": "pt"}, part); err != nil {
			return err
		}
		for _, e := range part {
			weightMap[e.Name] = file
			total += int64(len(e.Data))
		}
	}
	return safetensors.WriteIndex(filepath.Join(dir, safetensors.IndexFile), total, weightMap)
}

func writeConfig(dir string, cfg *Config, bc *bundle.Config) error {
	m := map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              "llama",
		"hidden_size":             cfg.Dim,
		"intermediate_size":       cfg.HiddenDim,
		"num_hidden_layers":       cfg.NLayers,
		"num_attention_heads":     cfg.NHeads,
		"num_key_value_heads":     cfg.NKVHeads,
		"vocab_size":              cfg.VocabSize,
		"max_position_embeddings": cfg.ContextLength,
		"rope_theta":              cfg.RopeTheta,
		"rms_norm_eps":            cfg.NormEps,
		"tie_word_embeddings":     cfg.TiedEmbeddings,
		"hidden_act":              "silu",
		"attention_bias":          false,
		"mlp_bias":                false,
		"torch_dtype":             map[string]string{"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[cfg.DType],
		"bos_token_id":            bc.BOSTokenID,
		"eos_token_id":            bc.EOSTokenIDs[0],
		"rope_scaling":            nil,
	}
	if cfg.HeadDim > 0 && cfg.HeadDim != cfg.Dim/cfg.NHeads {
		m["head_dim"] = cfg.HeadDim
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hffixture: tokenizer: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("hffixture: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("hffixture: copy tokenizer: %w", err)
	}
	return out.Close()
}
