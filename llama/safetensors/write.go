package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Entry is one tensor to write.
type Entry struct {
	Name  string
	DType string
	Shape []int
	Data  []byte // little-endian element bytes
}

// Encode writes a safetensors file holding tensors in the given order (for
// fixtures and tests; the converter never writes safetensors).
func Encode(w io.Writer, metadata map[string]string, tensors []Entry) error {
	hdr := map[string]any{}
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("safetensors: encode header: %w", err)
	}
	for len(js)%8 != 0 { // the reference writer aligns the data to 8 bytes
		js = append(js, ' ')
	}
	bw := bufio.NewWriter(w)
	binary.Write(bw, binary.LittleEndian, uint64(len(js)))
	bw.Write(js)
	for _, t := range tensors {
		bw.Write(t.Data)
	}
	return bw.Flush()
}

// WriteFile writes a safetensors file at path.
func WriteFile(path string, metadata map[string]string, tensors []Entry) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Encode(f, metadata, tensors); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteIndex writes a model.safetensors.index.json mapping each tensor to
// its shard file.
func WriteIndex(path string, totalSize int64, weightMap map[string]string) error {
	data, err := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": totalSize},
		"weight_map": weightMap,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
