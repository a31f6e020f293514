//go:build !js

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
	"github.com/ember-llm/ember/scripts/internal/wasmrun"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/stretchr/testify/require"
)

// The WebGPU engine (SwiftShader in Chromium, wgpu in Deno) and the wasm CPU
// fallback must print exactly what the CPU backend prints: for the f32
// stories260K bundle, llama2.c's expected greedy text.
func TestWasmGenerateExpected(t *testing.T) {
	model, cases := storiesBundle(t)
	c := cases[0]
	for _, tc := range []struct{ backend, runtime string }{
		{"webgpu", "chromium"},
		{"webgpu", "deno"},
		{"wasm-cpu", "deno"},
	} {
		t.Run(tc.backend+"/"+tc.runtime, func(t *testing.T) {
			wasmrun.Require(t, wasmrun.Runtime(tc.runtime))
			var out, errb bytes.Buffer
			code := runWasmTo(tc.backend, tc.runtime, []string{"-model", model, "-prompt", "", "-n", itoa(c.Steps), "-temp", "0"}, &out, &errb)
			require.Equal(t, 0, code, errb.String())
			require.Equal(t, c.Text+"\n", out.String(), errb.String())
			wantBackend := map[string]string{"webgpu": "backend: webgpu", "wasm-cpu": "backend: cpu"}[tc.backend]
			require.Contains(t, errb.String(), wantBackend)
			require.Contains(t, errb.String(), "decode: 199 tokens")
			t.Logf("%s", strings.TrimSpace(errb.String()))
		})
	}
}

// storiesQ8 converts stories260K to an int8 bundle of the given scheme.
func storiesQ8(t *testing.T, scheme string) string {
	dir := filepath.Join(modelsDir(), "stories260K")
	tk, err := tokenizer.LoadFile(filepath.Join(dir, "tok512.bin"), 512)
	if err != nil {
		t.Skipf("stories260K test data not found (set EMBER_MODELS to the shared models folder): %v", err)
	}
	src, err := convert.Open(filepath.Join(dir, "stories260K.bin"))
	require.NoError(t, err)
	defer src.Close()
	out := filepath.Join(t.TempDir(), "stories260K-"+scheme)
	_, err = convert.Convert(src, tk, convert.Options{Out: out, Quant: scheme})
	require.NoError(t, err)
	return out
}

// On int8 bundles the GPU and CPU int8 paths agree: the same greedy tokens,
// and the same logits within 1e-3 relative (of the largest magnitude) as
// long as both quantize the same activations. Attention is computed in f32
// on the GPU and with float64 exponentials on the CPU, so from the third
// position on an attention output within rounding of an int8 quantization
// boundary can round the other way; in this 64-wide model one such flip
// moves the logits by about 1%, hence the looser bound on later steps.
// Prefill (tiled matmul, T = 2) and decode (matvec) are both checked exactly
// at positions 0 and 1.
func TestWasmInt8LogitsMatchCPU(t *testing.T) {
	wasmrun.Require(t, wasmrun.Deno)
	for _, scheme := range []string{bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
		t.Run(scheme, func(t *testing.T) {
			model := storiesQ8(t, scheme)
			m, err := llama.LoadDir(model)
			require.NoError(t, err)
			for _, tc := range []struct {
				prompt []int
				steps  int
			}{
				{[]int{1}, 1},       // decode at positions 0 and 1
				{[]int{1, 403}, 24}, // prefill of 2, then decode
				{[]int{1, 403, 407, 261, 1205 % 512, 324, 260, 282}, 8}, // longer prefill
			} {
				compareLogits(t, m, model, tc.prompt, tc.steps, func(step, last int) float64 {
					if last >= 2 {
						return 3e-2
					}
					return 1e-3
				})
			}
		})
	}
}

// compareLogits runs the prompt and steps greedy decode steps on the WebGPU
// engine (Deno) and the CPU engine m, requiring the same greedy tokens and
// logits within tol(step, position) relative to the largest |logit|. It
// returns the positions beyond 1e-3 and the largest difference elsewhere.
func compareLogits(t *testing.T, m *llama.Model, model string, prompt []int, steps int, tol func(step, last int) float64) (beyond []int, worst float64) {
	t.Helper()
	gpu := wasmLogits(t, model, "webgpu", prompt, steps)
	require.Len(t, gpu, steps+1)
	toks, pos := prompt, 0
	for i := 0; i <= steps; i++ {
		want, err := m.Eval(context.Background(), toks, pos)
		require.NoError(t, err)
		got := gpu[i]
		require.Len(t, got, len(want))
		var maxAbs, maxDiff float64
		for j := range want {
			maxAbs = max(maxAbs, math.Abs(float64(want[j])))
			maxDiff = max(maxDiff, math.Abs(float64(got[j]-want[j])))
		}
		last, r := pos+len(toks)-1, maxDiff/maxAbs
		require.LessOrEqual(t, r, tol(i, last), "prompt %v step %d (position %d): logits differ by %g (largest |logit| %g)", prompt, i, last, maxDiff, maxAbs)
		require.Equal(t, llama.Argmax(want), llama.Argmax(got), "prompt %v step %d: greedy token", prompt, i)
		if r > 1e-3 {
			beyond = append(beyond, last)
		} else {
			worst = max(worst, r)
		}
		pos += len(toks)
		toks = []int{llama.Argmax(want)}
	}
	return beyond, worst
}

// wasmLogits runs the wasm entry's -logits mode in Deno.
func wasmLogits(t *testing.T, model, backend string, prompt []int, steps int) [][]float32 {
	o, url, err := WasmRunOptions("deno", backend, model)
	require.NoError(t, err)
	ctx := context.Background()
	o.WASM, err = WasmBinary(ctx)
	require.NoError(t, err)
	ids, _ := json.Marshal(prompt)
	eb := map[string]string{"webgpu": "webgpu", "wasm-cpu": "cpu"}[backend]
	o.Args = []string{"-model", url, "-backend", eb, "-ids", string(ids), "-logits", fmt.Sprint(steps)}
	o.Timeout = 10 * time.Minute
	var errb bytes.Buffer
	var out [][]float32
	o.Stderr = &errb
	o.Stdout = &wasmrun.LineWriter{Fn: func(line []byte) {
		if len(line) > 0 && line[0] == 'L' {
			var l []float32
			if json.Unmarshal(line[1:], &l) == nil {
				out = append(out, l)
			}
		}
	}}
	code, err := wasmrun.Run(ctx, o)
	require.NoError(t, err, errb.String())
	require.Equal(t, 0, code, errb.String())
	return out
}
