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

// storiesBundle converts stories260K.bin (+ tok512.bin) to an f32 bundle.
func storiesBundle(t *testing.T) (string, []struct {
	Steps int
	Text  string
}) {
	dir := filepath.Join(modelsDir(), "stories260K")
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Skipf("stories260K test data not found (set EMBER_MODELS to the shared models folder): %v", err)
	}
	var e struct {
		Cases []struct {
			Steps int
			Text  string
		}
	}
	require.NoError(t, json.Unmarshal(data, &e))
	tk, err := tokenizer.LoadFile(filepath.Join(dir, "tok512.bin"), 512)
	require.NoError(t, err)
	src, err := convert.Open(filepath.Join(dir, "stories260K.bin"))
	require.NoError(t, err)
	defer src.Close()
	out := filepath.Join(t.TempDir(), "stories260K")
	_, err = convert.Convert(src, tk, convert.Options{Out: out, Quant: bundle.SchemeF32})
	require.NoError(t, err)
	return out, e.Cases
}

func TestGenerateCLI(t *testing.T) {
	model, cases := storiesBundle(t)
	c := cases[0]
	var out, errb bytes.Buffer
	code := run([]string{"-model", model, "-prompt", "", "-n", itoa(c.Steps), "-temp", "0"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, c.Text+"\n", out.String())
	require.Contains(t, errb.String(), "prefill:")
	require.Contains(t, errb.String(), "decode:")

	out.Reset()
	errb.Reset()
	code = run([]string{"-model", model, "-prompt", "Once upon", "-n", "20", "-temp", "0.8", "-seed", "5", "-format", "ids", "-topk", "40", "-topp", "0.9"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	ids := strings.Fields(out.String())
	require.Len(t, ids, 20)
	first := out.String()
	out.Reset()
	require.Equal(t, 0, run([]string{"-model", model, "-prompt", "Once upon", "-n", "20", "-temp", "0.8", "-seed", "5", "-format", "ids", "-topk", "40", "-topp", "0.9"}, &out, &errb))
	require.Equal(t, first, out.String(), "same seed, same ids")

	for _, bad := range [][]string{
		{"-prompt", "x"},
		{"-model", model, "-format", "json"},
		{"-model", model, "-backend", "cuda"},
		{"-model", filepath.Join(t.TempDir(), "missing")},
	} {
		out.Reset()
		errb.Reset()
		require.NotEqual(t, 0, run(bad, &out, &errb), "%v", bad)
		require.Empty(t, out.String())
		require.NotEmpty(t, errb.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
