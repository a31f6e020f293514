//go:build !js

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ember-llm/ember/scripts/internal/wasmrun"
)

// WasmPackage is the wasm entry point the webgpu and wasm-cpu backends run.
const WasmPackage = "github.com/ember-llm/ember/wasm"

// runWasm runs generation with the wasm build (wasm/) in headless Chromium or
// Deno and prints exactly what the cpu backend prints: the text (or ids) on
// stdout, the statistics on stderr.
func runWasm(backend, runtime string, args []string) int {
	return runWasmTo(backend, runtime, args, os.Stdout, os.Stderr)
}

// wasmArgs are the flags of generate that matter to the wasm run.
type wasmArgs struct {
	model, prompt, format string
	n, topk               int
	temp, topp            float64
	seed                  uint64
	maxBinding            int64 // webgpu: engine.Options.MaxBinding
	lookahead, rbBatch    int   // webgpu: engine.Options.Lookahead, ReadbackBatch
}

func parseWasmArgs(args []string, stderr io.Writer) (wasmArgs, error) {
	var a wasmArgs
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.model, "model", "", "")
	fs.StringVar(&a.prompt, "prompt", "", "")
	fs.IntVar(&a.n, "n", 256, "")
	fs.Float64Var(&a.temp, "temp", 1.0, "")
	fs.Uint64Var(&a.seed, "seed", 0, "")
	fs.StringVar(&a.format, "format", "text", "")
	fs.Float64Var(&a.topp, "topp", 0.9, "")
	fs.IntVar(&a.topk, "topk", 0, "")
	fs.Int64Var(&a.maxBinding, "max-binding", 0, "")
	fs.IntVar(&a.lookahead, "lookahead", 0, "")
	fs.IntVar(&a.rbBatch, "readback-batch", 0, "")
	fs.String("backend", "", "")
	fs.String("runtime", "", "")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		a.seed = uint64(time.Now().UnixNano())
	}
	return a, nil
}

// WasmBinary builds the wasm entry, or returns $EMBER_WASM when set (a
// prebuilt ember.wasm, e.g. on a machine without Go).
func WasmBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("EMBER_WASM"); p != "" {
		return p, nil
	}
	return wasmrun.Build(ctx, WasmPackage)
}

// wasmLine is one protocol line of the wasm entry's command-line mode (wasm/cli.go).
type wasmInfo struct {
	Backend string  `json:"backend"`
	Adapter string  `json:"adapter"`
	Reason  string  `json:"reason"`
	LoadMS  float64 `json:"load_ms"`
	Splits  []struct {
		Matrix string `json:"matrix"`
		Chunks int    `json:"chunks"`
	} `json:"splits"`
}

type wasmResult struct {
	Text         string  `json:"text"`
	Tokens       []int   `json:"tokens"`
	FinishReason string  `json:"finish_reason"`
	PromptTokens int     `json:"prompt_tokens"`
	Completion   int     `json:"completion_tokens"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
}

// WasmRunOptions returns wasmrun options that make the bundle in modelDir
// reachable by the wasm program at the returned model URL (a path under
// Chromium's local server, or the directory itself under Deno).
func WasmRunOptions(runtime, backend, modelDir string) (wasmrun.Options, string, error) {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return wasmrun.Options{}, "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "manifest.json")); err != nil {
		return wasmrun.Options{}, "", fmt.Errorf("%s is not a bundle: %w", modelDir, err)
	}
	rt, err := wasmrun.ParseRuntime(runtime)
	if err != nil {
		return wasmrun.Options{}, "", err
	}
	o := wasmrun.Options{Runtime: rt, WebGPU: backend == "webgpu"}
	if rt.UsesDeno() {
		return o, abs, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/model/", http.StripPrefix("/model/", http.FileServer(http.Dir(abs))))
	o.Handler = mux
	return o, "/model/", nil
}

func runWasmTo(backend, runtime string, args []string, stdout, stderr io.Writer) int {
	a, err := parseWasmArgs(args, stderr)
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o, modelURL, err := WasmRunOptions(runtime, backend, a.model)
	if err != nil {
		fmt.Fprintf(stderr, "generate: %v\n", err)
		return 2
	}
	wasm, err := WasmBinary(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "generate: build the wasm: %v\n", err)
		return 1
	}
	eb := "webgpu"
	if backend == "wasm-cpu" {
		eb = "cpu"
	}
	o.WASM = wasm
	o.Args = []string{"-model", modelURL, "-backend", eb, "-prompt", a.prompt, "-n", strconv.Itoa(a.n),
		"-temp", fmt.Sprint(a.temp), "-topp", fmt.Sprint(a.topp), "-topk", strconv.Itoa(a.topk),
		"-seed", strconv.FormatUint(a.seed, 10)}
	if backend == "webgpu" {
		o.Args = append(o.Args, "-max-binding", strconv.FormatInt(a.maxBinding, 10),
			"-lookahead", strconv.Itoa(a.lookahead), "-readback-batch", strconv.Itoa(a.rbBatch))
	}
	o.Timeout = 30 * time.Minute
	o.Stderr = stderr
	var info wasmInfo
	var res *wasmResult
	var protoErr error
	o.Stdout = &wasmrun.LineWriter{Fn: func(line []byte) {
		if len(line) == 0 {
			return
		}
		switch line[0] {
		case 'I':
			protoErr = json.Unmarshal(line[1:], &info)
		case 'T':
			var piece string
			if err := json.Unmarshal(line[1:], &piece); err != nil {
				protoErr = err
				return
			}
			if a.format == "text" {
				io.WriteString(stdout, piece)
			}
		case 'R':
			res = new(wasmResult)
			protoErr = json.Unmarshal(line[1:], res)
		default:
			fmt.Fprintf(stderr, "%s\n", line)
		}
	}}
	code, err := wasmrun.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "\ngenerate: %v\n", err)
		return 1
	}
	if protoErr != nil {
		fmt.Fprintf(stderr, "\ngenerate: bad output from the wasm program: %v\n", protoErr)
		return 1
	}
	if code != 0 || res == nil {
		if code == 0 {
			code = 1
		}
		return code
	}
	if a.format == "ids" {
		ids := make([]string, len(res.Tokens))
		for i, id := range res.Tokens {
			ids[i] = strconv.Itoa(id)
		}
		io.WriteString(stdout, strings.Join(ids, " "))
	}
	io.WriteString(stdout, "\n")
	detail := info.Adapter
	if info.Reason != "" {
		detail = info.Reason
	}
	fmt.Fprintf(stderr, "backend: %s in %s (%s)\n", info.Backend, runtime, detail)
	if len(info.Splits) > 0 {
		parts := make([]string, len(info.Splits))
		for i, sp := range info.Splits {
			parts[i] = fmt.Sprintf("%s: %d chunks", sp.Matrix, sp.Chunks)
		}
		fmt.Fprintf(stderr, "split: %s\n", strings.Join(parts, "; "))
	}
	fmt.Fprintf(stderr, "load: %.0f ms; prefill: %d tokens, %.1f tok/s; decode: %d tokens, %.1f tok/s; finish: %s\n",
		info.LoadMS, res.PromptTokens, res.PrefillTokS, max(res.Completion-1, 0), res.DecodeTokS, res.FinishReason)
	return 0
}
