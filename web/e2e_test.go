//go:build !js

// Package web holds no Go code: web/ is the chat page, ember.js and the
// engine worker. These tests build the app exactly as `make demo` does
// (scripts/demo -serve=false), serve it with scripts/serve's handler, and drive
// Debian Chromium through chromedp: with SwiftShader WebGPU, and without WebGPU
// (the CPU fallback).
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/scripts/serve/server"
)

// build is what the tests serve: the app as scripts/demo builds it and a
// models directory (the real stories260K when $EMBER_MODELS has it, else a
// synthetic bundle, plus the html-token test bundle).
type build struct {
	app, models string
	model       string // the bundle scripts/demo chose
	err         error
}

var (
	buildOnce sync.Once
	built     build
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func moduleRoot() string {
	dir, _ := filepath.Abs("..")
	return dir
}

func modelsDir() string {
	if d := os.Getenv("EMBER_MODELS"); d != "" {
		return d
	}
	return filepath.Join(moduleRoot(), "..", "shared", "models")
}

func goCmd() string {
	if p := filepath.Join(goruntime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// appBuild builds the app and the bundles once per test binary.
func appBuild(t *testing.T) build {
	t.Helper()
	buildOnce.Do(func() {
		// EMBER_E2E_BUILD reuses a directory laid out like scripts/demo's -out
		// (app/, models/): for iterating on the page without rebuilding.
		if dir := os.Getenv("EMBER_E2E_BUILD"); dir != "" {
			built = build{app: filepath.Join(dir, "app"), models: filepath.Join(dir, "models"), model: os.Getenv("EMBER_E2E_MODEL")}
			if built.model == "" {
				built.model = "stories260K"
			}
			if !fileExists(filepath.Join(built.models, htmlModel, "manifest.json")) {
				built.err = writeHTMLTokenBundle(filepath.Join(built.models, htmlModel))
			}
			return
		}
		dir, err := os.MkdirTemp("", "ember-web-e2e-")
		if err != nil {
			built.err = err
			return
		}
		buildDir = dir
		cmd := exec.Command(goCmd(), "run", "./scripts/demo", "-serve=false", "-out", dir)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "EMBER_MODELS="+modelsDir(), "MODEL=", "SYNTHETIC=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			built.err = fmt.Errorf("scripts/demo -serve=false: %v\n%s", err, stderr.String())
			return
		}
		built = build{app: filepath.Join(dir, "app"), models: filepath.Join(dir, "models"),
			model: strings.TrimSpace(string(out))}
		if err := writeHTMLTokenBundle(filepath.Join(built.models, htmlModel)); err != nil {
			built.err = fmt.Errorf("html-token bundle: %w", err)
		}
	})
	require.NoError(t, built.err)
	return built
}

// serve starts scripts/serve's handler on the built app and models.
func serve(t *testing.T) (*httptest.Server, *server.Server, build) {
	t.Helper()
	b := appBuild(t)
	srv, err := server.New(server.Options{AppDir: b.app, ModelsDir: b.models})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, srv, b
}

// chromiumPath finds Chromium, or skips (fails under EMBER_REQUIRE_BROWSER=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("EMBER_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "chromium not found (install Debian's chromium or set EMBER_CHROMIUM): browser test skipped"
	if os.Getenv("EMBER_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts a fresh headless Chromium (new profile) and returns a tab.
// webgpu adds SwiftShader WebGPU; without it Chromium has no usable WebGPU
// and Ember must fall back to its CPU engine.
func browser(t *testing.T, webgpu bool) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 860),
	)
	if webgpu {
		opts = append(opts,
			chromedp.Flag("enable-unsafe-webgpu", true),
			chromedp.Flag("enable-features", "Vulkan"),
			chromedp.Flag("use-vulkan", "swiftshader"),
			chromedp.Flag("use-webgpu-adapter", "swiftshader"),
		)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ConsoleAPICalled) {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				switch {
				case a.Value != nil:
					var s string
					if json.Unmarshal(a.Value, &s) == nil {
						parts = append(parts, s)
					} else {
						parts = append(parts, string(a.Value))
					}
				case a.Description != "":
					parts = append(parts, a.Description)
				}
			}
			logf(t, "[console.%s] %s", ev.Type, strings.Join(parts, " "))
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ExceptionThrown) {
			if err != nil {
				return
			}
			if d := ev.ExceptionDetails; d != nil {
				msg := d.Text
				if d.Exception != nil && d.Exception.Description != "" {
					msg = d.Exception.Description
				}
				logf(t, "[page exception] %s", msg)
			}
		}
	}()
	return ctx
}

// eval runs js in the page (awaiting a returned Promise) and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluate %s", js)
	return v
}

// waitFor polls the JS condition until it is truthy, failing with the page's
// state after timeout.
func waitFor(t *testing.T, ctx context.Context, what, cond string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		if failed, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.body?.dataset.model === "error"`)); failed {
			t.Fatalf("the page failed while waiting for %s\npage state: %s", what, pageState(ctx))
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (%s)\npage state: %s", timeout, what, cond, pageState(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageState describes the chat page for failure messages.
func pageState(ctx context.Context) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href,
		error: document.querySelector('[data-testid=error]')?.textContent,
		backend: document.querySelector('[data-testid=backend]')?.textContent,
		progress: document.querySelector('[data-testid=load-progress]')?.textContent,
		model: document.body.dataset.model,
		status: document.getElementById('status')?.textContent,
		messages: [...document.querySelectorAll('.msg')].map(m => m.dataset.state + ': ' + m.textContent.slice(0, 200)),
	})`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// screenshot saves the page as docs/screenshots/NAME.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	dir := filepath.Join(moduleRoot(), "docs", "screenshots")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// logf logs from a goroutine that may outlive the test.
func logf(t *testing.T, format string, args ...any) {
	defer func() { recover() }() // "Log in goroutine after Test... has completed"
	t.Logf(format, args...)
}
