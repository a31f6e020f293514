//go:build !js

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/stretchr/testify/require"
)

func storiesQ8(t *testing.T) string {
	models := os.Getenv("EMBER_MODELS")
	if models == "" {
		models = filepath.Join("..", "..", "..", "shared", "models")
	}
	dir := filepath.Join(models, "stories260K")
	tk, err := tokenizer.LoadFile(filepath.Join(dir, "tok512.bin"), 512)
	if err != nil {
		t.Skipf("stories260K test data not found (set EMBER_MODELS to the shared models folder): %v", err)
	}
	src, err := convert.Open(filepath.Join(dir, "stories260K.bin"))
	require.NoError(t, err)
	defer src.Close()
	out := filepath.Join(t.TempDir(), "stories260K")
	_, err = convert.Convert(src, tk, convert.Options{Out: out, Quant: bundle.SchemeQ8Channel})
	require.NoError(t, err)
	return out
}

// The CPU benchmark runs the shared loop and reports every figure.
func TestBenchCPU(t *testing.T) {
	model := storiesQ8(t)
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"-model", model, "-backend", "cpu", "-prompt-tokens", "16", "-n", "16", "-json"}, &out, &errb), errb.String())
	var rep report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.Equal(t, 16, rep.PromptTokens)
	require.Equal(t, 16, rep.GenTokens)
	require.Greater(t, rep.PrefillTokS, 0.0)
	require.Greater(t, rep.DecodeTokS, 0.0)

	out.Reset()
	require.Equal(t, 0, run([]string{"-model", model, "-prompt-tokens", "8", "-n", "4"}, &out, &errb), errb.String())
	for _, s := range []string{"load", "prefill 8 tokens", "time to first token", "decode 4 tokens"} {
		require.Contains(t, out.String(), s)
	}
	require.Equal(t, 2, run([]string{"-model", model, "-backend", "cuda"}, &out, &errb))
	require.Equal(t, 1, run([]string{"-model", model, "-prompt-tokens", "600", "-n", "10"}, &out, &errb), "longer than the context")
}
