//go:build !js

package serviceworker_test

// End-to-end tests of model delivery (issue 6): scripts/serve's server with
// its fault hooks, sw.js, and wasm/shards driven through a probe wasm
// program (internal/probe) in headless Chromium, a fresh profile per test.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/scripts/serve/server"
	"github.com/ember-llm/ember/scripts/serve/servertest"
)

const shardSize = 64 << 10 // the tiny test bundle has about 6 shards

var (
	buildOnce sync.Once
	probeWasm string
	buildErr  error
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("EMBER_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("EMBER_REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium not found and EMBER_REQUIRE_BROWSER=1")
	}
	t.Skip("chromium not found (install Debian's chromium, or set EMBER_CHROMIUM); skipping the delivery browser tests")
	return ""
}

// buildProbe compiles internal/probe for js/wasm once per test binary.
func buildProbe(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ember-probe-")
		if err != nil {
			buildErr = err
			return
		}
		probeWasm = filepath.Join(dir, "probe.wasm")
		cmd := exec.Command(goCmd(), "build", "-o", probeWasm, "./internal/probe")
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build probe: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return probeWasm
}

// goCmd is the go command of the toolchain running the tests.
func goCmd() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

func TestMain(m *testing.M) {
	code := m.Run()
	if probeWasm != "" {
		os.RemoveAll(filepath.Dir(probeWasm))
	}
	os.Exit(code)
}

type env struct {
	t      *testing.T
	srv    *server.Server
	base   string // http://127.0.0.1:PORT
	app    string
	models string
	ctx    context.Context
	hs     *http.Server
	ln     net.Listener
}

// newEnv writes the test app and a tiny bundle "tiny", starts the server
// and a Chromium with a fresh profile.
func newEnv(t *testing.T, flags ...chromedp.ExecAllocatorOption) *env {
	bin := chromiumPath(t)
	wasm := buildProbe(t)
	dir := t.TempDir()
	e := &env{t: t, app: filepath.Join(dir, "app"), models: filepath.Join(dir, "models")}
	require.NoError(t, os.MkdirAll(e.app, 0o755))
	for _, f := range []string{"index.html", "probe.js"} {
		copyFile(t, filepath.Join("testdata", "app", f), filepath.Join(e.app, f))
	}
	copyFile(t, filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"), filepath.Join(e.app, "wasm_exec.js"))
	copyFile(t, wasm, filepath.Join(e.app, "probe.wasm"))
	_, err := servertest.WriteBundle(filepath.Join(e.models, "tiny"), 1, shardSize)
	require.NoError(t, err)

	e.srv, err = server.New(server.Options{AppDir: e.app, ModelsDir: e.models})
	require.NoError(t, err)
	e.ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.hs = &http.Server{Handler: e.srv}
	go e.hs.Serve(e.ln)
	t.Cleanup(func() { e.hs.Close() })
	e.base = "http://" + e.ln.Addr().String()

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0], chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts, chromedp.ExecPath(bin), chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true))
	opts = append(opts, flags...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	e.ctx = ctx
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")
	if os.Getenv("EMBER_DEBUG_CONSOLE") == "1" {
		msgs := chromedp.Console(ctx)
		go func() {
			for m, err := range msgs {
				if err != nil {
					return
				}
				fmt.Fprintf(os.Stderr, "[console] %s\n", m)
			}
		}()
	}
	return e
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o644))
}

// load navigates to the test page and waits until the probe is running.
func (e *env) load(query string) {
	e.t.Helper()
	require.NoError(e.t, chromedp.Do(e.ctx, chromedp.Navigate(e.base+"/"+query)))
	deadline := time.Now().Add(30 * time.Second)
	for {
		state, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](`String(window.probeState)`))
		require.NoError(e.t, err)
		if state == "ready" {
			return
		}
		require.False(e.t, strings.HasPrefix(state, "error"), "test page: %s", state)
		require.True(e.t, time.Now().Before(deadline), "test page did not start: %s", state)
		time.Sleep(50 * time.Millisecond)
	}
}

// eval awaits a JS expression that yields a string.
func (e *env) eval(expr string) (string, error) {
	return chromedp.Run(e.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
}

type openResult struct {
	Version   string
	Offline   bool
	Persisted bool
	Complete  bool
	Shards    []struct {
		File   string
		Bytes  int
		SHA256 string
	}
	OpenMS     float64 `json:"open_ms"`
	DownloadMS float64 `json:"download_ms"`
	ReadMS     float64 `json:"read_ms"`
	Progress   []struct {
		Shard                              int
		File                               string
		ShardDone, ShardTotal, Done, Total int64
	}
}

// open runs shards.Open + Shard(i) for every shard in the page.
func (e *env) open(model string, opts string) (openResult, error) {
	if opts == "" {
		opts = "{}"
	}
	var r openResult
	s, err := e.eval(fmt.Sprintf(`emberProbe.open(%q, %s)`, "/models/"+model+"/", opts))
	if err != nil {
		return r, err
	}
	require.NoError(e.t, json.Unmarshal([]byte(s), &r))
	return r, nil
}

type dump struct {
	Manifests []struct {
		URL, Version     string
		Complete, Signed bool
		Shards           []string
	}
	Shards []struct {
		SHA256        string
		Bytes, Stored int
	}
}

func (e *env) idb() dump {
	e.t.Helper()
	s, err := e.eval(`idbDump()`)
	require.NoError(e.t, err)
	var d dump
	require.NoError(e.t, json.Unmarshal([]byte(s), &d))
	return d
}

func (d dump) has(sha string) bool {
	for _, s := range d.Shards {
		if s.SHA256 == sha && s.Bytes == s.Stored {
			return true
		}
	}
	return false
}

func (e *env) manifest(model string) *bundle.Manifest {
	e.t.Helper()
	b, err := bundle.Open(filepath.Join(e.models, model))
	require.NoError(e.t, err)
	return b.Manifest
}

func (e *env) shardPath(model string, i int) string {
	return "/models/" + model + "/" + bundle.ShardName(i)
}

// requireShards checks that every shard came back with the manifest's hash.
func requireShards(t *testing.T, m *bundle.Manifest, r openResult) {
	t.Helper()
	require.Len(t, r.Shards, len(m.Shards))
	for i, s := range m.Shards {
		require.Equal(t, s.SHA256, r.Shards[i].SHA256, "shard %d", i)
		require.EqualValues(t, s.Bytes, r.Shards[i].Bytes, "shard %d", i)
	}
}

// First visit through the service worker: progress, every shard in
// IndexedDB; then offline: page, wasm and model from the caches.
func TestFirstVisitThenOffline(t *testing.T) {
	e := newEnv(t)
	m := e.manifest("tiny")
	require.Greater(t, len(m.Shards), 3)
	e.load("?sw=1")
	r, err := e.open("tiny", "")
	require.NoError(t, err)
	requireShards(t, m, r)
	require.True(t, r.Complete)
	require.NotEmpty(t, r.Progress)
	last := r.Progress[len(r.Progress)-1]
	require.Equal(t, m.TotalBytes(), last.Total)
	for _, p := range r.Progress {
		require.LessOrEqual(t, p.Done, p.Total)
	}
	d := e.idb()
	for _, s := range m.Shards {
		require.True(t, d.has(s.SHA256), "shard %s in IndexedDB", s.File)
	}
	require.Len(t, d.Manifests, 1)
	require.True(t, d.Manifests[0].Complete)
	for i := range m.Shards {
		require.Equal(t, 1, e.srv.Requests(e.shardPath("tiny", i)), "shard %d fetched once", i)
	}

	e.srv.SetOffline(true)
	e.load("?sw=1")
	r2, err := e.open("tiny", "")
	require.NoError(t, err)
	requireShards(t, m, r2)
	require.Equal(t, r.Version, r2.Version)
	models, err := e.eval(`emberProbe.list()`)
	require.NoError(t, err)
	require.Contains(t, models, `"complete":true`)
}

// A corrupted shard fails with its name and stores nothing; after the fix,
// the next load fetches only what is missing.
func TestCorruptShard(t *testing.T) {
	for _, sw := range []bool{false, true} {
		t.Run(map[bool]string{false: "loader", true: "service-worker"}[sw], func(t *testing.T) {
			e := newEnv(t)
			m := e.manifest("tiny")
			bad := 2
			e.srv.Corrupt(e.shardPath("tiny", bad), 1000)
			q := ""
			if sw {
				q = "?sw=1"
			}
			e.load(q)
			_, err := e.open("tiny", "{download: true}")
			require.Error(t, err)
			require.Contains(t, err.Error(), m.Shards[bad].File)
			require.Contains(t, strings.ToLower(err.Error()), "checksum")
			d := e.idb()
			require.False(t, d.has(m.Shards[bad].SHA256))
			require.False(t, d.Manifests[0].Complete)

			e.srv.Uncorrupt(e.shardPath("tiny", bad))
			before := map[int]int{}
			for i := range m.Shards {
				before[i] = e.srv.Requests(e.shardPath("tiny", i))
			}
			r, err := e.open("tiny", "")
			require.NoError(t, err)
			requireShards(t, m, r)
			require.True(t, r.Complete)
			for i := range m.Shards {
				got := e.srv.Requests(e.shardPath("tiny", i)) - before[i]
				if i == bad {
					require.Equal(t, 1, got, "the fixed shard is fetched again")
				} else if d.has(m.Shards[i].SHA256) {
					require.Equal(t, 0, got, "good shard %d is not fetched again", i)
				}
			}
		})
	}
}

// A download cut halfway resumes with a Range request and completes.
func TestInterruptedDownloadResumes(t *testing.T) {
	for _, sw := range []bool{false, true} {
		t.Run(map[bool]string{false: "loader", true: "service-worker"}[sw], func(t *testing.T) {
			e := newEnv(t)
			// Chromium hands a page none of a small response that fails, so
			// resuming needs shards of a few MiB.
			cfg := servertest.TinyConfig()
			cfg.Dim, cfg.HiddenDim, cfg.VocabSize = 256, 512, 512
			m, err := servertest.WriteBundleConfig(filepath.Join(e.models, "medium"), cfg, 5, 2<<20)
			require.NoError(t, err)
			require.GreaterOrEqual(t, m.Shards[1].Bytes, int64(1<<20))
			e.srv.CutHalfway(e.shardPath("medium", 1), 2)
			q := ""
			if sw {
				q = "?sw=1"
			}
			e.load(q)
			r, err := e.open("medium", "")
			require.NoError(t, err)
			requireShards(t, m, r)
			require.True(t, r.Complete)
			require.Equal(t, 3, e.srv.Requests(e.shardPath("medium", 1)), "two cut responses, then the rest")
			// Each retry resumes from the bytes received; under load Chromium can
			// still lose every byte of a cut response, so one resume is the floor.
			require.GreaterOrEqual(t, e.srv.RangeRequests(e.shardPath("medium", 1)), 1, "a retry resumes from the bytes received")
		})
	}
}

// A model larger than the quota is refused before a shard is fetched.
func TestQuotaRefusedUpFront(t *testing.T) {
	// Chromium reports a static quota (usage + 10 GiB) to pages unless this
	// feature is off; the override below is then what estimate() shows.
	e := newEnv(t, chromedp.Flag("disable-features", "StaticStorageQuota"))
	m := e.manifest("tiny")
	quota := float64(m.TotalBytes() / 4)
	_, err := chromedp.Call(e.ctx, storage.OverrideQuotaForOrigin, storage.OverrideQuotaForOriginParams{Origin: e.base, QuotaSize: &quota})
	require.NoError(t, err)
	e.load("")
	_, err = e.open("tiny", "")
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "not enough browser storage")
	require.Contains(t, msg, "needs")
	require.Contains(t, msg, "quota")
	require.Equal(t, 0, e.srv.RequestsWithPrefix("/models/tiny/shard-"), "no shard byte fetched")
	t.Log(msg)
}

// With Chromium's default static quota reporting the up-front check passes;
// the store then fills up mid-download: a clear error, and no partial shard.
func TestQuotaExceededMidDownload(t *testing.T) {
	e := newEnv(t)
	m := e.manifest("tiny")
	quota := float64(m.TotalBytes() / 3)
	_, err := chromedp.Call(e.ctx, storage.OverrideQuotaForOrigin, storage.OverrideQuotaForOriginParams{Origin: e.base, QuotaSize: &quota})
	require.NoError(t, err)
	e.load("")
	_, err = e.open("tiny", "{parallel: 1}")
	require.Error(t, err)
	require.Contains(t, err.Error(), "QuotaExceededError")
	require.Contains(t, err.Error(), "not enough browser storage")
	t.Log(err)
	d := e.idb()
	require.Less(t, len(d.Shards), len(m.Shards))
	for _, sh := range d.Shards {
		require.Equal(t, sh.Bytes, sh.Stored, "no partial shard")
	}
}

// A new app version is installed beside the old one and replaces it only
// when activated; a failed install leaves the old shell in charge.
func TestAppUpdateIsAtomic(t *testing.T) {
	e := newEnv(t)
	e.load("?sw=1")
	pageVersion := func() string {
		v, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](`document.getElementById('version').textContent`))
		require.NoError(t, err)
		return v
	}
	type regState struct {
		Waiting bool
		Caches  []string
		Error   string
	}
	update := func() regState {
		s, err := e.eval(`(async () => {
			const r = await navigator.serviceWorker.getRegistration();
			let error = '';
			try { await r.update(); } catch (err) { error = String(err); }
			while (r.installing) await new Promise((res) => setTimeout(res, 50));
			const caches_ = (await caches.keys()).filter((k) => k.startsWith('ember-shell-'));
			return JSON.stringify({waiting: !!r.waiting, caches: caches_, error});
		})()`)
		require.NoError(t, err)
		var st regState
		require.NoError(t, json.Unmarshal([]byte(s), &st))
		return st
	}
	v1, _, err := e.srv.AppVersion()
	require.NoError(t, err)
	st := update()
	require.Equal(t, []string{"ember-shell-" + v1}, st.Caches)
	require.Equal(t, "APP_VERSION_1", pageVersion())

	index := filepath.Join(e.app, "index.html")
	b, err := os.ReadFile(index)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(index, []byte(strings.ReplaceAll(string(b), "APP_VERSION_1", "APP_VERSION_2")), 0o644))
	v2, _, err := e.srv.AppVersion()
	require.NoError(t, err)
	require.NotEqual(t, v1, v2)

	// The new shell's download breaks: nothing changes.
	e.srv.CutHalfway("/probe.wasm", 1)
	n0 := e.srv.Requests("/probe.wasm")
	st = update()
	require.Equal(t, 1, e.srv.Requests("/probe.wasm")-n0, "the new shell was fetched (and cut)")
	require.False(t, st.Waiting)
	require.Equal(t, []string{"ember-shell-" + v1}, st.Caches, "a failed install leaves no partial cache")
	e.load("?sw=1")
	require.Equal(t, "APP_VERSION_1", pageVersion())

	// Installed, but waiting: the page keeps the whole old shell.
	st = update()
	require.True(t, st.Waiting)
	require.ElementsMatch(t, []string{"ember-shell-" + v1, "ember-shell-" + v2}, st.Caches)
	e.load("?sw=1")
	require.Equal(t, "APP_VERSION_1", pageVersion())

	// Activated: the new shell, and the old cache is gone.
	_, err = e.eval(`(async () => {
		const r = await navigator.serviceWorker.getRegistration();
		const changed = new Promise((res) => navigator.serviceWorker.addEventListener('controllerchange', res, {once: true}));
		r.waiting.postMessage({type: 'skip-waiting'});
		await changed;
		return 'ok';
	})()`)
	require.NoError(t, err)
	e.srv.SetOffline(true) // from the new cache alone
	e.load("?sw=1")
	require.Equal(t, "APP_VERSION_2", pageVersion())
	st = update()
	require.Equal(t, []string{"ember-shell-" + v2}, st.Caches)
}

// A new version of a model replaces the old shards only once it is
// complete; until then the old version stays whole.
func TestModelUpdateReplacesWhenComplete(t *testing.T) {
	e := newEnv(t)
	e.load("?sw=1")
	m1 := e.manifest("tiny")
	r1, err := e.open("tiny", "")
	require.NoError(t, err)
	requireShards(t, m1, r1)

	_, err = servertest.WriteBundle(filepath.Join(e.models, "tiny"), 3, shardSize)
	require.NoError(t, err)
	m2 := e.manifest("tiny")
	require.NotEqual(t, m1.Shards[0].SHA256, m2.Shards[0].SHA256)
	e.srv.Corrupt(e.shardPath("tiny", 1), 5)
	_, err = e.open("tiny", "{download: true}")
	require.Error(t, err)
	d := e.idb()
	require.Len(t, d.Manifests, 2)
	for _, rec := range d.Manifests {
		require.Equal(t, rec.Version == r1.Version, rec.Complete, "only the old version is complete")
	}
	for _, s := range m1.Shards {
		require.True(t, d.has(s.SHA256), "old shard %s kept while the new version is incomplete", s.File)
	}

	e.srv.Uncorrupt(e.shardPath("tiny", 1))
	r2, err := e.open("tiny", "")
	require.NoError(t, err)
	requireShards(t, m2, r2)
	require.True(t, r2.Complete)
	d = e.idb()
	require.Len(t, d.Manifests, 1)
	require.Equal(t, r2.Version, d.Manifests[0].Version)
	require.True(t, d.Manifests[0].Complete)
	require.Len(t, d.Shards, len(m2.Shards), "the old version's shards are gone")
	for _, s := range m2.Shards {
		require.True(t, d.has(s.SHA256))
	}
}

// List reports cached models with sizes; Delete removes one and its shards.
func TestListAndDelete(t *testing.T) {
	e := newEnv(t)
	_, err := servertest.WriteBundle(filepath.Join(e.models, "other"), 4, shardSize)
	require.NoError(t, err)
	e.load("")
	for _, name := range []string{"tiny", "other"} {
		_, err := e.open(name, "")
		require.NoError(t, err)
	}
	s, err := e.eval(`emberProbe.list()`)
	require.NoError(t, err)
	var models []struct {
		URL         string
		Bytes       int64
		StoredBytes int64 `json:"stored_bytes"`
		Complete    bool
	}
	require.NoError(t, json.Unmarshal([]byte(s), &models))
	require.Len(t, models, 2)
	for _, m := range models {
		require.True(t, m.Complete)
		require.Equal(t, m.Bytes, m.StoredBytes)
		require.Equal(t, e.manifest(filepath.Base(strings.TrimSuffix(m.URL, "/"))).TotalBytes(), m.Bytes)
	}
	_, err = e.eval(`emberProbe.del("/models/tiny/").then(() => "ok")`)
	require.NoError(t, err)
	d := e.idb()
	require.Len(t, d.Manifests, 1)
	require.Equal(t, e.base+"/models/other/", d.Manifests[0].URL)
	require.Len(t, d.Shards, len(e.manifest("other").Shards))

	// Without the store (an embedding page's choice): verified, not kept.
	r, err := e.open("tiny", "{noStore: true}")
	require.NoError(t, err)
	requireShards(t, e.manifest("tiny"), r)
	require.Len(t, e.idb().Manifests, 1)
}

// Signed manifests: the right key accepts, a wrong key and an unsigned
// bundle are refused.
func TestSignedManifest(t *testing.T) {
	e := newEnv(t)
	priv, pub, err := bundle.GenerateKey(nil)
	require.NoError(t, err)
	key, err := bundle.ParsePrivateKey(priv)
	require.NoError(t, err)
	_, err = servertest.WriteBundle(filepath.Join(e.models, "signed"), 2, shardSize)
	require.NoError(t, err)
	require.NoError(t, bundle.SignDir(filepath.Join(e.models, "signed"), key))
	_, other, err := bundle.GenerateKey(nil)
	require.NoError(t, err)
	e.load("")

	_, err = e.open("tiny", fmt.Sprintf("{publicKey: %q}", pub))
	require.ErrorContains(t, err, "only accepts signed")
	_, err = e.open("signed", fmt.Sprintf("{publicKey: %q}", other))
	require.ErrorContains(t, err, "signature")
	require.Equal(t, 0, e.srv.RequestsWithPrefix("/models/signed/shard-"))
	r, err := e.open("signed", fmt.Sprintf("{publicKey: %q}", pub))
	require.NoError(t, err)
	requireShards(t, e.manifest("signed"), r)
}

// TestDeliveryThroughput measures a ~96 MiB bundle in 16 MiB shards: first
// visit with and without the service worker, then reading it back from
// IndexedDB. Numbers for docs/PERFORMANCE.md; opt in with EMBER_BENCH_DELIVERY=1.
func TestDeliveryThroughput(t *testing.T) {
	if os.Getenv("EMBER_BENCH_DELIVERY") != "1" {
		t.Skip("set EMBER_BENCH_DELIVERY=1 to measure delivery throughput")
	}
	cfg := servertest.TinyConfig()
	cfg.Dim, cfg.HiddenDim, cfg.NLayers, cfg.NHeads, cfg.NKVHeads, cfg.HeadDim, cfg.VocabSize = 1024, 2048, 2, 16, 16, 64, 4096
	cfg.TiedEmbeddings = true
	for _, sw := range []bool{false, true} {
		e := newEnv(t)
		m, err := servertest.WriteBundleConfig(filepath.Join(e.models, "big"), cfg, 9, 16<<20)
		require.NoError(t, err)
		mib := float64(m.TotalBytes()) / (1 << 20)
		q := ""
		if sw {
			q = "?sw=1"
		}
		e.load(q)
		start := time.Now()
		r, err := e.open("big", "{download: true, noHash: true}")
		require.NoError(t, err)
		first := time.Since(start)
		r2, err := e.open("big", "{noHash: true}")
		require.NoError(t, err)
		// The same reads in plain JavaScript, for the loader's overhead.
		jsMS, err := e.eval(`(async () => {
			const db = await new Promise((res, rej) => { const r = indexedDB.open('ember'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
			const keys = await new Promise((res) => { db.transaction('shards').objectStore('shards').getAllKeys().onsuccess = (e) => res(e.target.result); });
			const t0 = performance.now();
			let n = 0;
			for (const k of keys) {
				const v = await new Promise((res) => { db.transaction('shards').objectStore('shards').get(k).onsuccess = (e) => res(e.target.result); });
				n += new Uint8Array(v.data).byteLength;
			}
			db.close();
			return String(performance.now() - t0);
		})()`)
		require.NoError(t, err)
		t.Logf("service worker %v: %.1f MiB in %d shards: first visit %.0f ms (%.0f MiB/s; open %.0f ms, download+verify+store %.0f ms); "+
			"second visit read back from IndexedDB %.0f ms (%.0f MiB/s; plain JS reading the same records: %s ms)",
			sw, mib, len(m.Shards), float64(first.Milliseconds()), mib/first.Seconds(), r.OpenMS, r.DownloadMS,
			r2.ReadMS, mib/(r2.ReadMS/1000), jsMS)
	}
}
