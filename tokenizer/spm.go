package tokenizer

import (
	"strings"
	"unicode/utf8"

	"github.com/ember-llm/ember/llama/bundle"
)

// spaceSymbol is SentencePiece's escaped space, U+2581.
const spaceSymbol = "▁"

// spModel is a SentencePiece BPE model. It follows sentencepiece's
// bpe_model.cc: text is split into characters (user-defined pieces kept whole
// and frozen), then the adjacent pair whose concatenation is the
// highest-scoring piece is merged, the leftmost winning ties, until no pair
// forms a piece.
type spModel struct {
	pieces   map[string]int // normal, user-defined and unused pieces: what merges may form
	reserved map[string]int // control, unknown and byte pieces
	text     []string
	scores   []float32
	types    []int32
	userDef  *matcher
	byteID   [256]int
	unk      int

	byteFallback, dummyPrefix, removeExtra bool
}

func newSPModel(bt *bundle.Tokenizer, types []int32) (*spModel, error) {
	m := &spModel{
		pieces: make(map[string]int, len(bt.Pieces)), reserved: map[string]int{},
		text: bt.Pieces, scores: bt.Scores, types: types, unk: bt.UNK,
		byteFallback: bt.ByteFallback, dummyPrefix: bt.AddDummyPrefix, removeExtra: bt.RemoveExtraWhitespaces,
	}
	if len(m.scores) != len(bt.Pieces) {
		m.scores = make([]float32, len(bt.Pieces))
	}
	for i := range m.byteID {
		m.byteID[i] = -1
	}
	var ud []string
	var udIDs []int
	// The first piece with a given text wins, as in sentencepiece.
	for i, p := range bt.Pieces {
		switch types[i] {
		case bundle.TokenNormal, bundle.TokenUserDefined, bundle.TokenUnused:
			if _, dup := m.pieces[p]; !dup {
				m.pieces[p] = i
			}
			if types[i] == bundle.TokenUserDefined {
				ud, udIDs = append(ud, p), append(udIDs, i)
			}
		default:
			if _, dup := m.reserved[p]; !dup {
				m.reserved[p] = i
			}
			if types[i] == bundle.TokenByte {
				if b, ok := parseBytePiece(p); ok && m.byteID[b] < 0 {
					m.byteID[b] = i
				}
			}
		}
	}
	m.userDef = newMatcher(ud, udIDs)
	return m, nil
}

// pieceToID is sentencepiece's PieceToId: reserved pieces first, then the
// others, else the unknown id.
func (m *spModel) pieceToID(p string) int {
	if id, ok := m.reserved[p]; ok {
		return id
	}
	if id, ok := m.pieces[p]; ok {
		return id
	}
	return m.unk
}

// normalize applies sentencepiece's identity normalizer: malformed UTF-8
// bytes become U+FFFD, optional removal of extra spaces, a dummy-prefix ▁ and
// spaces escaped as ▁.
func (m *spModel) normalize(text string) string {
	if m.removeExtra {
		text = strings.Trim(text, " ")
	}
	if text == "" {
		return ""
	}
	var sb strings.Builder
	sb.Grow(len(text) + len(text)/2 + 3)
	if m.dummyPrefix {
		sb.WriteString(spaceSymbol)
	}
	prevSpace := false
	for i := 0; i < len(text); {
		if n, _ := m.userDef.prefix(text[i:]); n > 0 {
			sb.WriteString(strings.ReplaceAll(text[i:i+n], " ", spaceSymbol))
			prevSpace = false
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			sb.WriteString("\uFFFD")
			prevSpace = false
		case r == ' ':
			if !(m.removeExtra && prevSpace) {
				sb.WriteString(spaceSymbol)
			}
			prevSpace = true
		default:
			sb.WriteString(text[i : i+size])
			prevSpace = false
		}
		i += size
	}
	if m.removeExtra {
		// sentencepiece trims trailing ▁ after escaping, so a literal U+2581
		// at the end goes too.
		return strings.TrimRight(sb.String(), spaceSymbol)
	}
	return sb.String()
}

// spSymbol is the text of a symbol, norm[start:end].
type spSymbol struct {
	start, end int32
	freeze     bool // a user-defined piece, never merged
}

func (m *spModel) encode(out []int, text string) []int {
	norm := m.normalize(text)
	if norm == "" {
		return out
	}
	syms := make([]spSymbol, 0, len(norm)/2+1)
	for i := 0; i < len(norm); {
		n, _ := m.userDef.prefix(norm[i:])
		freeze := n > 0
		if !freeze {
			_, n = utf8.DecodeRuneInString(norm[i:])
		}
		syms = append(syms, spSymbol{start: int32(i), end: int32(i + n), freeze: freeze})
		i += n
	}

	var revMerge map[string][2]string
	var mg merger
	mg.queue = make([]mergeCand, 0, len(syms))
	mg.reset(len(syms))
	mg.run(func(left, right int32) {
		if syms[left].freeze || syms[right].freeze {
			return
		}
		piece := norm[syms[left].start:syms[right].end]
		id, ok := m.pieces[piece]
		if !ok {
			return
		}
		mg.push(scoreRank(m.scores[id]), left, right)
		if m.types[id] == bundle.TokenUnused {
			if revMerge == nil {
				revMerge = map[string][2]string{}
			}
			revMerge[piece] = [2]string{norm[syms[left].start:syms[left].end], norm[syms[right].start:syms[right].end]}
		}
	}, func(left, right int32) {
		syms[left].end = syms[right].end
	})
	start := len(out)
	for i := int32(0); i != -1; i = mg.next(i) {
		out = m.resegment(out, norm[syms[i].start:syms[i].end], revMerge)
	}
	if !m.byteFallback {
		// Without byte fallback sentencepiece merges a run of unknown
		// pieces into one <unk>.
		k := start
		for i := start; i < len(out); i++ {
			if out[i] == m.unk && k > start && out[k-1] == m.unk {
				continue
			}
			out[k] = out[i]
			k++
		}
		out = out[:k]
	}
	return out
}

// resegment emits the ids of one final symbol: unused pieces are split back
// into the pair they were merged from, unknown text falls back to bytes.
func (m *spModel) resegment(out []int, w string, revMerge map[string][2]string) []int {
	id := m.pieceToID(w)
	if id >= 0 && m.types[id] == bundle.TokenUnused {
		if p, ok := revMerge[w]; ok {
			out = m.resegment(out, p[0], revMerge)
			return m.resegment(out, p[1], revMerge)
		}
	}
	if id != m.unk {
		return append(out, id)
	}
	if m.byteFallback {
		for i := 0; i < len(w); i++ {
			if b := m.byteID[w[i]]; b >= 0 {
				out = append(out, b)
			} else if m.unk >= 0 {
				out = append(out, m.unk)
			}
		}
		return out
	}
	if m.unk < 0 {
		return out // no unknown piece (possible in tokenizer.json): the text is dropped, as tokenizers does
	}
	return append(out, m.unk)
}

// appendPiece appends the text of a normal, user-defined or byte piece.
func (m *spModel) appendPiece(buf []byte, id int, first bool) []byte {
	if m.types[id] == bundle.TokenByte {
		if b, ok := parseBytePiece(m.text[id]); ok {
			return append(buf, b)
		}
	}
	p := m.text[id]
	if first && m.dummyPrefix {
		p = strings.TrimPrefix(p, spaceSymbol)
	}
	for {
		i := strings.Index(p, spaceSymbol)
		if i < 0 {
			return append(buf, p...)
		}
		buf = append(buf, p[:i]...)
		buf = append(buf, ' ')
		p = p[i+len(spaceSymbol):]
	}
}
