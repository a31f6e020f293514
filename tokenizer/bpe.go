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

type bpeSymbol struct {
	id         int32
	prev, next int32
}

type bpePair struct {
	rank        int32
	left, right int32
	lid, rid    int32 // ids when queued, to detect stale pairs
}

type bpeHeap []bpePair

func (h bpeHeap) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].left < h[b].left
}

func (h *bpeHeap) push(p bpePair) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *bpeHeap) pop() bpePair {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l, r, best := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, best) {
			best = l
		}
		if r < len(s) && s.less(r, best) {
			best = r
		}
		if best == i {
			break
		}
		s[i], s[best] = s[best], s[i]
		i = best
	}
	*h = s
	return top
}

func (m *bpeModel) encode(out []int, text string) []int {
	var syms []bpeSymbol
	var h bpeHeap
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
		syms = syms[:0]
		for i := 0; i < len(word); i++ {
			k := int32(len(syms))
			syms = append(syms, bpeSymbol{id: int32(m.byteSym[word[i]]), prev: k - 1, next: k + 1})
		}
		syms[len(syms)-1].next = -1
		h = h[:0]
		tryPair := func(l, r int32) {
			if l < 0 || r < 0 || syms[l].id < 0 || syms[r].id < 0 {
				return
			}
			mg, ok := m.merges[uint64(syms[l].id)<<32|uint64(syms[r].id)]
			if !ok {
				return
			}
			h.push(bpePair{rank: mg.rank, left: l, right: r, lid: syms[l].id, rid: syms[r].id})
		}
		for i := 1; i < len(syms); i++ {
			tryPair(int32(i-1), int32(i))
		}
		for len(h) > 0 {
			p := h.pop()
			l, r := &syms[p.left], &syms[p.right]
			if l.id != p.lid || r.id != p.rid || l.next != p.right {
				continue
			}
			l.id = m.merges[uint64(p.lid)<<32|uint64(p.rid)].id
			l.next = r.next
			if r.next >= 0 {
				syms[r.next].prev = p.left
			}
			r.id = -2 // merged away
			tryPair(l.prev, p.left)
			tryPair(p.left, l.next)
		}
		for i := int32(0); i != -1; i = syms[i].next {
			switch {
			case syms[i].id >= 0:
				out = append(out, int(syms[i].id))
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
