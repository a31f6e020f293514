//go:build js && wasm

package shards

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/llama/bundle"
)

// ErrNoDeno is returned by the Deno file source outside Deno.
var ErrNoDeno = errors.New("shards: not running in Deno (no Deno.readFile)")

// DenoFiles reads a bundle from the local file system with Deno.readFile and
// verifies each shard with crypto.subtle's SHA-256 before returning it. The
// bytes stay a JS Uint8Array.
type DenoFiles struct {
	Dir      string // bundle directory (a path or a file:// URL)
	Manifest *bundle.Manifest
}

// IsDeno reports whether the program runs under Deno.
func IsDeno() bool {
	d := js.Global().Get("Deno")
	return d.Truthy() && d.Get("readFile").Type() == js.TypeFunction
}

// DenoPath turns a file:// URL or a plain path into a file system path.
func DenoPath(base string) string {
	if rest, ok := strings.CutPrefix(base, "file://"); ok {
		base = rest
	}
	return strings.TrimRight(base, "/")
}

// DenoReadFile reads a whole file as a JS Uint8Array.
func DenoReadFile(ctx context.Context, path string) (js.Value, error) {
	if !IsDeno() {
		return js.Undefined(), ErrNoDeno
	}
	v, err := awaitCall(ctx, func() js.Value { return js.Global().Get("Deno").Call("readFile", path) })
	if err != nil {
		return js.Undefined(), fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// OpenDenoBundle reads and validates dir/manifest.json.
func OpenDenoBundle(ctx context.Context, dir string) (*DenoFiles, error) {
	dir = DenoPath(dir)
	arr, err := DenoReadFile(ctx, dir+"/"+bundle.ManifestFile)
	if err != nil {
		return nil, err
	}
	n := arr.Get("byteLength").Int()
	if n > bundle.MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", bundle.ErrInvalidManifest, n, bundle.MaxManifestBytes)
	}
	data := make([]byte, n)
	js.CopyBytesToGo(data, arr)
	m, err := bundle.Parse(data)
	if err != nil {
		return nil, err
	}
	return &DenoFiles{Dir: dir, Manifest: m}, nil
}

// Shard implements Source.
func (d *DenoFiles) Shard(ctx context.Context, i int, progress func(bytes int64)) (js.Value, error) {
	if i < 0 || i >= len(d.Manifest.Shards) {
		return js.Undefined(), fmt.Errorf("shard %d: %w", i, bundle.ErrNotFound)
	}
	s := d.Manifest.Shards[i]
	arr, err := DenoReadFile(ctx, d.Dir+"/"+s.File)
	if err != nil {
		return js.Undefined(), err
	}
	if n := int64(arr.Get("byteLength").Int()); n != s.Bytes {
		return js.Undefined(), fmt.Errorf("shard %s: %w: %d bytes, manifest says %d", s.File, bundle.ErrChecksum, n, s.Bytes)
	}
	sum, err := SHA256(ctx, arr)
	if err != nil {
		return js.Undefined(), fmt.Errorf("shard %s: %w", s.File, err)
	}
	if sum != s.SHA256 {
		return js.Undefined(), fmt.Errorf("shard %s: %w: sha256 %s, manifest says %s", s.File, bundle.ErrChecksum, sum, s.SHA256)
	}
	if progress != nil {
		progress(s.Bytes)
	}
	return arr, nil
}

// SHA256 hashes a JS BufferSource with crypto.subtle and returns lowercase hex.
func SHA256(ctx context.Context, data js.Value) (string, error) {
	subtle := js.Global().Get("crypto").Get("subtle")
	if !subtle.Truthy() {
		return "", errors.New("crypto.subtle is not available")
	}
	buf, err := awaitCall(ctx, func() js.Value { return subtle.Call("digest", "SHA-256", data) })
	if err != nil {
		return "", fmt.Errorf("sha256: %w", err)
	}
	var sum [32]byte
	js.CopyBytesToGo(sum[:], js.Global().Get("Uint8Array").New(buf))
	return hex.EncodeToString(sum[:]), nil
}

// awaitCall calls f (recovering a synchronous JS exception) and awaits the
// Promise it returns.
func awaitCall(ctx context.Context, f func() js.Value) (js.Value, error) {
	var p js.Value
	if err := jsbridge.Try(func() { p = f() }); err != nil {
		return js.Undefined(), err
	}
	return jsbridge.Await(ctx, p)
}
