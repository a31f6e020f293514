// The Ember chat page. It talks to the model only through ember.js (the same
// API a host site embeds); every piece of model or user text reaches the DOM
// through textContent / Text nodes, never as HTML.
import { Ember } from "./ember.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);
const ui = {
  picker: $("model-picker"),
  backend: $("backend"),
  synthetic: $("synthetic-notice"),
  windowNotice: $("window-notice"),
  error: $("error"),
  progress: $("load-progress"),
  bar: $("load-bar"),
  loadText: $("load-text"),
  messages: $("messages"),
  emptyHint: $("empty-hint"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  newChat: $("new-chat"),
  composer: $("composer"),
  stats: $("stats"),
  system: $("system-prompt"),
  temperature: $("temperature"),
  topP: $("top-p"),
  topK: $("top-k"),
  maxTokens: $("max-tokens"),
  resetSettings: $("reset-settings"),
  storageUsage: $("storage-usage"),
  storageList: $("storage-list"),
  storageRefresh: $("storage-refresh"),
  update: $("update-notice"),
  updateButton: $("update-button"),
};

const params = new URLSearchParams(location.search);

// ---- settings ----------------------------------------------------------

const DEFAULTS = { system: "", temperature: 0.8, top_p: 0.9, top_k: 40, max_tokens: 256 };
const SETTINGS_KEY = "ember.settings";
let settings = { ...DEFAULTS };

function loadSettings() {
  try {
    settings = { ...DEFAULTS, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}") };
  } catch {
    settings = { ...DEFAULTS };
  }
  showSettings();
}

function showSettings() {
  ui.system.value = settings.system;
  ui.temperature.value = settings.temperature;
  ui.topP.value = settings.top_p;
  ui.topK.value = settings.top_k;
  ui.maxTokens.value = settings.max_tokens;
}

function num(input, fallback, min, max) {
  const v = Number(input.value);
  if (input.value === "" || !Number.isFinite(v)) return fallback;
  return Math.min(max, Math.max(min, v));
}

function readSettings() {
  settings = {
    system: ui.system.value,
    temperature: num(ui.temperature, DEFAULTS.temperature, 0, 2),
    top_p: num(ui.topP, DEFAULTS.top_p, 0, 1),
    top_k: Math.round(num(ui.topK, DEFAULTS.top_k, 0, 1000)),
    max_tokens: Math.round(num(ui.maxTokens, DEFAULTS.max_tokens, 1, 8192)),
  };
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // Private mode: settings last for this visit only.
  }
}

for (const el of [ui.system, ui.temperature, ui.topP, ui.topK, ui.maxTokens]) {
  el.addEventListener("change", readSettings);
}
ui.resetSettings.addEventListener("click", () => {
  settings = { ...DEFAULTS };
  showSettings();
  readSettings();
});

// ---- errors, notices, formatting -----------------------------------------

function showError(msg) {
  ui.error.textContent = msg;
  ui.error.hidden = !msg;
}

// formatBytes uses binary units, like the engine's error messages (wasm/shards.MB).
function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

function formatSeconds(s) {
  if (!Number.isFinite(s) || s <= 0) return "";
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// ---- model catalog and loading ---------------------------------------------

let catalog = []; // [{name, url, ...}]
let engine = null;
let current = null; // the catalog entry in use
let loadSeq = 0;

// models.json: an array, or {models: [...]}; an entry is a name or an object
// with name and optionally url/path, size/bytes, description.
function normalizeCatalog(data) {
  const list = Array.isArray(data) ? data : (data && (data.models || data.bundles)) || [];
  return list
    .map((e) => (typeof e === "string" ? { name: e } : e))
    .filter((e) => e && e.name)
    .map((e) => ({
      ...e,
      name: String(e.name),
      url: new URL(e.url || e.path || e.base_url || `models/${encodeURIComponent(e.name)}/`, new URL("models.json", location.href)).href,
    }));
}

async function loadCatalog() {
  let resp;
  try {
    resp = await fetch("models.json", { cache: "no-cache" });
  } catch {
    throw new Error("Could not read the model catalog (models.json): the server did not answer.");
  }
  if (!resp.ok) throw new Error(`Could not read the model catalog (models.json): HTTP ${resp.status}.`);
  let data;
  try {
    data = await resp.json();
  } catch {
    throw new Error("The model catalog (models.json) is not valid JSON.");
  }
  catalog = normalizeCatalog(data);
  ui.picker.replaceChildren();
  for (const e of catalog) {
    const opt = document.createElement("option");
    opt.value = e.name;
    const size = e.size ?? e.bytes ?? e.total_bytes;
    opt.textContent = size ? `${e.name} (${formatBytes(Number(size))})` : e.name;
    ui.picker.append(opt);
  }
  if (!catalog.length) throw new Error("The model catalog (models.json) lists no model.");
}

function setProgress(state, done, total, eta) {
  ui.progress.hidden = false;
  ui.progress.dataset.state = state;
  if (done !== undefined) {
    ui.progress.dataset.loaded = String(done);
    ui.progress.dataset.total = String(total);
    ui.bar.max = total > 0 ? total : 1;
    ui.bar.value = total > 0 ? Math.min(done, total) : 0;
  }
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  if (state === "loading") {
    const etaText = formatSeconds(eta);
    ui.loadText.textContent = total
      ? `Downloading ${current.name}: ${formatBytes(done)} of ${formatBytes(total)} · ${pct}%${etaText ? ` · about ${etaText} left` : ""}`
      : `Loading ${current.name}…`;
  } else if (state === "done") {
    ui.bar.value = ui.bar.max;
    ui.loadText.textContent = `${current.name} ready${total ? ` · ${formatBytes(total)}` : ""}`;
  } else if (state === "error") {
    ui.loadText.textContent = `${current.name} could not be loaded`;
  }
}

function showBackend(info) {
  ui.backend.dataset.backend = info ? info.backend : "";
  if (!info) {
    ui.backend.textContent = "no model";
    ui.backend.title = "";
  } else if (info.backend === "webgpu") {
    ui.backend.textContent = `WebGPU — ${info.adapter || "GPU"}`;
    ui.backend.title = "The model runs on the GPU through WebGPU.";
  } else {
    const reason = info.reason ? ` (${info.reason})` : "";
    ui.backend.textContent = `CPU — low-performance mode${reason}`;
    ui.backend.title = `WebGPU is not available, so the model runs on the CPU in WebAssembly${reason}.`;
  }
}

function setBusy(generating) {
  const ready = engine !== null;
  ui.send.disabled = !ready || generating;
  ui.stop.disabled = !generating;
  ui.picker.disabled = generating || catalog.length === 0;
  document.body.dataset.generating = generating ? "true" : "false";
}

// note: a message to show instead of clearing the error line.
async function loadModel(entry, note = "") {
  const seq = ++loadSeq;
  current = entry;
  showError(note);
  setBusy(false);
  if (engine) {
    const old = engine;
    engine = null;
    setBusy(false);
    await old.unload().catch(() => {});
  }
  ui.send.disabled = true;
  showBackend(null);
  ui.backend.textContent = "loading…";
  ui.synthetic.hidden = true;
  setProgress("loading", 0, 0, 0);
  document.body.dataset.model = "loading";
  const t0 = performance.now();
  let loaded;
  try {
    loaded = await Ember.create({
      model: entry.url,
      backend: params.get("backend") || "auto",
      debug: params.has("debug"),
      onProgress: (p) => {
        if (seq === loadSeq) setProgress("loading", p.loaded, p.total, p.etaSeconds);
      },
    });
  } catch (err) {
    if (seq !== loadSeq) return;
    setProgress("error");
    ui.backend.textContent = "no model";
    document.body.dataset.model = "error";
    showError(`Could not load “${entry.name}”: ${err.message}`);
    refreshStorage();
    return;
  }
  if (seq !== loadSeq) {
    loaded.unload().catch(() => {});
    return;
  }
  engine = loaded;
  const info = engine.info() || {};
  // A model read from IndexedDB may report no download progress at all.
  const size = Number(ui.progress.dataset.total || 0) || Number(entry.bytes || 0);
  setProgress("done", size, size);
  showBackend(info);
  ui.synthetic.hidden = !(info.synthetic || entry.source === "synthetic" || entry.synthetic);
  document.body.dataset.model = "ready";
  ui.stats.textContent = `Loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  setBusy(false);
  refreshStorage();
}

ui.picker.addEventListener("change", () => {
  const entry = catalog.find((e) => e.name === ui.picker.value);
  if (!entry || entry === current) return;
  const u = new URL(location.href);
  u.searchParams.set("model", entry.name);
  history.replaceState(null, "", u);
  newChat();
  loadModel(entry);
});

// ---- conversation ------------------------------------------------------------

// turns: [{user, assistant, els: [li, li]}]. The engine's sliding window
// drops the oldest turns when the conversation outgrows the context; the page
// then stops sending them and greys them out.
let turns = [];
let firstKept = 0; // turns before this index no longer fit the context window
let generating = false;
let stopped = false; // the user pressed Stop during this reply
let chatID = 0; // New chat increments it; a reply to an older chat is dropped

function addMessage(role, text) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  if (role === "assistant") li.dataset.testid = "assistant-message";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : current ? current.name : "Model";
  const body = document.createElement("span");
  body.className = "text";
  const node = document.createTextNode(text);
  body.append(node);
  li.append(who, body);
  ui.messages.append(li);
  ui.emptyHint.hidden = true;
  return { li, node };
}

// dropTurns marks the oldest turns still sent as dropped after the engine's
// sliding window removed `messages` of their messages (user and assistant).
function dropTurns(messages) {
  const n = Math.min(Math.ceil(messages / 2), turns.length - firstKept);
  for (const t of turns.slice(firstKept, firstKept + n)) {
    for (const el of t.els) el.classList.add("dropped");
  }
  firstKept += n;
  noteWindow(firstKept);
}

function noteWindow(n) {
  ui.windowNotice.textContent = `The conversation no longer fits the model's context window: the oldest ${n} ${
    n === 1 ? "exchange was" : "exchanges were"
  } dropped from what the model sees (greyed out above).`;
  ui.windowNotice.hidden = false;
}

function conversation(userText) {
  const msgs = [];
  if (settings.system.trim()) msgs.push({ role: "system", content: settings.system });
  for (const t of turns.slice(firstKept)) {
    msgs.push({ role: "user", content: t.user });
    msgs.push({ role: "assistant", content: t.assistant });
  }
  msgs.push({ role: "user", content: userText });
  return msgs;
}

// followReply keeps the growing reply in view, at most once a frame (a
// layout per token would slow a fast model down).
let scrollPending = false;
function followReply(li) {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    li.scrollIntoView({ block: "end" });
  });
}

async function send() {
  const text = ui.prompt.value;
  if (!text.trim() || !engine || generating) return;
  readSettings();
  showError("");
  ui.prompt.value = "";
  generating = true;
  setBusy(true);
  const messages = conversation(text);
  const userEl = addMessage("user", text);
  const reply = addMessage("assistant", "");
  reply.li.dataset.state = "streaming";
  const turn = { user: text, assistant: "", els: [userEl.li, reply.li] };
  const t0 = performance.now();
  let firstToken = 0;
  let pieces = 0;
  let finish = null;
  let usage = null;
  let extra = {};
  stopped = false;
  const chat = chatID;
  try {
    const stream = await engine.chat.completions.create({
      messages,
      stream: true,
      temperature: settings.temperature,
      top_p: settings.top_p,
      top_k: settings.top_k,
      max_tokens: settings.max_tokens,
    });
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      const piece = choice.delta.content;
      if (piece) {
        if (!firstToken) firstToken = performance.now();
        pieces++;
        reply.node.appendData(piece);
        reply.li.dataset.pieces = String(pieces);
        turn.assistant += piece;
        followReply(reply.li);
      }
      if (choice.finish_reason) {
        finish = choice.finish_reason;
        usage = chunk.usage || null;
        extra = chunk;
      }
    }
    reply.li.dataset.state = stopped ? "stopped" : "done";
  } catch (err) {
    reply.li.dataset.state = "error";
    showError(err.message);
  } finally {
    generating = false;
    setBusy(false);
  }
  if (chat !== chatID) return; // New chat was pressed meanwhile
  reply.li.dataset.finish = finish || "";
  if (usage) {
    reply.li.dataset.completionTokens = String(usage.completion_tokens);
    reply.li.dataset.promptTokens = String(usage.prompt_tokens);
  }
  const ember = extra.ember || {};
  if (ember.truncated) dropTurns(ember.dropped_messages || 2);
  turns.push(turn);
  showStats(usage, extra.timings, t0, firstToken, pieces, finish);
  ui.prompt.focus();
}

function showStats(usage, timings, t0, firstToken, pieces, finish) {
  const parts = [];
  const n = usage ? usage.completion_tokens : pieces;
  parts.push(`${n} tokens`);
  if (timings && timings.decode_tok_s) parts.push(`${timings.decode_tok_s.toFixed(1)} tok/s`);
  else if (firstToken) {
    const s = (performance.now() - firstToken) / 1000;
    if (s > 0 && pieces > 1) parts.push(`${((pieces - 1) / s).toFixed(1)} tok/s`);
  }
  if (timings && timings.ttft_ms) parts.push(`first token ${Math.round(timings.ttft_ms)} ms`);
  else if (firstToken) parts.push(`first token ${Math.round(firstToken - t0)} ms`);
  if (finish === "length") parts.push("stopped at the max tokens setting");
  if (finish === "abort" || stopped) parts.push("stopped");
  ui.stats.textContent = parts.join(" · ");
}

function stop() {
  if (engine && generating) {
    stopped = true;
    engine.abort();
  }
}

function newChat() {
  stop();
  chatID++;
  turns = [];
  firstKept = 0;
  ui.messages.replaceChildren();
  ui.emptyHint.hidden = false;
  ui.windowNotice.hidden = true;
  ui.stats.textContent = "";
  showError("");
  ui.prompt.focus();
}

ui.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  send();
});
ui.prompt.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    send();
  }
});
ui.stop.addEventListener("click", stop);
ui.newChat.addEventListener("click", newChat);

// ---- storage panel -------------------------------------------------------------

let storageSeq = 0;

async function refreshStorage() {
  const seq = ++storageSeq;
  let models = [];
  let listError = "";
  try {
    models = await store.listModels();
  } catch (err) {
    listError = err.message;
  }
  let estimate = null;
  try {
    if (navigator.storage && navigator.storage.estimate) estimate = await navigator.storage.estimate();
  } catch {
    // Not available: say nothing about quota.
  }
  if (seq !== storageSeq) return;
  ui.storageUsage.textContent = estimate
    ? `This site uses ${formatBytes(estimate.usage)} of ${formatBytes(estimate.quota)} available to it.`
    : "The browser does not report storage use.";
  ui.storageList.replaceChildren();
  if (listError) {
    const li = document.createElement("li");
    li.textContent = `Cached models cannot be listed: ${listError}`;
    ui.storageList.append(li);
    return;
  }
  if (!models.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = "No model is stored in this browser.";
    ui.storageList.append(li);
  }
  for (const m of models) {
    const li = document.createElement("li");
    li.dataset.model = m.name;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = m.name;
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = m.complete
      ? formatBytes(m.bytes)
      : `${formatBytes(m.storedBytes)} of ${formatBytes(m.bytes)} (incomplete)`;
    li.dataset.url = m.url;
    const del = document.createElement("button");
    del.type = "button";
    del.className = "small delete";
    del.textContent = "Delete";
    del.setAttribute("aria-label", `Delete ${m.name} from this browser`);
    del.addEventListener("click", async () => {
      del.disabled = true;
      try {
        await store.deleteModel(m);
      } catch (err) {
        showError(`Could not delete “${m.name}”: ${err.message}`);
      }
      refreshStorage();
    });
    li.append(name, size, del);
    ui.storageList.append(li);
  }
}

ui.storageRefresh.addEventListener("click", refreshStorage);

// ---- start -----------------------------------------------------------------------

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || params.has("nosw")) return;
  let reg;
  try {
    reg = await navigator.serviceWorker.register("sw.js");
  } catch (err) {
    // The page works without it (the engine fetches and verifies shards itself);
    // only offline use is lost.
    console.warn("service worker not registered:", err);
    return;
  }
  // A new version of the app waits until the person chooses to switch, so one
  // page never mixes two versions of the shell.
  const offer = () => {
    if (reg.waiting && navigator.serviceWorker.controller) ui.update.hidden = false;
  };
  offer();
  reg.addEventListener("updatefound", () => {
    const sw = reg.installing;
    if (sw) sw.addEventListener("statechange", offer);
  });
  ui.updateButton.addEventListener("click", () => {
    if (!reg.waiting) return;
    navigator.serviceWorker.addEventListener("controllerchange", () => location.reload(), { once: true });
    reg.waiting.postMessage({ type: "skip-waiting" });
  });
}

async function main() {
  loadSettings();
  setBusy(false);
  registerServiceWorker();
  refreshStorage();
  try {
    await loadCatalog();
  } catch (err) {
    showError(err.message);
    ui.picker.disabled = true;
    ui.backend.textContent = "no model";
    return;
  }
  const wanted = params.get("model");
  let entry = catalog[0];
  let note = "";
  if (wanted) {
    entry = catalog.find((e) => e.name === wanted);
    if (!entry) {
      note = `There is no model named “${wanted}” on this site; loading “${catalog[0].name}” instead.`;
      entry = catalog[0];
    }
  }
  ui.picker.value = entry.name;
  setBusy(false);
  await loadModel(entry, note);
}

main();
