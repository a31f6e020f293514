//go:build !js

package main

import (
	"strings"
	"testing"

	"github.com/ember-llm/ember/scripts/internal/wasmrun"
	"github.com/stretchr/testify/require"
)

// Greedy decoding with many steps in flight reads the sampled ids back in
// batches (webgpu/engine/readback.go): full batches, a batch closed early for
// the prompt's id, and the partial batch left when generation stops. Every
// lookahead and batch size must still print llama2.c's expected text. (On
// SwiftShader the adaptive size would always be 1 — steps are slow — so the
// batch sizes are fixed here.)
func TestWasmLookaheadBatches(t *testing.T) {
	wasmrun.Require(t, wasmrun.Deno)
	model, cases := storiesBundle(t)
	c := cases[0]
	for _, tc := range []struct {
		lookahead, batch, n int
	}{
		{16, 8, c.Steps}, // batches of 8
		{5, 2, c.Steps},  // batches of 2, odd lookahead
		{16, 8, 37},      // stops inside a batch
		{16, 0, 37},      // adaptive
	} {
		text, _ := generateDeno(t, []string{"-model", model, "-prompt", "", "-n", itoa(tc.n), "-temp", "0",
			"-lookahead", itoa(tc.lookahead), "-readback-batch", itoa(tc.batch)})
		text = strings.TrimSuffix(text, "\n")
		if tc.n < c.Steps {
			require.True(t, strings.HasPrefix(c.Text, text), "lookahead %d, %d tokens: %q is not a prefix of the expected text", tc.lookahead, tc.n, text)
			require.Greater(t, len(text), 37, "37 tokens of text")
			continue
		}
		require.Equal(t, c.Text, text, "lookahead %d", tc.lookahead)
	}
}
