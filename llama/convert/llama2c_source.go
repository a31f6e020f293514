package convert

import (
	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/llama2c"
)

// llama2cSource reads a llama2.c checkpoint. Its int8 ("version 2") groups
// run over each flattened tensor and may straddle rows (stories260K's w2,
// 172 columns), so tensors are dequantized to f32 and Convert requantizes
// them per the requested scheme; for row-aligned groups under q8_block32
// that reproduces the same int8 values (only the scale is rounded to f16).
type llama2cSource struct {
	f *llama2c.File
}

// OpenLlama2C opens a llama2.c checkpoint (legacy f32, version 1 f32 or
// version 2 int8). It holds no tokenizer: pass one to Convert.
func OpenLlama2C(path string) (Source, error) {
	f, err := llama2c.Open(path)
	if err != nil {
		return nil, err
	}
	return &llama2cSource{f: f}, nil
}

func (s *llama2cSource) Config() bundle.Config { return s.f.Config() }

func (s *llama2cSource) Tokenizer() (*bundle.Tokenizer, error) { return nil, nil }

func (s *llama2cSource) Tensor(name string) (*SourceTensor, error) {
	shape, err := s.f.Shape(name)
	if err != nil {
		return nil, err
	}
	x, err := s.f.Float32(name)
	if err != nil {
		return nil, err
	}
	return &SourceTensor{Shape: shape, F32: x}, nil
}

func (s *llama2cSource) Close() error { return s.f.Close() }

// TensorRows streams a tensor a few rows at a time (RowSource), so a 7B
// checkpoint converts in bounded memory.
func (s *llama2cSource) TensorRows(name string) ([]int, func([]float32) error, error) {
	shape, err := s.f.Shape(name)
	if err != nil {
		return nil, nil, err
	}
	var pos int64
	next := func(dst []float32) error {
		if err := s.f.ReadFloat32(name, pos, dst); err != nil {
			return err
		}
		pos += int64(len(dst))
		return nil
	}
	return shape, next, nil
}
