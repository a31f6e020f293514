package safetensors

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ember-llm/ember/quant"
)

// File names of a HuggingFace checkpoint directory.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// MaxIndexBytes bounds model.safetensors.index.json.
const MaxIndexBytes = 64 << 20

// Model is a checkpoint directory: one file or several shards.
type Model struct {
	Dir     string
	Files   []*File
	Tensors []*TensorInfo // sorted by name
	index   map[string]*TensorInfo
}

// OpenModel opens dir/model.safetensors.index.json with its shards, or else
// dir/model.safetensors.
func OpenModel(dir string) (*Model, error) {
	m := &Model{Dir: dir, index: map[string]*TensorInfo{}}
	idxPath := filepath.Join(dir, IndexFile)
	if _, err := os.Stat(idxPath); err == nil {
		if err := m.openSharded(idxPath); err != nil {
			m.Close()
			return nil, err
		}
	} else {
		f, err := Open(filepath.Join(dir, SingleFile))
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
		for i := range f.Tensors {
			m.index[f.Tensors[i].Name] = &f.Tensors[i]
		}
	}
	for _, t := range m.index {
		m.Tensors = append(m.Tensors, t)
	}
	sort.Slice(m.Tensors, func(a, b int) bool { return m.Tensors[a].Name < m.Tensors[b].Name })
	return m, nil
}

type indexJSON struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

func (m *Model) openSharded(idxPath string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidFormat, idxPath, fmt.Sprintf(format, args...))
	}
	fh, err := os.Open(idxPath)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, MaxIndexBytes+1))
	fh.Close()
	if err != nil {
		return fmt.Errorf("safetensors: read %s: %w", idxPath, err)
	}
	if len(data) > MaxIndexBytes {
		return bad("larger than %d bytes", MaxIndexBytes)
	}
	var idx indexJSON
	if err := json.Unmarshal(data, &idx); err != nil {
		return bad("%v", err)
	}
	if len(idx.WeightMap) == 0 {
		return bad("weight_map is empty")
	}
	shards := map[string]*File{}
	names := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		shard := idx.WeightMap[name]
		if shard == "" || shard != filepath.Base(shard) || strings.ContainsAny(shard, `/\`) || shard == "." || shard == ".." {
			return bad("tensor %q: shard %q is not a plain file name", name, shard)
		}
		f, ok := shards[shard]
		if !ok {
			f, err = Open(filepath.Join(m.Dir, shard))
			if err != nil {
				return err
			}
			shards[shard] = f
			m.Files = append(m.Files, f)
		}
		t, err := f.Tensor(name)
		if err != nil {
			return bad("tensor %q is listed in shard %s, which does not hold it", name, shard)
		}
		m.index[name] = t
	}
	for _, f := range m.Files {
		for i := range f.Tensors {
			t := &f.Tensors[i]
			if m.index[t.Name] != t {
				return bad("tensor %q in %s is not listed in weight_map (or listed under another shard)", t.Name, f.Name)
			}
		}
	}
	return nil
}

// Close closes every shard.
func (m *Model) Close() error {
	for _, f := range m.Files {
		f.Close()
	}
	return nil
}

// Tensor returns the named tensor.
func (m *Model) Tensor(name string) (*TensorInfo, error) {
	t, ok := m.index[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q: %w", m.Dir, name, ErrNotFound)
	}
	return t, nil
}

// ReadF32 reads a tensor and widens it to float32.
func (t *TensorInfo) ReadF32() ([]float32, error) {
	raw, err := t.ReadBytes()
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.Elements())
	switch t.DType {
	case F32:
		quant.DecodeF32LE(out, raw)
	case F16:
		quant.DecodeF16LE(out, raw)
	case BF16:
		quant.DecodeBF16LE(out, raw)
	default:
		return nil, fmt.Errorf("%w: %s: tensor %q: %s", ErrUnsupportedType, t.File.Name, t.Name, t.DType)
	}
	return out, nil
}
