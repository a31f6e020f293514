package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ember-llm/ember/llama/bundle"
)

// hfTokenizer is the part of HuggingFace tokenizers' tokenizer.json read here.
type hfTokenizer struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		UnkToken     *string         `json:"unk_token"`
		ByteFallback bool            `json:"byte_fallback"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
	} `json:"model"`
}

// hfConfig is the part of tokenizer_config.json read here.
type hfConfig struct {
	ChatTemplate json.RawMessage `json:"chat_template"`
	BOSToken     json.RawMessage `json:"bos_token"`
	EOSToken     json.RawMessage `json:"eos_token"`
	UNKToken     json.RawMessage `json:"unk_token"`
	PADToken     json.RawMessage `json:"pad_token"`
	AddBOSToken  *bool           `json:"add_bos_token"`
	AddEOSToken  *bool           `json:"add_eos_token"`
}

// tokenString reads a special token given as "text" or {"content": "text"}.
func tokenString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Content
	}
	return ""
}

// ParseHFJSON decodes a HuggingFace tokenizer.json with a BPE model, either
// SentencePiece-style (Llama 2, TinyLlama, Mistral: ▁ for spaces, byte
// fallback) or byte-level (GPT-2, Llama 3, SmolLM). config and genConfig are
// the tokenizer_config.json and generation_config.json beside it (nil when
// absent). file names the source in errors.
//
// Normalizers other than SentencePiece's space handling (Qwen2's NFC, for
// one) are not applied, as in llama.cpp: text already in that form, which is
// nearly all text, encodes the same.
func ParseHFJSON(data, config, genConfig []byte, file string) (*bundle.Tokenizer, error) {
	var h hfTokenizer
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, invalidf(file, "not a tokenizer.json: %v", err)
	}
	if h.Model.Type != "BPE" && !(h.Model.Type == "" && h.Model.Vocab != nil && len(h.Model.Merges) > 0) {
		if h.Model.Type == "" {
			return nil, invalidf(file, "model.type is missing")
		}
		return nil, fmt.Errorf("%w: %s: model.type %q (only BPE is supported)", ErrUnsupported, file, h.Model.Type)
	}
	if len(h.Model.Vocab) == 0 {
		return nil, invalidf(file, "model.vocab is empty")
	}
	var cfg hfConfig
	if len(config) > 0 {
		if err := json.Unmarshal(config, &cfg); err != nil {
			return nil, invalidf(strings.TrimSuffix(file, "tokenizer.json")+"tokenizer_config.json", "not valid JSON: %v", err)
		}
	}

	// Pieces by id: the model vocabulary plus added tokens.
	n := 0
	for p, id := range h.Model.Vocab {
		if id < 0 || id >= maxPieces {
			return nil, invalidf(file, "model.vocab[%q] = %d is out of range", p, id)
		}
		n = max(n, id+1)
	}
	for i, a := range h.AddedTokens {
		if a.ID < 0 || a.ID >= maxPieces {
			return nil, invalidf(file, "added_tokens[%d] id %d is out of range", i, a.ID)
		}
		n = max(n, a.ID+1)
	}
	t := &bundle.Tokenizer{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	t.Pieces = make([]string, n)
	t.Types = make([]int32, n)
	set := make([]bool, n)
	for p, id := range h.Model.Vocab {
		if set[id] && t.Pieces[id] != p {
			return nil, invalidf(file, "model.vocab gives id %d to both %q and %q", id, t.Pieces[id], p)
		}
		if !utf8.ValidString(p) || p == "" {
			return nil, invalidf(file, "model.vocab has an empty or invalid UTF-8 piece (id %d)", id)
		}
		t.Pieces[id], t.Types[id], set[id] = p, bundle.TokenNormal, true
	}
	for _, a := range h.AddedTokens {
		if a.Content == "" || !utf8.ValidString(a.Content) {
			return nil, invalidf(file, "added token %d is empty or not valid UTF-8", a.ID)
		}
		if set[a.ID] && t.Pieces[a.ID] != a.Content {
			return nil, invalidf(file, "added token %d %q conflicts with vocabulary piece %q", a.ID, a.Content, t.Pieces[a.ID])
		}
		t.Pieces[a.ID], set[a.ID] = a.Content, true
		if a.Special {
			t.Types[a.ID] = bundle.TokenControl
		} else {
			t.Types[a.ID] = bundle.TokenUserDefined
		}
	}
	for id, ok := range set {
		if !ok {
			return nil, invalidf(file, "no piece has id %d (ids must be contiguous)", id)
		}
	}
	merges, err := parseHFMerges(h.Model.Merges, file)
	if err != nil {
		return nil, err
	}

	byteLevel := containsType(h.PreTokenizer, "ByteLevel") || containsType(h.Decoder, "ByteLevel")
	index := make(map[string]int, n)
	for i := n - 1; i >= 0; i-- {
		index[t.Pieces[i]] = i
	}
	if byteLevel {
		t.Kind = bundle.TokenizerByteBPE
		t.Merges = merges
		pre, err := hfPreTokenizer(h.PreTokenizer)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnsupported, file, err)
		}
		t.PreTokenizer = pre
	} else {
		t.Kind = bundle.TokenizerSentencePiece
		t.ByteFallback = h.Model.ByteFallback
		t.AddDummyPrefix = hfDummyPrefix(h.Normalizer, h.PreTokenizer)
		if h.Model.UnkToken != nil {
			if id, ok := index[*h.Model.UnkToken]; ok {
				t.UNK = id
				t.Types[id] = bundle.TokenUnknown
			}
		}
		if t.ByteFallback {
			for i, p := range t.Pieces {
				if t.Types[i] == bundle.TokenNormal && isBytePiece(p) {
					t.Types[i] = bundle.TokenByte
				}
			}
		}
		// SentencePiece merges by piece score; HF ordered the merges by that
		// score, so a piece's first merge rank stands in for it.
		t.Scores = make([]float32, n)
		rank := make(map[string]int, len(merges))
		for r, m := range merges {
			a, b, _ := strings.Cut(m, " ")
			if _, ok := rank[a+b]; !ok {
				rank[a+b] = r
			}
		}
		for i, p := range t.Pieces {
			if r, ok := rank[p]; ok {
				t.Scores[i] = -float32(r + 1)
			} else if utf8.RuneCountInString(p) > 1 {
				t.Scores[i] = -float32(len(merges) + 1 + i)
			}
		}
	}

	lookup := func(s string) int {
		if s == "" {
			return -1
		}
		if id, ok := index[s]; ok {
			return id
		}
		return -1
	}
	t.BOS = lookup(tokenString(cfg.BOSToken))
	t.EOS = lookup(tokenString(cfg.EOSToken))
	if u := lookup(tokenString(cfg.UNKToken)); u >= 0 {
		t.UNK = u
	}
	t.PAD = lookup(tokenString(cfg.PADToken))
	if t.BOS < 0 && len(config) == 0 {
		for _, s := range []string{"<s>", "<|begin_of_text|>", "<|startoftext|>"} {
			if t.BOS = lookup(s); t.BOS >= 0 {
				break
			}
		}
	}
	if t.EOS < 0 && len(config) == 0 {
		for _, s := range []string{"</s>", "<|end_of_text|>", "<|endoftext|>"} {
			if t.EOS = lookup(s); t.EOS >= 0 {
				break
			}
		}
	}
	if cfg.AddBOSToken != nil {
		t.AddBOS = *cfg.AddBOSToken
	} else {
		t.AddBOS = t.BOS >= 0 && postProcessorAddsBOS(h.PostProcessor, t.Pieces[max(t.BOS, 0)])
	}
	if cfg.AddEOSToken != nil {
		t.AddEOS = *cfg.AddEOSToken
	}
	tmpl, err := chatTemplateFromConfig(cfg.ChatTemplate)
	if err != nil {
		return nil, invalidf(file, "tokenizer_config.json chat_template: %v", err)
	}
	t.ChatTemplate = tmpl
	addEOTByName(t)
	if len(genConfig) > 0 {
		var g struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if json.Unmarshal(genConfig, &g) == nil {
			var one int
			var many []int
			if json.Unmarshal(g.EOS, &one) == nil {
				many = []int{one}
			} else {
				_ = json.Unmarshal(g.EOS, &many)
			}
			for _, id := range many {
				if id >= 0 && id < n {
					t.EOT = append(t.EOT, id)
				}
			}
		}
	}
	return finish(t, file)
}

// chatTemplateFromConfig reads chat_template as a string or as a list of
// {name, template}, preferring the one named "default".
func chatTemplateFromConfig(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", err
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}

func parseHFMerges(raw json.RawMessage, file string) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		for i, m := range strs {
			if strings.Count(m, " ") != 1 {
				return nil, invalidf(file, "model.merges[%d] %q is not two pieces separated by one space", i, m)
			}
		}
		return strs, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, invalidf(file, "model.merges is neither a list of strings nor of pairs: %v", err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 || strings.Contains(p[0], " ") || strings.Contains(p[1], " ") {
			return nil, invalidf(file, "model.merges[%d] is not a pair of pieces without spaces", i)
		}
		out[i] = p[0] + " " + p[1]
	}
	return out, nil
}

// walkJSON calls fn for every JSON object inside raw.
func walkJSON(raw json.RawMessage, fn func(map[string]json.RawMessage)) {
	if len(raw) == 0 {
		return
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '{':
		var o map[string]json.RawMessage
		if json.Unmarshal(raw, &o) != nil {
			return
		}
		fn(o)
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkJSON(o[k], fn)
		}
	case len(raw) > 0 && raw[0] == '[':
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) != nil {
			return
		}
		for _, e := range a {
			walkJSON(e, fn)
		}
	}
}

func jsonString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func containsType(raw json.RawMessage, typ string) bool {
	found := false
	walkJSON(raw, func(o map[string]json.RawMessage) {
		if jsonString(o["type"]) == typ {
			found = true
		}
	})
	return found
}

// hfDummyPrefix reports whether the normalizer or pre-tokenizer prepends ▁.
func hfDummyPrefix(normalizer, pre json.RawMessage) bool {
	prefix := false
	walkJSON(normalizer, func(o map[string]json.RawMessage) {
		if jsonString(o["type"]) == "Prepend" && jsonString(o["prepend"]) == "▁" {
			prefix = true
		}
	})
	walkJSON(pre, func(o map[string]json.RawMessage) {
		if jsonString(o["type"]) != "Metaspace" {
			return
		}
		if s := jsonString(o["prepend_scheme"]); s != "" {
			prefix = s != "never"
			return
		}
		var add bool
		if json.Unmarshal(o["add_prefix_space"], &add) == nil && add {
			prefix = true
		}
	})
	return prefix
}

// Split patterns of the byte-level pre-tokenizers this package implements
// (as written in tokenizer.json).
const (
	hfPatternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	hfPatternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	hfPatternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// hfPreTokenizer names the split pattern of a byte-level pre-tokenizer.
func hfPreTokenizer(raw json.RawMessage) (string, error) {
	var patterns []string
	digits, byteLevelRegex, addPrefix := false, false, false
	walkJSON(raw, func(o map[string]json.RawMessage) {
		switch jsonString(o["type"]) {
		case "Split":
			var p struct {
				Regex  string `json:"Regex"`
				String string `json:"String"`
			}
			_ = json.Unmarshal(o["pattern"], &p)
			patterns = append(patterns, p.Regex+p.String)
		case "Digits":
			var ind bool
			_ = json.Unmarshal(o["individual_digits"], &ind)
			digits = digits || ind
		case "ByteLevel":
			use := true
			if r, ok := o["use_regex"]; ok {
				_ = json.Unmarshal(r, &use)
			}
			byteLevelRegex = byteLevelRegex || use
			var prefix bool
			_ = json.Unmarshal(o["add_prefix_space"], &prefix)
			addPrefix = addPrefix || prefix
		}
	})
	switch {
	case addPrefix:
		return "", fmt.Errorf("byte-level pre-tokenizer with add_prefix_space is not supported")
	case len(patterns) == 1 && patterns[0] == hfPatternLlama3 && !digits:
		return "llama3", nil
	case len(patterns) == 1 && patterns[0] == hfPatternQwen2 && !digits:
		return "qwen2", nil
	case len(patterns) == 1 && patterns[0] == hfPatternGPT2 && !digits:
		return "gpt2", nil
	case len(patterns) == 0 && digits && byteLevelRegex:
		return "smollm", nil
	case len(patterns) == 0 && !digits && byteLevelRegex:
		return "gpt2", nil
	}
	return "", fmt.Errorf("byte-level pre-tokenizer %s is not one of gpt2, llama3, qwen2, smollm", compactJSON(raw))
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	s := b.String()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// postProcessorAddsBOS reports whether a TemplateProcessing post-processor
// starts single sequences with the BOS piece.
func postProcessorAddsBOS(raw json.RawMessage, bos string) bool {
	adds := false
	walkJSON(raw, func(o map[string]json.RawMessage) {
		if jsonString(o["type"]) != "TemplateProcessing" {
			return
		}
		var single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		}
		if json.Unmarshal(o["single"], &single) == nil && len(single) > 0 && single[0].SpecialToken != nil {
			adds = single[0].SpecialToken.ID == bos
		}
	})
	return adds
}
