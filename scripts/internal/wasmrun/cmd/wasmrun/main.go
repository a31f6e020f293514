// Command wasmrun builds a GOOS=js GOARCH=wasm main package and runs it in
// headless Chromium or Deno (see package wasmrun), exiting with its code.
//
//	go run ./scripts/internal/wasmrun/cmd/wasmrun [-runtime chromium|deno] [-webgpu] [-timeout 5m] ./pkg [args...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ember-llm/ember/scripts/internal/wasmrun"
)

func main() {
	rt := flag.String("runtime", "chromium", "chromium or deno")
	gpu := flag.Bool("webgpu", true, "enable WebGPU")
	timeout := flag.Duration("timeout", 5*time.Minute, "time limit")
	dir := flag.String("dir", "", "static directory to serve under / (chromium)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: wasmrun [flags] ./pkg [args...]")
		os.Exit(2)
	}
	ctx := context.Background()
	wasm, err := wasmrun.Build(ctx, flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code, err := wasmrun.Run(ctx, wasmrun.Options{
		Runtime: wasmrun.Runtime(*rt), WASM: wasm, Args: flag.Args()[1:], WebGPU: *gpu,
		Stdout: os.Stdout, Stderr: os.Stderr, Timeout: *timeout, Dir: *dir,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}
