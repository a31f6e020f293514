// Package llama holds the Llama model on the CPU — Config, Weights, State and
// the forward pass in f32 and int8 — and the generation API shared by every
// engine: sampling (SampleParams, Sampler) and the Session that turns prompts
// and chat messages into streamed text.
//
// It is pure Go and must stay so (no syscall/js): it is the reference the
// WebGPU engine is checked against, the CPU fallback in the browser, and the
// engine of scripts/generate. The WebGPU engine implements Engine (and
// DeviceSampler) and reuses Session unchanged.
package llama

import (
	"context"
	"errors"

	"github.com/ember-llm/ember/llama/bundle"
)

// Engine is a model that can be fed tokens. Implementations keep a KV cache:
// Eval at position pos overwrites whatever the cache held from pos on, so a
// caller rewinds by simply evaluating at an earlier position.
type Engine interface {
	Config() *bundle.Config
	// Eval feeds tokens at positions [pos, pos+len(tokens)) through the
	// model, storing their keys and values, and returns the logits of the
	// last token (vocab_size floats, valid until the next call).
	Eval(ctx context.Context, tokens []int, pos int) ([]float32, error)
	Close() error
}

// DeviceSampler is optional, for engines that sample on the device and read
// back one id instead of vocab_size logits. EvalSample must choose exactly the
// token SampleLogits(logits, p, u) would choose (repetition penalty excluded:
// Session only uses EvalSample when none is requested).
type DeviceSampler interface {
	EvalSample(ctx context.Context, tokens []int, pos int, p SampleParams, u float32) (int, error)
}

// Errors returned by the engine; wrapped with details.
var (
	ErrTokenRange      = errors.New("llama: token id out of range")
	ErrContextOverflow = errors.New("llama: position past the context length")
	ErrNonFinite       = errors.New("llama: NaN or Inf in activations")
	ErrBadModel        = errors.New("llama: bundle does not match the model")
)
