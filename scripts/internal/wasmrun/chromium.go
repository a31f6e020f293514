//go:build !js

package wasmrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// WebGPUFlags are the Chromium flags that give headless Chromium a WebGPU
// adapter backed by SwiftShader (CPU Vulkan), as documented in the README.
var WebGPUFlags = []string{
	"enable-unsafe-webgpu",
	"enable-features=Vulkan",
	"use-vulkan=swiftshader",
	"use-webgpu-adapter=swiftshader",
}

// marker starts every console message the runner page uses to talk to Run.
const marker = "\x01wasmrun:"

const pageJS = `
(async () => {
  const M = "\x01wasmrun:";
  const report = (kind, value) => console.debug(M + kind, value);
  window.addEventListener("error", (e) => console.error("uncaught:", e.message, e.filename + ":" + e.lineno));
  window.addEventListener("unhandledrejection", (e) => console.error("unhandled rejection:", String(e.reason && e.reason.stack || e.reason)));
  try {
    const cfg = await (await fetch("/__wasmrun/config.json")).json();
    const decs = { 1: new TextDecoder(), 2: new TextDecoder() };
    globalThis.fs.writeSync = (fd, buf) => {
      const d = decs[fd] || decs[2];
      report("w" + (fd === 1 ? 1 : 2), d.decode(buf, { stream: true }));
      return buf.length;
    };
    const go = new Go();
    go.argv = ["js", ...cfg.args];
    go.env = cfg.env;
    let code = 0;
    go.exit = (c) => { code = c; };
    const { instance } = await WebAssembly.instantiateStreaming(fetch("/__wasmrun/main.wasm"), go.importObject);
    await go.run(instance);
    report("x", code);
  } catch (err) {
    report("w2", "wasmrun page: " + String(err && err.stack || err) + "\n");
    report("x", 1);
  }
})();
`

func runChromium(ctx context.Context, o Options) (int, error) {
	bin := o.ChromiumPath
	if bin == "" {
		var err error
		if bin, err = ChromiumPath(); err != nil {
			return -1, err
		}
	}
	wasmExec, err := WasmExecJS()
	if err != nil {
		return -1, err
	}
	env := o.Env
	if env == nil {
		env = map[string]string{}
	}
	args := o.Args
	if args == nil {
		args = []string{}
	}
	cfg, err := json.Marshal(map[string]any{"args": args, "env": env})
	if err != nil {
		return -1, err
	}
	title := o.PageTitle
	if title == "" {
		title = "wasmrun"
	}
	page := "<!doctype html><html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(title) +
		"</title></head><body><script src=\"/__wasmrun/wasm_exec.js\"></script><script src=\"/__wasmrun/page.js\"></script></body></html>"

	mux := http.NewServeMux()
	mux.HandleFunc("/__wasmrun/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/__wasmrun/index.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(page))
		case "/__wasmrun/wasm_exec.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(wasmExec)
		case "/__wasmrun/page.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(pageJS))
		case "/__wasmrun/config.json":
			w.Header().Set("Content-Type", "application/json")
			w.Write(cfg)
		case "/__wasmrun/main.wasm":
			w.Header().Set("Content-Type", "application/wasm")
			http.ServeFile(w, r, o.WASM)
		default:
			http.NotFound(w, r)
		}
	})
	switch {
	case o.Handler != nil:
		mux.Handle("/", o.Handler)
	case o.Dir != "":
		mux.Handle("/", http.FileServer(http.Dir(o.Dir)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return -1, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	if o.OnServe != nil {
		o.OnServe(base)
	}

	userDir, err := os.MkdirTemp("", "wasmrun-chromium-")
	if err != nil {
		return -1, err
	}
	defer os.RemoveAll(userDir)
	stderr := &lockedWriter{w: o.Stderr}
	flags := append(chromedp.DefaultExecAllocatorOptions[:0:0], chromedp.DefaultExecAllocatorOptions[:]...)
	flags = append(flags,
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(userDir),
		chromedp.NoSandbox,
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("enable-features", ""),
	)
	var extra []string
	if o.WebGPU {
		extra = append(extra, WebGPUFlags...)
	}
	extra = append(extra, o.ExtraFlags...)
	for _, f := range extra {
		name, val, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if ok {
			flags = append(flags, chromedp.Flag(name, val))
		} else {
			flags = append(flags, chromedp.Flag(name, true))
		}
	}
	actx, cancelA := chromedp.NewExecAllocator(ctx, flags...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	// Start the browser first, then subscribe, then navigate, so that no
	// console message is lost.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		return -1, fmt.Errorf("wasmrun: start chromium: %w", err)
	}
	events := chromedp.Events(bctx, runtime.ConsoleAPICalled)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/__wasmrun/index.html")); err != nil {
		return -1, fmt.Errorf("wasmrun: load runner page: %w", err)
	}
	for ev, err := range events {
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return -1, fmt.Errorf("wasmrun: chromium run: %w", ctx.Err())
			}
			return -1, fmt.Errorf("wasmrun: chromium run: %w", err)
		}
		vals := make([]any, len(ev.Args))
		for i, a := range ev.Args {
			if len(a.Value) > 0 {
				if json.Unmarshal(a.Value, &vals[i]) != nil {
					vals[i] = string(a.Value)
				}
			} else if a.UnserializableValue != "" {
				vals[i] = string(a.UnserializableValue)
			} else {
				vals[i] = a.Description
			}
		}
		if len(vals) == 2 {
			if k, ok := vals[0].(string); ok && strings.HasPrefix(k, marker) {
				switch strings.TrimPrefix(k, marker) {
				case "w1":
					s, _ := vals[1].(string)
					if _, err := o.Stdout.Write([]byte(s)); err != nil {
						return -1, err
					}
				case "w2":
					s, _ := vals[1].(string)
					stderr.Write([]byte(s))
				case "x":
					c, _ := vals[1].(float64)
					return int(c), nil
				}
				continue
			}
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(stderr, "[console.%s] %s\n", ev.Type, strings.Join(parts, " "))
	}
	return -1, fmt.Errorf("wasmrun: chromium run ended without an exit: %w", ctx.Err())
}
