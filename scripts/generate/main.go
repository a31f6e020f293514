//go:build !js

// Command generate runs a bundle and prints the generated text:
//
//	go run ./scripts/generate -model DIR -prompt TEXT -n N -temp T [-seed S] [-format text|ids]
//	    [-topp P] [-topk K] [-backend cpu|webgpu|wasm-cpu] [-runtime chromium|deno|dawn]
//	    [-max-binding BYTES] [-lookahead N] [-readback-batch N]
//
// stdout holds only the generated text (then a newline, as llama2.c prints)
// or, with -format ids, the generated ids separated by spaces; prefill and
// decode speeds go to stderr. The prompt gets BOS, like llama2.c. -n counts
// generated tokens (0: until the context is full); generation also stops at
// an end-of-generation token. llama2.c's run.c samples steps-k+1 tokens for a
// prompt of k tokens (BOS included): its -n 256 with an empty prompt is -n 256
// here. Backends other than cpu run the wasm build in a browser or Deno.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/tokenizer"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "bundle directory")
	prompt := fs.String("prompt", "", "prompt text (BOS is prepended)")
	n := fs.Int("n", 256, "tokens to generate (0: until the context is full)")
	temp := fs.Float64("temp", 1.0, "temperature (0: greedy)")
	seed := fs.Uint64("seed", 0, "sampling seed (default: from the clock)")
	format := fs.String("format", "text", "output: text or ids")
	topp := fs.Float64("topp", 0.9, "top-p (nucleus) sampling; 0 or 1: off")
	topk := fs.Int("topk", 0, "top-k sampling; 0: off")
	backend := fs.String("backend", "cpu", "cpu, webgpu or wasm-cpu")
	rt := fs.String("runtime", "chromium", "for webgpu/wasm-cpu: chromium, deno (wgpu) or dawn (Deno with dawn.node)")
	fs.Int64("max-binding", 0, "for webgpu: split weight matrices into GPU buffers of at most this many bytes (0: the device's limit)")
	fs.Int("lookahead", 0, "for webgpu: greedy decode steps in flight (0: the engine's default)")
	fs.Int("readback-batch", 0, "for webgpu: decode steps per id readback (0: sized to ~40 ms of generation)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "generate: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *format != "text" && *format != "ids" {
		fmt.Fprintf(stderr, "generate: -format must be text or ids, not %q\n", *format)
		return 2
	}
	if *model == "" {
		fmt.Fprintln(stderr, "generate: -model DIR is required")
		return 2
	}
	if *n < 0 {
		fmt.Fprintln(stderr, "generate: -n must be >= 0")
		return 2
	}
	switch *backend {
	case "cpu":
	case "webgpu", "wasm-cpu":
		return runWasm(*backend, *rt, args)
	default:
		fmt.Fprintf(stderr, "generate: -backend must be cpu, webgpu or wasm-cpu, not %q\n", *backend)
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		*seed = uint64(time.Now().UnixNano())
	}

	t0 := time.Now()
	m, err := llama.LoadDir(*model)
	if err != nil {
		fmt.Fprintf(stderr, "generate: %v\n", err)
		return 1
	}
	tok, err := tokenizer.New(&m.Manifest().Tokenizer)
	if err != nil {
		fmt.Fprintf(stderr, "generate: %v\n", err)
		return 1
	}
	load := time.Since(t0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var onText func(string)
	if *format == "text" {
		onText = func(p string) {
			out.WriteString(p)
			out.Flush()
		}
	}
	opts := llama.Options{MaxTokens: *n, Sample: llama.SampleParams{
		Temperature: float32(*temp), TopP: float32(*topp), TopK: *topk, Seed: *seed}}
	res, err := llama.NewSession(m, tok).Generate(ctx, *prompt, opts, onText)
	if err != nil {
		out.Flush()
		fmt.Fprintf(stderr, "\ngenerate: %v\n", err)
		return 1
	}
	if *format == "ids" {
		for i, id := range res.Tokens {
			if i > 0 {
				out.WriteByte(' ')
			}
			out.WriteString(strconv.Itoa(id))
		}
	}
	out.WriteByte('\n')
	out.Flush()
	fmt.Fprintf(stderr, "load: %.0f ms; prefill: %d tokens, %.1f tok/s; decode: %d tokens, %.1f tok/s; finish: %s\n",
		float64(load.Microseconds())/1000, res.PromptTokens-res.CachedTokens, res.PrefillTokS,
		max(res.CompletionTokens-1, 0), res.DecodeTokS, res.FinishReason)
	return 0
}
