//go:build !js

// Package server is the static server behind scripts/serve: the app shell,
// model bundles under /models/NAME/, a generated /models.json catalog, and
// fault hooks (corrupt a byte, cut a download halfway, go offline, count
// requests) that the end-to-end tests drive through the Go API.
//
// It never writes to the directories it serves.
package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/serviceworker"
)

// ContentSecurityPolicy lets the page run its own scripts, workers and Go
// wasm ('wasm-unsafe-eval'), and nothing injected. connect-src allows https
// so a page can load bundles from a CDN.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; " +
	"connect-src 'self' https:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; " +
	"object-src 'none'; base-uri 'self'; form-action 'self'"

// Cache-Control values. Shard file names (shard-00000.bin) are reused by the
// next version of a model at the same URL, so shards are not immutable: they
// are revalidated by their ETag (the manifest's SHA-256). The shard store in
// IndexedDB, not the HTTP cache, is what keeps them.
const (
	cacheRevalidate = "no-cache"
	cacheNever      = "no-store"
)

// Options configures a Server.
type Options struct {
	AppDir    string // the built app (index.html, *.js, ember.wasm, wasm_exec.js, sw.js)
	ModelsDir string // one bundle per subdirectory
	// CSP replaces ContentSecurityPolicy when set ("none": send no policy).
	CSP string
}

// Server serves the app and the bundles. It is an http.Handler.
type Server struct {
	opt Options

	mu       sync.Mutex
	corrupt  map[string]int64 // URL path → byte offset to flip
	cut      map[string]int   // URL path → number of responses still to cut halfway
	offline  bool
	requests map[string]int // URL path → GET requests seen
	ranges   map[string]int // URL path → GET requests with a Range header
	catalog  map[string]catalogCacheEntry
}

type catalogCacheEntry struct {
	mod   time.Time
	size  int64
	entry CatalogEntry
	ok    bool
}

// New checks the directories and returns a Server.
func New(opt Options) (*Server, error) {
	if opt.ModelsDir != "" {
		if fi, err := os.Stat(opt.ModelsDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("serve: models directory %q: not a directory", opt.ModelsDir)
		}
	}
	return &Server{opt: opt, corrupt: map[string]int64{}, cut: map[string]int{},
		requests: map[string]int{}, ranges: map[string]int{}, catalog: map[string]catalogCacheEntry{}}, nil
}

// Corrupt makes every later response for urlPath (e.g. "/models/tiny/shard-00001.bin")
// carry the byte at offset flipped; Uncorrupt restores it.
func (s *Server) Corrupt(urlPath string, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[urlPath] = offset
}

// Uncorrupt ends Corrupt for urlPath.
func (s *Server) Uncorrupt(urlPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.corrupt, urlPath)
}

// CutHalfway makes the next n responses for urlPath close the connection
// after sending half of the body (a download interrupted mid-stream).
func (s *Server) CutHalfway(urlPath string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut[urlPath] = n
}

// SetOffline makes every request fail at the network level (the connection
// is dropped without a response) until it is called with false.
func (s *Server) SetOffline(off bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offline = off
}

// Requests is the number of GET requests seen for urlPath; ResetRequests
// clears the counts.
func (s *Server) Requests(urlPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[urlPath]
}

// RangeRequests is the number of GET requests with a Range header seen for urlPath.
func (s *Server) RangeRequests(urlPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ranges[urlPath]
}

// RequestsWithPrefix is the number of GET requests seen for paths starting with prefix.
func (s *Server) RequestsWithPrefix(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.requests {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// ResetRequests clears the request counts.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.ranges = map[string]int{}, map[string]int{}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	offline := s.offline
	if r.Method == http.MethodGet {
		s.requests[r.URL.Path]++
		if r.Header.Get("Range") != "" {
			s.ranges[r.URL.Path]++
		}
	}
	s.mu.Unlock()
	if offline {
		panic(http.ErrAbortHandler) // drops the connection: a network error for the client
	}
	h := w.Header()
	switch s.opt.CSP {
	case "":
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
	case "none":
	default:
		h.Set("Content-Security-Policy", s.opt.CSP)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/models.json":
		s.serveCatalog(w, r)
	case strings.HasPrefix(p, "/models/"):
		s.serveModelFile(w, r, strings.TrimPrefix(p, "/models/"))
	default:
		s.serveApp(w, r, p)
	}
}

// contentType is set explicitly: the system's mime tables differ between
// machines and application/wasm is required for streaming compilation.
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".wasm":
		return "application/wasm"
	case ".json", ".map":
		return "application/json"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	case ".webmanifest":
		return "application/manifest+json"
	}
	return "application/octet-stream"
}

// cleanRel turns a URL path into a relative slash path inside a served
// directory, or "" when it would leave it.
func cleanRel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	if !fs.ValidPath(p) {
		return ""
	}
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return "" // no dotfiles, no temporary bundle directories
		}
	}
	return p
}

func (s *Server) serveApp(w http.ResponseWriter, r *http.Request, p string) {
	rel := cleanRel(p)
	if rel == "" {
		http.NotFound(w, r)
		return
	}
	if rel == "." || strings.HasSuffix(p, "/") {
		rel = path.Join(rel, "index.html")
	}
	if rel == "sw.js" {
		s.serveServiceWorker(w, r)
		return
	}
	if s.opt.AppDir == "" {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(s.opt.AppDir)
	if err != nil {
		http.Error(w, fmt.Sprintf("ember serve: the app is not built (%v); run make demo or pass -app DIR", err), http.StatusNotFound)
		return
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(rel))
	h.Set("Cache-Control", cacheRevalidate) // the service worker's precache is the app's cache
	h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()))
	s.serveFile(w, r, "/"+rel, f, fi)
}

// AppVersion hashes the app shell (names and contents of every file in the
// app directory except sw.js): the service worker's cache name changes
// exactly when a file of the shell does.
func (s *Server) AppVersion() (version string, files []string, err error) {
	if s.opt.AppDir == "" {
		return "none", nil, nil
	}
	h := sha256.New()
	err = filepath.WalkDir(s.opt.AppDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.opt.AppDir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if rel == "sw.js" || strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	sort.Strings(files)
	return hex.EncodeToString(h.Sum(nil))[:16], files, nil
}

func (s *Server) serveServiceWorker(w http.ResponseWriter, r *http.Request) {
	script := serviceworker.Script
	if s.opt.AppDir != "" {
		if b, err := os.ReadFile(filepath.Join(s.opt.AppDir, "sw.js")); err == nil {
			script = b
		}
	}
	version, files, err := s.AppVersion()
	if err != nil {
		http.Error(w, "ember serve: hash the app: "+err.Error(), http.StatusInternalServerError)
		return
	}
	shell := append([]string{"./"}, files...)
	list, _ := json.Marshal(shell)
	script = bytes.ReplaceAll(script, []byte(serviceworker.VersionPlaceholder), []byte(version))
	script = bytes.ReplaceAll(script, []byte(serviceworker.ShellPlaceholder), list)
	h := w.Header()
	h.Set("Content-Type", contentType("sw.js"))
	h.Set("Cache-Control", cacheRevalidate)
	h.Set("Service-Worker-Allowed", "/")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(script))
}

// serveModelFile serves NAME/FILE from the models directory.
func (s *Server) serveModelFile(w http.ResponseWriter, r *http.Request, rest string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*") // bundles may be used by pages on other origins
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag, Accept-Ranges")
	rel := cleanRel(rest)
	if rel == "" || rel == "." || s.opt.ModelsDir == "" || strings.Count(rel, "/") != 1 {
		http.NotFound(w, r)
		return
	}
	name, file := path.Split(rel)
	name = strings.TrimSuffix(name, "/")
	root, err := os.OpenRoot(s.opt.ModelsDir)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	f, err := root.Open(filepath.Join(name, file))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", contentType(file))
	if file == bundle.ManifestFile || strings.HasSuffix(file, ".sig") {
		h.Set("Cache-Control", cacheRevalidate)
		h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()))
	} else {
		h.Set("Cache-Control", cacheRevalidate)
		if sum := s.shardSHA256(name, file); sum != "" {
			h.Set("ETag", `"`+sum+`"`)
		}
	}
	s.serveFile(w, r, "/models/"+rel, f, fi)
}

// serveFile serves an open file, applying the fault hooks set for urlPath.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, urlPath string, f *os.File, fi os.FileInfo) {
	s.mu.Lock()
	off, corrupt := s.corrupt[urlPath]
	cut := s.cut[urlPath] > 0
	if cut {
		s.cut[urlPath]--
	}
	s.mu.Unlock()
	var content io.ReadSeeker = f
	if corrupt && off >= 0 && off < fi.Size() {
		content = io.NewSectionReader(flipReaderAt{f, off}, 0, fi.Size())
		w.Header().Del("ETag")
	}
	if cut {
		w = &cutWriter{ResponseWriter: w, left: -1}
	}
	http.ServeContent(w, r, "", fi.ModTime(), content)
}

// flipReaderAt reads through to the file with one byte inverted.
type flipReaderAt struct {
	f   io.ReaderAt
	off int64
}

func (x flipReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := x.f.ReadAt(p, off)
	if x.off >= off && x.off < off+int64(n) {
		p[x.off-off] ^= 0xff
	}
	return n, err
}

// cutDelay is how long a cut response stays open after its last byte.
const cutDelay = 300 * time.Millisecond

// cutWriter sends half of the body (Content-Length, so half of a range
// response too), then drops the connection.
type cutWriter struct {
	http.ResponseWriter
	left int64 // -1 until the first Write
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left < 0 {
		n, _ := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
		c.left = n / 2
	}
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	// A connection that dies at once on loopback can take the bytes sent with
	// it (the browser sees the error before it hands the data over); on a
	// real network the bytes arrive first. Let them.
	time.Sleep(cutDelay)
	panic(http.ErrAbortHandler)
}

// shardSHA256 is the manifest's SHA-256 for NAME/FILE, or "".
func (s *Server) shardSHA256(name, file string) string {
	e, ok := s.catalogEntry(name)
	if !ok {
		return ""
	}
	return e.shards[file]
}

// CatalogEntry is one model of /models.json.
type CatalogEntry struct {
	Name         string        `json:"name"` // directory name, used in ?model=NAME
	URL          string        `json:"url"`  // bundle base URL, ends in "/"
	ModelName    string        `json:"model_name,omitempty"`
	Bytes        int64         `json:"bytes"` // sum of the shard sizes
	Shards       int           `json:"shards"`
	Quantization string        `json:"quantization"`
	Config       CatalogConfig `json:"config"`
	Synthetic    bool          `json:"synthetic"` // random weights: the page must say so
	Signed       bool          `json:"signed"`    // manifest.json.sig is present
	Source       string        `json:"source,omitempty"`
	shards       map[string]string
}

// CatalogConfig summarises the hyper-parameters.
type CatalogConfig struct {
	Dim           int `json:"dim"`
	HiddenDim     int `json:"hidden_dim"`
	NLayers       int `json:"n_layers"`
	NHeads        int `json:"n_heads"`
	NKVHeads      int `json:"n_kv_heads"`
	VocabSize     int `json:"vocab_size"`
	ContextLength int `json:"context_length"`
}

// Catalog lists the bundles of the models directory, sorted by name.
func (s *Server) Catalog() []CatalogEntry {
	out := []CatalogEntry{}
	if s.opt.ModelsDir == "" {
		return out
	}
	ents, err := os.ReadDir(s.opt.ModelsDir)
	if err != nil {
		return out
	}
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), ".") {
			continue
		}
		if e, ok := s.catalogEntry(d.Name()); ok {
			out = append(out, e)
		}
	}
	return out
}

// catalogEntry parses NAME/manifest.json, cached by modification time and size.
func (s *Server) catalogEntry(name string) (CatalogEntry, bool) {
	if cleanRel(name) != name || strings.Contains(name, "/") {
		return CatalogEntry{}, false
	}
	dir := filepath.Join(s.opt.ModelsDir, name)
	fi, err := os.Stat(filepath.Join(dir, bundle.ManifestFile))
	if err != nil {
		return CatalogEntry{}, false
	}
	s.mu.Lock()
	c, hit := s.catalog[name]
	s.mu.Unlock()
	if hit && c.mod.Equal(fi.ModTime()) && c.size == fi.Size() {
		return c.entry, c.ok
	}
	c = catalogCacheEntry{mod: fi.ModTime(), size: fi.Size()}
	if b, err := bundle.Open(dir); err == nil {
		m := b.Manifest
		_, sigErr := os.Stat(filepath.Join(dir, bundle.ManifestFile+".sig"))
		e := CatalogEntry{
			Name: name, URL: "/models/" + name + "/", ModelName: m.Name, Bytes: m.TotalBytes(), Shards: len(m.Shards),
			Quantization: m.Quantization.Scheme, Source: m.Source,
			Synthetic: isSynthetic(m), Signed: sigErr == nil,
			Config: CatalogConfig{Dim: m.Config.Dim, HiddenDim: m.Config.HiddenDim, NLayers: m.Config.NLayers,
				NHeads: m.Config.NHeads, NKVHeads: m.Config.NKVHeads, VocabSize: m.Config.VocabSize,
				ContextLength: m.Config.ContextLength},
			shards: map[string]string{},
		}
		for _, sh := range m.Shards {
			e.shards[sh.File] = sh.SHA256
		}
		c.entry, c.ok = e, true
	}
	s.mu.Lock()
	s.catalog[name] = c
	s.mu.Unlock()
	return c.entry, c.ok
}

// isSynthetic: the converter's synthetic bundles name themselves so in
// manifest.source (or manifest.name).
func isSynthetic(m *bundle.Manifest) bool {
	return strings.HasPrefix(strings.ToLower(m.Source), "synthetic") || strings.HasPrefix(strings.ToLower(m.Name), "synthetic")
}

func (s *Server) serveCatalog(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(struct {
		Models []CatalogEntry `json:"models"`
	}{s.Catalog()}, "", " ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheRevalidate)
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(append(body, '\n')))
}

// ErrNoModels is returned by callers that require at least one bundle.
var ErrNoModels = errors.New("serve: no bundle (a directory with manifest.json) in the models directory")
