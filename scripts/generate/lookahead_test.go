//go:build !js

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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
		o, url, err := WasmRunOptions("deno", "webgpu", model)
		require.NoError(t, err)
		o.WASM, err = WasmBinary(context.Background())
		require.NoError(t, err)
		o.Args = []string{"-model", url, "-backend", "webgpu", "-prompt", "", "-n", itoa(tc.n), "-temp", "0", "-lookahead", itoa(tc.lookahead), "-readback-batch", itoa(tc.batch)}
		o.Timeout = 10 * time.Minute
		var text strings.Builder
		var errb bytes.Buffer
		o.Stderr = &errb
		o.Stdout = &wasmrun.LineWriter{Fn: func(line []byte) {
			var piece string
			if len(line) > 0 && line[0] == 'T' && json.Unmarshal(line[1:], &piece) == nil {
				text.WriteString(piece)
			}
		}}
		code, err := wasmrun.Run(context.Background(), o)
		require.NoError(t, err, errb.String())
		require.Equal(t, 0, code, errb.String())
		want := c.Text
		if tc.n < c.Steps {
			require.True(t, strings.HasPrefix(want, text.String()), "lookahead %d, %d tokens: %q is not a prefix of the expected text", tc.lookahead, tc.n, text.String())
			require.Greater(t, text.Len(), 37, "37 tokens of text")
			continue
		}
		require.Equal(t, want, text.String(), "lookahead %d", tc.lookahead)
	}
}
