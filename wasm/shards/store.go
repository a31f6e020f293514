//go:build js && wasm

package shards

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"syscall/js"

	"github.com/hack-pad/go-indexeddb/idb"
)

// The shard store's schema (docs/FORMAT.md, "Shard store"); serviceworker/sw.js
// reads and writes the same database.
const (
	DBName         = "ember"
	DBVersion      = 1
	storeManifests = "manifests" // key [url, version]
	storeShards    = "shards"    // key sha256
)

// ErrQuota is wrapped by every "not enough browser storage" failure.
var ErrQuota = errors.New("not enough browser storage")

var (
	object     = js.Global().Get("Object")
	uint8Array = js.Global().Get("Uint8Array")
	array      = js.Global().Get("Array")
)

// Store is the IndexedDB shard store.
type Store struct {
	db *idb.Database
}

// OpenStore opens (creating or upgrading) the shard store database; name ""
// means DBName.
func OpenStore(ctx context.Context, name string) (st *Store, err error) {
	if name == "" {
		name = DBName
	}
	if !js.Global().Get("indexedDB").Truthy() {
		return nil, errors.New("shards: IndexedDB is not available here")
	}
	req, err := idb.Global().Open(ctx, name, DBVersion, func(db *idb.Database, oldVersion, newVersion uint) error {
		names, err := db.ObjectStoreNames()
		if err != nil {
			return err
		}
		has := map[string]bool{}
		for _, n := range names {
			has[n] = true
		}
		if !has[storeManifests] {
			if _, err := db.CreateObjectStore(storeManifests, idb.ObjectStoreOptions{KeyPath: js.ValueOf([]any{"url", "version"})}); err != nil {
				return err
			}
		}
		if !has[storeShards] {
			if _, err := db.CreateObjectStore(storeShards, idb.ObjectStoreOptions{KeyPath: js.ValueOf("sha256")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shards: open IndexedDB %q: %w", name, err)
	}
	db, err := req.Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("shards: open IndexedDB %q: %w", name, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database connection.
func (s *Store) Close() error { return s.db.Close() }

// record is one manifests entry: one version of one model.
type record struct {
	URL, Version, Name string
	Text               string // manifest.json as served
	Sig                string // manifest.json.sig as served, "" when unknown
	Files, Shards      []string
	Sizes              []int64
	Bytes              int64
	Complete           bool
	Time               float64 // ms since the epoch, when last opened
}

func strs(v js.Value) []string {
	if v.Type() != js.TypeObject {
		return nil
	}
	out := make([]string, v.Length())
	for i := range out {
		out[i] = v.Index(i).String()
	}
	return out
}

func recordFromJS(v js.Value) record {
	r := record{URL: v.Get("url").String(), Version: v.Get("version").String(), Complete: v.Get("complete").Truthy(),
		Files: strs(v.Get("files")), Shards: strs(v.Get("shards"))}
	if n := v.Get("name"); n.Type() == js.TypeString {
		r.Name = n.String()
	}
	if t := v.Get("text"); t.Type() == js.TypeString {
		r.Text = t.String()
	}
	if sig := v.Get("sig"); sig.Type() == js.TypeString {
		r.Sig = sig.String()
	}
	if sz := v.Get("sizes"); sz.Type() == js.TypeObject {
		r.Sizes = make([]int64, sz.Length())
		for i := range r.Sizes {
			r.Sizes[i] = int64(sz.Index(i).Float())
		}
	}
	if b := v.Get("bytes"); b.Type() == js.TypeNumber {
		r.Bytes = int64(b.Float())
	}
	if t := v.Get("time"); t.Type() == js.TypeNumber {
		r.Time = t.Float()
	}
	return r
}

func (r record) toJS() js.Value {
	v := object.New()
	v.Set("url", r.URL)
	v.Set("version", r.Version)
	v.Set("name", r.Name)
	v.Set("text", r.Text)
	if r.Sig != "" {
		v.Set("sig", r.Sig)
	} else {
		v.Set("sig", js.Null())
	}
	files, shas, sizes := array.New(), array.New(), array.New()
	for i := range r.Files {
		files.Call("push", r.Files[i])
		shas.Call("push", r.Shards[i])
		sizes.Call("push", float64(r.Sizes[i]))
	}
	v.Set("files", files)
	v.Set("shards", shas)
	v.Set("sizes", sizes)
	v.Set("bytes", float64(r.Bytes))
	v.Set("complete", r.Complete)
	v.Set("time", r.Time)
	return v
}

func urlRange(url string) (*idb.KeyRange, error) {
	return idb.NewKeyRangeBound(js.ValueOf([]any{url, ""}), js.ValueOf([]any{url, "\uffff"}), false, false)
}

// allValues reads every value of the store in kr (nil: all) with a cursor.
func allValues(ctx context.Context, ms *idb.ObjectStore, kr *idb.KeyRange) ([]js.Value, error) {
	var req *idb.CursorWithValueRequest
	var err error
	if kr == nil {
		req, err = ms.OpenCursor(idb.CursorNext)
	} else {
		req, err = ms.OpenCursorRange(kr, idb.CursorNext)
	}
	if err != nil {
		return nil, err
	}
	var vals []js.Value
	err = req.Iter(ctx, func(c *idb.CursorWithValue) error {
		v, err := c.Value()
		if err == nil {
			vals = append(vals, v)
		}
		return err
	})
	return vals, err
}

// putManifest stores the record of url@version, keeping the complete flag
// (and a signature) of an existing one; the time is refreshed.
func (s *Store) putManifest(ctx context.Context, r record) (record, error) {
	tx, err := s.db.Transaction(idb.TransactionReadWrite, storeManifests)
	if err != nil {
		return r, fmt.Errorf("shards: store manifest: %w", err)
	}
	ms, err := tx.ObjectStore(storeManifests)
	if err != nil {
		return r, err
	}
	req, err := ms.Get(js.ValueOf([]any{r.URL, r.Version}))
	if err != nil {
		return r, err
	}
	old, err := req.Await(ctx)
	if err != nil {
		return r, fmt.Errorf("shards: read manifest record: %w", err)
	}
	if old.Type() == js.TypeObject {
		o := recordFromJS(old)
		r.Complete = o.Complete
		if r.Sig == "" {
			r.Sig = o.Sig
		}
	}
	if _, err := ms.Put(r.toJS()); err != nil {
		return r, fmt.Errorf("shards: store manifest: %w", err)
	}
	if err := tx.Await(ctx); err != nil {
		return r, storeErr("store the manifest", err)
	}
	return r, nil
}

// records lists the stored versions of url, newest first.
func (s *Store) records(ctx context.Context, url string) ([]record, error) {
	tx, err := s.db.Transaction(idb.TransactionReadOnly, storeManifests)
	if err != nil {
		return nil, err
	}
	ms, err := tx.ObjectStore(storeManifests)
	if err != nil {
		return nil, err
	}
	var kr *idb.KeyRange
	if url != "" {
		if kr, err = urlRange(url); err != nil {
			return nil, err
		}
	}
	vals, err := allValues(ctx, ms, kr)
	if err != nil {
		return nil, fmt.Errorf("shards: read manifest records: %w", err)
	}
	out := make([]record, len(vals))
	for i, v := range vals {
		out[i] = recordFromJS(v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time > out[j].Time })
	return out, nil
}

// shardKeys is the set of stored shard hashes.
func (s *Store) shardKeys(ctx context.Context) (map[string]bool, error) {
	tx, err := s.db.Transaction(idb.TransactionReadOnly, storeShards)
	if err != nil {
		return nil, err
	}
	ss, err := tx.ObjectStore(storeShards)
	if err != nil {
		return nil, err
	}
	req, err := ss.GetAllKeys()
	if err != nil {
		return nil, err
	}
	keys, err := req.Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("shards: list stored shards: %w", err)
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k.String()] = true
	}
	return have, nil
}

// getShard returns the stored bytes of sha as a Uint8Array, or undefined.
func (s *Store) getShard(ctx context.Context, sha string) (js.Value, error) {
	tx, err := s.db.Transaction(idb.TransactionReadOnly, storeShards)
	if err != nil {
		return js.Undefined(), err
	}
	ss, err := tx.ObjectStore(storeShards)
	if err != nil {
		return js.Undefined(), err
	}
	req, err := ss.Get(js.ValueOf(sha))
	if err != nil {
		return js.Undefined(), err
	}
	v, err := req.Await(ctx)
	if err != nil {
		return js.Undefined(), fmt.Errorf("shards: read shard %s: %w", sha, err)
	}
	if v.Type() != js.TypeObject {
		return js.Undefined(), nil
	}
	return uint8Array.New(v.Get("data")), nil
}

// putShard stores verified bytes (a Uint8Array) under their hash. The
// transaction is all or nothing: a QuotaExceededError leaves no partial shard.
func (s *Store) putShard(ctx context.Context, sha string, data js.Value) error {
	buf := data.Get("buffer")
	if data.Get("byteOffset").Int() != 0 || data.Get("byteLength").Int() != buf.Get("byteLength").Int() {
		buf = data.Call("slice").Get("buffer")
	}
	v := object.New()
	v.Set("sha256", sha)
	v.Set("bytes", data.Get("byteLength"))
	v.Set("data", buf)
	v.Set("time", js.Global().Get("Date").Call("now"))
	tx, err := s.db.Transaction(idb.TransactionReadWrite, storeShards)
	if err != nil {
		return storeErr("store it", err)
	}
	ss, err := tx.ObjectStore(storeShards)
	if err != nil {
		return err
	}
	if _, err := ss.Put(v); err != nil {
		return storeErr("store it", err)
	}
	if err := tx.Await(ctx); err != nil {
		return storeErr("store it", err)
	}
	return nil
}

// finalize marks url@version complete once every one of its shards is
// stored, then deletes the model's other versions and every shard no
// remaining record uses. It reports whether the version is complete.
func (s *Store) finalize(ctx context.Context, url, version string) (bool, error) {
	tx, err := s.db.Transaction(idb.TransactionReadWrite, storeManifests, storeShards)
	if err != nil {
		return false, err
	}
	ms, err := tx.ObjectStore(storeManifests)
	if err != nil {
		return false, err
	}
	ss, err := tx.ObjectStore(storeShards)
	if err != nil {
		return false, err
	}
	req, err := ms.Get(js.ValueOf([]any{url, version}))
	if err != nil {
		return false, err
	}
	v, err := req.Await(ctx)
	if err != nil || v.Type() != js.TypeObject {
		return false, err
	}
	rec := recordFromJS(v)
	kreq, err := ss.GetAllKeys()
	if err != nil {
		return false, err
	}
	keys, err := kreq.Await(ctx)
	if err != nil {
		return false, err
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k.String()] = true
	}
	for _, sha := range rec.Shards {
		if !have[sha] {
			return false, tx.Await(ctx)
		}
	}
	if !rec.Complete {
		v.Set("complete", true)
		if _, err := ms.Put(v); err != nil {
			return false, err
		}
	}
	all, err := allValues(ctx, ms, nil)
	if err != nil {
		return false, err
	}
	keep := map[string]bool{}
	for _, o := range all {
		r := recordFromJS(o)
		if r.URL == url && r.Version != version {
			if _, err := ms.Delete(js.ValueOf([]any{r.URL, r.Version})); err != nil {
				return false, err
			}
			continue
		}
		for _, sha := range r.Shards {
			keep[sha] = true
		}
	}
	for sha := range have {
		if !keep[sha] {
			if _, err := ss.Delete(js.ValueOf(sha)); err != nil {
				return false, err
			}
		}
	}
	if err := tx.Await(ctx); err != nil {
		return false, storeErr("finish the model", err)
	}
	return true, nil
}

// Model is one cached model as List reports it.
type Model struct {
	URL         string  `json:"url"`     // bundle base URL
	Name        string  `json:"name"`    // manifest name
	Version     string  `json:"version"` // SHA-256 of manifest.json
	Bytes       int64   `json:"bytes"`   // the model's size (sum of its shards)
	StoredBytes int64   `json:"stored_bytes"`
	Complete    bool    `json:"complete"`
	Time        float64 `json:"time"` // last opened, ms since the epoch
}

// List reports every stored model version, newest first.
func (s *Store) List(ctx context.Context) ([]Model, error) {
	recs, err := s.records(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("shards: list models: %w", err)
	}
	have, err := s.shardKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Model, 0, len(recs))
	for _, r := range recs {
		m := Model{URL: r.URL, Name: r.Name, Version: r.Version, Bytes: r.Bytes, Complete: r.Complete, Time: r.Time}
		for i, sha := range r.Shards {
			if have[sha] && i < len(r.Sizes) {
				m.StoredBytes += r.Sizes[i]
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// Delete removes every version of the model at url and the shards no other
// model uses.
func (s *Store) Delete(ctx context.Context, url string) error {
	url = resolveURL(url)
	tx, err := s.db.Transaction(idb.TransactionReadWrite, storeManifests, storeShards)
	if err != nil {
		return err
	}
	ms, err := tx.ObjectStore(storeManifests)
	if err != nil {
		return err
	}
	ss, err := tx.ObjectStore(storeShards)
	if err != nil {
		return err
	}
	all, err := allValues(ctx, ms, nil)
	if err != nil {
		return err
	}
	kreq, err := ss.GetAllKeys()
	if err != nil {
		return err
	}
	keys, err := kreq.Await(ctx)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, o := range all {
		r := recordFromJS(o)
		if r.URL == url {
			if _, err := ms.Delete(js.ValueOf([]any{r.URL, r.Version})); err != nil {
				return err
			}
			continue
		}
		for _, sha := range r.Shards {
			keep[sha] = true
		}
	}
	for _, k := range keys {
		if !keep[k.String()] {
			if _, err := ss.Delete(k); err != nil {
				return err
			}
		}
	}
	if err := tx.Await(ctx); err != nil {
		return fmt.Errorf("shards: delete %s: %w", url, err)
	}
	return nil
}

// storeErr names a full store plainly.
func storeErr(what string, err error) error {
	if errors.Is(err, idb.NewDOMException("QuotaExceededError")) {
		return fmt.Errorf("%w: the browser refused to %s (QuotaExceededError); delete a cached model or allow this site more storage", ErrQuota, what)
	}
	return fmt.Errorf("shards: %s: %w", what, err)
}
