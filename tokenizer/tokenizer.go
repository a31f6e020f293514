package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ember-llm/ember/llama/bundle"
)

// EncodeOptions control Encode.
type EncodeOptions struct {
	// AddBOS prepends the BOS id (when the vocabulary has one).
	AddBOS bool
	// ParseSpecial turns control-token texts in the input ("<s>",
	// "<|eot_id|>") into their ids; by default they are plain text, so user
	// input cannot inject them.
	ParseSpecial bool
}

// Tokenizer encodes and decodes text for one vocabulary. It is safe for
// concurrent use.
type Tokenizer struct {
	t      *bundle.Tokenizer
	n      int
	spm    *spModel
	bpe    *bpeModel
	types  []int32
	bos    int
	eos    int
	eot    map[int]bool
	always *matcher // pieces matched as whole tokens in any text
	parsed *matcher // pieces matched only with ParseSpecial
	// builtin names the built-in chat template used when the model has none.
	builtin string
}

// New checks a vocabulary and prepares it for encoding.
func New(bt *bundle.Tokenizer) (*Tokenizer, error) {
	if bt == nil {
		return nil, fmt.Errorf("%w: nil tokenizer", ErrInvalidFormat)
	}
	cp := *bt
	if _, err := finish(&cp, "tokenizer"); err != nil {
		return nil, err
	}
	t := &Tokenizer{t: bt, n: len(bt.Pieces), bos: bt.BOS, eos: bt.EOS, eot: map[int]bool{}}
	t.types = bt.Types
	if len(t.types) != t.n {
		t.types = make([]int32, t.n)
		for i := range t.types {
			t.types[i] = bundle.TokenNormal
		}
	}
	if bt.EOS >= 0 {
		t.eot[bt.EOS] = true
	}
	for _, id := range bt.EOT {
		t.eot[id] = true
	}
	var always, parsed []string
	var alwaysIDs, parsedIDs []int
	for i, p := range bt.Pieces {
		switch t.types[i] {
		case bundle.TokenUserDefined:
			if bt.Kind == bundle.TokenizerByteBPE {
				always, alwaysIDs = append(always, p), append(alwaysIDs, i)
			}
		case bundle.TokenControl, bundle.TokenUnknown:
			parsed, parsedIDs = append(parsed, p), append(parsedIDs, i)
		}
	}
	t.always = newMatcher(always, alwaysIDs)
	t.parsed = newMatcher(append(parsed, always...), append(parsedIDs, alwaysIDs...))
	var err error
	switch bt.Kind {
	case bundle.TokenizerSentencePiece:
		t.spm, err = newSPModel(bt, t.types)
	case bundle.TokenizerByteBPE:
		t.bpe, err = newBPEModel(bt, t.types)
	default:
		err = fmt.Errorf("%w: tokenizer kind %q", ErrUnsupported, bt.Kind)
	}
	if err != nil {
		return nil, err
	}
	t.builtin = t.builtinName()
	return t, nil
}

// Info returns the vocabulary the tokenizer was built from (read-only).
func (t *Tokenizer) Info() *bundle.Tokenizer { return t.t }

// VocabSize is the number of pieces.
func (t *Tokenizer) VocabSize() int { return t.n }

// BOS is the beginning-of-sequence id, -1 when none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id, -1 when none.
func (t *Tokenizer) EOS() int { return t.eos }

// Piece returns the stored text of a piece ("" when out of range).
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= t.n {
		return ""
	}
	return t.t.Pieces[id]
}

// IsEOG reports whether id ends generation: EOS or an end-of-turn piece.
func (t *Tokenizer) IsEOG(id int) bool { return t.eot[id] }

// IsControl reports whether id is a control piece (BOS, EOS, chat markers),
// which decodes to nothing.
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < t.n && t.types[id] == bundle.TokenControl
}

// Encode turns text into ids. opt.AddBOS prepends BOS; the vocabulary's own
// add_bos/add_eos defaults are not applied here (callers pass
// EncodeOptions{AddBOS: tok.Info().AddBOS} for a model's default).
func (t *Tokenizer) Encode(text string, opt EncodeOptions) []int {
	out := make([]int, 0, len(text)/3+2)
	if opt.AddBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	m := t.always
	if opt.ParseSpecial {
		m = t.parsed
	}
	// Each run of text between special pieces is encoded on its own; as in
	// llama.cpp, each gets SentencePiece's dummy prefix, since it starts the
	// text or follows a special piece.
	for len(text) > 0 {
		start, end, id := m.find(text)
		if start < 0 {
			out = t.encodeText(out, text)
			break
		}
		if start > 0 {
			out = t.encodeText(out, text[:start])
		}
		out = append(out, id)
		text = text[end:]
	}
	return out
}

func (t *Tokenizer) encodeText(out []int, text string) []int {
	if t.spm != nil {
		return t.spm.encode(out, text)
	}
	return t.bpe.encode(out, text)
}

// Decode turns ids into text. Control pieces (BOS, EOS, chat markers) decode
// to nothing; bytes that do not form valid UTF-8 become U+FFFD, one per byte.
func (t *Tokenizer) Decode(ids []int) string {
	var buf []byte
	first := true
	for _, id := range ids {
		buf = t.appendPiece(buf, id, first)
		first = first && !t.visible(id)
	}
	return validUTF8(buf)
}

// visible reports whether id is a piece that produces output (so that
// sentencepiece no longer strips a dummy-prefix space after it).
func (t *Tokenizer) visible(id int) bool {
	return id >= 0 && id < t.n && t.types[id] != bundle.TokenControl
}

// appendPiece appends the raw bytes of one piece. first says whether no
// visible piece came before (sentencepiece drops a leading ▁ of that one).
func (t *Tokenizer) appendPiece(buf []byte, id int, first bool) []byte {
	if id < 0 || id >= t.n {
		return buf
	}
	switch t.types[id] {
	case bundle.TokenControl:
		return buf
	case bundle.TokenUnknown:
		if t.spm != nil {
			return append(buf, " ⁇ "...)
		}
		return append(buf, t.t.Pieces[id]...)
	}
	if t.spm != nil {
		return t.spm.appendPiece(buf, id, first)
	}
	return t.bpe.appendPiece(buf, id)
}

// validUTF8 replaces every byte that is not part of a valid UTF-8 sequence
// with U+FFFD, as sentencepiece does.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			sb.WriteString("\uFFFD")
			b = b[1:]
			continue
		}
		sb.Write(b[:size])
		b = b[size:]
	}
	return sb.String()
}

// matcher finds the leftmost, then longest, occurrence of any of a set of
// strings.
type matcher struct {
	byFirst map[byte][]entry // candidates by first byte, longest first
}

type entry struct {
	s  string
	id int
}

func newMatcher(strs []string, ids []int) *matcher {
	m := &matcher{byFirst: map[byte][]entry{}}
	seen := map[string]bool{}
	for i, s := range strs {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		m.byFirst[s[0]] = append(m.byFirst[s[0]], entry{s, ids[i]})
	}
	for _, es := range m.byFirst {
		sort.SliceStable(es, func(a, b int) bool { return len(es[a].s) > len(es[b].s) })
	}
	return m
}

// find returns the position and id of the leftmost-longest match, or -1.
func (m *matcher) find(text string) (start, end, id int) {
	if len(m.byFirst) == 0 {
		return -1, -1, -1
	}
	for i := 0; i < len(text); i++ {
		es, ok := m.byFirst[text[i]]
		if !ok {
			continue
		}
		for _, e := range es {
			if strings.HasPrefix(text[i:], e.s) {
				return i, i + len(e.s), e.id
			}
		}
	}
	return -1, -1, -1
}

// prefix returns the length and id of the longest match at the start of text.
func (m *matcher) prefix(text string) (int, int) {
	if len(text) == 0 {
		return 0, -1
	}
	for _, e := range m.byFirst[text[0]] {
		if strings.HasPrefix(text, e.s) {
			return len(e.s), e.id
		}
	}
	return 0, -1
}
