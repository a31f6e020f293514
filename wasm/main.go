//go:build js && wasm

// Command wasm is Ember's WebAssembly entry point. Started by the engine's
// Web Worker (web/worker.js) or by Deno, it sets globalThis.emberWasm =
// {load, generate, abort, unload, info} (docs/ARCHITECTURE.md): every call
// that works returns a Promise and runs in its own goroutine, so JavaScript
// never waits on Go. The model runs on WebGPU (webgpu/engine) when the
// runtime gives a GPU adapter and device, otherwise on the Go CPU engine,
// and info().reason says why.
//
// Started with arguments (os.Args, as scripts/generate and scripts/bench do
// through scripts/internal/wasmrun), it runs one load + generate or benchmark
// from the command line instead: see cli.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/tokenizer"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(runCLI(os.Args[1:]))
	}
	rt := &Runtime{}
	var funcs jsbridge.Funcs
	api := js.Global().Get("Object").New()
	api.Set("load", funcs.Add(func(this js.Value, args []js.Value) any {
		opts := arg(args)
		return jsbridge.Promise(func() (any, error) {
			lo, err := loadOptions(opts)
			if err != nil {
				return nil, err
			}
			info, err := rt.Load(context.Background(), lo)
			if err != nil {
				return nil, err
			}
			return infoJS(info), nil
		})
	}))
	api.Set("generate", funcs.Add(func(this js.Value, args []js.Value) any {
		opts := arg(args)
		return jsbridge.Promise(func() (any, error) {
			g, err := generateOptions(opts)
			if err != nil {
				return nil, err
			}
			res, err := rt.Generate(context.Background(), g)
			if err != nil {
				return nil, err
			}
			return resultJS(res, rt.Info(), opts.Get("return_tokens").Truthy()), nil
		})
	}))
	api.Set("abort", funcs.Add(func(this js.Value, args []js.Value) any {
		rt.Abort()
		return nil
	}))
	api.Set("unload", funcs.Add(func(this js.Value, args []js.Value) any {
		return jsbridge.Promise(func() (any, error) {
			rt.Unload()
			return nil, nil
		})
	}))
	api.Set("info", funcs.Add(func(this js.Value, args []js.Value) any {
		return infoJS(rt.Info())
	}))
	js.Global().Set("emberWasm", api)
	select {}
}

func arg(args []js.Value) js.Value {
	if len(args) == 0 || args[0].Type() != js.TypeObject {
		return js.Global().Get("Object").New()
	}
	return args[0]
}

func str(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

func num(v js.Value, def float64) float64 {
	if v.Type() == js.TypeNumber {
		return v.Float()
	}
	return def
}

func loadOptions(o js.Value) (LoadOptions, error) {
	lo := LoadOptions{
		BaseURL:    str(o.Get("baseURL")),
		Backend:    str(o.Get("backend")),
		Files:      o.Get("files").Truthy(),
		MaxContext: int(num(o.Get("maxContext"), 0)),
		MaxBatch:   int(num(o.Get("maxBatch"), 0)),
		MaxBinding: int64(num(o.Get("maxBinding"), 0)),
	}
	key, err := parsePublicKey(str(o.Get("publicKey")))
	if err != nil {
		return lo, err
	}
	lo.PublicKey = key
	if cb := o.Get("onProgress"); cb.Type() == js.TypeFunction {
		lo.Progress = func(done, total int64, shard int) {
			jsbridge.Invoke(cb, float64(done), float64(total), shard)
		}
	}
	return lo, nil
}

func generateOptions(o js.Value) (GenerateOptions, error) {
	g := GenerateOptions{Prompt: str(o.Get("prompt"))}
	if ms := o.Get("messages"); ms.Type() == js.TypeObject && ms.Length() > 0 {
		for i := 0; i < ms.Length(); i++ {
			m := ms.Index(i)
			g.Messages = append(g.Messages, tokenizer.Message{Role: str(m.Get("role")), Content: str(m.Get("content"))})
		}
	} else if o.Get("prompt").Type() != js.TypeString {
		return g, errors.New("generate needs a prompt (text) or messages ([{role, content}])")
	}
	seed := rand.Uint64()
	if v := o.Get("seed"); v.Type() == js.TypeNumber && v.Float() >= 0 {
		seed = uint64(v.Float())
	}
	g.Opts = llama.Options{
		MaxTokens: int(num(o.Get("max_tokens"), 0)),
		Sample: llama.SampleParams{
			Temperature:       float32(num(o.Get("temperature"), 1)),
			TopP:              float32(num(o.Get("top_p"), 1)),
			TopK:              int(num(o.Get("top_k"), 0)),
			MinP:              float32(num(o.Get("min_p"), 0)),
			RepetitionPenalty: float32(num(o.Get("repetition_penalty"), 1)),
			Seed:              seed,
		},
		SlidingWindow: true,
	}
	if st := o.Get("stop"); st.Type() == js.TypeString {
		g.Opts.StopStrings = []string{st.String()}
	} else if st.Type() == js.TypeObject {
		for i := 0; i < st.Length(); i++ {
			if s := str(st.Index(i)); s != "" {
				g.Opts.StopStrings = append(g.Opts.StopStrings, s)
			}
		}
	}
	if cb := o.Get("onText"); cb.Type() == js.TypeFunction {
		g.OnText = func(piece string) { jsbridge.Invoke(cb, piece) }
	}
	return g, nil
}

// toJS converts a JSON-able Go value into a plain JS object.
func toJS(v any) js.Value {
	b, err := json.Marshal(v)
	if err != nil {
		return js.Null()
	}
	return js.Global().Get("JSON").Call("parse", string(b))
}

func infoJS(i Info) js.Value {
	return toJS(map[string]any{
		"backend": i.Backend, "adapter": i.Adapter, "reason": i.Reason, "model": i.Model,
		"config": i.Config, "context_length": i.ContextLength, "synthetic": i.Synthetic,
		"load_ms": i.LoadMS, "gpu_bytes": i.GPUBytes, "max_batch": i.MaxBatch, "splits": i.Splits,
	})
}

func resultJS(r *llama.Result, info Info, tokens bool) js.Value {
	m := map[string]any{
		"text":          r.Text,
		"finish_reason": r.FinishReason,
		"usage":         map[string]any{"prompt_tokens": r.PromptTokens, "completion_tokens": r.CompletionTokens, "cached_tokens": r.CachedTokens},
		"timings": map[string]any{
			"load_ms": info.LoadMS, "prefill_tok_s": r.PrefillTokS, "decode_tok_s": r.DecodeTokS,
			"ttft_ms": float64(r.TTFT.Microseconds()) / 1000,
		},
		"truncated":        r.Truncated,
		"dropped_messages": r.DroppedMessages,
		"dropped_tokens":   r.DroppedTokens,
	}
	if tokens {
		m["tokens"] = r.Tokens
	}
	return toJS(m)
}
