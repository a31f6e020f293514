// Ember: int8 Llama models in the browser (WebGPU, with a wasm CPU fallback).
//
//   import { Ember } from "./ember.js";
//   const engine = await Ember.create({ model: "/models/stories260K/", onProgress });
//   const stream = await engine.chat.completions.create({ messages, stream: true });
//   for await (const chunk of stream) out.textContent += chunk.choices[0].delta.content ?? "";
//
// The engine runs in a dedicated Web Worker (worker.js) that starts the Go
// wasm (ember.wasm, with Go's wasm_exec.js). Those three files are found next
// to this module unless workerURL / wasmURL / wasmExecURL say otherwise.
// docs/EMBEDDING.md is the full reference.

const here = (name) => new URL(name, import.meta.url).href;

let nextID = 1;

function abortError(signal) {
  if (signal && signal.reason !== undefined) return signal.reason;
  return new DOMException("The operation was aborted.", "AbortError");
}

function toList(stop) {
  if (stop === undefined || stop === null) return [];
  return Array.isArray(stop) ? stop.map(String) : [String(stop)];
}

function completionID() {
  const r = crypto.getRandomValues(new Uint8Array(12));
  return "chatcmpl-" + Array.from(r, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Params for emberWasm.generate, from OpenAI-style options.
function generateParams(opts) {
  const p = {};
  const copy = ["max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed"];
  for (const k of copy) if (opts[k] !== undefined && opts[k] !== null) p[k] = Number(opts[k]);
  if (p.max_tokens === undefined && opts.max_completion_tokens != null) p.max_tokens = Number(opts.max_completion_tokens);
  p.stop = toList(opts.stop);
  return p;
}

// A small async queue: chunks pushed by the worker, pulled by for-await.
class Channel {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.done = false;
    this.error = null;
  }
  push(v) {
    const w = this.waiters.shift();
    if (w) w.resolve({ value: v, done: false });
    else this.items.push(v);
  }
  close(err) {
    if (this.done) return;
    this.done = true;
    this.error = err || null;
    for (const w of this.waiters.splice(0)) {
      if (this.error) w.reject(this.error);
      else w.resolve({ value: undefined, done: true });
    }
  }
  next() {
    if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.done) {
      if (this.error) {
        const e = this.error;
        this.error = null; // throw once, then report done
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/** A stream of chat.completion.chunk objects (for await ... of). */
class ChatCompletionStream {
  constructor(channel, cancel) {
    this._channel = channel;
    this._cancel = cancel;
    /** An AbortController whose abort() stops this generation (as in OpenAI's SDK). */
    this.controller = { abort: () => cancel() };
  }
  [Symbol.asyncIterator]() {
    return {
      next: () => this._channel.next(),
      return: () => {
        // Leaving the loop early (break) stops the generation.
        this._cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

class Engine {
  constructor(worker, modelURL) {
    this._worker = worker;
    this._model = modelURL;
    this._info = null;
    this._pending = new Map(); // id → {resolve, reject, onProgress, onText}
    this._queue = Promise.resolve(); // generations run one at a time
    this._current = null; // the pending entry of the running generation
    this._closed = false;
    worker.onmessage = (ev) => this._onMessage(ev.data);
    worker.onerror = (ev) => {
      ev.preventDefault?.();
      this._failAll(new Error(`The engine worker failed: ${ev.message || "unknown error"}`));
    };
    const self = this;
    /** OpenAI-compatible chat API. */
    this.chat = {
      completions: {
        create(opts) {
          return self._chatCreate(opts || {});
        },
      },
    };
  }

  _onMessage(msg) {
    if (msg.type === "log") {
      (console[msg.level] || console.log)("[ember worker]", msg.text);
      return;
    }
    if (msg.type === "fatal") {
      this._dead = new Error(msg.message);
      this._failAll(this._dead);
      return;
    }
    const p = this._pending.get(msg.id);
    if (!p) return;
    switch (msg.type) {
      case "progress":
        if (p.onProgress) {
          try {
            p.onProgress({ loaded: msg.done, total: msg.total, shard: msg.shard });
          } catch (err) {
            console.error(err);
          }
        }
        break;
      case "text":
        if (p.stopped) break;
        p.seen = (p.seen || "") + msg.piece;
        if (p.onText) {
          try {
            p.onText(msg.piece);
          } catch (err) {
            console.error(err);
          }
        }
        break;
      case "result":
        this._pending.delete(msg.id);
        p.resolve(msg.value);
        break;
      case "error":
        this._pending.delete(msg.id);
        p.reject(new Error(msg.message));
        break;
    }
  }

  _failAll(err) {
    for (const [id, p] of this._pending) {
      this._pending.delete(id);
      p.reject(err);
    }
  }

  _request(type, fields = {}, handlers = {}) {
    if (this._closed) return Promise.reject(new Error("This engine was unloaded."));
    if (this._dead) return Promise.reject(this._dead);
    const id = nextID++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, ...handlers });
      this._worker.postMessage({ type, id, ...fields });
    });
  }

  async _init(wasmURL, wasmExecURL, forwardLogs) {
    await this._request("init", { wasmURL, wasmExecURL, forwardLogs });
  }

  async _load({ backend, publicKey, onProgress }) {
    const start = performance.now();
    const handlers = {
      onProgress: onProgress
        ? (p) => {
            const elapsed = (performance.now() - start) / 1000;
            const rate = elapsed > 0 ? p.loaded / elapsed : 0;
            const eta = rate > 0 && p.total > p.loaded ? (p.total - p.loaded) / rate : 0;
            onProgress({
              loaded: p.loaded,
              total: p.total,
              shard: p.shard,
              fraction: p.total > 0 ? p.loaded / p.total : 0,
              etaSeconds: eta,
            });
          }
        : undefined,
    };
    this._info = await this._request("load", { baseURL: this._model, backend, publicKey }, handlers);
    return this._info;
  }

  /**
   * Runs one generation. params: emberWasm.generate's fields (prompt or
   * messages, max_tokens, temperature, ...); onText(piece); signal.
   * Resolves with {text, finish_reason, usage, timings}.
   */
  _generate(params, onText, signal) {
    const run = async () => {
      if (signal && signal.aborted) throw abortError(signal);
      if (this._dead) throw this._dead;
      const id = nextID++;
      const entry = { onText, stopped: false };
      const done = new Promise((resolve, reject) => {
        entry.resolve = resolve;
        entry.reject = reject;
      });
      this._pending.set(id, entry);
      const onAbort = () => {
        entry.stopped = true; // the page sees no piece after the abort
        this._worker.postMessage({ type: "abort" });
      };
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
      this._current = entry;
      this._worker.postMessage({ type: "generate", id, params });
      try {
        let res = await done;
        if (signal && signal.aborted) throw abortError(signal);
        if (entry.stopped && res) {
          // The text is what the caller saw before the abort.
          res = Object.assign({}, res, { text: entry.seen || "" });
        }
        return res;
      } finally {
        this._current = null;
        if (signal) signal.removeEventListener("abort", onAbort);
      }
    };
    if (this._closed) return Promise.reject(new Error("This engine was unloaded."));
    const result = this._queue.then(run, run);
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * Plain-prompt generation (no chat template).
   * opts: max_tokens, temperature, top_p, top_k, min_p, repetition_penalty, seed, stop,
   * onText(piece), signal. Resolves with {text, finish_reason, usage, timings}.
   */
  generate(prompt, opts = {}) {
    const params = generateParams(opts);
    params.prompt = String(prompt);
    return this._generate(params, opts.onText, opts.signal);
  }

  _chatCreate(opts) {
    const messages = (opts.messages || []).map((m) => ({
      role: String(m.role),
      content: typeof m.content === "string" ? m.content : contentText(m.content),
    }));
    const params = generateParams(opts);
    params.messages = messages;
    const id = completionID();
    const created = Math.floor(Date.now() / 1000);
    const model = (this._info && this._info.model) || this._model;

    if (!opts.stream) {
      return this._generate(params, null, opts.signal).then((r) => ({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: r.text },
            logprobs: null,
            finish_reason: r.finish_reason,
          },
        ],
        usage: usage(r.usage),
        timings: r.timings,
        ember: extras(r),
      }));
    }

    const ch = new Channel();
    const chunk = (delta, finish, extra) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...extra,
    });
    let first = true;
    const local = new AbortController();
    const signals = [local.signal];
    if (opts.signal) signals.push(opts.signal);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : local.signal;
    this._generate(
      params,
      (piece) => {
        if (first) {
          ch.push(chunk({ role: "assistant", content: "" }, null));
          first = false;
        }
        ch.push(chunk({ content: piece }, null));
      },
      signal,
    ).then(
      (r) => {
        if (first) ch.push(chunk({ role: "assistant", content: "" }, null));
        ch.push(chunk({}, r.finish_reason, { usage: usage(r.usage), timings: r.timings, ember: extras(r) }));
        ch.close();
      },
      (err) => {
        // Stopped by the consumer leaving the loop: end quietly.
        if (local.signal.aborted && !(opts.signal && opts.signal.aborted)) ch.close();
        else ch.close(err);
      },
    );
    return Promise.resolve(new ChatCompletionStream(ch, () => local.abort()));
  }

  /** Stops the running generation; it resolves with finish_reason "abort". */
  abort() {
    if (!this._current) return;
    this._current.stopped = true; // no piece reaches the page after this call
    this._worker.postMessage({ type: "abort" });
  }

  /** Frees the model and stops the worker. The engine cannot be used afterwards. */
  async unload() {
    if (this._closed) return;
    this.abort();
    try {
      await this._request("unload");
    } finally {
      this._closed = true;
      this._worker.terminate();
      this._failAll(new Error("This engine was unloaded."));
    }
  }

  /**
   * What is running: {backend: "webgpu"|"cpu", adapter, reason, model, config,
   * context_length, synthetic}.
   */
  info() {
    return this._info;
  }
}

function contentText(content) {
  if (!Array.isArray(content)) return content == null ? "" : String(content);
  return content.map((part) => (part && part.type === "text" ? part.text : "")).join("");
}

// Fields of the engine's result beyond the OpenAI shape (e.g. a context shift).
function extras(r) {
  const out = {};
  for (const [k, v] of Object.entries(r || {})) {
    if (!["text", "usage", "finish_reason", "timings"].includes(k)) out[k] = v;
  }
  return out;
}

function usage(u) {
  const prompt = (u && u.prompt_tokens) || 0;
  const completion = (u && u.completion_tokens) || 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    // Prompt tokens whose keys and values were already in the KV cache.
    prompt_tokens_details: { cached_tokens: (u && u.cached_tokens) || 0 },
  };
}

export const Ember = {
  /**
   * Starts the engine and loads a model bundle.
   * options.model: the bundle's base URL (the folder holding manifest.json).
   * options.onProgress({loaded, total, fraction, etaSeconds, shard}): download progress.
   * options.backend: "auto" (default), "webgpu" or "cpu".
   * options.publicKey: Ed25519 public key; unsigned or mis-signed manifests are refused.
   * options.workerURL, options.wasmURL, options.wasmExecURL: where the files are
   * (default: next to ember.js).
   * options.debug: copy the worker's console output (Go's included) to the page's console.
   */
  async create(options = {}) {
    if (!options.model) throw new Error("Ember.create: options.model (the bundle URL) is required.");
    let model = new URL(options.model, document.baseURI).href;
    if (!model.endsWith("/")) model += "/";
    const worker = new Worker(options.workerURL || here("worker.js"), { name: "ember-engine" });
    const engine = new Engine(worker, model);
    try {
      await engine._init(
        new URL(options.wasmURL || here("ember.wasm"), document.baseURI).href,
        new URL(options.wasmExecURL || here("wasm_exec.js"), document.baseURI).href,
        !!options.debug,
      );
      await engine._load({
        backend: options.backend || "auto",
        publicKey: options.publicKey,
        onProgress: options.onProgress,
      });
    } catch (err) {
      worker.terminate();
      throw err;
    }
    return engine;
  },
};

export default Ember;
