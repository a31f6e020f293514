package bundle

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// TensorSpec describes a tensor to write; its byte length follows from
// DType and Shape (ByteLength).
type TensorSpec struct {
	Name      string
	DType     DType
	Shape     []int
	Scale     string // q8 only: name of the scale tensor
	GroupSize int    // q8 only
}

// Writer streams tensors into shards inside a temporary directory next to
// the destination; Commit renames it into place, Abort removes it. Only a
// complete, verified bundle ever appears at the destination.
type Writer struct {
	dest, tmp string
	maxShard  int64

	tensors []Tensor
	shards  []Shard

	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash
	size int64 // bytes written to the current shard
	done bool

	signKey ed25519.PrivateKey // set by SignWith
}

// Create starts a bundle that Commit will place at dir. maxShardBytes <= 0
// selects DefaultShardBytes.
func Create(dir string, maxShardBytes int64) (*Writer, error) {
	if maxShardBytes <= 0 {
		maxShardBytes = DefaultShardBytes
	}
	if maxShardBytes < Alignment {
		return nil, fmt.Errorf("bundle: shard size %d is below the %d byte alignment", maxShardBytes, Alignment)
	}
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &Writer{dest: dir, tmp: tmp, maxShard: maxShardBytes}, nil
}

// ShardName is the file name of shard i.
func ShardName(i int) string { return fmt.Sprintf("shard-%05d.bin", i) }

func (w *Writer) openShard() error {
	if err := w.closeShard(); err != nil {
		return err
	}
	name := ShardName(len(w.shards))
	f, err := os.Create(filepath.Join(w.tmp, name))
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	w.f, w.bw, w.h, w.size = f, bufio.NewWriterSize(f, 1<<20), sha256.New(), 0
	w.shards = append(w.shards, Shard{File: name})
	return nil
}

func (w *Writer) closeShard() error {
	if w.f == nil {
		return nil
	}
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	s := &w.shards[len(w.shards)-1]
	s.Bytes = w.size
	s.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	w.f = nil
	if err != nil {
		return fmt.Errorf("bundle: write %s: %w", s.File, err)
	}
	return nil
}

func (w *Writer) write(p []byte) error {
	if _, err := w.bw.Write(p); err != nil {
		return fmt.Errorf("bundle: write %s: %w", w.shards[len(w.shards)-1].File, err)
	}
	w.h.Write(p)
	w.size += int64(len(p))
	return nil
}

var zeros [Alignment]byte

func (w *Writer) pad() error {
	if r := w.size % Alignment; r != 0 {
		return w.write(zeros[:Alignment-r])
	}
	return nil
}

// WriteTensor appends a tensor, reading exactly its byte length from src.
// A tensor that does not fit in the current shard starts a new one; a
// tensor larger than a shard is split at row boundaries over consecutive
// shards.
func (w *Writer) WriteTensor(spec TensorSpec, src io.Reader) error {
	if w.done {
		return errors.New("bundle: writer already finished")
	}
	length := ByteLength(spec.DType, spec.Shape)
	if length < 0 {
		return fmt.Errorf("bundle: tensor %q: impossible shape %v for %s", spec.Name, spec.Shape, spec.DType)
	}
	t := Tensor{Name: spec.Name, DType: spec.DType, Shape: append([]int(nil), spec.Shape...), Length: length,
		Scale: spec.Scale, GroupSize: spec.GroupSize}
	rowBytes := t.RowBytes()
	if rowBytes > w.maxShard {
		return fmt.Errorf("bundle: tensor %q: one row is %d bytes, larger than the %d byte shard size", spec.Name, rowBytes, w.maxShard)
	}
	aligned := (w.size + Alignment - 1) / Alignment * Alignment
	if w.f == nil || aligned+length > w.maxShard && w.size > 0 {
		if err := w.openShard(); err != nil {
			return err
		}
	}
	if err := w.pad(); err != nil {
		return err
	}
	remaining := length
	for remaining > 0 {
		if w.size > 0 && w.size+rowBytes > w.maxShard {
			if err := w.openShard(); err != nil {
				return err
			}
		}
		room := w.maxShard - w.size
		n := remaining
		if n > room {
			n = room / rowBytes * rowBytes
		}
		t.Parts = append(t.Parts, Part{Shard: len(w.shards) - 1, Offset: w.size, Length: n})
		if _, err := io.CopyN(hashWriter{w}, src, n); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("bundle: tensor %q: %w", spec.Name, err)
		}
		remaining -= n
	}
	t.Shard, t.Offset = t.Parts[0].Shard, t.Parts[0].Offset
	if len(t.Parts) == 1 {
		t.Parts = nil
	}
	w.tensors = append(w.tensors, t)
	return nil
}

type hashWriter struct{ w *Writer }

func (h hashWriter) Write(p []byte) (int, error) {
	if err := h.w.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Abort removes everything written so far; the destination is untouched.
func (w *Writer) Abort() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.done = true
	os.RemoveAll(w.tmp)
}

// Commit completes the manifest m (its Tensors and Shards are filled in
// here), validates it, writes manifest.json and moves the bundle into place.
// An existing bundle at the destination is replaced only once the new one
// is complete; on any error the destination is left as it was.
func (w *Writer) Commit(m *Manifest) (err error) {
	if w.done {
		return errors.New("bundle: writer already finished")
	}
	defer func() {
		if err != nil {
			w.Abort()
		}
	}()
	if err := w.closeShard(); err != nil {
		return err
	}
	w.done = true
	m.Format, m.Version = FormatName, FormatVersion
	m.Tensors, m.Shards = w.tensors, w.shards
	if err := m.Validate(); err != nil {
		return err
	}
	data, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("bundle: encode manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(w.tmp, ManifestFile), data); err != nil {
		return err
	}
	if w.signKey != nil {
		if err := writeFileSync(filepath.Join(w.tmp, SignatureFile), Sign(w.signKey, data)); err != nil {
			return err
		}
	}
	return replaceDir(w.tmp, w.dest)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bundle: write %s: %w", path, err)
	}
	return nil
}

// replaceDir moves src to dst. An existing dst is first renamed aside and
// removed only after src is in place, so a crash leaves either bundle whole.
func replaceDir(src, dst string) error {
	if err := os.Chmod(src, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	old := ""
	if _, err := os.Lstat(dst); err == nil {
		old = src + ".old"
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("bundle: move old bundle aside: %w", err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if old != "" {
			os.Rename(old, dst)
		}
		return fmt.Errorf("bundle: move bundle into place: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}
