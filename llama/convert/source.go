// Package convert turns checkpoints (llama2.c, GGUF, HuggingFace safetensors)
// into Ember bundles (docs/FORMAT.md). Each input format is a Source; Convert
// streams one tensor at a time from it into a bundle.Writer.
//
// It runs on the host only (the CLI is scripts/convert); the browser never
// parses checkpoints.
package convert

import "github.com/ember-llm/ember/llama/bundle"

// Source is one checkpoint opened for conversion.
type Source interface {
	// Config returns the hyper-parameters read from the checkpoint.
	Config() bundle.Config
	// Tokenizer returns the tokenizer embedded in the checkpoint, or nil, nil
	// when the file has none.
	Tokenizer() (*bundle.Tokenizer, error)
	// Tensor returns one tensor by canonical bundle name (bundle.TokEmbeddings,
	// bundle.LayerTensor(l, bundle.WQ), …) in canonical layout: shape
	// [out, in], q/k rows in the interleaved RoPE convention (HF checkpoints
	// permuted back).
	Tensor(name string) (*SourceTensor, error)
	Close() error
}

// SourceTensor is one tensor read from a Source.
type SourceTensor struct {
	Shape []int
	F32   []float32 // set unless Q8 holds pre-quantized Q8_0 data
	Q8    *Q8Blocks // GGUF Q8_0 imported without requantizing
}

// Q8Blocks is Q8_0 data already in the bundle's q8_block32 layout.
type Q8Blocks struct {
	Q      []int8   // rows*PadQ8(cols), each row zero-padded
	Scales []uint16 // f16 bits, rows*ceil(cols/32)
}

// RowSource is optionally implemented by a Source that can yield a tensor a
// few rows at a time, so that tensors larger than memory (a 128k-vocabulary
// embedding is 2 GiB as f32) stream through Convert. Convert uses it, when
// present, for every f32 tensor.
type RowSource interface {
	// TensorRows returns the canonical shape of the named tensor and a
	// function that fills dst, a whole number of rows, with the next rows
	// (in order, starting at row 0).
	TensorRows(name string) (shape []int, next func(dst []float32) error, err error)
}

// WholeTensor reads one whole f32 tensor through a RowSource: the Tensor
// method of a source that streams rows.
func WholeTensor(src RowSource, name string) (*SourceTensor, error) {
	shape, next, err := src.TensorRows(name)
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	x := make([]float32, n)
	if err := next(x); err != nil {
		return nil, err
	}
	return &SourceTensor{Shape: shape, F32: x}, nil
}
