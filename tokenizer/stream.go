package tokenizer

import "unicode/utf8"

// StreamDecoder turns ids into text one at a time, holding back bytes until
// they form complete UTF-8, so that a page never shows half a character. The
// concatenation of everything Add and Flush return equals Decode of all ids.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
	started bool // a visible piece has been added (sentencepiece strips the first one's leading ▁)
}

// NewDecoder starts a stream.
func (t *Tokenizer) NewDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Add decodes one more id and returns the text that is now complete ("" when
// the id only started a multi-byte character or is a control piece).
func (d *StreamDecoder) Add(id int) string {
	d.pending = d.t.appendPiece(d.pending, id, !d.started)
	d.started = d.started || d.t.visible(id)
	// Emit everything up to the last position where an incomplete sequence
	// could still be completed by later bytes.
	cut := completePrefix(d.pending)
	if cut == 0 {
		return ""
	}
	s := validUTF8(d.pending[:cut])
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return s
}

// Flush returns what is left, with an unfinished character as U+FFFD per
// byte, and resets the stream.
func (d *StreamDecoder) Flush() string {
	s := validUTF8(d.pending)
	d.pending = d.pending[:0]
	d.started = false
	return s
}

// completePrefix returns the length of the longest prefix of b after which
// no started UTF-8 sequence is still waiting for continuation bytes.
func completePrefix(b []byte) int {
	// A UTF-8 sequence is at most 4 bytes: only the last 3 can be an
	// unfinished start.
	for k := 1; k <= 3 && k <= len(b); k++ {
		i := len(b) - k
		c := b[i]
		if c < 0x80 {
			return len(b) // ASCII: everything before and including is settled
		}
		if c >= 0xC0 { // a lead byte
			if !utf8.FullRune(b[i:]) {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}
