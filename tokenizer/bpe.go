package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ember-llm/ember/llama/bundle"
)

// bpeModel is a GPT-2 style byte-level BPE: text is split by the
// pre-tokenizer pattern, each word's UTF-8 bytes are mapped to printable
// characters (bytes_to_unicode), and the adjacent pair with the lowest merge
// rank is merged, the leftmost winning ties, until no listed merge applies.
type bpeModel struct {
	vocab        map[string]int
	merges       map[uint64]bpeMerge // (left id, right id) → merge
	text         []string
	types        []int32
	byteSym      [256]int // id of the one-character piece of each byte, -1 if absent
	runeToByte   map[rune]byte
	split        func(text string, yield func(word string))
	ignoreMerges bool // Llama 3: a word that is a whole piece is not merged
	unk          int
}

type bpeMerge struct {
	rank int32
	id   int32
}

// byteToRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the others to U+0100 onwards, in byte order.
var byteToRune = func() (m [256]rune) {
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}()

func newBPEModel(bt *bundle.Tokenizer, types []int32) (*bpeModel, error) {
	m := &bpeModel{
		vocab: make(map[string]int, len(bt.Pieces)), merges: make(map[uint64]bpeMerge, len(bt.Merges)),
		text: bt.Pieces, types: types, runeToByte: make(map[rune]byte, 256), unk: bt.UNK,
	}
	for i, p := range bt.Pieces {
		if _, dup := m.vocab[p]; !dup {
			m.vocab[p] = i
		}
	}
	for b, r := range byteToRune {
		m.runeToByte[r] = byte(b)
		m.byteSym[b] = -1
		if id, ok := m.vocab[string(r)]; ok {
			m.byteSym[b] = id
		}
	}
	for rank, s := range bt.Merges {
		a, b, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("%w: merges[%d] %q is not two pieces separated by a space", ErrInvalidFormat, rank, s)
		}
		ida, oka := m.vocab[a]
		idb, okb := m.vocab[b]
		idm, okm := m.vocab[a+b]
		if !oka || !okb || !okm {
			// Merges whose parts or result are not in the vocabulary can never
			// produce a token; tokenizers ignores them as well.
			continue
		}
		key := uint64(ida)<<32 | uint64(idb)
		if _, dup := m.merges[key]; !dup {
			m.merges[key] = bpeMerge{rank: int32(rank), id: int32(idm)}
		}
	}
	switch bt.PreTokenizer {
	case "gpt2", "":
		m.split = splitGPT2
	case "llama3":
		m.split = splitLlama3
		m.ignoreMerges = true
	case "qwen2":
		m.split = splitQwen2
	case "smollm":
		m.split = splitSmolLM
	default:
		return nil, fmt.Errorf("%w: pre-tokenizer %q (known: gpt2, llama3, qwen2, smollm)", ErrUnsupported, bt.PreTokenizer)
	}
	return m, nil
}

func (m *bpeModel) encode(out []int, text string) []int {
	var ids []int32 // the piece of each symbol, -1 for a byte without one
	var mg merger
	var mapped []byte
	m.split(text, func(word string) {
		if m.ignoreMerges {
			mapped = mapped[:0]
			for i := 0; i < len(word); i++ {
				mapped = utf8.AppendRune(mapped, byteToRune[word[i]])
			}
			if id, ok := m.vocab[string(mapped)]; ok {
				out = append(out, id)
				return
			}
		}
		ids = ids[:0]
		for i := 0; i < len(word); i++ {
			ids = append(ids, int32(m.byteSym[word[i]]))
		}
		mg.reset(len(ids))
		mg.run(func(l, r int32) {
			a, b := ids[l], ids[r]
			if a < 0 || b < 0 {
				return
			}
			if mrg, ok := m.merges[uint64(a)<<32|uint64(b)]; ok {
				mg.push(uint32(mrg.rank), l, r)
			}
		}, func(l, r int32) {
			ids[l] = m.merges[uint64(ids[l])<<32|uint64(ids[r])].id
		})
		for i := int32(0); i != -1; i = mg.next(i) {
			switch {
			case ids[i] >= 0:
				out = append(out, int(ids[i]))
			case m.unk >= 0:
				out = append(out, m.unk)
			}
		}
	})
	return out
}

// appendPiece appends the bytes of a piece: normal pieces are byte-mapped,
// user-defined ones are literal text.
func (m *bpeModel) appendPiece(buf []byte, id int) []byte {
	p := m.text[id]
	if m.types[id] == bundle.TokenUserDefined {
		return append(buf, p...)
	}
	for _, r := range p {
		if b, ok := m.runeToByte[r]; ok {
			buf = append(buf, b)
		} else {
			buf = utf8.AppendRune(buf, r)
		}
	}
	return buf
}
