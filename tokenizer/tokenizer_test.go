package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ember-llm/ember/llama/bundle"
)

func TestPreTokenizerGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pretok_golden.json"))
	require.NoError(t, err)
	var g struct {
		Strings []string              `json:"strings"`
		Splits  map[string][][]string `json:"splits"`
	}
	require.NoError(t, json.Unmarshal(data, &g))
	require.Greater(t, len(g.Strings), 300)
	fns := map[string]func(string, func(string)){"gpt2": splitGPT2, "llama3": splitLlama3, "qwen2": splitQwen2}
	for name, fn := range fns {
		want := g.Splits[name]
		require.Len(t, want, len(g.Strings), name)
		for i, s := range g.Strings {
			var got []string
			fn(s, func(w string) { got = append(got, w) })
			w := want[i]
			if len(w) == 0 {
				w = nil
			}
			require.Equal(t, w, got, "%s: %q", name, s)
		}
	}
}

func TestSplitSmolLM(t *testing.T) {
	var got []string
	splitSmolLM("in 2024, x12 ok", func(w string) { got = append(got, w) })
	require.Equal(t, []string{"in", " ", "2", "0", "2", "4", ",", " x", "1", "2", " ok"}, got)
}

// tinySP is a small SentencePiece vocabulary with byte fallback for unit
// tests that must not depend on real model files.
func tinySP(t *testing.T) *Tokenizer {
	t.Helper()
	bt := &bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, BOS: 1, EOS: 2, UNK: 0, PAD: -1,
		AddBOS: true, AddDummyPrefix: true, ByteFallback: true}
	add := func(p string, score float32, ty int32) {
		bt.Pieces = append(bt.Pieces, p)
		bt.Scores = append(bt.Scores, score)
		bt.Types = append(bt.Types, ty)
	}
	add("<unk>", 0, bundle.TokenUnknown)
	add("<s>", 0, bundle.TokenControl)
	add("</s>", 0, bundle.TokenControl)
	for b := 0; b < 256; b++ {
		add(bytePieceName(byte(b)), 0, bundle.TokenByte)
	}
	for i, p := range []string{"▁", "h", "e", "l", "o", "▁h", "ll", "▁he", "llo", "▁hello", "w", "r", "d", "▁w", "or", "▁wor", "ld", "▁world", "x", "y"} {
		add(p, -float32(i), bundle.TokenNormal)
	}
	add("<|eot|>", 0, bundle.TokenControl)
	add("[MARK]", 0, bundle.TokenUserDefined)
	bt.EOT = []int{len(bt.Pieces) - 2}
	tok, err := New(bt)
	require.NoError(t, err)
	return tok
}

func bytePieceName(b byte) string {
	const hex = "0123456789ABCDEF"
	return "<0x" + string([]byte{hex[b>>4], hex[b&15]}) + ">"
}

func pieces(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Piece(id)
	}
	return out
}

func TestSentencePieceBasics(t *testing.T) {
	tok := tinySP(t)
	ids := tok.Encode("hello world", EncodeOptions{AddBOS: true})
	require.Equal(t, []string{"<s>", "▁hello", "▁world"}, pieces(tok, ids))
	require.Equal(t, "hello world", tok.Decode(ids))

	// Unknown characters fall back to their UTF-8 bytes and decode back.
	ids = tok.Encode("hé🦙", EncodeOptions{})
	require.Equal(t, []string{"▁h", "<0xC3>", "<0xA9>", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"}, pieces(tok, ids))
	require.Equal(t, "hé🦙", tok.Decode(ids))

	// Special-token text is plain text unless ParseSpecial is set.
	plain := tok.Encode("x<s>y", EncodeOptions{})
	require.NotContains(t, plain, 1)
	require.Equal(t, "x<s>y", tok.Decode(plain))
	parsed := tok.Encode("x<s>y<|eot|>", EncodeOptions{ParseSpecial: true})
	require.Equal(t, []string{"▁", "x", "<s>", "▁", "y", "<|eot|>"}, pieces(tok, parsed))

	// User-defined pieces are always whole, and never merged.
	ids = tok.Encode("he[MARK]llo", EncodeOptions{})
	require.Equal(t, []string{"▁he", "[MARK]", "llo"}, pieces(tok, ids))

	require.True(t, tok.IsEOG(2))
	require.True(t, tok.IsEOG(tok.Encode("<|eot|>", EncodeOptions{ParseSpecial: true})[0]))
	require.False(t, tok.IsEOG(1))
	require.Empty(t, tok.Encode("", EncodeOptions{}))
	require.Equal(t, []int{1}, tok.Encode("", EncodeOptions{AddBOS: true}))
}

func TestStreamDecoder(t *testing.T) {
	tok := tinySP(t)
	text := "hello wörld 🦙 héllo"
	ids := tok.Encode(text, EncodeOptions{AddBOS: true})
	d := tok.NewDecoder()
	var sb strings.Builder
	for _, id := range ids {
		s := d.Add(id)
		// Every emitted chunk is complete UTF-8.
		require.True(t, strings.ToValidUTF8(s, "!") == s, "chunk %q", s)
		sb.WriteString(s)
	}
	sb.WriteString(d.Flush())
	require.Equal(t, text, sb.String())
	require.Equal(t, tok.Decode(ids), sb.String())

	// A character split across byte pieces appears only when complete.
	d = tok.NewDecoder()
	llama := tok.Encode("🦙", EncodeOptions{})
	require.Equal(t, "", d.Add(llama[0])) // ▁
	for _, id := range llama[1 : len(llama)-1] {
		require.Equal(t, "", d.Add(id))
	}
	require.Equal(t, "🦙", d.Add(llama[len(llama)-1]))

	// An unfinished character is flushed as U+FFFD per byte, like Decode.
	d = tok.NewDecoder()
	lead := tok.Encode("🦙", EncodeOptions{})[1:3] // <0xF0> <0x9F>
	require.Equal(t, "", d.Add(lead[0]))
	require.Equal(t, "", d.Add(lead[1]))
	require.Equal(t, "\uFFFD\uFFFD", d.Flush())
	require.Equal(t, "\uFFFD\uFFFD", tok.Decode(lead))
}

// spModelProto serializes pieces as a SentencePiece ModelProto.
func spModelProto(pieces []string, types []int32, trainer, normalizer []byte) []byte {
	var out []byte
	for i, p := range pieces {
		var sp []byte
		sp = protowire.AppendTag(sp, 1, protowire.BytesType)
		sp = protowire.AppendString(sp, p)
		sp = protowire.AppendTag(sp, 2, protowire.Fixed32Type)
		sp = protowire.AppendFixed32(sp, math.Float32bits(-float32(i)))
		sp = protowire.AppendTag(sp, 3, protowire.VarintType)
		sp = protowire.AppendVarint(sp, uint64(types[i]))
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, sp)
	}
	if trainer != nil {
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		out = protowire.AppendBytes(out, trainer)
	}
	if normalizer != nil {
		out = protowire.AppendTag(out, 3, protowire.BytesType)
		out = protowire.AppendBytes(out, normalizer)
	}
	return out
}

func varintField(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func TestParseSentencePieceErrors(t *testing.T) {
	pieces := []string{"<unk>", "<s>", "</s>", "▁a", "b"}
	types := []int32{2, 3, 3, 1, 1}
	bpe := varintField(nil, 3, 2)
	good := spModelProto(pieces, types, bpe, varintField(nil, 4, 0))
	bt, err := ParseSentencePiece(good, "x.model")
	require.NoError(t, err)
	require.Equal(t, pieces, bt.Pieces)
	require.False(t, bt.RemoveExtraWhitespaces)
	require.True(t, bt.AddDummyPrefix)

	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"truncated":     {good[:len(good)-3], "x.model"},
		"empty":         {nil, "no pieces"},
		"unigram":       {spModelProto(pieces, types, varintField(nil, 3, 1), nil), "model_type 1"},
		"bad type":      {spModelProto(pieces, []int32{2, 3, 3, 9, 1}, bpe, nil), "type 9"},
		"bos range":     {spModelProto(pieces, types, varintField(bpe, 41, 99), nil), "bos_id = 99"},
		"wire type":     {protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5), "wire type"},
		"garbage":       {[]byte{0xff, 0xff, 0xff}, "x.model"},
		"empty piece":   {spModelProto([]string{"<unk>", ""}, []int32{2, 1}, bpe, nil), "pieces[1] is empty"},
		"invalid utf-8": {spModelProto([]string{"<unk>", "\xff"}, []int32{2, 1}, bpe, nil), "UTF-8"},
	} {
		_, err := ParseSentencePiece(tc.data, "x.model")
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
		require.True(t, errors.Is(err, ErrInvalidFormat) || errors.Is(err, ErrUnsupported), name)
	}
}

func llama2cFile(maxLen int32, recs []string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(-i)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
	}
	return b
}

func TestParseLlama2C(t *testing.T) {
	recs := []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", " a", "b", " ab"}
	bt, err := ParseLlama2C(llama2cFile(8, recs), len(recs), "tok.bin")
	require.NoError(t, err)
	require.Equal(t, []string{"<unk>", "<s>", "</s>", "<0x0A>", "▁a", "b", "▁ab"}, bt.Pieces)
	require.Equal(t, []int32{2, 3, 3, 6, 1, 1, 1}, bt.Types)
	require.Equal(t, []int{0, 1, 2}, []int{bt.UNK, bt.BOS, bt.EOS})
	require.False(t, bt.ByteFallback) // only one byte piece

	for name, tc := range map[string]struct {
		data  []byte
		vocab int
		want  string
	}{
		"no vocab":  {llama2cFile(8, recs), 0, "vocab_size is needed"},
		"short":     {llama2cFile(8, recs)[:20], len(recs), "tok.bin"},
		"too many":  {llama2cFile(8, recs), len(recs) + 1, "tok.bin"},
		"trailing":  {llama2cFile(8, recs), len(recs) - 1, "trailing bytes"},
		"max len":   {llama2cFile(-1, recs), len(recs), "max_token_length"},
		"long":      {llama2cFile(2, recs), len(recs), "length 5"},
		"tiny file": {[]byte{1}, 3, "max_token_length"},
	} {
		_, err := ParseLlama2C(tc.data, tc.vocab, "tok.bin")
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
		require.Contains(t, err.Error(), "tok.bin", name)
	}
}

// tinyHFByteLevel is a Llama 3-shaped tokenizer.json over a tiny vocabulary.
func tinyHFByteLevel() (tokJSON, config, gen []byte) {
	vocab := map[string]int{}
	for b, r := range byteToRune {
		vocab[string(r)] = b
	}
	vocab["Ġh"] = 256
	vocab["Ġhi"] = 257
	merges := []string{"Ġ h", "Ġh i"}
	tj := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 258, "content": "<|begin_of_text|>", "special": true},
			{"id": 259, "content": "<|end_of_text|>", "special": true},
			{"id": 260, "content": "<|eot_id|>", "special": true},
			{"id": 261, "content": "<|start_header_id|>", "special": true},
			{"id": 262, "content": "<|end_header_id|>", "special": true},
		},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": hfPatternLlama3}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{
			map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>", "type_id": 0}},
			map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": true},
	}
	tokJSON, _ = json.Marshal(tj)
	config, _ = json.Marshal(map[string]any{
		"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
		"chat_template": []any{map[string]any{"name": "default", "template": "{{ bos_token }}x"}},
	})
	gen = []byte(`{"eos_token_id": [259, 260]}`)
	return
}

func TestParseHFJSONByteLevel(t *testing.T) {
	tj, cfg, gen := tinyHFByteLevel()
	bt, err := ParseHFJSON(tj, cfg, gen, "tokenizer.json")
	require.NoError(t, err)
	require.Equal(t, bundle.TokenizerByteBPE, bt.Kind)
	require.Equal(t, "llama3", bt.PreTokenizer)
	require.Equal(t, 258, bt.BOS)
	require.Equal(t, 259, bt.EOS)
	require.True(t, bt.AddBOS)
	require.Equal(t, []int{260}, bt.EOT)
	require.Equal(t, "{{ bos_token }}x", bt.ChatTemplate)
	tok, err := New(bt)
	require.NoError(t, err)
	ids := tok.Encode("hi hi<|eot_id|>", EncodeOptions{AddBOS: true, ParseSpecial: true})
	require.Equal(t, []int{258, 'h', 'i', 257, 260}, ids)
	require.Equal(t, "hi hi", tok.Decode(ids))
	require.True(t, tok.IsEOG(260))
	plain := tok.Encode("<|eot_id|>", EncodeOptions{})
	require.NotContains(t, plain, 260)
	require.Equal(t, "<|eot_id|>", tok.Decode(plain))

	// Merges may also be given as pairs (tokenizers ≥ 0.20).
	var m map[string]any
	require.NoError(t, json.Unmarshal(tj, &m))
	m["model"].(map[string]any)["merges"] = [][]string{{"Ġ", "h"}, {"Ġh", "i"}}
	tj2, _ := json.Marshal(m)
	bt2, err := ParseHFJSON(tj2, cfg, gen, "tokenizer.json")
	require.NoError(t, err)
	require.Equal(t, bt.Merges, bt2.Merges)
}

func TestParseHFJSONErrors(t *testing.T) {
	tj, _, _ := tinyHFByteLevel()
	var m map[string]any
	require.NoError(t, json.Unmarshal(tj, &m))
	mutate := func(f func(m map[string]any)) []byte {
		var c map[string]any
		require.NoError(t, json.Unmarshal(tj, &c))
		f(c)
		b, _ := json.Marshal(c)
		return b
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"not json": {[]byte("{"), "not a tokenizer.json"},
		"unigram":  {mutate(func(m map[string]any) { m["model"].(map[string]any)["type"] = "Unigram" }), "only BPE"},
		"hole":     {mutate(func(m map[string]any) { delete(m["model"].(map[string]any)["vocab"].(map[string]any), "Ġh") }), "no piece has id 256"},
		"merge":    {mutate(func(m map[string]any) { m["model"].(map[string]any)["merges"] = []string{"abc"} }), "merges[0]"},
		"pre": {mutate(func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "x"}}
		}), "pre-tokenizer"},
		"conflict": {mutate(func(m map[string]any) {
			m["added_tokens"] = []map[string]any{{"id": 1, "content": "<x>", "special": true}}
		}), "conflicts"},
	} {
		_, err := ParseHFJSON(tc.data, nil, nil, "dir/tokenizer.json")
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
		require.Contains(t, err.Error(), "dir/tokenizer.json", name)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{
			"tokenizer.ggml.model":      "llama",
			"tokenizer.ggml.tokens":     []string{"<unk>", "<s>", "</s>", "▁a"},
			"tokenizer.ggml.scores":     []float32{0, 0, 0, -1},
			"tokenizer.ggml.token_type": []int32{2, 3, 3, 1},
		}
	}
	bt, err := FromGGUF(good())
	require.NoError(t, err)
	require.Equal(t, bundle.TokenizerSentencePiece, bt.Kind)
	require.True(t, bt.AddBOS)
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		want string
	}{
		"no model":   {func(m map[string]any) { delete(m, "tokenizer.ggml.model") }, "tokenizer.ggml.model"},
		"bert":       {func(m map[string]any) { m["tokenizer.ggml.model"] = "bert" }, "bert"},
		"tokens":     {func(m map[string]any) { m["tokenizer.ggml.tokens"] = []int32{1} }, "tokenizer.ggml.tokens"},
		"scores len": {func(m map[string]any) { m["tokenizer.ggml.scores"] = []float32{0} }, "tokenizer.ggml.scores"},
		"types":      {func(m map[string]any) { m["tokenizer.ggml.token_type"] = []int32{2, 3, 3, 42} }, "token_type[3]"},
		"bos type":   {func(m map[string]any) { m["tokenizer.ggml.bos_token_id"] = "1" }, "bos_token_id"},
		"no merges":  {func(m map[string]any) { m["tokenizer.ggml.model"] = "gpt2" }, "merges"},
		"pre": {func(m map[string]any) {
			m["tokenizer.ggml.model"] = "gpt2"
			m["tokenizer.ggml.merges"] = []string{"▁ a"}
			m["tokenizer.ggml.pre"] = "mystery"
		}, "mystery"},
		"template": {func(m map[string]any) { m["tokenizer.chat_template"] = 3 }, "chat_template"},
	} {
		m := good()
		tc.edit(m)
		_, err := FromGGUF(m)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
	}
}

func TestLoadFileManifestAndDir(t *testing.T) {
	tj, cfg, _ := tinyHFByteLevel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644))
	bt, err := LoadFile(dir, 0)
	require.NoError(t, err)
	require.Equal(t, "llama3", bt.PreTokenizer)
	_, err = LoadFile(dir, 10)
	require.ErrorContains(t, err, "263 pieces but the model's vocabulary has 10")
	_, err = LoadFile(t.TempDir(), 0)
	require.ErrorContains(t, err, "no manifest.json")
	_, err = LoadFile(filepath.Join(dir, "missing.model"), 0)
	require.Error(t, err)
}

// TestLoadFileBundle loads the tokenizer of a (tiny, all-zero) bundle by its
// directory and by its manifest.json.
func TestLoadFileBundle(t *testing.T) {
	sp := tinySP(t).Info()
	cfg := bundle.Config{Architecture: "llama", Dim: 2, HiddenDim: 2, NLayers: 1, NHeads: 1, NKVHeads: 1, HeadDim: 2,
		VocabSize: len(sp.Pieces), ContextLength: 8, RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true,
		BOSTokenID: sp.BOS, EOSTokenIDs: []int{sp.EOS}}
	dir := filepath.Join(t.TempDir(), "bundle")
	w, err := bundle.Create(dir, 0)
	require.NoError(t, err)
	for name, shape := range cfg.ExpectedShapes() {
		n := bundle.ByteLength(bundle.F32, shape)
		require.NoError(t, w.WriteTensor(bundle.TensorSpec{Name: name, DType: bundle.F32, Shape: shape}, strings.NewReader(strings.Repeat("\x00", int(n)))))
	}
	require.NoError(t, w.Commit(&bundle.Manifest{Config: cfg, Tokenizer: *sp, Quantization: bundle.Quantization{Scheme: bundle.SchemeF32}}))
	for _, p := range []string{dir, filepath.Join(dir, bundle.ManifestFile)} {
		bt, err := LoadFile(p, cfg.VocabSize)
		require.NoError(t, err)
		require.Equal(t, sp.Pieces, bt.Pieces)
		require.Equal(t, sp.EOT, bt.EOT)
		tok, err := New(bt)
		require.NoError(t, err)
		require.Equal(t, "hello world", tok.Decode(tok.Encode("hello world", EncodeOptions{AddBOS: true})))
	}
}
