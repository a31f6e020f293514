//go:build js && wasm

package shards

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/llama/bundle"
)

// Errors of Open and the Loader, for errors.Is. Checksum failures wrap
// bundle.ErrChecksum and signature failures bundle.ErrSignature.
var (
	ErrOffline  = errors.New("shards: offline, and this model is not stored in the browser")
	ErrNotFound = errors.New("shards: model not found")
)

// Options tunes Open.
type Options struct {
	// PublicKey, when set, makes Open refuse a manifest without a valid
	// manifest.json.sig for this Ed25519 key.
	PublicKey ed25519.PublicKey
	Parallel  int // shards downloaded at once (default 3)
	Retries   int // further tries of a failed or interrupted shard download (default 4)
	// Progress receives download progress (throttled to about one call per MiB
	// and shard, plus every shard's end); shards already stored count as done.
	Progress func(Progress)
	// DBName is the IndexedDB database ("" means DBName). NoStore skips the
	// store entirely: every shard is fetched and verified, nothing is kept.
	DBName  string
	NoStore bool
	// Check, when set, vets the parsed manifest before it is stored or any
	// storage quota is asked for (e.g. a model too large for the engine
	// that will run it); its error is returned as is.
	Check func(*bundle.Manifest) error
}

// Progress is a snapshot of a model download.
type Progress struct {
	Shard       int    // the shard that advanced; -1 for Open's report of the shards already stored
	File        string // its file name
	ShardDone   int64
	ShardTotal  int64
	Done, Total int64 // bytes of the whole model
}

// Loader is the Source that Open returns: shards come from IndexedDB when
// stored, otherwise they are fetched (a few at once), verified, stored and
// returned.
type Loader struct {
	URL      string // bundle base URL (absolute, ends in "/")
	Version  string // SHA-256 of manifest.json
	Manifest *bundle.Manifest
	// Offline is set when the manifest came from the store because the
	// network failed.
	Offline bool
	// Persisted reports navigator.storage.persist()'s answer.
	Persisted bool
	// StoreErr says why the shard store could not be opened; the model then
	// loads without being kept.
	StoreErr error

	store *Store
	opt   Options
	sem   chan struct{}

	mu       sync.Mutex
	stored   []bool
	jobs     map[int]*job
	done     []int64 // bytes received per shard
	lastSent []int64
	bc       js.Value // BroadcastChannel carrying the service worker's progress
	bcFunc   js.Func
}

type job struct {
	finished  chan struct{}
	data      js.Value
	err       error
	listeners []func(int64)
}

// Open fetches and validates baseURL's manifest.json (from the store when
// the network fails), checks its signature when opt.PublicKey is set,
// records it in the shard store and checks that the missing shards fit in
// the browser's storage quota before a shard byte is fetched.
func Open(ctx context.Context, baseURL string, opt Options) (*bundle.Manifest, *Loader, error) {
	if opt.Parallel <= 0 {
		opt.Parallel = 3
	}
	if opt.Retries < 0 {
		opt.Retries = 0
	} else if opt.Retries == 0 {
		opt.Retries = 4
	}
	l := &Loader{URL: resolveURL(baseURL), opt: opt, sem: make(chan struct{}, opt.Parallel), jobs: map[int]*job{}}
	if !opt.NoStore {
		// Without a usable IndexedDB (Deno, some private modes) the model still
		// loads, verified, but is not kept.
		if st, err := OpenStore(ctx, opt.DBName); err == nil {
			l.store = st
		} else if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		} else {
			l.StoreErr = err
		}
	}
	fail := func(err error) (*bundle.Manifest, *Loader, error) {
		l.Close()
		return nil, nil, err
	}

	text, sig, err := l.fetchManifest(ctx)
	if err != nil {
		return fail(err)
	}
	if opt.PublicKey != nil {
		if sig == "" {
			return fail(fmt.Errorf("%w: %s has no %s, and this page only accepts signed models", bundle.ErrSignature, l.URL, bundle.SignatureFile))
		}
		if err := bundle.VerifySignature(opt.PublicKey, []byte(text), []byte(sig)); err != nil {
			return fail(fmt.Errorf("%s: %w", l.URL, err))
		}
	}
	m, err := bundle.Parse([]byte(text))
	if err != nil {
		return fail(fmt.Errorf("%s%s: %w", l.URL, bundle.ManifestFile, err))
	}
	if opt.Check != nil {
		if err := opt.Check(m); err != nil {
			l.forgetManifestOnly(ctx)
			return fail(err)
		}
	}
	l.Manifest = m
	sum := sha256.Sum256([]byte(text))
	l.Version = hex.EncodeToString(sum[:])
	n := len(m.Shards)
	l.stored, l.done, l.lastSent = make([]bool, n), make([]int64, n), make([]int64, n)

	var missing int64
	if l.store != nil {
		rec := record{URL: l.URL, Version: l.Version, Name: m.Name, Text: text, Sig: sig,
			Bytes: m.TotalBytes(), Time: float64(time.Now().UnixMilli())}
		for _, s := range m.Shards {
			rec.Files = append(rec.Files, s.File)
			rec.Shards = append(rec.Shards, s.SHA256)
			rec.Sizes = append(rec.Sizes, s.Bytes)
		}
		if _, err := l.store.putManifest(ctx, rec); err != nil {
			return fail(err)
		}
		have, err := l.store.shardKeys(ctx)
		if err != nil {
			return fail(err)
		}
		for i, s := range m.Shards {
			if have[s.SHA256] {
				l.stored[i], l.done[i] = true, s.Bytes
			} else {
				missing += s.Bytes
			}
		}
		if missing == 0 {
			if _, err := l.store.finalize(ctx, l.URL, l.Version); err != nil {
				return fail(err)
			}
		} else {
			if l.Offline {
				return fail(fmt.Errorf("%w: %s is stored only in part (%s missing)", ErrOffline, l.URL, MB(missing)))
			}
			if err := checkQuota(ctx, missing); err != nil {
				return fail(fmt.Errorf("%s: %w", l.URL, err))
			}
			l.Persisted = persist(ctx)
		}
	}
	l.listenServiceWorker()
	if stored := m.TotalBytes() - missing; stored > 0 && opt.Progress != nil && l.store != nil {
		opt.Progress(Progress{Shard: -1, Done: stored, Total: m.TotalBytes()})
	}
	return m, l, nil
}

// fetchManifest returns manifest.json's text and, when a key is configured
// (or the file exists), manifest.json.sig's. When the network fails the
// newest complete stored version is used.
func (l *Loader) fetchManifest(ctx context.Context) (text, sig string, err error) {
	resp, err := fetch(ctx, l.URL+bundle.ManifestFile, nil)
	if err == nil && resp.Get("status").Int() == 503 && resp.Get("headers").Call("get", "X-Ember-Error").String() == "offline" {
		err = errors.New("offline (service worker)")
	}
	if err != nil {
		if l.store != nil {
			recs, rerr := l.store.records(ctx, l.URL)
			if rerr == nil {
				for _, r := range recs {
					if r.Complete {
						l.Offline = true
						return r.Text, r.Sig, nil
					}
				}
			}
		}
		return "", "", fmt.Errorf("%w (%s: %v)", ErrOffline, l.URL, err)
	}
	if st := resp.Get("status").Int(); st != 200 {
		if st == 404 {
			return "", "", fmt.Errorf("%w: %s%s answered HTTP 404", ErrNotFound, l.URL, bundle.ManifestFile)
		}
		return "", "", fmt.Errorf("shards: %s%s answered HTTP %d", l.URL, bundle.ManifestFile, st)
	}
	// The exact bytes: the signature and the version hash cover them.
	ab, err := jsbridge.CallAwait(ctx, resp, "arrayBuffer")
	if err != nil {
		return "", "", fmt.Errorf("shards: read %s%s: %w", l.URL, bundle.ManifestFile, err)
	}
	if n := ab.Get("byteLength").Int(); n > bundle.MaxManifestBytes {
		return "", "", fmt.Errorf("%w: %s is %d bytes, more than %d", bundle.ErrInvalidManifest, bundle.ManifestFile, n, bundle.MaxManifestBytes)
	}
	raw := make([]byte, ab.Get("byteLength").Int())
	js.CopyBytesToGo(raw, uint8Array.New(ab))
	text = string(raw)
	if l.opt.PublicKey != nil {
		sresp, err := fetch(ctx, l.URL+bundle.SignatureFile, nil)
		if err != nil {
			return "", "", fmt.Errorf("shards: fetch %s%s: %w", l.URL, bundle.SignatureFile, err)
		}
		if sresp.Get("status").Int() == 200 {
			sv, err := jsbridge.CallAwait(ctx, sresp, "text")
			if err != nil {
				return "", "", err
			}
			sig = sv.String()
		}
	}
	return text, sig, nil
}

// Shard implements Source. A stored shard is read from IndexedDB (it was
// verified before it was stored); a missing one is downloaded together with
// the next few missing shards.
func (l *Loader) Shard(ctx context.Context, i int, progress func(bytes int64)) (js.Value, error) {
	if i < 0 || i >= len(l.Manifest.Shards) {
		return js.Undefined(), fmt.Errorf("shard %d: %w", i, bundle.ErrNotFound)
	}
	s := l.Manifest.Shards[i]
	l.mu.Lock()
	stored := l.stored[i]
	l.mu.Unlock()
	if stored {
		data, err := l.store.getShard(ctx, s.SHA256)
		if err != nil {
			return js.Undefined(), fmt.Errorf("shard %s: %w", s.File, err)
		}
		if data.Truthy() && int64(data.Get("byteLength").Float()) == s.Bytes {
			if progress != nil {
				progress(s.Bytes)
			}
			return data, nil
		}
		// Deleted behind our back (the storage panel, another tab): fetch again.
		l.mu.Lock()
		l.stored[i], l.done[i] = false, 0
		l.mu.Unlock()
	}
	j := l.start(ctx, i, progress)
	for k, n := i+1, 0; k < len(l.Manifest.Shards) && n < l.opt.Parallel-1; k++ {
		l.mu.Lock()
		skip := l.stored[k]
		l.mu.Unlock()
		if !skip {
			l.start(ctx, k, nil)
			n++
		}
	}
	select {
	case <-j.finished:
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
	l.mu.Lock()
	if l.jobs[i] == j {
		delete(l.jobs, i)
	}
	l.mu.Unlock()
	if j.err != nil {
		return js.Undefined(), j.err
	}
	return j.data, nil
}

// Download fetches, verifies and stores every missing shard (opt.Parallel at
// once), so the model is complete in the store; the shard bytes are not kept
// in memory.
func (l *Loader) Download(ctx context.Context) error {
	if l.store == nil {
		return fmt.Errorf("shards: Download needs the shard store (%v)", l.StoreErr)
	}
	var jobs []*job
	for i := range l.Manifest.Shards {
		l.mu.Lock()
		stored := l.stored[i]
		l.mu.Unlock()
		if !stored {
			jobs = append(jobs, l.start(ctx, i, nil))
		}
	}
	var errs []error
	for _, j := range jobs {
		select {
		case <-j.finished:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			errs = append(errs, j.err)
		}
	}
	l.mu.Lock()
	for i, j := range l.jobs {
		if j.err == nil && l.stored[i] {
			delete(l.jobs, i) // the bytes are in the store
		}
	}
	l.mu.Unlock()
	return errors.Join(errs...)
}

// Complete reports whether every shard is stored.
func (l *Loader) Complete() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.stored {
		if !s {
			return false
		}
	}
	return true
}

// Close releases the store connection and the progress listener.
func (l *Loader) Close() {
	if l.bc.Truthy() {
		l.bc.Call("close")
		l.bcFunc.Release()
		l.bc = js.Undefined()
	}
	if l.store != nil {
		l.store.Close()
		l.store = nil
	}
}

// start returns shard i's download job, starting it when there is none (or
// the last one failed: a retry of a failed job starts over).
func (l *Loader) start(ctx context.Context, i int, progress func(int64)) *job {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j, ok := l.jobs[i]; ok {
		select {
		case <-j.finished:
			if j.err == nil {
				if progress != nil {
					progress(l.Manifest.Shards[i].Bytes)
				}
				return j
			}
		default:
			if progress != nil {
				j.listeners = append(j.listeners, progress)
			}
			return j
		}
	}
	j := &job{finished: make(chan struct{})}
	if progress != nil {
		j.listeners = append(j.listeners, progress)
	}
	l.jobs[i] = j
	go func() {
		defer close(j.finished)
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			j.err = ctx.Err()
			return
		}
		defer func() { <-l.sem }()
		j.data, j.err = l.fetchShard(ctx, i)
	}()
	return j
}

// report records that shard i has got bytes and tells the listeners, at
// most once per MiB.
func (l *Loader) report(i int, got int64) {
	s := l.Manifest.Shards[i]
	l.mu.Lock()
	if got < l.done[i] && got != 0 {
		l.mu.Unlock()
		return
	}
	l.done[i] = got
	if got-l.lastSent[i] < 1<<20 && got != s.Bytes && got != 0 {
		l.mu.Unlock()
		return
	}
	l.lastSent[i] = got
	var total, done int64
	for k, sh := range l.Manifest.Shards {
		total += sh.Bytes
		done += l.done[k]
	}
	var listeners []func(int64)
	if j := l.jobs[i]; j != nil {
		listeners = append(listeners, j.listeners...)
	}
	l.mu.Unlock()
	for _, f := range listeners {
		f(got)
	}
	if l.opt.Progress != nil {
		l.opt.Progress(Progress{Shard: i, File: s.File, ShardDone: got, ShardTotal: s.Bytes, Done: done, Total: total})
	}
}

// listenServiceWorker forwards the service worker's download progress
// (it buffers a shard to verify it before answering).
func (l *Loader) listenServiceWorker() {
	bcc := js.Global().Get("BroadcastChannel")
	if !bcc.Truthy() {
		return
	}
	files := map[string]int{}
	for i, s := range l.Manifest.Shards {
		files[l.URL+s.File] = i
	}
	var bc js.Value
	if err := jsbridge.Try(func() { bc = bcc.New("ember-shards") }); err != nil {
		return
	}
	l.bcFunc = js.FuncOf(func(_ js.Value, args []js.Value) any {
		d := args[0].Get("data")
		if d.Type() != js.TypeObject || d.Get("url").Type() != js.TypeString {
			return nil
		}
		if i, ok := files[d.Get("url").String()]; ok {
			l.report(i, int64(d.Get("done").Float()))
		}
		return nil
	})
	bc.Set("onmessage", l.bcFunc)
	l.bc = bc
}

// fetchShard downloads shard i, resuming with HTTP Range after a dropped
// connection, verifies it and stores it.
func (l *Loader) fetchShard(ctx context.Context, i int) (js.Value, error) {
	s := l.Manifest.Shards[i]
	url := l.URL + s.File
	buf := uint8Array.New(float64(s.Bytes))
	var got int64
	var lastErr error
	swStored := false
	for attempt := 0; attempt <= l.opt.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			case <-ctx.Done():
				return js.Undefined(), ctx.Err()
			}
		}
		var hdr map[string]any
		if got > 0 {
			hdr = map[string]any{"Range": fmt.Sprintf("bytes=%d-", got)}
		}
		resp, err := fetch(ctx, url, hdr)
		if err != nil {
			if ctx.Err() != nil {
				return js.Undefined(), ctx.Err()
			}
			lastErr = err
			continue
		}
		status := resp.Get("status").Int()
		headers := resp.Get("headers")
		switch {
		case got > 0 && status == 206:
		case status == 200:
			got = 0
		case headers.Call("get", "X-Ember-Error").String() == "checksum":
			msg, _ := jsbridge.CallAwait(ctx, resp, "text")
			return js.Undefined(), fmt.Errorf("shard %s: %w: %s", s.File, bundle.ErrChecksum, msg.String())
		case headers.Call("get", "X-Ember-Error").String() == "network":
			// The service worker already retried with resume.
			msg, _ := jsbridge.CallAwait(ctx, resp, "text")
			return js.Undefined(), fmt.Errorf("shard %s: %s", s.File, strings.TrimSpace(msg.String()))
		case status >= 400 && status < 500:
			return js.Undefined(), fmt.Errorf("shard %s: %s answered HTTP %d", s.File, url, status)
		default:
			msg, _ := jsbridge.CallAwait(ctx, resp, "text")
			lastErr = fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(msg.String()))
			continue
		}
		swStored = headers.Call("get", "X-Ember-Verified").String() == s.SHA256 && headers.Call("get", "X-Ember-Stored").String() == "1"
		n, err := pump(ctx, resp.Get("body"), buf, got, func(total int64) { l.report(i, total) })
		got = n
		if errors.Is(err, errTooLong) {
			return js.Undefined(), fmt.Errorf("shard %s: %w: the server sent more than the manifest's %d bytes", s.File, bundle.ErrChecksum, s.Bytes)
		}
		if err != nil {
			lastErr = err
		}
		if got == s.Bytes {
			break
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("connection closed after %d of %d bytes", got, s.Bytes)
		}
	}
	if got != s.Bytes {
		return js.Undefined(), fmt.Errorf("shard %s: download failed after %d tries: %v", s.File, l.opt.Retries+1, lastErr)
	}
	sum, err := SHA256(ctx, buf)
	if err != nil {
		return js.Undefined(), fmt.Errorf("shard %s: %w", s.File, err)
	}
	if sum != s.SHA256 {
		return js.Undefined(), fmt.Errorf("shard %s: %w: sha256 %s, manifest says %s; nothing was stored", s.File, bundle.ErrChecksum, sum, s.SHA256)
	}
	if l.store != nil {
		if !swStored {
			if err := l.store.putShard(ctx, s.SHA256, buf); err != nil {
				return js.Undefined(), fmt.Errorf("shard %s (%s): %w", s.File, MB(s.Bytes), err)
			}
		}
		l.mu.Lock()
		l.stored[i] = true
		all := true
		for _, st := range l.stored {
			all = all && st
		}
		l.mu.Unlock()
		if all {
			if _, err := l.store.finalize(ctx, l.URL, l.Version); err != nil {
				return js.Undefined(), err
			}
		}
	}
	return buf, nil
}

var errTooLong = errors.New("longer than expected")

// pump copies a response body into buf from offset got and returns the new
// offset. It pipes the stream into a WritableStream whose write is a Go
// callback, so chunks are taken as soon as they arrive: a body stream that
// errors (a dropped connection) discards the chunks nobody has read yet, and
// those are the bytes a Range request resumes from.
func pump(ctx context.Context, body, buf js.Value, got int64, progress func(int64)) (int64, error) {
	size := int64(buf.Get("byteLength").Float())
	tooLong := false
	write := js.FuncOf(func(_ js.Value, args []js.Value) any {
		chunk := args[0]
		n := int64(chunk.Get("byteLength").Float())
		if got+n > size {
			tooLong = true
			return js.Global().Get("Promise").Call("reject", js.Global().Get("Error").New("longer than the manifest says"))
		}
		buf.Call("set", chunk, float64(got))
		got += n
		progress(got)
		return nil
	})
	defer write.Release()
	sink := object.New()
	sink.Set("write", write)
	ws, err := jsbridge.New(js.Global().Get("WritableStream"), sink)
	if err != nil {
		return got, err
	}
	_, err = jsbridge.CallAwait(ctx, body, "pipeTo", ws)
	if tooLong {
		return got, errTooLong
	}
	return got, err
}

// fetch GETs url, bypassing the HTTP cache (the store is the cache).
func fetch(ctx context.Context, url string, headers map[string]any) (js.Value, error) {
	init := map[string]any{"cache": "no-store"}
	if headers != nil {
		init["headers"] = headers
	}
	ac := js.Global().Get("AbortController")
	var ctl js.Value
	if ac.Truthy() {
		ctl = ac.New()
		init["signal"] = ctl.Get("signal")
	}
	stop := context.AfterFunc(ctx, func() {
		if ctl.Truthy() {
			ctl.Call("abort")
		}
	})
	defer stop()
	return jsbridge.CallAwait(ctx, js.Global(), "fetch", url, init)
}

// resolveURL makes u absolute against the page (or worker) location and
// ends it with "/".
func resolveURL(u string) string {
	var out string
	err := jsbridge.Try(func() {
		loc := js.Global().Get("location")
		if loc.Truthy() {
			out = js.Global().Get("URL").New(u, loc.Get("href")).Get("href").String()
		} else {
			out = js.Global().Get("URL").New(u).Get("href").String()
		}
	})
	if err != nil {
		out = u
	}
	if !strings.HasSuffix(out, "/") {
		out += "/"
	}
	return out
}

// checkQuota refuses a download that navigator.storage.estimate() says
// cannot fit.
func checkQuota(ctx context.Context, need int64) error {
	storage := js.Global().Get("navigator").Get("storage")
	if !storage.Truthy() || storage.Get("estimate").Type() != js.TypeFunction {
		return nil
	}
	est, err := jsbridge.CallAwait(ctx, storage, "estimate")
	if err != nil {
		return nil // no estimate: let the store report a full disk
	}
	quota, usage := int64(est.Get("quota").Float()), int64(est.Get("usage").Float())
	if quota <= 0 {
		return nil
	}
	if free := quota - usage; need > free {
		return fmt.Errorf("%w: the model needs %s more, but only %s of browser storage is free (quota %s, %s used); delete a cached model or free disk space",
			ErrQuota, MB(need), MB(max(free, 0)), MB(quota), MB(usage))
	}
	return nil
}

// persist asks the browser to keep the store under storage pressure.
func persist(ctx context.Context) bool {
	storage := js.Global().Get("navigator").Get("storage")
	if !storage.Truthy() || storage.Get("persist").Type() != js.TypeFunction {
		return false
	}
	v, err := jsbridge.CallAwait(ctx, storage, "persist")
	return err == nil && v.Truthy()
}

// forgetManifestOnly removes this URL's stored records when they hold no
// shard bytes: a service worker keeps every manifest it fetches, and a model
// refused from its manifest should not linger in the store as "incomplete".
// A model with stored shards (downloaded on another visit) is kept.
func (l *Loader) forgetManifestOnly(ctx context.Context) {
	if l.store == nil {
		return
	}
	models, err := l.store.List(ctx)
	if err != nil {
		return
	}
	found := false
	for _, m := range models {
		if m.URL != l.URL {
			continue
		}
		if m.StoredBytes > 0 {
			return
		}
		found = true
	}
	if found {
		l.store.Delete(ctx, l.URL)
	}
}

// MB formats a byte count for people.
func MB(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// List reports the models in the default shard store.
func List(ctx context.Context) ([]Model, error) {
	st, err := OpenStore(ctx, "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.List(ctx)
}

// Delete removes a model (every version, and shards no other model uses)
// from the default shard store.
func Delete(ctx context.Context, url string) error {
	st, err := OpenStore(ctx, "")
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Delete(ctx, url)
}
