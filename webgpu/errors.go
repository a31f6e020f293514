//go:build js && wasm

package webgpu

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors.
var (
	// ErrNoWebGPU: navigator.gpu is missing (no WebGPU in this runtime), or
	// requestAdapter returned null.
	ErrNoWebGPU = errors.New("webgpu: WebGPU is not available")
	// ErrDeviceLost: the device was lost (driver reset, destroy, OOM); see
	// https://www.w3.org/TR/webgpu/#device-loss. Every later call fails.
	ErrDeviceLost = errors.New("webgpu: device lost")
	// ErrValidation, ErrOutOfMemory, ErrInternal match *GPUError by kind.
	ErrValidation  = &GPUError{Kind: FilterValidation}
	ErrOutOfMemory = &GPUError{Kind: FilterOutOfMemory}
	ErrInternal    = &GPUError{Kind: FilterInternal}
)

// ErrorFilter is a GPUErrorFilter: https://www.w3.org/TR/webgpu/#enumdef-gpuerrorfilter
type ErrorFilter string

const (
	FilterValidation  ErrorFilter = "validation"
	FilterOutOfMemory ErrorFilter = "out-of-memory"
	FilterInternal    ErrorFilter = "internal"
)

// GPUError is a GPUValidationError, GPUOutOfMemoryError or GPUInternalError
// (https://www.w3.org/TR/webgpu/#gpuerror) as popped from an error scope or
// reported as uncaptured, or a GPUPipelineError from async pipeline creation.
// errors.Is(err, ErrValidation) matches by Kind.
type GPUError struct {
	Kind    ErrorFilter
	Op      string // what the wrapper was doing, e.g. `createBuffer "kv cache"`
	Message string
}

func (e *GPUError) Error() string {
	var b strings.Builder
	b.WriteString("webgpu: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Kind))
	b.WriteString(" error")
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is matches a *GPUError of the same Kind (ErrValidation, ErrOutOfMemory, ErrInternal).
func (e *GPUError) Is(target error) bool {
	t, ok := target.(*GPUError)
	return ok && t.Kind == e.Kind && (t.Message == "" || t.Message == e.Message)
}

// CompilationMessage is one GPUCompilationMessage:
// https://www.w3.org/TR/webgpu/#gpucompilationmessage
type CompilationMessage struct {
	Type    string // "error", "warning", "info"
	Line    int    // 1-based; 0 when unknown
	Column  int    // 1-based, in UTF-16 code units
	Message string
}

// CompilationError is a WGSL module that failed to compile; Error() lists
// every error message as label:line:col with the offending source line.
type CompilationError struct {
	Label    string
	Messages []CompilationMessage
	Source   string
}

func (e *CompilationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webgpu: shader module %q failed to compile", e.Label)
	lines := strings.Split(e.Source, "\n")
	for _, m := range e.Messages {
		if m.Type != "error" {
			continue
		}
		fmt.Fprintf(&b, "\n%s:%d:%d: %s", e.Label, m.Line, m.Column, m.Message)
		if m.Line >= 1 && m.Line <= len(lines) {
			fmt.Fprintf(&b, "\n    %s", strings.TrimRight(lines[m.Line-1], " \t\r"))
		}
	}
	return b.String()
}

// Is makes errors.Is(err, ErrValidation) true for compilation errors too.
func (e *CompilationError) Is(target error) bool { return target == ErrValidation }
