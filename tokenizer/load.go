package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ember-llm/ember/llama/bundle"
)

// ErrInvalidFormat is wrapped by every error about a malformed tokenizer file
// or metadata.
var ErrInvalidFormat = errors.New("tokenizer: invalid format")

// ErrUnsupported is wrapped by errors about well-formed tokenizers this
// package cannot run (a Unigram SentencePiece model, an unknown pre-tokenizer).
var ErrUnsupported = errors.New("tokenizer: unsupported")

// maxTokenizerFile bounds what the loaders read into memory (Llama 3's
// tokenizer.json is about 9 MiB).
const maxTokenizerFile = 256 << 20

// maxPieces bounds a vocabulary (the manifest allows 1<<22).
const maxPieces = 1 << 22

// maxPieceBytes bounds one piece's length.
const maxPieceBytes = 1 << 16

func invalidf(file, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidFormat, file, fmt.Sprintf(format, args...))
}

// LoadFile reads a tokenizer from a SentencePiece tokenizer.model, a llama2.c
// tokenizer.bin, a HuggingFace tokenizer.json (tokenizer_config.json and
// generation_config.json beside it are read when present) or a bundle's
// manifest.json; path may also name a directory holding one of these.
// vocabSize is the model's vocabulary size: llama2.c files need it (they do
// not store their length); for the other formats a positive vocabSize is
// checked against the number of pieces, and 0 skips the check.
func LoadFile(path string, vocabSize int) (*bundle.Tokenizer, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		found := ""
		for _, name := range []string{bundle.ManifestFile, "tokenizer.json", "tokenizer.model", "tokenizer.bin"} {
			if _, err := os.Stat(filepath.Join(path, name)); err == nil {
				found = filepath.Join(path, name)
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("tokenizer: %s: no manifest.json, tokenizer.json, tokenizer.model or tokenizer.bin in this directory", path)
		}
		path = found
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("GGUF")) {
		return nil, fmt.Errorf("%w: %s is a GGUF file: open it with llama/gguf and pass its metadata to FromGGUF", ErrUnsupported, path)
	}
	var t *bundle.Tokenizer
	switch sniff(path, data) {
	case "json":
		t, err = loadJSONFile(path, data)
	case "llama2c":
		t, err = ParseLlama2C(data, vocabSize, path)
	default:
		t, err = ParseSentencePiece(data, path)
	}
	if err != nil {
		return nil, err
	}
	if vocabSize > 0 && len(t.Pieces) > vocabSize {
		return nil, invalidf(path, "%d pieces but the model's vocabulary has %d entries", len(t.Pieces), vocabSize)
	}
	return t, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if fi.Size() > maxTokenizerFile {
		return nil, invalidf(path, "%d bytes is larger than any tokenizer (limit %d)", fi.Size(), maxTokenizerFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return data, nil
}

// sniff tells the formats apart by content, the file name breaking ties.
func sniff(path string, data []byte) string {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return "json"
	}
	base := strings.ToLower(filepath.Base(path))
	if strings.HasSuffix(base, ".model") {
		return "spm"
	}
	if strings.HasSuffix(base, ".bin") {
		return "llama2c"
	}
	// A SentencePiece model starts with field 1 (pieces), length-delimited: 0x0a.
	if len(data) > 0 && data[0] == 0x0a {
		return "spm"
	}
	return "llama2c"
}

func loadJSONFile(path string, data []byte) (*bundle.Tokenizer, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, invalidf(path, "not valid JSON: %v", err)
	}
	if _, ok := probe["format"]; ok {
		if _, ok := probe["tensors"]; ok {
			m, err := bundle.Parse(data)
			if err != nil {
				return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
			}
			t := m.Tokenizer
			return &t, nil
		}
	}
	dir := filepath.Dir(path)
	var config, genConfig []byte
	if b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		config = b
	}
	if b, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		genConfig = b
	}
	return ParseHFJSON(data, config, genConfig, path)
}

// finish validates the fields the manifest checks, so that a loaded
// tokenizer always passes bundle validation, and drops duplicate end-of-turn
// ids.
func finish(t *bundle.Tokenizer, file string) (*bundle.Tokenizer, error) {
	n := len(t.Pieces)
	if n == 0 {
		return nil, invalidf(file, "the vocabulary is empty")
	}
	if n > maxPieces {
		return nil, invalidf(file, "%d pieces is more than the %d supported", n, maxPieces)
	}
	if len(t.Scores) != 0 && len(t.Scores) != n {
		return nil, invalidf(file, "%d scores for %d pieces", len(t.Scores), n)
	}
	if len(t.Types) != 0 && len(t.Types) != n {
		return nil, invalidf(file, "%d token types for %d pieces", len(t.Types), n)
	}
	for i, ty := range t.Types {
		if ty < bundle.TokenNormal || ty > bundle.TokenByte {
			return nil, invalidf(file, "token %d has type %d (want 1..6)", i, ty)
		}
	}
	for _, f := range []struct {
		name string
		id   *int
	}{{"bos", &t.BOS}, {"eos", &t.EOS}, {"unk", &t.UNK}, {"pad", &t.PAD}} {
		if *f.id < -1 || *f.id >= n {
			return nil, invalidf(file, "%s id %d is outside the %d pieces", f.name, *f.id, n)
		}
	}
	var eot []int
	seen := map[int]bool{}
	for _, id := range t.EOT {
		if id < 0 || id >= n {
			return nil, invalidf(file, "end-of-turn id %d is outside the %d pieces", id, n)
		}
		if id != t.EOS && !seen[id] {
			eot = append(eot, id)
			seen[id] = true
		}
	}
	t.EOT = eot
	if t.BOS < 0 {
		t.AddBOS = false
	}
	if t.EOS < 0 {
		t.AddEOS = false
	}
	return t, nil
}

// eotNames are end-of-turn pieces of common chat models; a control or
// user-defined piece with one of these texts ends generation like EOS.
var eotNames = []string{
	"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<|end|>",
	"<end_of_turn>", "<|return|>", "<|call|>", "<EOT>", "</s>",
}

// addEOTByName adds the ids of known end-of-turn pieces that are special
// (control or user-defined) in t.
func addEOTByName(t *bundle.Tokenizer) {
	idx := map[string]int{}
	for i, p := range t.Pieces {
		if len(t.Types) == len(t.Pieces) && t.Types[i] != bundle.TokenControl && t.Types[i] != bundle.TokenUserDefined {
			continue
		}
		if _, ok := idx[p]; !ok {
			idx[p] = i
		}
	}
	for _, name := range eotNames {
		if id, ok := idx[name]; ok && id != t.EOS {
			t.EOT = append(t.EOT, id)
		}
	}
}
