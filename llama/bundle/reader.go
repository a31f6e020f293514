package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Bundle is an opened bundle directory on a file system.
type Bundle struct {
	Dir      string
	Manifest *Manifest
}

// Open reads and validates dir/manifest.json. Shards are not hashed here:
// call Verify (or VerifyShard) for that.
func Open(dir string) (*Bundle, error) {
	path := filepath.Join(dir, ManifestFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bundle: read %s: %w", path, err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Bundle{Dir: dir, Manifest: m}, nil
}

// ShardPath is the file system path of shard i.
func (b *Bundle) ShardPath(i int) string { return filepath.Join(b.Dir, b.Manifest.Shards[i].File) }

// VerifyShard hashes shard i and compares its size and SHA-256 with the manifest.
func (b *Bundle) VerifyShard(i int) error {
	s := b.Manifest.Shards[i]
	f, err := os.Open(b.ShardPath(i))
	if err != nil {
		return fmt.Errorf("shard %s: %w", s.File, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("shard %s: %w", s.File, err)
	}
	if n != s.Bytes {
		return fmt.Errorf("shard %s: %w: %d bytes, manifest says %d", s.File, ErrChecksum, n, s.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("shard %s: %w: sha256 %s, manifest says %s", s.File, ErrChecksum, got, s.SHA256)
	}
	return nil
}

// Verify hashes every shard; the error names every bad shard.
func (b *Bundle) Verify() error {
	var errs []error
	for i := range b.Manifest.Shards {
		if err := b.VerifyShard(i); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TensorReader returns a reader over the stored bytes of the named tensor,
// concatenating its parts.
func (b *Bundle) TensorReader(name string) (*Tensor, io.ReadCloser, error) {
	t, err := b.Manifest.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	parts := t.PartsOrSelf()
	rs := make([]io.Reader, len(parts))
	var files multiCloser
	for k, p := range parts {
		f, err := os.Open(b.ShardPath(p.Shard))
		if err != nil {
			files.Close()
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		files = append(files, f)
		rs[k] = io.NewSectionReader(f, p.Offset, p.Length)
	}
	return t, readCloser{io.MultiReader(rs...), files}, nil
}

// ReadTensor reads the stored bytes of the named tensor.
func (b *Bundle) ReadTensor(name string) (*Tensor, []byte, error) {
	t, r, err := b.TensorReader(name)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	buf := make([]byte, t.Length)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w (shard shorter than the manifest says)", name, err)
	}
	return t, buf, nil
}

type multiCloser []*os.File

func (m multiCloser) Close() error {
	for _, f := range m {
		f.Close()
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
