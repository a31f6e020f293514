//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/scripts/bench/benchloop"
	"github.com/ember-llm/ember/tokenizer"
	"github.com/ember-llm/ember/webgpu/engine"
)

// The command-line mode talks to its host (scripts/generate, scripts/bench)
// in lines on stdout, each one letter and a JSON value:
//
//	I{info}        after load
//	T"piece"       each streamed piece of text
//	R{result}      the generation's result (text, ids, timings)
//	B{bench}       benchmark figures
//
// Errors go to stderr with exit code 1.
type cliResult struct {
	Text         string  `json:"text"`
	Tokens       []int   `json:"tokens"`
	FinishReason string  `json:"finish_reason"`
	PromptTokens int     `json:"prompt_tokens"`
	Completion   int     `json:"completion_tokens"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
	TTFTMS       float64 `json:"ttft_ms"`
	PrefillMS    float64 `json:"prefill_ms"`
	DecodeMS     float64 `json:"decode_ms"`
}

type cliInfo struct {
	Backend       string  `json:"backend"`
	Adapter       string  `json:"adapter"`
	Reason        string  `json:"reason"`
	Model         string  `json:"model"`
	ContextLength int     `json:"context_length"`
	LoadMS        float64 `json:"load_ms"`
	GPUBytes      int64   `json:"gpu_bytes"`
	MaxBatch      int     `json:"max_batch"`
	// Splits lists the weight matrices stored in several chunks.
	Splits []engine.Split `json:"splits,omitempty"`
}

func emit(kind byte, v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(append([]byte{kind}, b...), '\n'))
}

func runCLI(args []string) int {
	fs := flag.NewFlagSet("ember.wasm", flag.ContinueOnError)
	model := fs.String("model", "", "bundle base URL (browser) or directory (Deno)")
	backend := fs.String("backend", "auto", "auto, webgpu or cpu")
	maxCtx := fs.Int("maxctx", 0, "KV cache positions (0: the model's context)")
	maxBatch := fs.Int("maxbatch", 0, "prompt tokens per prefill pass (0: default)")
	lookahead := fs.Int("lookahead", 0, "greedy decode steps queued ahead (0: default)")
	readbackBatch := fs.Int("readback-batch", 0, "decode steps per id readback (0: sized to ~40 ms of generation)")
	attnChunk := fs.Int("attnchunk", 0, "attention sequence chunk (0: default)")
	normWG := fs.Int("normwg", 0, "rmsnorm/argmax workgroup size (0: default)")
	maxBinding := fs.Int64("max-binding", 0, "WebGPU: split weight matrices into chunks of at most this many bytes (0: the device's binding limit)")
	prompt := fs.String("prompt", "", "prompt text")
	ids := fs.String("ids", "", "prompt token ids as a JSON array (instead of -prompt)")
	chat := fs.String("messages", "", "chat messages as a JSON array of {role, content}")
	n := fs.Int("n", 256, "maximum new tokens (0: until the context is full)")
	temp := fs.Float64("temp", 1, "temperature (0: greedy)")
	topp := fs.Float64("topp", 1, "top-p")
	topk := fs.Int("topk", 0, "top-k (0: off)")
	minp := fs.Float64("minp", 0, "min-p")
	penalty := fs.Float64("penalty", 1, "repetition penalty (1: off)")
	seed := fs.Uint64("seed", 0, "sampling seed")
	stops := fs.String("stop", "", "stop strings as a JSON array")
	bench := fs.Bool("bench", false, "benchmark instead of generating")
	promptTokens := fs.Int("prompt-tokens", 128, "benchmark prompt length")
	logits := fs.Int("logits", -1, "with -ids: print the logits of the prompt and of this many greedy steps (L lines)")
	profile := fs.Int("profile", 0, "with -bench on WebGPU: time each dispatch of a decode step alone, this many times")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	rt := &Runtime{}
	info, err := rt.Load(ctx, LoadOptions{BaseURL: *model, Backend: *backend, MaxContext: *maxCtx, MaxBatch: *maxBatch,
		Lookahead: *lookahead, ReadbackBatch: *readbackBatch, AttnChunk: *attnChunk, NormWG: *normWG, MaxBinding: *maxBinding})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	emit('I', cliInfo{Backend: info.Backend, Adapter: info.Adapter, Reason: info.Reason, Model: info.Model,
		ContextLength: info.ContextLength, LoadMS: info.LoadMS, GPUBytes: info.GPUBytes, MaxBatch: info.MaxBatch,
		Splits: info.Splits})
	if *bench {
		rt.mu.Lock()
		eng := rt.eng
		rt.mu.Unlock()
		r, err := benchloop.Run(ctx, eng, *promptTokens, *n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 1
		}
		r.LoadMS = info.LoadMS
		emit('B', r)
		if ge, ok := eng.(*engine.Engine); ok {
			emit('S', ge.Stats())
		}
		if ge, ok := eng.(*engine.Engine); ok && *profile > 0 {
			ops, err := ge.Profile(ctx, *promptTokens+*n-1, *profile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "error: profile:", err)
				return 1
			}
			emit('P', ops)
		}
		rt.Unload()
		return 0
	}
	if *logits >= 0 {
		var prompt []int
		if err := json.Unmarshal([]byte(*ids), &prompt); err != nil || len(prompt) == 0 {
			fmt.Fprintln(os.Stderr, "error: -logits needs -ids with at least one id")
			return 2
		}
		rt.mu.Lock()
		eng := rt.eng
		rt.mu.Unlock()
		toks, pos := prompt, 0
		for i := 0; i <= *logits; i++ {
			l, err := eng.Eval(ctx, toks, pos)
			if err != nil {
				fmt.Fprintln(os.Stderr, "error:", err)
				return 1
			}
			emit('L', l)
			pos += len(toks)
			toks = []int{llama.Argmax(l)}
		}
		rt.Unload()
		return 0
	}
	opts := llama.Options{
		MaxTokens: *n,
		Sample: llama.SampleParams{Temperature: float32(*temp), TopP: float32(*topp), TopK: *topk, MinP: float32(*minp),
			RepetitionPenalty: float32(*penalty), Seed: *seed},
	}
	if *stops != "" {
		if err := json.Unmarshal([]byte(*stops), &opts.StopStrings); err != nil {
			fmt.Fprintln(os.Stderr, "error: -stop:", err)
			return 2
		}
	}
	onText := func(piece string) { emit('T', piece) }
	var res *llama.Result
	switch {
	case *ids != "":
		var prompt []int
		if err := json.Unmarshal([]byte(*ids), &prompt); err != nil {
			fmt.Fprintln(os.Stderr, "error: -ids:", err)
			return 2
		}
		rt.mu.Lock()
		sess := rt.sess
		rt.mu.Unlock()
		res, err = sess.GenerateIDs(ctx, prompt, opts, onText)
	case *chat != "":
		var msgs []tokenizer.Message
		if err := json.Unmarshal([]byte(*chat), &msgs); err != nil {
			fmt.Fprintln(os.Stderr, "error: -messages:", err)
			return 2
		}
		res, err = rt.Generate(ctx, GenerateOptions{Messages: msgs, Opts: opts, OnText: onText})
	default:
		res, err = rt.Generate(ctx, GenerateOptions{Prompt: *prompt, Opts: opts, OnText: onText})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	emit('R', cliResult{Text: res.Text, Tokens: res.Tokens, FinishReason: res.FinishReason, PromptTokens: res.PromptTokens,
		Completion: res.CompletionTokens, PrefillTokS: res.PrefillTokS, DecodeTokS: res.DecodeTokS,
		TTFTMS: float64(res.TTFT.Microseconds()) / 1000, PrefillMS: float64(res.Prefill.Microseconds()) / 1000,
		DecodeMS: float64(res.Decode.Microseconds()) / 1000})
	rt.Unload()
	return 0
}
