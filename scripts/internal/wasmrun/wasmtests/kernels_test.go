//go:build !js

package wasmtests

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ember-llm/ember/scripts/internal/wasmrun"
)

// TestKernels runs webgpu/kerneltest (every WGSL kernel against a Go
// reference, each int8 dot-product variant the adapter supports) in headless
// Chromium with SwiftShader WebGPU, in Deno (wgpu on SwiftShader Vulkan) and
// in Deno with Dawn's navigator.gpu (dawn.node on SwiftShader Vulkan).
// EMBER_KERNELTEST_ARGS passes extra flags (e.g. "-run matvec -seed 1").
func TestKernels(t *testing.T) {
	ctx := context.Background()
	for _, rt := range wasmrun.Runtimes {
		t.Run(string(rt), func(t *testing.T) {
			wasmrun.Require(t, rt)
			wasm, err := wasmrun.Build(ctx, "github.com/ember-llm/ember/webgpu/kerneltest")
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			code, err := wasmrun.Run(ctx, wasmrun.Options{
				Runtime: rt, WASM: wasm, WebGPU: true,
				Args:   strings.Fields(os.Getenv("EMBER_KERNELTEST_ARGS")),
				Stdout: &out, Stderr: &out, Timeout: 4 * time.Minute,
			})
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 {
				t.Fatalf("kerneltest exited %d", code)
			}
		})
	}
}
