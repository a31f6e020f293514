package tokenizer

import (
	"encoding/binary"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/ember-llm/ember/llama/bundle"
)

// ParseLlama2C decodes a llama2.c tokenizer.bin: an int32 max_token_length,
// then vocabSize records of (float32 score, int32 length, bytes), all little
// endian. llama2.c's exporter wrote pieces with "▁" replaced by a space and
// BOS/EOS as "\n<s>\n" / "\n</s>\n"; both are undone here so the pieces read
// as in tokenizer.model. Piece types are inferred: <0xNN> byte pieces, <unk>,
// and <s>/</s> control. file names the source in errors.
func ParseLlama2C(data []byte, vocabSize int, file string) (*bundle.Tokenizer, error) {
	if vocabSize <= 0 {
		return nil, invalidf(file, "llama2.c tokenizer files do not store their size: the model's vocab_size is needed (got %d)", vocabSize)
	}
	if vocabSize > maxPieces {
		return nil, invalidf(file, "vocab_size %d is more than the %d supported", vocabSize, maxPieces)
	}
	if len(data) < 4 {
		return nil, invalidf(file, "max_token_length: file is %d bytes", len(data))
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen <= 0 || maxLen > maxPieceBytes {
		return nil, invalidf(file, "max_token_length %d is out of range (1..%d)", maxLen, maxPieceBytes)
	}
	// Each record needs at least 8 bytes: reject impossible sizes before allocating.
	if vocabSize > (len(data)-4)/8 {
		return nil, invalidf(file, "%d bytes cannot hold %d tokens", len(data), vocabSize)
	}
	t := &bundle.Tokenizer{
		Kind: bundle.TokenizerSentencePiece, BOS: -1, EOS: -1, UNK: -1, PAD: -1,
		AddBOS: true, AddDummyPrefix: true,
		Pieces: make([]string, vocabSize), Scores: make([]float32, vocabSize), Types: make([]int32, vocabSize),
	}
	off := 4
	bytePieces := 0
	for i := 0; i < vocabSize; i++ {
		if len(data)-off < 8 {
			return nil, invalidf(file, "token %d: record header runs past the end of the file (offset %d)", i, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || n > maxLen {
			return nil, invalidf(file, "token %d: length %d is outside 0..max_token_length %d", i, n, maxLen)
		}
		if int(n) > len(data)-off {
			return nil, invalidf(file, "token %d: %d bytes run past the end of the file (offset %d)", i, n, off)
		}
		if math.IsNaN(float64(score)) {
			return nil, invalidf(file, "token %d: NaN score", i)
		}
		raw := string(data[off : off+int(n)])
		off += int(n)
		if !utf8.ValidString(raw) {
			return nil, invalidf(file, "token %d: piece is not valid UTF-8", i)
		}
		ty := int32(bundle.TokenNormal)
		switch raw {
		case "\n<s>\n", "<s>":
			raw, ty = "<s>", bundle.TokenControl
			if t.BOS < 0 {
				t.BOS = i
			}
		case "\n</s>\n", "</s>":
			raw, ty = "</s>", bundle.TokenControl
			if t.EOS < 0 {
				t.EOS = i
			}
		case "<unk>":
			ty = bundle.TokenUnknown
			if t.UNK < 0 {
				t.UNK = i
			}
		default:
			if isBytePiece(raw) {
				ty = bundle.TokenByte
				bytePieces++
			} else {
				raw = strings.ReplaceAll(raw, " ", "▁")
			}
		}
		if raw == "" {
			return nil, invalidf(file, "token %d: empty piece", i)
		}
		t.Pieces[i], t.Scores[i], t.Types[i] = raw, score, ty
	}
	if off != len(data) {
		return nil, invalidf(file, "%d trailing bytes after %d tokens (is vocab_size right?)", len(data)-off, vocabSize)
	}
	t.ByteFallback = bytePieces == 256
	if t.UNK < 0 {
		t.UNK = 0
	}
	return finish(t, file)
}
