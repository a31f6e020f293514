//go:build !js

// Package wasmrun builds a GOOS=js GOARCH=wasm main package and runs it in
// headless Chromium (driven by chromedp) or in Deno, streaming the program's
// stdout and stderr back and returning its exit code. Tests and the
// scripts/generate and scripts/bench CLIs use it; it runs on the host and never
// imports syscall/js.
//
// # API
//
//	wasm, err := wasmrun.Build(ctx, "./webgpu/kerneltest")    // cached per process
//	code, err := wasmrun.Run(ctx, wasmrun.Options{
//	    Runtime: wasmrun.Chromium,            // or wasmrun.Deno
//	    WASM:    wasm,
//	    Args:    []string{"-v"},             // os.Args[1:] of the program
//	    Env:     map[string]string{"K": "v"}, // os.Getenv in the program
//	    WebGPU:  true,                        // SwiftShader WebGPU flags (Chromium) / --unstable-webgpu (Deno)
//	    Stdout:  os.Stdout, Stderr: os.Stderr,
//	    Timeout: 2 * time.Minute,
//	})
//
// Build runs `go build` with GOOS=js GOARCH=wasm into a temporary directory and
// caches the result per (package, tags, ldflags) for the life of the process,
// so a test package that runs one program several times builds it once.
//
// Chromium: Run serves the wasm, Go's wasm_exec.js and a small HTML page from
// an HTTP server on 127.0.0.1 (a secure context, so navigator.gpu exists),
// starts a fresh headless Chromium (new --user-data-dir each run) and loads the
// page. Options.Dir (a static directory) and Options.Handler (any handler) are
// served under "/" beside the runner's own files, which live under
// "/__wasmrun/"; the program can fetch e.g. "/bundle/manifest.json". The page
// sends Go's writes to fd 1 and 2 back over the DevTools console protocol in
// order; other console messages and uncaught exceptions of the page are
// copied to Stderr prefixed with "[console]". The exit code is what the Go
// program passed to os.Exit (0 when main returns); a page exception before the
// program starts is exit code 1.
//
// Deno: Run writes a small ES module runner next to a copy of wasm_exec.js and
// runs `deno run -A [--unstable-webgpu] runner.mjs prog.wasm args...` with the
// process environment plus Options.Env (the Go program sees both, like
// go_js_wasm_exec). With WebGPU and no VK_ICD_FILENAMES in the environment, it
// points Vulkan at Chromium's SwiftShader ICD when that file exists (set
// EMBER_DENO_NATIVE_GPU=1 to keep the system's Vulkan drivers), and adds
// Chromium's bundled Vulkan loader to LD_LIBRARY_PATH: without a loader wgpu
// silently falls back to GL on llvmpipe. A program
// that blocks forever with nothing pending gets Go's "all goroutines are
// asleep" panic, as under Node.
//
// Dawn: Run runs the same Deno runner with dawn.mjs imported first, which
// loads Dawn's Node-API addon (npm package webgpu, dawn.node) and makes its
// GPU object navigator.gpu in place of Deno's wgpu: Chrome's WebGPU
// implementation outside the browser, on the same Vulkan driver (SwiftShader
// here, the system's with EMBER_DENO_NATIVE_GPU=1). EMBER_DAWN_FLAGS passes
// Dawn toggles ("enable-dawn-features=...").
//
// WriteDenoRunner writes the same runner for machines without Go (the GPU
// machine): `deno run -A --unstable-webgpu runner.mjs prog.wasm args...`.
// The command cmd/wasmrun wraps all of this for the shell (and -export
// writes prog.wasm + runner for carrying to the GPU machine).
//
// Tests outside scripts/ cannot import this internal package; their host
// drivers live in wasmtests/ (jsbridge and the WGSL kernels).
//
// Binaries are found with ChromiumPath ($EMBER_CHROMIUM, chromium,
// chromium-browser, google-chrome) and DenoPath ($EMBER_DENO,
// ./node_modules/.bin/deno in the module root, deno on PATH). Tests call
// Require(t, runtime), which skips with a clear message when the binary is
// missing, or fails when EMBER_REQUIRE_BROWSER=1 (set by CI).
package wasmrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Runtime names a JavaScript runtime.
type Runtime string

const (
	Chromium Runtime = "chromium" // headless Chromium: Dawn inside the browser
	Deno     Runtime = "deno"     // Deno's own navigator.gpu: wgpu, Firefox's WebGPU
	Dawn     Runtime = "dawn"     // Deno with navigator.gpu from dawn.node (npm webgpu): Chrome's WebGPU outside the browser
)

// Runtimes lists every runtime, in the order tests run them. Each one has
// WebGPU: Chromium's and Dawn's are Dawn, Deno's is wgpu.
var Runtimes = []Runtime{Chromium, Deno, Dawn}

// ParseRuntime turns a -runtime flag into a Runtime.
func ParseRuntime(s string) (Runtime, error) {
	for _, r := range Runtimes {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("-runtime must be chromium, deno or dawn, not %q", s)
}

// UsesDeno reports whether the runtime is a Deno process (Deno or Dawn):
// bundles are then read from the file system rather than served over HTTP.
func (r Runtime) UsesDeno() bool { return r == Deno || r == Dawn }

// ErrNotFound is returned (wrapped) when a runtime's binary cannot be found.
var ErrNotFound = errors.New("wasmrun: runtime binary not found")

// Options configures one run.
type Options struct {
	Runtime Runtime
	WASM    string            // path of the .wasm (from Build)
	Args    []string          // program arguments (os.Args[1:])
	Env     map[string]string // extra environment for the program
	WebGPU  bool              // enable WebGPU (SwiftShader in Chromium, --unstable-webgpu in Deno)
	Stdout  io.Writer         // program stdout (nil: discarded)
	Stderr  io.Writer         // program stderr and runtime diagnostics (nil: discarded)
	Timeout time.Duration     // 0: no limit beyond ctx

	// Chromium only.
	Dir          string       // static directory served under "/"
	Handler      http.Handler // served under "/" (takes precedence over Dir)
	ChromiumPath string       // default: ChromiumPath()
	ExtraFlags   []string     // extra Chromium flags, "name" or "name=value"
	PageTitle    string       // <title> of the runner page
	OnServe      func(string) // called with the base URL once the server listens

	// Deno and Dawn only.
	DenoPath  string   // default: DenoPath()
	DawnNode  string   // Dawn: the dawn.node addon (default: DawnNodePath())
	DenoFlags []string // extra flags after "deno run"
	WorkDir   string   // working directory of the deno process
}

// Run runs the program and returns its exit code. err is non-nil when the
// program could not be run to completion (runtime missing, browser crash,
// timeout); a program that ran and exited non-zero returns (code, nil).
func Run(ctx context.Context, o Options) (int, error) {
	if o.WASM == "" {
		return -1, errors.New("wasmrun: Options.WASM is empty")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	switch o.Runtime {
	case Chromium, "":
		return runChromium(ctx, o)
	case Deno, Dawn:
		return runDeno(ctx, o)
	}
	return -1, fmt.Errorf("wasmrun: unknown runtime %q", o.Runtime)
}

// BuildOptions tunes Build.
type BuildOptions struct {
	Tags    string   // -tags
	LDFlags string   // -ldflags
	Env     []string // extra environment for go build
	Dir     string   // directory to run go build in (default: current)
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// Build compiles the main package pkg (an import path or ./relative path)
// for GOOS=js GOARCH=wasm and returns the path of the .wasm file. Results are
// cached for the life of the process.
func Build(ctx context.Context, pkg string, opts ...BuildOptions) (string, error) {
	var o BuildOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := o.Dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	key := strings.Join([]string{dir, pkg, o.Tags, o.LDFlags, strings.Join(o.Env, "\x00")}, "\x01")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[key]; ok {
		return p, nil
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "wasmrun-build-")
		if err != nil {
			return "", err
		}
		buildDir = d
	}
	sum := sha256.Sum256([]byte(key))
	out := filepath.Join(buildDir, hex.EncodeToString(sum[:8])+".wasm")
	args := []string{"build", "-o", out}
	if o.Tags != "" {
		args = append(args, "-tags", o.Tags)
	}
	if o.LDFlags != "" {
		args = append(args, "-ldflags", o.LDFlags)
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0"), o.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("wasmrun: GOOS=js GOARCH=wasm go build %s: %v\n%s", pkg, err, stderr.String())
	}
	buildCache[key] = out
	return out, nil
}

func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// WasmExecJS returns the contents of the Go toolchain's wasm_exec.js.
func WasmExecJS() ([]byte, error) {
	root := runtime.GOROOT()
	if root == "" {
		out, err := exec.Command(goTool(), "env", "GOROOT").Output()
		if err != nil {
			return nil, fmt.Errorf("wasmrun: locate GOROOT: %w", err)
		}
		root = strings.TrimSpace(string(out))
	}
	for _, p := range []string{filepath.Join(root, "lib", "wasm", "wasm_exec.js"), filepath.Join(root, "misc", "wasm", "wasm_exec.js")} {
		if b, err := os.ReadFile(p); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("wasmrun: wasm_exec.js not found under %s", root)
}

// ChromiumPath finds the Chromium binary: $EMBER_CHROMIUM, then chromium,
// chromium-browser, google-chrome on PATH.
func ChromiumPath() (string, error) {
	if p := os.Getenv("EMBER_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: EMBER_CHROMIUM=%s: %v", ErrNotFound, p, err)
		}
		return p, nil
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no chromium on PATH (install Debian's chromium or set EMBER_CHROMIUM)", ErrNotFound)
}

// DenoPath finds Deno: $EMBER_DENO, then node_modules/.bin/deno in the
// enclosing module root (npm install puts it there), then deno on PATH.
func DenoPath() (string, error) {
	if p := os.Getenv("EMBER_DENO"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if root := moduleRoot(); root != "" {
		p := filepath.Join(root, "node_modules", ".bin", "deno")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("deno"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: no deno (run npm install, or set EMBER_DENO)", ErrNotFound)
}

// DawnNodePath finds Dawn's Node-API addon: $EMBER_DAWN_NODE, then the npm
// package webgpu's build for this platform under node_modules in the module
// root (a devDependency: make deps installs it).
func DawnNodePath() (string, error) {
	if p := os.Getenv("EMBER_DAWN_NODE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: EMBER_DAWN_NODE=%s: %v", ErrNotFound, p, err)
		}
		return p, nil
	}
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	plat := runtime.GOOS + "-" + arch
	if runtime.GOOS == "darwin" {
		plat = "darwin-universal"
	} else if runtime.GOOS == "windows" {
		plat = "win32-" + arch
	}
	if root := moduleRoot(); root != "" {
		p := filepath.Join(root, "node_modules", "webgpu", "dist", plat, "dawn.node")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no dawn.node (run npm install for the webgpu package, or set EMBER_DAWN_NODE)", ErrNotFound)
}

// moduleRoot is the nearest directory above the working directory holding go.mod.
func moduleRoot() string {
	d, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return ""
		}
		d = up
	}
}

// TB is the part of testing.TB that Require uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Require returns the binary of runtime rt, or skips the test with a clear
// message when it is missing; with EMBER_REQUIRE_BROWSER=1 a missing binary
// fails the test instead.
func Require(t TB, rt Runtime) string {
	t.Helper()
	var p string
	var err error
	switch rt {
	case Deno:
		p, err = DenoPath()
	case Dawn:
		if p, err = DenoPath(); err == nil {
			p, err = DawnNodePath()
		}
	default:
		p, err = ChromiumPath()
	}
	if err == nil {
		return p
	}
	if os.Getenv("EMBER_REQUIRE_BROWSER") == "1" {
		t.Fatalf("%s is required (EMBER_REQUIRE_BROWSER=1): %v", rt, err)
	} else {
		t.Skipf("skipping: %s not available: %v (set EMBER_REQUIRE_BROWSER=1 to make this a failure)", rt, err)
	}
	return ""
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
