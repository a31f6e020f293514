//go:build js && wasm

// Package shards says where a bundle's shard bytes come from in the browser
// (IndexedDB, fetch) or in Deno (local files). Bytes stay JS typed arrays:
// a 7B model never passes through Go memory.
package shards

import (
	"context"
	"syscall/js"
)

// Source yields shard i's bytes as a JS Uint8Array, verified against the
// manifest's SHA-256 before it is returned.
type Source interface {
	Shard(ctx context.Context, i int, progress func(bytes int64)) (js.Value, error)
}
