//go:build !js

// Command bench measures a bundle's speed on one backend:
//
//	go run ./scripts/bench -model DIR -backend cpu|webgpu|wasm-cpu [-runtime chromium|deno|dawn] -prompt-tokens P -n N
//
// It prints load time, prefill tok/s (P prompt tokens in one pass), time to
// first token, and decode tok/s (N greedy steps that ignore end-of-sequence),
// measured the same way on every backend (scripts/bench/benchloop). cpu runs
// the Go engine here; webgpu and wasm-cpu run the wasm entry (wasm/) in
// headless Chromium or Deno through scripts/internal/wasmrun. With -json the
// figures are printed as one JSON object.
//
// On a machine without Go, set EMBER_WASM to a prebuilt ember.wasm and
// GOROOT to a directory holding lib/wasm/wasm_exec.js; EMBER_DENO names the
// Deno binary and EMBER_DENO_NATIVE_GPU=1 keeps the system's Vulkan driver.
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

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/scripts/bench/benchloop"
	"github.com/ember-llm/ember/scripts/internal/wasmrun"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type info struct {
	Backend       string  `json:"backend"`
	Adapter       string  `json:"adapter"`
	Reason        string  `json:"reason"`
	ContextLength int     `json:"context_length"`
	LoadMS        float64 `json:"load_ms"`
	GPUBytes      int64   `json:"gpu_bytes"`
	MaxBatch      int     `json:"max_batch"`
}

type report struct {
	Model   string `json:"model"`
	Backend string `json:"backend"`
	Runtime string `json:"runtime,omitempty"`
	Info    info   `json:"info"`
	benchloop.Result
	Profile []kernelTime `json:"profile,omitempty"`
}

// opTime is one dispatch's time from the engine's profile; kernelTime sums
// them per kernel.
type opTime struct {
	Kernel string
	MS     float64
}

type kernelTime struct {
	Kernel     string  `json:"kernel"`
	Dispatches int     `json:"dispatches"`
	MS         float64 `json:"ms"`
}

func summarize(ops []opTime) []kernelTime {
	var out []kernelTime
	idx := map[string]int{}
	for _, o := range ops {
		name, _, _ := strings.Cut(o.Kernel, " ")
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			out = append(out, kernelTime{Kernel: name})
		}
		out[i].Dispatches++
		if o.MS > 0 {
			out[i].MS += o.MS
		}
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "bundle directory")
	backend := fs.String("backend", "cpu", "cpu, webgpu or wasm-cpu")
	rt := fs.String("runtime", "chromium", "for webgpu/wasm-cpu: chromium, deno (wgpu) or dawn (Deno with dawn.node)")
	P := fs.Int("prompt-tokens", 128, "prompt tokens (prefill)")
	N := fs.Int("n", 128, "decode steps")
	maxCtx := fs.Int("maxctx", 0, "KV cache positions (0: P+N rounded up, at most the model's context)")
	maxBatch := fs.Int("maxbatch", 0, "prompt tokens per GPU pass (0: the engine's default)")
	lookahead := fs.Int("lookahead", 0, "webgpu: greedy decode steps queued ahead (0: the engine's default)")
	attnChunk := fs.Int("attnchunk", 0, "webgpu: attention sequence chunk (0: the engine's default)")
	normWG := fs.Int("normwg", 0, "webgpu: rmsnorm/argmax workgroup size (0: the engine's default)")
	threads := fs.Int("threads", 0, "cpu: goroutines (0: GOMAXPROCS)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	profile := fs.Int("profile", 0, "webgpu: also time each dispatch of a decode step alone, this many repetitions")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *model == "" {
		fmt.Fprintln(stderr, "bench: -model DIR is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ctxLen := *maxCtx
	if ctxLen == 0 {
		ctxLen = (*P + *N + 8 + 127) / 128 * 128
	}
	rep := report{Model: *model, Backend: *backend}
	switch *backend {
	case "cpu":
		t0 := time.Now()
		m, err := llama.LoadDir(*model)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		m.SetThreads(*threads)
		rep.Info = info{Backend: "cpu", LoadMS: float64(time.Since(t0).Microseconds()) / 1000, ContextLength: m.Config().ContextLength}
		r, err := benchloop.Run(ctx, m, *P, *N)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		r.LoadMS = rep.Info.LoadMS
		rep.Result = r
	case "webgpu", "wasm-cpu":
		rep.Runtime = *rt
		r, inf, prof, err := runWasmBench(ctx, *backend, *rt, *model, *P, *N, ctxLen, *maxBatch, *profile, []string{"-lookahead", strconv.Itoa(*lookahead), "-attnchunk", strconv.Itoa(*attnChunk), "-normwg", strconv.Itoa(*normWG)}, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		rep.Result, rep.Info, rep.Profile = r, inf, summarize(prof)
	default:
		fmt.Fprintf(stderr, "bench: -backend must be cpu, webgpu or wasm-cpu, not %q\n", *backend)
		return 2
	}
	if *asJSON {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	where := rep.Backend
	if rep.Runtime != "" {
		where += " in " + rep.Runtime
	}
	if rep.Info.Adapter != "" {
		where += " (" + rep.Info.Adapter + ")"
	}
	if rep.Info.Reason != "" {
		where += " (" + rep.Info.Reason + ")"
	}
	fmt.Fprintf(stdout, "model %s, %s\n", rep.Model, where)
	fmt.Fprint(stdout, rep.Result.Format())
	if len(rep.Profile) > 0 {
		var n int
		var total, pass float64
		for _, k := range rep.Profile {
			if k.Kernel == "pass" {
				pass = k.MS
				continue
			}
			fmt.Fprintf(stdout, "  %-14s %4d dispatches %9.3f ms\n", k.Kernel, k.Dispatches, k.MS)
			n += k.Dispatches
			total += k.MS
		}
		fmt.Fprintf(stdout, "  whole decode pass on the GPU (one compute pass): %.3f ms\n", pass)
		fmt.Fprintf(stdout, "  decode step: %d dispatches timed alone sum to %.3f ms of GPU time\n", n, total)
	}
	return 0
}

func runWasmBench(ctx context.Context, backend, runtime, modelDir string, P, N, ctxLen, maxBatch, profile int, extra []string, stderr io.Writer) (r benchloop.Result, inf info, prof []opTime, err error) {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return
	}
	o := wasmrun.Options{WebGPU: backend == "webgpu", Stderr: stderr}
	modelURL := abs
	if o.Runtime, err = wasmrun.ParseRuntime(runtime); err != nil {
		return
	}
	if !o.Runtime.UsesDeno() {
		mux := http.NewServeMux()
		mux.Handle("/model/", http.StripPrefix("/model/", http.FileServer(http.Dir(abs))))
		o.Handler = mux
		modelURL = "/model/"
	}
	wasm := os.Getenv("EMBER_WASM")
	if wasm == "" {
		if wasm, err = wasmrun.Build(ctx, "github.com/ember-llm/ember/wasm"); err != nil {
			return
		}
	}
	eb := "webgpu"
	if backend == "wasm-cpu" {
		eb = "cpu"
	}
	o.WASM = wasm
	o.Args = []string{"-model", modelURL, "-backend", eb, "-bench", "-prompt-tokens", strconv.Itoa(P), "-n", strconv.Itoa(N),
		"-maxctx", strconv.Itoa(ctxLen), "-maxbatch", strconv.Itoa(maxBatch), "-profile", strconv.Itoa(profile)}
	o.Args = append(o.Args, extra...)
	got := false
	var perr error
	o.Stdout = &wasmrun.LineWriter{Fn: func(line []byte) {
		if len(line) == 0 {
			return
		}
		switch line[0] {
		case 'I':
			perr = json.Unmarshal(line[1:], &inf)
		case 'B':
			got = true
			perr = json.Unmarshal(line[1:], &r)
		case 'P':
			perr = json.Unmarshal(line[1:], &prof)
		case 'S':
			fmt.Fprintf(stderr, "encoder: %s\n", line[1:])
		default:
			fmt.Fprintf(stderr, "%s\n", line)
		}
	}}
	code, err := wasmrun.Run(ctx, o)
	if err != nil {
		return
	}
	if perr != nil {
		return r, inf, prof, fmt.Errorf("bad output from the wasm program: %v", perr)
	}
	if !got {
		return r, inf, prof, fmt.Errorf("the wasm program failed (exit code %d)", code)
	}
	if code != 0 {
		fmt.Fprintf(stderr, "bench: the wasm program exited with code %d after the benchmark\n", code)
	}
	return
}
