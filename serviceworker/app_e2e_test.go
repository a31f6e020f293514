//go:build !js

package serviceworker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/scripts/serve/server"
)

// TestAppOfflineGeneration runs the real app (built as `make demo` builds
// it): a first visit through the service worker, then a reload with the
// server unreachable; page, wasm and model come from the caches and greedy
// generation gives the same text. EMBER_E2E_BUILD=DIR reuses a
// scripts/demo -out directory.
func TestAppOfflineGeneration(t *testing.T) {
	bin := chromiumPath(t)
	out, model := os.Getenv("EMBER_E2E_BUILD"), os.Getenv("EMBER_E2E_MODEL")
	if out == "" {
		out = t.TempDir()
		cmd := exec.Command(goCmd(), "run", "./scripts/demo", "-serve=false", "-out", out)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "MODEL=", "SYNTHETIC=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		name, err := cmd.Output()
		require.NoError(t, err, "scripts/demo -serve=false: %s", stderr.String())
		model = strings.TrimSpace(string(name))
	}
	if model == "" {
		model = "stories260K"
	}

	// EMBER_E2E_CSP replaces the server's Content-Security-Policy (debugging only).
	srv, err := server.New(server.Options{AppDir: filepath.Join(out, "app"), ModelsDir: filepath.Join(out, "models"),
		CSP: os.Getenv("EMBER_E2E_CSP")})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	base := "http://" + ln.Addr().String()

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0], chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts, chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true))
	// Chromium's log carries the workers' console (the engine's panics): it
	// goes into the failure message.
	logs := &lockedBuffer{}
	opts = append(opts, chromedp.Flag("enable-logging", "stderr"), chromedp.Flag("v", "0"), chromedp.CombinedOutput(logs))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })

	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		require.NoError(t, err, "browser console:\n%s", logs.console())
		return s
	}
	// The page registers sw.js; wait until it controls the page.
	controlled := `(async () => {
		await navigator.serviceWorker.ready;
		if (!navigator.serviceWorker.controller) {
			await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, {once: true}));
		}
		return 'ok';
	})()`
	generate := fmt.Sprintf(`(async () => {
		const { Ember } = await import('./ember.js');
		const engine = await Ember.create({ model: new URL('models/%s/', location.href).href, backend: 'cpu' });
		const r = await engine.generate('Once upon a time', { max_tokens: 24, temperature: 0, seed: 1 });
		const info = await engine.info();
		await engine.unload();
		return JSON.stringify({ text: r.text, backend: info.backend });
	})()`, model)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	eval(controlled)
	first := eval(generate)
	var r1 struct{ Text, Backend string }
	require.NoError(t, json.Unmarshal([]byte(first), &r1))
	require.NotEmpty(t, r1.Text)

	srv.SetOffline(true)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	eval(controlled)
	require.Equal(t, first, eval(generate), "offline greedy generation matches the online one")
	require.Equal(t, "ok", eval(`fetch('models.json').then((r) => r.ok ? 'ok' : 'HTTP ' + r.status)`), "the catalog is cached")
	t.Logf("offline generation (%s): %q", r1.Backend, r1.Text)
}

// lockedBuffer collects Chromium's output; console keeps the page's and
// workers' console lines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) console() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			out = append(out, line)
		}
	}
	if len(out) > 40 {
		out = out[:40]
	}
	return strings.Join(out, "\n")
}
