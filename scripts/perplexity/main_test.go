//go:build !js

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/stretchr/testify/require"
)

func modelsDir() string {
	if d := os.Getenv("EMBER_MODELS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "models")
}

func TestPerplexityCLI(t *testing.T) {
	dir := filepath.Join(modelsDir(), "stories260K")
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Skipf("stories260K test data not found (set EMBER_MODELS to the shared models folder): %v", err)
	}
	var e struct{ Cases []struct{ Text string } }
	require.NoError(t, json.Unmarshal(data, &e))
	tk, err := tokenizer.LoadFile(filepath.Join(dir, "tok512.bin"), 512)
	require.NoError(t, err)
	src, err := convert.Open(filepath.Join(dir, "stories260K.bin"))
	require.NoError(t, err)
	defer src.Close()
	tmp := t.TempDir()
	model := filepath.Join(tmp, "b")
	_, err = convert.Convert(src, tk, convert.Options{Out: model, Quant: bundle.SchemeQ8Block32})
	require.NoError(t, err)
	text := filepath.Join(tmp, "text.txt")
	require.NoError(t, os.WriteFile(text, []byte(e.Cases[0].Text), 0o644))

	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"-model", model, "-text", text}, &out, &errb), errb.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "perplexity: "), last)
	ppl, err := strconv.ParseFloat(strings.TrimPrefix(last, "perplexity: "), 64)
	require.NoError(t, err)
	require.Greater(t, ppl, 1.0)
	require.Less(t, ppl, 3.0) // the model's own greedy text: very predictable

	require.Equal(t, 2, run([]string{"-model", model}, &out, &errb))
	require.Equal(t, 1, run([]string{"-model", model, "-text", filepath.Join(tmp, "none")}, &out, &errb))
}
