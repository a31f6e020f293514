//go:build !js

package wasmrun

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// SwiftShaderICD is the Vulkan ICD of SwiftShader shipped in Debian's
// chromium package; Deno's wgpu uses it when VK_ICD_FILENAMES points at it.
const SwiftShaderICD = "/usr/lib/chromium/vk_swiftshader_icd.json"

const denoRunner = `// wasmrun Deno runner: runs a GOOS=js GOARCH=wasm program like go_js_wasm_exec.
import "./wasm_exec.js";
const [wasmPath, ...args] = Deno.args;
const go = new Go();
go.argv = ["js", ...args];
go.env = Deno.env.toObject();
go.exit = (code) => { Deno.exit(code); };
const writeAll = (w, buf) => { let off = 0; while (off < buf.length) off += w.writeSync(buf.subarray(off)); };
globalThis.fs.writeSync = (fd, buf) => { writeAll(fd === 1 ? Deno.stdout : Deno.stderr, buf); return buf.length; };
// The event loop is empty while Go still waits: resume it so that the Go
// runtime reports the deadlock ("all goroutines are asleep") and exits.
globalThis.addEventListener("beforeunload", (e) => {
  if (!go.exited) { e.preventDefault(); go._pendingEvent = { id: 0 }; go._resume(); }
});
// No top-level await on go.run: the module must finish so that an empty event
// loop fires beforeunload.
WebAssembly.instantiate(await Deno.readFile(wasmPath), go.importObject)
  .then(({ instance }) => go.run(instance))
  .catch((err) => { console.error(err); Deno.exit(1); });
`

// dawnShim (dawn.mjs) makes Dawn's GPU object navigator.gpu; the Dawn
// runner imports it before anything else.
//
//go:embed dawn.mjs
var dawnShim string

// WriteDenoRunner writes runner.mjs (wgpu), dawn-runner.mjs (Dawn, with
// dawn.mjs) and wasm_exec.js into dir, for running a wasm program under Deno
// where Go is not installed (the GPU machine):
//
//	deno run -A --unstable-webgpu dir/runner.mjs prog.wasm args...
//	EMBER_DAWN_NODE=path/dawn.node deno run -A dir/dawn-runner.mjs prog.wasm args...
//
// The program's environment is the deno process's.
func WriteDenoRunner(dir string) (string, error) {
	wasmExec, err := WasmExecJS()
	if err != nil {
		return "", err
	}
	if _, err := writeDenoRunner(dir, wasmExec, Dawn); err != nil {
		return "", err
	}
	return writeDenoRunner(dir, wasmExec, Deno)
}

func writeDenoRunner(dir string, wasmExec []byte, rt Runtime) (string, error) {
	if err := os.WriteFile(filepath.Join(dir, "wasm_exec.js"), wasmExec, 0o644); err != nil {
		return "", err
	}
	name, text := "runner.mjs", denoRunner
	if rt == Dawn {
		if err := os.WriteFile(filepath.Join(dir, "dawn.mjs"), []byte(dawnShim), 0o644); err != nil {
			return "", err
		}
		name, text = "dawn-runner.mjs", "import \"./dawn.mjs\";\n"+denoRunner
	}
	runner := filepath.Join(dir, name)
	if err := os.WriteFile(runner, []byte(text), 0o644); err != nil {
		return "", err
	}
	return runner, nil
}

// envOf returns the last value of key in env (KEY=VALUE entries).
func envOf(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

func runDeno(ctx context.Context, o Options) (int, error) {
	bin := o.DenoPath
	if bin == "" {
		var err error
		if bin, err = DenoPath(); err != nil {
			return -1, err
		}
	}
	wasmExec, err := WasmExecJS()
	if err != nil {
		return -1, err
	}
	dir, err := os.MkdirTemp("", "wasmrun-deno-")
	if err != nil {
		return -1, err
	}
	defer os.RemoveAll(dir)
	runner, err := writeDenoRunner(dir, wasmExec, o.Runtime)
	if err != nil {
		return -1, err
	}
	var dawnNode string
	if o.Runtime == Dawn {
		if dawnNode = o.DawnNode; dawnNode == "" {
			if dawnNode, err = DawnNodePath(); err != nil {
				return -1, err
			}
		}
		if dawnNode, err = filepath.Abs(dawnNode); err != nil {
			return -1, err
		}
	}
	wasm, err := filepath.Abs(o.WASM)
	if err != nil {
		return -1, err
	}
	args := []string{"run", "-A", "--no-prompt"}
	if o.WebGPU && o.Runtime == Deno {
		args = append(args, "--unstable-webgpu")
	}
	args = append(args, o.DenoFlags...)
	args = append(args, runner, wasm)
	args = append(args, o.Args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = o.WorkDir
	cmd.Env = append(os.Environ(), "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1")
	if dawnNode != "" {
		cmd.Env = append(cmd.Env, "EMBER_DAWN_NODE="+dawnNode)
	}
	if o.WebGPU && os.Getenv("VK_ICD_FILENAMES") == "" && os.Getenv("EMBER_DENO_NATIVE_GPU") != "1" {
		if _, err := os.Stat(SwiftShaderICD); err == nil {
			cmd.Env = append(cmd.Env, "VK_ICD_FILENAMES="+SwiftShaderICD)
		}
	}
	if o.WebGPU && filepath.Clean(envOf(cmd.Env, "VK_ICD_FILENAMES")) == SwiftShaderICD {
		// Debian ships no system Vulkan loader with chromium; without one wgpu
		// silently falls back to GL on llvmpipe. Chromium's own loader sits
		// beside the ICD.
		dir := filepath.Dir(SwiftShaderICD)
		if _, err := os.Stat(filepath.Join(dir, "libvulkan.so.1")); err == nil {
			lp := dir
			if old := envOf(cmd.Env, "LD_LIBRARY_PATH"); old != "" {
				lp = old + ":" + dir
			}
			cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+lp)
		}
	}
	keys := make([]string, 0, len(o.Env))
	for k := range o.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+o.Env[k])
	}
	cmd.Stdout = o.Stdout
	cmd.Stderr = o.Stderr
	cmd.WaitDelay = 2e9
	err = cmd.Run()
	if ctx.Err() != nil {
		return -1, fmt.Errorf("wasmrun: deno run: %w", ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("wasmrun: deno run: %w", err)
	}
	return 0, nil
}
