//go:build !js

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func modelFile(t *testing.T, rel string) string {
	t.Helper()
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "models")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real model data not found (set EMBER_MODELS): %v", err)
	}
	return p
}

func tokenize(t *testing.T, path string, bos, special, decode bool, in string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(path, 0, bos, special, decode, strings.NewReader(in), &out))
	return out.String()
}

func TestEncodeDecode(t *testing.T) {
	model := modelFile(t, "llama2-tokenizer/tokenizer.model")
	require.Equal(t, "1 306 4658 278 6593 310 2834 338\n", tokenize(t, model, true, false, false, "I believe the meaning of life is"))
	require.Equal(t, "306 4658\n", tokenize(t, model, false, false, false, "I believe"))
	require.Equal(t, "I believe the meaning of life is", tokenize(t, model, false, false, true, "1 306 4658 278 6593 310 2834 338\n"))
	// Special-token text is plain unless -special.
	require.NotContains(t, " "+tokenize(t, model, false, false, false, "<s>"), " 1 ")
	require.Equal(t, "1\n", tokenize(t, model, false, true, false, "<s>"))

	// The same ids from llama2.c's tokenizer.bin (size counted from the file),
	// from the GGUF vocabulary, and from a directory.
	bin := modelFile(t, "llama2-tokenizer/tokenizer.bin")
	require.Equal(t, "1 306 4658\n", tokenize(t, bin, true, false, false, "I believe"))
	require.Equal(t, "1 306 4658\n", tokenize(t, filepath.Dir(model), true, false, false, "I believe"))
	gguf := modelFile(t, "llamacpp-vocab/ggml-vocab-llama-spm.gguf")
	require.Equal(t, "306 4658\n", tokenize(t, gguf, false, false, false, "I believe"))
	tok512 := modelFile(t, "stories260K/tok512.bin")
	require.Equal(t, "1 403 407 261 378\n", tokenize(t, tok512, true, false, false, "Once upon a time"))

	var out bytes.Buffer
	err := run(model, 0, false, false, true, strings.NewReader("1 x"), &out)
	require.ErrorContains(t, err, `"x" is not a token id`)
	err = run(model, 0, false, false, true, strings.NewReader("32000"), &out)
	require.ErrorContains(t, err, "is not a token id")
}
