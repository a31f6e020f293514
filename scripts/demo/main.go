//go:build !js

// Command demo builds the Ember web app and a model bundle, then serves both on
// localhost: `make demo` runs it.
//
//	go run ./scripts/demo                         # stories260K from $EMBER_MODELS, else a synthetic bundle
//	MODEL=stories15M.bin TOKENIZER=tokenizer.bin go run ./scripts/demo
//	MODEL=llama-3.2-1b-instruct-q8_0.gguf go run ./scripts/demo
//	go run ./scripts/demo -serve=false -out /tmp/x  # build only (the tests do this)
//
// Layout written under -out (default build/): app/ (index.html, app.js,
// ember.js, worker.js, style.css, examples/, sw.js, wasm_exec.js, ember.wasm),
// models/NAME/ (bundles), bin/ (the converter and server binaries). It then
// runs scripts/serve on -addr and prints the URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	log := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...) }
	var o options
	flag.StringVar(&o.model, "model", os.Getenv("MODEL"), "checkpoint to convert and serve (llama2.c .bin, GGUF, safetensors dir); env MODEL")
	flag.StringVar(&o.tokenizer, "tokenizer", os.Getenv("TOKENIZER"), "tokenizer for checkpoints without one (llama2.c tokenizer.bin, tokenizer.model); env TOKENIZER")
	flag.StringVar(&o.synthetic, "synthetic", os.Getenv("SYNTHETIC"), "also write a synthetic bundle with random weights: tiny or stories15m; env SYNTHETIC")
	flag.StringVar(&o.quant, "quant", envOr("QUANT", "q8_channel"), "quantization scheme: q8_channel or q8_block32; env QUANT")
	flag.StringVar(&o.out, "out", envOr("EMBER_BUILD", "build"), "output directory; env EMBER_BUILD")
	flag.StringVar(&o.addr, "addr", envOr("ADDR", "127.0.0.1:8080"), "address to serve on; env ADDR")
	flag.BoolVar(&o.serve, "serve", true, "serve after building (false: build only)")
	flag.Parse()
	o.models = envOr("EMBER_MODELS", "")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	model, tokenizer, synthetic, quant string
	out, addr, models                  string
	serve                              bool
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, o options, log func(string, ...any)) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.models == "" {
		o.models = filepath.Join(root, "..", "shared", "models")
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	appDir := filepath.Join(out, "app")
	modelsDir := filepath.Join(out, "models")
	binDir := filepath.Join(out, "bin")
	for _, d := range []string{modelsDir, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	log("building the app into %s", appDir)
	if err := BuildApp(ctx, root, appDir); err != nil {
		return err
	}

	name, err := prepareModels(ctx, root, binDir, modelsDir, o, log)
	if err != nil {
		return err
	}
	if !o.serve {
		fmt.Println(name)
		return nil
	}

	serveBin := filepath.Join(binDir, "serve")
	if err := goBuild(ctx, root, serveBin, "./scripts/serve", nil); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, serveBin, "-addr", o.addr, "-models", modelsDir, "-app", appDir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	base := "http://" + o.addr + "/"
	if err := waitHTTP(ctx, base+"models.json", done); err != nil {
		return err
	}
	fmt.Printf("\nEmber is ready: open %s?model=%s\n(Ctrl+C stops the server)\n\n", base, name)
	err = <-done
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// moduleRoot finds the directory holding go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/ember-llm/ember") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this from inside the Ember checkout (no go.mod found)")
		}
		dir = parent
	}
}

// BuildApp writes the servable app directory: web/ (without Go files), the
// service worker, the GPU pass recorder (ember-runner.js), Go's wasm_exec.js
// and ember.wasm built from ./wasm.
func BuildApp(ctx context.Context, root, appDir string) error {
	tmp := appDir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := copyTree(filepath.Join(root, "web"), tmp, func(rel string, d fs.DirEntry) bool {
		if d.IsDir() {
			return rel != "internal" && rel != "testdata"
		}
		return !strings.HasSuffix(rel, ".go")
	}); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, "serviceworker", "sw.js"), filepath.Join(tmp, "sw.js")); err != nil {
		return fmt.Errorf("service worker: %w", err)
	}
	// The GPU engine's pass recorder, loaded by worker.js so that no eval is needed.
	if err := copyFile(filepath.Join(root, "webgpu", "engine", "runner.js"), filepath.Join(tmp, "ember-runner.js")); err != nil {
		return fmt.Errorf("ember-runner.js: %w", err)
	}
	goroot, err := goEnv(ctx, "GOROOT")
	if err != nil {
		return err
	}
	execJS := filepath.Join(goroot, "lib", "wasm", "wasm_exec.js")
	if _, err := os.Stat(execJS); err != nil {
		execJS = filepath.Join(goroot, "misc", "wasm", "wasm_exec.js") // Go before 1.24
	}
	if err := copyFile(execJS, filepath.Join(tmp, "wasm_exec.js")); err != nil {
		return fmt.Errorf("wasm_exec.js: %w", err)
	}
	if err := goBuild(ctx, root, filepath.Join(tmp, "ember.wasm"), "./wasm", []string{"GOOS=js", "GOARCH=wasm"}); err != nil {
		return err
	}
	if err := os.RemoveAll(appDir); err != nil {
		return err
	}
	return os.Rename(tmp, appDir)
}

func goEnv(ctx context.Context, key string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin(), "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func goBin() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func goBuild(ctx context.Context, root, out, pkg string, env []string) error {
	cmd := exec.CommandContext(ctx, goBin(), "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// prepareModels converts what there is to convert into modelsDir and returns
// the name of the bundle to open.
func prepareModels(ctx context.Context, root, binDir, modelsDir string, o options, log func(string, ...any)) (string, error) {
	convert := filepath.Join(binDir, "convert")
	built := false
	conv := func(name string, args ...string) error {
		if !built {
			if err := goBuild(ctx, root, convert, "./scripts/convert", nil); err != nil {
				return err
			}
			built = true
		}
		// The converter replaces -out atomically: a failed run leaves the old bundle.
		dst := filepath.Join(modelsDir, name)
		args = append(args, "-out", dst, "-quant", o.quant)
		log("converting: convert %s", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, convert, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("convert %s: %w", name, err)
		}
		return nil
	}
	// upToDate: the bundle exists and is newer than its inputs.
	upToDate := func(name string, inputs ...string) bool {
		st, err := os.Stat(filepath.Join(modelsDir, name, "manifest.json"))
		if err != nil {
			return false
		}
		for _, in := range inputs {
			if in == "" {
				continue
			}
			if si, err := os.Stat(in); err != nil || si.ModTime().After(st.ModTime()) {
				return false
			}
		}
		return true
	}

	var first string
	if o.synthetic != "" {
		name := "synthetic-" + o.synthetic
		if !upToDate(name) {
			if err := conv(name, "-synthetic", o.synthetic); err != nil {
				return "", err
			}
		}
		first = name
	}
	switch {
	case o.model != "":
		in, err := filepath.Abs(o.model)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(in); err != nil {
			return "", fmt.Errorf("MODEL: %w", err)
		}
		name := bundleName(in)
		if !upToDate(name, in, o.tokenizer) {
			args := []string{"-in", in}
			if o.tokenizer != "" {
				tok, err := filepath.Abs(o.tokenizer)
				if err != nil {
					return "", err
				}
				args = append(args, "-tokenizer", tok)
			} else if strings.HasSuffix(in, ".bin") {
				log("note: a llama2.c .bin checkpoint has no tokenizer inside; set TOKENIZER=path/to/tokenizer.bin if conversion fails")
			}
			if err := conv(name, args...); err != nil {
				return "", err
			}
		}
		return name, nil
	case fileExists(filepath.Join(o.models, "stories260K", "stories260K.bin")):
		in := filepath.Join(o.models, "stories260K", "stories260K.bin")
		tok := filepath.Join(o.models, "stories260K", "tok512.bin")
		if !upToDate("stories260K", in, tok) {
			if err := conv("stories260K", "-in", in, "-tokenizer", tok); err != nil {
				return "", err
			}
		}
		if first == "" {
			first = "stories260K"
		}
		return first, nil
	case first != "":
		return first, nil
	default:
		log("no model given (MODEL=...) and no %s: serving a synthetic bundle with random weights", filepath.Join(o.models, "stories260K"))
		name := "synthetic-tiny"
		if !upToDate(name) {
			if err := conv(name, "-synthetic", "tiny"); err != nil {
				return "", err
			}
		}
		return name, nil
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// bundleName turns a checkpoint path into a bundle directory name.
func bundleName(path string) string {
	base := filepath.Base(strings.TrimRight(path, string(filepath.Separator)))
	for _, ext := range []string{".gguf", ".bin", ".safetensors", ".pt"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.Trim(unsafeName.ReplaceAllString(base, "-"), "-.")
	if base == "" {
		base = "model"
	}
	return base
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func copyTree(src, dst string, keep func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && !keep(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// waitHTTP polls url until it answers, the server exits or ctx ends.
func waitHTTP(ctx context.Context, url string, exited <-chan error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the server stopped: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
