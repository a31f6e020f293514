package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
)

// exercise runs a loaded vocabulary through New, Encode and Decode: whatever
// a loader accepts must be usable without panics.
func exercise(t *testing.T, bt *bundle.Tokenizer) {
	tok, err := New(bt)
	if err != nil {
		return
	}
	for _, s := range []string{"", "hello world", " <s> \xff\n\t", "日本語 🦙"} {
		for _, special := range []bool{false, true} {
			ids := tok.Encode(s, EncodeOptions{AddBOS: true, ParseSpecial: special})
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("Encode(%q) gave id %d outside the %d pieces", s, id, tok.VocabSize())
				}
			}
			tok.Decode(ids)
			d := tok.NewDecoder()
			for _, id := range ids {
				d.Add(id)
			}
			d.Flush()
		}
	}
	_, _ = tok.ApplyChatTemplate([]Message{{"user", "hi"}}, true)
}

func FuzzParseSentencePiece(f *testing.F) {
	pieces := []string{"<unk>", "<s>", "</s>", "▁", "a", "▁a", "<0x41>"}
	types := []int32{2, 3, 3, 1, 1, 1, 6}
	good := spModelProto(pieces, types, varintField(nil, 3, 2), varintField(nil, 4, 0))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(spModelProto(pieces, types, nil, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		bt, err := ParseSentencePiece(data, "fuzz.model")
		if err != nil {
			return
		}
		exercise(t, bt)
	})
}

func FuzzParseLlama2C(f *testing.F) {
	recs := []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", " a", "b", " ab"}
	f.Add(llama2cFile(8, recs), uint16(len(recs)))
	f.Add(llama2cFile(8, recs)[:17], uint16(3))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, vocab uint16) {
		bt, err := ParseLlama2C(data, int(vocab), "fuzz.bin")
		if err != nil {
			return
		}
		if len(bt.Pieces) != int(vocab) {
			t.Fatalf("%d pieces, want %d", len(bt.Pieces), vocab)
		}
		exercise(t, bt)
	})
}

func FuzzParseHFJSON(f *testing.F) {
	// Small seeds keep the fuzzer's input minimization fast.
	f.Add([]byte(`{"added_tokens":[{"id":5,"content":"<|eot|>","special":true}],"pre_tokenizer":{"type":"ByteLevel"},`+
		`"model":{"type":"BPE","vocab":{"Ġ":0,"h":1,"i":2,"Ġh":3,"Ġhi":4},"merges":["Ġ h","Ġh i"]}}`),
		[]byte(`{"bos_token":"<|eot|>","eos_token":{"content":"<|eot|>"},"chat_template":"{{ bos_token }}"}`), []byte(`{"eos_token_id":[5]}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"],"byte_fallback":true}}`), []byte(`{"add_bos_token":false}`), []byte(nil))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"pre_tokenizer":{"type":"Metaspace","prepend_scheme":"first"}}`), []byte(nil), []byte(`{"eos_token_id":0}`))
	f.Fuzz(func(t *testing.T, data, config, gen []byte) {
		bt, err := ParseHFJSON(data, config, gen, "fuzz/tokenizer.json")
		if err != nil {
			return
		}
		exercise(t, bt)
	})
}

// FuzzFromGGUF builds GGUF metadata from the fuzz input: tokens separated by
// NUL, a type byte and score per token, merges from adjacent token pairs.
func FuzzFromGGUF(f *testing.F) {
	f.Add("<unk>\x00<s>\x00</s>\x00▁\x00a\x00▁a", []byte{2, 3, 3, 1, 1, 1}, false, uint16(1), "")
	f.Add("a\x00b\x00ab\x00Ġ\x00Ġa", []byte{1, 1, 1, 1, 1}, true, uint16(0), "llama-bpe")
	f.Add("", []byte{}, true, uint16(7), "gpt-2")
	f.Fuzz(func(t *testing.T, tokens string, types []byte, gpt2 bool, bos uint16, pre string) {
		toks := strings.Split(tokens, "\x00")
		md := map[string]any{
			"tokenizer.ggml.model":        "llama",
			"tokenizer.ggml.tokens":       toks,
			"tokenizer.ggml.bos_token_id": uint32(bos),
			"tokenizer.ggml.pre":          pre,
		}
		scores := make([]float32, len(toks))
		ty := make([]int32, len(toks))
		for i := range toks {
			scores[i] = -float32(i)
			if i < len(types) {
				ty[i] = int32(types[i])
			} else {
				ty[i] = 1
			}
		}
		md["tokenizer.ggml.scores"] = scores
		if len(types) > 0 {
			md["tokenizer.ggml.token_type"] = ty
		}
		if gpt2 {
			md["tokenizer.ggml.model"] = "gpt2"
			var merges []string
			for i := 0; i+1 < len(toks); i++ {
				merges = append(merges, toks[i]+" "+toks[i+1])
			}
			md["tokenizer.ggml.merges"] = merges
		}
		bt, err := FromGGUF(md)
		if err != nil {
			return
		}
		exercise(t, bt)
	})
}

var (
	llama2Once sync.Once
	llama2Tok  *Tokenizer
)

// realLlama2 loads the real Llama 2 vocabulary when $EMBER_MODELS has it.
func realLlama2() *Tokenizer {
	llama2Once.Do(func() {
		dir := os.Getenv("EMBER_MODELS")
		if dir == "" {
			dir = filepath.Join("..", "..", "shared", "models")
		}
		bt, err := LoadFile(filepath.Join(dir, "llama2-tokenizer", "tokenizer.model"), 32000)
		if err == nil {
			llama2Tok, _ = New(bt)
		}
	})
	return llama2Tok
}

// expectedRoundTrip is what decode(encode(s)) must give: malformed bytes
// become U+FFFD, and for SentencePiece U+2581 reads back as a space.
func expectedRoundTrip(s string, spm bool) string {
	v := validUTF8([]byte(s))
	if spm {
		v = strings.ReplaceAll(v, spaceSymbol, " ")
	}
	return v
}

// FuzzEncodeDecode checks that decode(encode(x)) gives x back (up to the
// normalizations above), that ids are in range, and that streaming decode
// agrees with Decode, for SentencePiece (a tiny vocabulary and, when
// available, Llama 2's) and byte-level BPE.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "hello world", "  x  ", "\xe6\x97", "🦙\t\n<s>", "a\u0301b", "'s 'LL 123456", "▁▁x"} {
		f.Add(s)
	}
	sp := tinySP(&testing.T{})
	tj, cfg, gen := tinyHFByteLevel()
	bbt, err := ParseHFJSON(tj, cfg, gen, "tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	bl, err := New(bbt)
	if err != nil {
		f.Fatal(err)
	}
	toks := []*Tokenizer{sp, bl}
	if l := realLlama2(); l != nil {
		toks = append(toks, l)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			ids := tok.Encode(s, EncodeOptions{})
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range", id)
				}
			}
			got := tok.Decode(ids)
			if want := expectedRoundTrip(s, tok.spm != nil); got != want {
				t.Fatalf("decode(encode(%q)) = %q, want %q (ids %v)", s, got, want, ids)
			}
			d := tok.NewDecoder()
			var sb strings.Builder
			for _, id := range ids {
				sb.WriteString(d.Add(id))
			}
			sb.WriteString(d.Flush())
			if sb.String() != got {
				t.Fatalf("stream decode %q != Decode %q", sb.String(), got)
			}
		}
	})
}
