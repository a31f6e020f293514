//go:build !js

package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/scripts/internal/wasmrun"
	"github.com/stretchr/testify/require"
)

// With -max-binding far below stories260K's matrix sizes, the WebGPU engine
// stores every matrix in several chunks (the embedding table, whose gather
// and tied classifier then run per chunk, and the stacked gate/up matrix,
// laid out as one SwiGLU block per chunk, included) and must generate
// exactly what it generates unsplit: greedy decoding from BOS (f32: llama2.c's
// expected text) and after a prompt, which int8 bundles prefill with the
// tiled matmul (its w13 output then holds one gate|up block per chunk).
func TestSplitMatchesUnsplit(t *testing.T) {
	wasmrun.Require(t, wasmrun.Deno)
	f32, cases := storiesBundle(t)
	expected := cases[0]
	for _, tc := range []struct {
		scheme string
		model  func() string
		// Chunks of at most 126 rows (dim 64: 256-byte f32 rows, 64-byte
		// int8 rows): tok_embeddings 512 rows → 5 chunks, w13 344 rows → 3
		// (63 hidden units each, 46 in the last: not multiples of matmul_q8's
		// 64-row tiles), wqkv 128 rows → 2, w2 (hidden 172: 688-byte f32
		// rows, 192-byte int8 rows) → 2; wo (64 rows) stays whole. Every
		// chunk compiles its own pipelines, so more chunks cost load time.
		maxBinding int
	}{
		{bundle.SchemeF32, func() string { return f32 }, 126 * 256},
		{bundle.SchemeQ8Channel, func() string { return storiesQ8(t, bundle.SchemeQ8Channel) }, 126 * 64},
		{bundle.SchemeQ8Block32, func() string { return storiesQ8(t, bundle.SchemeQ8Block32) }, 126 * 64},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			model := tc.model()
			for _, p := range []struct {
				prompt string
				n      int
			}{
				{"", 80},
				{"Once upon a time, there was a little girl named Lily", 60},
			} {
				n := p.n
				if tc.scheme == bundle.SchemeF32 && p.prompt == "" {
					n = expected.Steps
				}
				args := []string{"-model", model, "-prompt", p.prompt, "-n", itoa(n), "-temp", "0"}
				split, splitErr := generateDeno(t, append(args, "-max-binding", itoa(tc.maxBinding)))
				chunks := splitChunks(t, splitErr)
				t.Logf("prompt %q: %s", p.prompt, splitLine(splitErr))
				for _, name := range []string{"tok_embeddings", "layer 0 w13", "layer 4 w13", "layer 0 wqkv", "layer 3 w2"} {
					require.GreaterOrEqual(t, chunks[name], 2, "%s should be split: %s", name, splitLine(splitErr))
				}
				require.Equal(t, 5, chunks["tok_embeddings"])
				require.Equal(t, 3, chunks["layer 1 w13"])
				if tc.scheme == bundle.SchemeF32 && p.prompt == "" {
					// TestWasmGenerateExpected checks the unsplit run.
					require.Equal(t, expected.Text+"\n", split)
					continue
				}
				whole, wholeErr := generateDeno(t, args)
				require.NotContains(t, wholeErr, "split:", "stories260K fits one binding per matrix")
				require.Equal(t, whole, split, "prompt %q: split and unsplit outputs differ\n%s", p.prompt, splitErr)
				if p.prompt != "" {
					require.Regexp(t, `prefill: \d{2,} tokens`, splitErr, "a prompt of several tokens takes the prefill path")
				}
			}
		})
	}
}

// generateDeno runs the webgpu backend in Deno and returns stdout and stderr.
func generateDeno(t *testing.T, args []string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWasmTo("webgpu", "deno", args, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Contains(t, errb.String(), "backend: webgpu")
	return out.String(), errb.String()
}

// splitLine returns the "split: …" line generate prints for split matrices.
func splitLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "split: ") {
			return l
		}
	}
	return ""
}

var splitRE = regexp.MustCompile(`([^:;]+): (\d+) chunks`)

// splitChunks parses the split line into matrix name → chunks.
func splitChunks(t *testing.T, stderr string) map[string]int {
	t.Helper()
	line := strings.TrimPrefix(splitLine(stderr), "split: ")
	require.NotEmpty(t, line, "no split line in:\n%s", stderr)
	out := map[string]int{}
	for _, m := range splitRE.FindAllStringSubmatch(line, -1) {
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		out[strings.TrimSpace(m[1])] = n
	}
	require.NotEmpty(t, out, fmt.Sprintf("unparsable split line %q", line))
	return out
}
