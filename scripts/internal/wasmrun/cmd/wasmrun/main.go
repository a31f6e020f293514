//go:build !js

// Command wasmrun builds a GOOS=js GOARCH=wasm main package and runs it in
// headless Chromium or Deno (see package wasmrun), exiting with its code.
//
//	go run ./scripts/internal/wasmrun/cmd/wasmrun [-runtime chromium|deno|dawn] [-webgpu] [-timeout 5m] ./pkg [args...]
//	go run ./scripts/internal/wasmrun/cmd/wasmrun -export build/x ./pkg   # prog.wasm + Deno runner, for the GPU machine
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ember-llm/ember/scripts/internal/wasmrun"
)

func main() {
	rt := flag.String("runtime", "chromium", "chromium, deno or dawn")
	gpu := flag.Bool("webgpu", true, "enable WebGPU")
	timeout := flag.Duration("timeout", 5*time.Minute, "time limit")
	dir := flag.String("dir", "", "static directory to serve under / (chromium)")
	export := flag.String("export", "", "instead of running: write prog.wasm, runner.mjs and wasm_exec.js into this directory (for deno where Go is absent)")
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
	if *export != "" {
		check(os.MkdirAll(*export, 0o755))
		b, err := os.ReadFile(wasm)
		check(err)
		check(os.WriteFile(filepath.Join(*export, "prog.wasm"), b, 0o644))
		_, err = wasmrun.WriteDenoRunner(*export)
		check(err)
		fmt.Printf("run: deno run -A --unstable-webgpu %s/runner.mjs %s/prog.wasm [args]\n", *export, *export)
		fmt.Printf("  or: EMBER_DAWN_NODE=dawn.node deno run -A %s/dawn-runner.mjs %s/prog.wasm [args]\n", *export, *export)
		return
	}
	r, err := wasmrun.ParseRuntime(*rt)
	check(err)
	code, err := wasmrun.Run(ctx, wasmrun.Options{
		Runtime: r, WASM: wasm, Args: flag.Args()[1:], WebGPU: *gpu,
		Stdout: os.Stdout, Stderr: os.Stderr, Timeout: *timeout, Dir: *dir,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
