//go:build !js

package wasmrun

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	for _, rt := range []Runtime{Chromium, Deno} {
		t.Run(string(rt), func(t *testing.T) {
			Require(t, rt)
			wasm, err := Build(ctx, "./testdata/hello")
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code, err := Run(ctx, Options{
				Runtime: rt, WASM: wasm, WebGPU: true,
				Args:   []string{"-exit", "3", "a", "b c"},
				Env:    map[string]string{"WASMRUN_TEST": "yes"},
				Stdout: &out, Stderr: &errOut, Timeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err, errOut.String())
			}
			if code != 3 {
				t.Errorf("exit code %d, want 3; stderr:\n%s", code, errOut.String())
			}
			want := "args=a,b c\nenv=yes\ngpu=true\nno newline"
			if out.String() != want {
				t.Errorf("stdout %q, want %q", out.String(), want)
			}
			if !strings.Contains(errOut.String(), "to stderr ✓\n") {
				t.Errorf("stderr %q lacks the program's line", errOut.String())
			}
		})
	}
}

func TestBuildError(t *testing.T) {
	if _, err := Build(context.Background(), "./testdata/nonexistent"); err == nil {
		t.Fatal("Build of a missing package succeeded")
	}
}

// A program that blocks with nothing pending: Deno reports Go's deadlock,
// Chromium runs into the timeout.
func TestBlocked(t *testing.T) {
	ctx := context.Background()
	wasm, err := Build(ctx, "./testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("deno", func(t *testing.T) {
		Require(t, Deno)
		var errOut strings.Builder
		code, err := Run(ctx, Options{Runtime: Deno, WASM: wasm, Args: []string{"-block"}, Stderr: &errOut, Timeout: time.Minute})
		if err != nil || code != 2 || !strings.Contains(errOut.String(), "all goroutines are asleep") {
			t.Fatalf("code %d err %v stderr %q; want exit 2 and the deadlock message", code, err, errOut.String())
		}
	})
	t.Run("chromium", func(t *testing.T) {
		Require(t, Chromium)
		_, err := Run(ctx, Options{Runtime: Chromium, WASM: wasm, Args: []string{"-block"}, Timeout: 3 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("err %v, want a deadline error", err)
		}
	})
}
