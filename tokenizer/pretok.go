package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The byte-level pre-tokenizers split text with regular expressions that use
// a negative lookahead (\s+(?!\S)), which Go's regexp lacks, so each pattern
// is written out by hand below. Character classes follow the Unicode
// properties the patterns name: \p{L} letters, \p{N} numbers, \s White_Space.

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return r, n
}

// span returns the end of the run of runes satisfying f starting at i.
func span(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// spanMax is span limited to max runes.
func spanMax(s string, i, max int, f func(rune) bool) int {
	for k := 0; i < len(s) && k < max; k++ {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// whitespaceEnd implements \s+(?!\S)|\s+ at i (s[i] is whitespace): a run
// that reaches the end of the text is taken whole; a run followed by
// something else leaves its last character to start the next word.
func whitespaceEnd(s string, i int) int {
	end := span(s, i, isS)
	if end == len(s) {
		return end
	}
	_, first := runeAt(s, i)
	if i+first == end {
		return end // a single whitespace character: \s+
	}
	_, last := utf8.DecodeLastRuneInString(s[:end])
	return end - last
}

// contraction returns the length of 's 't 're 've 'm 'll 'd at i, or 0.
func contraction(s string, i int, fold bool) int {
	if i >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(r rune) rune {
		if !fold {
			return r
		}
		if r == 'ſ' { // long s folds to s in Unicode case folding
			return 's'
		}
		return unicode.ToLower(r)
	}
	r1, n1 := runeAt(s, i+1)
	switch lower(r1) {
	case 's', 't', 'm', 'd':
		return 1 + n1
	case 'r', 'v', 'l':
		r2, n2 := runeAt(s, i+1+n1)
		want := map[rune]rune{'r': 'e', 'v': 'e', 'l': 'l'}[lower(r1)]
		if lower(r2) == want {
			return 1 + n1 + n2
		}
	}
	return 0
}

func splitWith(text string, next func(s string, i int) int, yield func(string)) {
	for i := 0; i < len(text); {
		j := next(text, i)
		if j <= i { // cannot happen; guarantees progress on any input
			_, n := runeAt(text, i)
			j = i + max(n, 1)
		}
		yield(text[i:j])
		i = j
	}
}

// gpt2Next matches GPT-2's pattern at i:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func gpt2Next(s string, i int) int {
	if n := contraction(s, i, false); n > 0 {
		return i + n
	}
	r, n := runeAt(s, i)
	j := i
	if r == ' ' {
		j = i + n
	}
	if c, _ := runeAt(s, j); c >= 0 {
		switch {
		case isL(c):
			return span(s, j, isL)
		case isN(c):
			return span(s, j, isN)
		case isOther(c):
			return span(s, j, isOther)
		}
	}
	if isS(r) {
		return whitespaceEnd(s, i)
	}
	return i + n
}

// llama3Next matches Llama 3's pattern at i (digits groups of at most
// maxDigits; Qwen2's pattern is the same with single digits):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func llama3Next(s string, i int, maxDigits int) int {
	if n := contraction(s, i, true); n > 0 {
		return i + n
	}
	r, n := runeAt(s, i)
	if isL(r) {
		return span(s, i, isL)
	}
	if !isN(r) && r != '\r' && r != '\n' {
		if c, _ := runeAt(s, i+n); c >= 0 && isL(c) {
			return span(s, i+n, isL)
		}
	}
	if isN(r) {
		return spanMax(s, i, maxDigits, isN)
	}
	j := i
	if r == ' ' {
		j = i + n
	}
	if c, _ := runeAt(s, j); c >= 0 && isOther(c) {
		end := span(s, j, isOther)
		return span(s, end, func(r rune) bool { return r == '\r' || r == '\n' })
	}
	if isS(r) {
		end := span(s, i, isS)
		// \s*[\r\n]+: up to and including the run's last line break.
		for k := end; k > i; {
			c, m := utf8.DecodeLastRuneInString(s[:k])
			if c == '\r' || c == '\n' {
				return k
			}
			k -= m
		}
		return whitespaceEnd(s, i)
	}
	return i + n
}

func splitGPT2(text string, yield func(string)) { splitWith(text, gpt2Next, yield) }

func splitLlama3(text string, yield func(string)) {
	splitWith(text, func(s string, i int) int { return llama3Next(s, i, 3) }, yield)
}

func splitQwen2(text string, yield func(string)) {
	splitWith(text, func(s string, i int) int { return llama3Next(s, i, 1) }, yield)
}

// splitSmolLM isolates every digit, then applies GPT-2's pattern to the rest
// (tokenizers' Digits(individual_digits) followed by ByteLevel).
func splitSmolLM(text string, yield func(string)) {
	start := 0
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if isN(r) {
			if start < i {
				splitGPT2(text[start:i], yield)
			}
			yield(text[i : i+n])
			start = i + n
		}
		i += n
	}
	if start < len(text) {
		splitGPT2(text[start:], yield)
	}
}
