package hffixture

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"unicode"
)

// Special tokens of the generated tokenizer, after the 256 byte pieces.
var specials = []string{"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"}

const minVocab = 256 + 3

// corpus trains the generated tokenizer's merges, so that common English
// words become single tokens as in a real byte-level BPE.
const corpus = `Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.
One day, she saw a big, red ball in the park. She wanted to play with the ball, but it was too high.
Lily asked her mom for help. Her mom said, "Let's find a stick to get the ball down."
They looked and looked, and then they found a long stick. Lily was very happy.
The quick brown fox jumps over the lazy dog. The dog was not happy, but the fox was.
Tom and his friend went to the store to buy some bread and milk for their mother.
It was a sunny day and the birds were singing in the trees near the little house.`

// byteToRune is GPT-2's reversible byte → printable rune mapping.
func byteToRune() [256]rune {
	var m [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// trainMerges learns up to n merges from corpus by classic BPE over words
// (a word carries its leading space, as GPT-2's pre-tokenizer splits).
func trainMerges(n int) (merges [][2]string, pieces []string) {
	b2r := byteToRune()
	var words [][]string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			w := make([]string, len(cur))
			for i, c := range cur {
				w[i] = string(b2r[c])
			}
			words = append(words, w)
		}
		cur = nil
	}
	for _, r := range corpus {
		switch {
		case unicode.IsLetter(r):
			cur = append(cur, string(r)...)
		case r == ' ':
			flush()
			cur = append(cur, ' ')
		default:
			flush()
			cur = append(cur, string(r)...)
			flush()
		}
	}
	flush()
	seen := map[string]bool{}
	for len(merges) < n {
		counts := map[[2]string]int{}
		var order [][2]string
		for _, w := range words {
			for i := 0; i+1 < len(w); i++ {
				p := [2]string{w[i], w[i+1]}
				if counts[p] == 0 {
					order = append(order, p)
				}
				counts[p]++
			}
		}
		best, bestN := [2]string{}, 0
		for _, p := range order { // first-seen wins ties: deterministic
			if counts[p] > bestN && !seen[p[0]+p[1]] {
				best, bestN = p, counts[p]
			}
		}
		if bestN == 0 {
			break
		}
		merges = append(merges, best)
		seen[best[0]+best[1]] = true
		pieces = append(pieces, best[0]+best[1])
		for wi, w := range words {
			var out []string
			for i := 0; i < len(w); i++ {
				if i+1 < len(w) && w[i] == best[0] && w[i+1] == best[1] {
					out = append(out, best[0]+best[1])
					i++
				} else {
					out = append(out, w[i])
				}
			}
			words[wi] = out
		}
	}
	// Corpus exhausted: pad with merges of letter pairs not seen yet.
	for a := 'a'; len(merges) < n && a <= 'z'; a++ {
		for b := 'a'; len(merges) < n && b <= 'z'; b++ {
			p := [2]string{string(a), string(b)}
			if !seen[p[0]+p[1]] {
				seen[p[0]+p[1]] = true
				merges = append(merges, p)
				pieces = append(pieces, p[0]+p[1])
			}
		}
	}
	return merges, pieces
}

// writeTokenizer writes tokenizer.json and tokenizer_config.json for a
// byte-level BPE vocabulary of exactly vocab pieces: 256 bytes, the merges,
// then the special tokens at the end (as Llama 3 places them).
func writeTokenizer(dir string, vocab int) (bos, eos int, err error) {
	nMerges := vocab - 256 - len(specials)
	merges, pieces := trainMerges(nMerges)
	if len(merges) < nMerges {
		return 0, 0, fmt.Errorf("hffixture: vocab_size %d is larger than the generated tokenizer can fill", vocab)
	}
	b2r := byteToRune()
	vocabMap := map[string]int{}
	for b := 0; b < 256; b++ {
		vocabMap[string(b2r[b])] = b
	}
	for i, p := range pieces {
		vocabMap[p] = 256 + i
	}
	mergeStrs := make([]string, len(merges))
	for i, m := range merges {
		mergeStrs[i] = m[0] + " " + m[1]
	}
	base := 256 + len(pieces)
	var added []map[string]any
	for i, s := range specials {
		added = append(added, map[string]any{"id": base + i, "content": s, "single_word": false,
			"lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	bos, eos = base, base+1
	tok := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{map[string]any{"SpecialToken": map[string]any{"id": specials[0], "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}, "pair": []any{}, "special_tokens": map[string]any{}},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "vocab": vocabMap, "merges": mergeStrs},
	}
	data, err := json.MarshalIndent(tok, "", " ")
	if err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		return 0, 0, err
	}
	cfg := map[string]any{"bos_token": specials[0], "eos_token": specials[1], "add_bos_token": true,
		"model_max_length": 256, "tokenizer_class": "PreTrainedTokenizerFast"}
	data, err = json.MarshalIndent(cfg, "", " ")
	if err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), data, 0o644); err != nil {
		return 0, 0, err
	}
	return bos, eos, nil
}
