// Ember engine worker: runs the Go wasm (ember.wasm) off the page's main
// thread and relays globalThis.emberWasm (docs/ARCHITECTURE.md) over
// postMessage. It is a classic worker so that it can importScripts Go's
// wasm_exec.js.
//
// Protocol (every message is a plain object; `id` pairs a request with its
// replies; docs/EMBEDDING.md documents it too):
//
//   page → worker
//     {type: "init", id, wasmURL, wasmExecURL, forwardLogs}  start the Go program
//     {type: "load", id, baseURL, backend, publicKey} emberWasm.load
//     {type: "generate", id, params}                  emberWasm.generate (params without onText)
//     {type: "abort"}                                 emberWasm.abort (no reply)
//     {type: "unload", id} / {type: "info", id}
//
//   worker → page
//     {type: "progress", id, done, total, shard}      during load
//     {type: "text", id, piece}                       during generate, one per decoded piece
//     {type: "result", id, value}                     the request's resolved value
//     {type: "error", id, message}                    the request failed (plain words)
//     {type: "fatal", message}                        the Go program ended: every request fails
//     {type: "log", level, text}                      console output, when init asked for it
"use strict";

let ready = null; // Promise of the started Go program's emberWasm

function errorMessage(err) {
  if (err && typeof err.message === "string" && err.message) return err.message;
  return String(err);
}

async function startGo(wasmURL, wasmExecURL) {
  try {
    // The GPU engine's pass recorder (webgpu/engine/runner.js): loaded as a
    // script so the engine needs no eval under a strict CSP. Optional: without
    // it the engine evaluates its embedded copy where the page allows eval.
    importScripts(new URL("ember-runner.js", self.location.href).href);
  } catch (err) {
    console.warn(`ember-runner.js not loaded (${errorMessage(err)}); the GPU engine will need eval`);
  }
  try {
    importScripts(wasmExecURL);
  } catch (err) {
    throw new Error(`Could not load the Go runtime support script (${wasmExecURL}): ${errorMessage(err)}`);
  }
  const go = new Go();
  let resp;
  try {
    resp = await fetch(wasmURL);
  } catch (err) {
    throw new Error(`Could not download the engine (${wasmURL}): ${errorMessage(err)}`);
  }
  if (!resp.ok) {
    throw new Error(`Could not download the engine (${wasmURL}): HTTP ${resp.status}`);
  }
  let instance;
  try {
    const bytes = await resp.arrayBuffer();
    ({ instance } = await WebAssembly.instantiate(bytes, go.importObject));
  } catch (err) {
    throw new Error(`The engine could not start in this browser: ${errorMessage(err)}`);
  }
  let exited = false;
  const exit = (err) => {
    exited = true;
    // A panic or os.Exit: every request still pending would wait forever.
    const why = err ? errorMessage(err) : "it exited";
    reply({ type: "fatal", message: `The engine stopped unexpectedly (${why}); reload the page to start it again.` });
  };
  go.run(instance).then(() => exit(null), exit);
  // The Go program sets globalThis.emberWasm once main has started.
  for (let i = 0; i < 3000; i++) {
    if (globalThis.emberWasm) return globalThis.emberWasm;
    if (exited) throw new Error("The engine stopped before it was ready.");
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("The engine did not start within 30 seconds.");
}

// forwardLogs copies the worker's console output (Go's stdout and stderr
// included) to the page, for debugging (Ember.create({debug: true})).
function forwardLogs() {
  for (const level of ["log", "info", "warn", "error"]) {
    const orig = console[level].bind(console);
    console[level] = (...args) => {
      orig(...args);
      try {
        reply({ type: "log", level, text: args.map(String).join(" ") });
      } catch {
        // Not cloneable: the worker's own console still has it.
      }
    };
  }
}

function reply(msg) {
  postMessage(msg);
}

async function handle(msg) {
  const { id } = msg;
  switch (msg.type) {
    case "init": {
      if (msg.forwardLogs) forwardLogs();
      if (!ready) ready = startGo(msg.wasmURL, msg.wasmExecURL);
      await ready;
      return true;
    }
    case "load": {
      const ew = await engine();
      return await ew.load({
        baseURL: msg.baseURL,
        backend: msg.backend || "auto",
        publicKey: msg.publicKey || undefined,
        onProgress: (done, total, shard) => reply({ type: "progress", id, done, total, shard }),
      });
    }
    case "generate": {
      const ew = await engine();
      const params = Object.assign({}, msg.params, {
        onText: (piece) => reply({ type: "text", id, piece }),
      });
      return await ew.generate(params);
    }
    case "unload": {
      const ew = await engine();
      return await ew.unload();
    }
    case "info": {
      const ew = await engine();
      return ew.info();
    }
    default:
      throw new Error(`unknown request ${JSON.stringify(msg.type)}`);
  }
}

async function engine() {
  if (!ready) throw new Error("The engine was not started.");
  return ready;
}

// Values cross postMessage by structured clone; drop what cannot (functions).
function cloneable(v) {
  if (v === undefined || v === null) return v;
  try {
    return JSON.parse(JSON.stringify(v));
  } catch {
    return undefined;
  }
}

self.onmessage = (ev) => {
  const msg = ev.data || {};
  if (msg.type === "abort") {
    // Synchronous, so that it lands between two tokens.
    try {
      if (globalThis.emberWasm) globalThis.emberWasm.abort();
    } catch (err) {
      // Nothing to abort.
    }
    return;
  }
  handle(msg).then(
    (value) => reply({ type: "result", id: msg.id, value: cloneable(value) }),
    (err) => reply({ type: "error", id: msg.id, message: errorMessage(err) }),
  );
};
