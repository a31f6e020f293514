package tokenizer

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ember-llm/ember/llama/bundle"
)

// Field numbers of sentencepiece_model.proto.
const (
	spModelPieces     = 1 // ModelProto.pieces
	spModelTrainer    = 2 // ModelProto.trainer_spec
	spModelNormalizer = 3 // ModelProto.normalizer_spec

	spPieceText  = 1 // SentencePiece.piece
	spPieceScore = 2 // SentencePiece.score
	spPieceType  = 3 // SentencePiece.type

	spTrainerModelType    = 3  // TrainerSpec.model_type (1 unigram, 2 bpe, 3 word, 4 char)
	spTrainerWSSuffix     = 24 // TrainerSpec.treat_whitespace_as_suffix
	spTrainerByteFallback = 35 // TrainerSpec.byte_fallback
	spTrainerUnkID        = 40
	spTrainerBosID        = 41
	spTrainerEosID        = 42
	spTrainerPadID        = 43

	spNormName            = 1 // NormalizerSpec.name
	spNormCharsMap        = 2 // NormalizerSpec.precompiled_charsmap
	spNormDummyPrefix     = 3 // NormalizerSpec.add_dummy_prefix
	spNormRemoveExtraWS   = 4 // NormalizerSpec.remove_extra_whitespaces
	spNormEscapeWS        = 5 // NormalizerSpec.escape_whitespaces
	spModelTypeBPE        = 2
	spModelTypeUnigram    = 1
	spDefaultModelType    = spModelTypeUnigram
	spDefaultDummyPrefix  = true
	spDefaultRemoveExtra  = true
	spDefaultEscapeSpaces = true
)

// protoFields walks one protobuf message, calling fn for every field. fn gets
// the raw field value bytes (for varint and fixed fields, decoded values are
// passed in v).
func protoFields(b []byte, what string, file string, fn func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return invalidf(file, "%s: bad field tag: %v", what, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return invalidf(file, "%s: field %d: %v", what, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, raw); err != nil {
			return err
		}
	}
	return nil
}

func wantType(file, what string, num protowire.Number, got, want protowire.Type) error {
	if got != want {
		return invalidf(file, "%s field %d has wire type %d, want %d", what, num, got, want)
	}
	return nil
}

// ParseSentencePiece decodes a SentencePiece ModelProto (tokenizer.model).
// Only BPE models are accepted: Unigram models need a Viterbi search this
// package does not implement. file names the source in errors.
func ParseSentencePiece(data []byte, file string) (*bundle.Tokenizer, error) {
	t := &bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true}
	modelType := spDefaultModelType
	sawTrainer := false
	t.AddDummyPrefix, t.RemoveExtraWhitespaces = spDefaultDummyPrefix, spDefaultRemoveExtra
	escape := spDefaultEscapeSpaces
	wsSuffix := false
	charsMap := 0
	normName := ""

	err := protoFields(data, "ModelProto", file, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch num {
		case spModelPieces:
			if err := wantType(file, "ModelProto", num, typ, protowire.BytesType); err != nil {
				return err
			}
			if len(t.Pieces) >= maxPieces {
				return invalidf(file, "more than %d pieces", maxPieces)
			}
			i := len(t.Pieces)
			piece, score, ty := "", float32(0), int32(bundle.TokenNormal)
			err := protoFields(raw, fmt.Sprintf("pieces[%d]", i), file, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
				switch num {
				case spPieceText:
					if err := wantType(file, "SentencePiece", num, typ, protowire.BytesType); err != nil {
						return err
					}
					piece = string(raw)
				case spPieceScore:
					if err := wantType(file, "SentencePiece", num, typ, protowire.Fixed32Type); err != nil {
						return err
					}
					score = math.Float32frombits(uint32(v))
				case spPieceType:
					if err := wantType(file, "SentencePiece", num, typ, protowire.VarintType); err != nil {
						return err
					}
					ty = int32(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if piece == "" {
				return invalidf(file, "pieces[%d] is empty", i)
			}
			if !utf8.ValidString(piece) {
				return invalidf(file, "pieces[%d] is not valid UTF-8", i)
			}
			if ty < bundle.TokenNormal || ty > bundle.TokenByte {
				return invalidf(file, "pieces[%d] (%q) has type %d (want 1..6)", i, piece, ty)
			}
			if math.IsNaN(float64(score)) {
				return invalidf(file, "pieces[%d] (%q) has a NaN score", i, piece)
			}
			t.Pieces = append(t.Pieces, piece)
			t.Scores = append(t.Scores, score)
			t.Types = append(t.Types, ty)
		case spModelTrainer:
			if err := wantType(file, "ModelProto", num, typ, protowire.BytesType); err != nil {
				return err
			}
			sawTrainer = true
			return protoFields(raw, "trainer_spec", file, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
				if typ != protowire.VarintType {
					return nil
				}
				switch num {
				case spTrainerModelType:
					modelType = int(int32(v))
				case spTrainerWSSuffix:
					wsSuffix = v != 0
				case spTrainerByteFallback:
					t.ByteFallback = v != 0
				case spTrainerUnkID:
					t.UNK = int(int32(v))
				case spTrainerBosID:
					t.BOS = int(int32(v))
				case spTrainerEosID:
					t.EOS = int(int32(v))
				case spTrainerPadID:
					t.PAD = int(int32(v))
				}
				return nil
			})
		case spModelNormalizer:
			if err := wantType(file, "ModelProto", num, typ, protowire.BytesType); err != nil {
				return err
			}
			return protoFields(raw, "normalizer_spec", file, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
				switch {
				case num == spNormName && typ == protowire.BytesType:
					normName = string(raw)
				case num == spNormCharsMap && typ == protowire.BytesType:
					charsMap = len(raw)
				case num == spNormDummyPrefix && typ == protowire.VarintType:
					t.AddDummyPrefix = v != 0
				case num == spNormRemoveExtraWS && typ == protowire.VarintType:
					t.RemoveExtraWhitespaces = v != 0
				case num == spNormEscapeWS && typ == protowire.VarintType:
					escape = v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.Pieces) == 0 {
		return nil, invalidf(file, "no pieces (is this a SentencePiece model?)")
	}
	if sawTrainer && modelType != spModelTypeBPE {
		return nil, fmt.Errorf("%w: %s: SentencePiece model_type %d (only BPE, type 2, is supported)", ErrUnsupported, file, modelType)
	}
	if wsSuffix {
		return nil, fmt.Errorf("%w: %s: treat_whitespace_as_suffix is not supported", ErrUnsupported, file)
	}
	if !escape {
		return nil, fmt.Errorf("%w: %s: escape_whitespaces=false is not supported", ErrUnsupported, file)
	}
	if charsMap > 0 && normName != "identity" {
		// Llama-family models use the identity normalizer; others would need
		// the precompiled character map applied.
		return nil, fmt.Errorf("%w: %s: normalizer %q with a precompiled character map is not supported", ErrUnsupported, file, normName)
	}
	for _, f := range []struct {
		name string
		id   *int
	}{{"trainer_spec.unk_id", &t.UNK}, {"trainer_spec.bos_id", &t.BOS}, {"trainer_spec.eos_id", &t.EOS}, {"trainer_spec.pad_id", &t.PAD}} {
		if *f.id < -1 || *f.id >= len(t.Pieces) {
			return nil, invalidf(file, "%s = %d is outside the %d pieces", f.name, *f.id, len(t.Pieces))
		}
	}
	if t.UNK < 0 {
		return nil, invalidf(file, "trainer_spec.unk_id is -1 (SentencePiece requires an unknown piece)")
	}
	if !t.ByteFallback {
		// Some converters drop the flag but keep the byte pieces.
		t.ByteFallback = hasBytePieces(t)
	}
	addEOTByName(t)
	return finish(t, file)
}

func hasBytePieces(t *bundle.Tokenizer) bool {
	if len(t.Types) != len(t.Pieces) {
		return false
	}
	n := 0
	for i, ty := range t.Types {
		if ty == bundle.TokenByte && isBytePiece(t.Pieces[i]) {
			n++
		}
	}
	return n == 256
}

// isBytePiece reports whether p is a byte-fallback piece "<0xNN>".
func isBytePiece(p string) bool {
	_, ok := parseBytePiece(p)
	return ok
}

func parseBytePiece(p string) (byte, bool) {
	if len(p) != 6 || !strings.HasPrefix(p, "<0x") || p[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(p[3:5]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		b = b<<4 | d
	}
	return b, true
}
