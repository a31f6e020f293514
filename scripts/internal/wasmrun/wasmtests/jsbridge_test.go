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

// TestBridge runs jsbridge/internal/bridgetest (Await, errors, typed arrays, funcs)
// under Deno.
func TestBridge(t *testing.T) {
	wasmrun.Require(t, wasmrun.Deno)
	ctx := context.Background()
	wasm, err := wasmrun.Build(ctx, "github.com/ember-llm/ember/jsbridge/internal/bridgetest")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code, err := wasmrun.Run(ctx, wasmrun.Options{Runtime: wasmrun.Deno, WASM: wasm, Stdout: &out, Stderr: os.Stderr, Timeout: time.Minute})
	t.Log("\n" + out.String())
	if err != nil || code != 0 {
		t.Fatalf("bridgetest: exit %d, %v", code, err)
	}
}
