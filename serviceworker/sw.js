// Ember service worker: a versioned precache of the app shell, and model
// shards answered from an IndexedDB store that only ever holds bytes whose
// SHA-256 matches the manifest. Schema: docs/FORMAT.md, "Shard store".
// scripts/serve fills in the version and the shell list.
'use strict';

let VERSION = '__EMBER_APP_VERSION__';
let SHELL = ["__EMBER_SHELL__"];
if (VERSION.startsWith('__')) VERSION = 'dev'; // served as a plain file
if (SHELL[0] === '__EMBER_SHELL__') {
  SHELL = ['./', 'index.html', 'app.js', 'store.js', 'worker.js', 'ember.js', 'style.css', 'wasm_exec.js', 'ember.wasm'];
}
const SHELL_PREFIX = 'ember-shell-';
const SHELL_CACHE = SHELL_PREFIX + VERSION;
const DATA_CACHE = 'ember-data'; // models.json, network first
const DB_NAME = 'ember', DB_VERSION = 1;
const MANIFEST = 'manifest.json', SIG = 'manifest.json.sig';
const RETRIES = 4;
const progress = new BroadcastChannel('ember-shards');

// ---- lifecycle ----

self.addEventListener('install', (e) => {
  e.waitUntil((async () => {
    // cache.addAll stores all or nothing; a failed install leaves the old
    // version in charge and its cache untouched.
    const cache = await caches.open(SHELL_CACHE);
    try {
      await cache.addAll(SHELL.map((u) => new Request(new URL(u, self.registration.scope), { cache: 'reload' })));
    } catch (err) {
      await caches.delete(SHELL_CACHE);
      throw err;
    }
    // The first page load ran before this worker controlled it: keep a copy
    // of the catalog for offline visits (best effort, not part of the shell).
    try {
      const req = new Request(new URL('models.json', self.registration.scope), { cache: 'no-cache' });
      const resp = await fetch(req);
      if (resp.ok) await (await caches.open(DATA_CACHE)).put(req, resp);
    } catch (err) { /* offline or no catalog */ }
  })());
});

self.addEventListener('activate', (e) => {
  e.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(SHELL_PREFIX) && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// A new version waits until the page asks for it (so one page load never mixes
// two versions of the shell): registration.waiting.postMessage({type: 'skip-waiting'}).
self.addEventListener('message', (e) => {
  if (e.data && e.data.type === 'skip-waiting') self.skipWaiting();
  if (e.data && e.data.type === 'version' && e.ports[0]) e.ports[0].postMessage({ version: VERSION });
});

// ---- requests ----

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  e.respondWith(route(req, url));
});

async function route(req, url) {
  const scope = new URL(self.registration.scope);
  const rel = url.pathname.startsWith(scope.pathname) ? url.pathname.slice(scope.pathname.length) : null;
  if (rel === 'models.json') return networkFirst(req);
  if (rel !== null && rel.startsWith('models/')) {
    const slash = url.pathname.lastIndexOf('/');
    const dir = url.origin + url.pathname.slice(0, slash + 1), file = url.pathname.slice(slash + 1);
    if (file === MANIFEST) return manifestRequest(req, dir);
    if (file === SIG) return sigRequest(req, dir);
    if (file !== '') return shardRequest(req, dir, file);
    return fetch(req);
  }
  const cache = await caches.open(SHELL_CACHE);
  const hit = await cache.match(req, { ignoreSearch: req.mode === 'navigate' });
  return hit || fetch(req);
}

async function networkFirst(req) {
  const cache = await caches.open(DATA_CACHE);
  try {
    const resp = await fetch(req, { cache: 'no-cache' });
    if (resp.ok) await cache.put(req, resp.clone());
    return resp;
  } catch (err) {
    return (await cache.match(req)) || errorResponse(503, `ember: offline and ${req.url} was never cached`, 'offline');
  }
}

async function manifestRequest(req, dir) {
  let resp;
  try {
    resp = await fetch(req, { cache: 'no-cache' });
  } catch (err) {
    const rec = await newestComplete(dir);
    if (!rec) return errorResponse(503, `ember: offline, and no complete copy of ${dir} is stored`, 'offline');
    return new Response(rec.text, { headers: { 'Content-Type': 'application/json', 'X-Ember-From': 'indexeddb' } });
  }
  if (resp.ok) {
    try {
      await recordManifest(dir, await resp.clone().arrayBuffer(), undefined);
    } catch (err) {
      console.warn('ember sw: cannot record manifest', dir, err);
    }
  }
  return resp;
}

async function sigRequest(req, dir) {
  try {
    return await fetch(req, { cache: 'no-cache' });
  } catch (err) {
    const rec = await newestComplete(dir);
    if (!rec || !rec.sig) return errorResponse(404, `ember: offline, and no signature of ${dir} is stored`, 'offline');
    return new Response(rec.sig, { headers: { 'Content-Type': 'application/octet-stream', 'X-Ember-From': 'indexeddb' } });
  }
}

async function shardRequest(req, dir, file) {
  let rec = await recordWithFile(dir, file);
  if (!rec) {
    // The page fetched the manifest before this worker controlled it.
    try {
      const resp = await fetch(dir + MANIFEST, { cache: 'no-cache' });
      if (resp.ok) rec = await recordManifest(dir, await resp.arrayBuffer(), undefined);
    } catch (err) { /* offline: fall through */ }
    if (!rec || !rec.files.includes(file)) return fetch(req); // not a shard of a known bundle
  }
  const i = rec.files.indexOf(file), sha = rec.shards[i], size = rec.sizes[i];
  const db = await openDB();
  const stored = await reqP(db.transaction('shards').objectStore('shards').get(sha));
  if (stored) return bytesResponse(req, new Uint8Array(stored.data), sha, '1');
  // A partial request cannot be verified here: the caller verifies the whole shard.
  if (req.headers.has('range')) return fetch(req);
  let buf;
  try {
    buf = await download(dir + file, size);
  } catch (err) {
    return errorResponse(err.status === 404 ? 404 : 502, `ember: shard ${file} of ${dir}: download failed: ${err.message}`, 'network');
  }
  const got = await sha256Hex(buf);
  if (got !== sha) {
    return errorResponse(502, `ember: shard ${file} of ${dir}: SHA-256 mismatch (got ${got}, manifest says ${sha}); nothing was stored`, 'checksum');
  }
  let storedFlag = '1';
  try {
    await putShard(db, sha, buf);
    await finalize(db, dir, rec.version);
  } catch (err) {
    // The bytes are verified: answer anyway, and let the page report the full store.
    storedFlag = '0';
    console.warn('ember sw: cannot store', file, err);
    return bytesResponse(req, buf, sha, storedFlag, `${err.name || 'Error'}: ${err.message}`);
  }
  return bytesResponse(req, buf, sha, storedFlag);
}

// download fetches url, resuming with HTTP Range from the bytes received when
// the connection drops.
async function download(url, size) {
  const buf = new Uint8Array(size);
  let got = 0, lastErr = null, lastPost = 0;
  for (let attempt = 0; attempt <= RETRIES && (got < size || attempt === 0); attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 200 * attempt));
    try {
      const resp = await fetch(url, { cache: 'no-store', headers: got > 0 ? { Range: `bytes=${got}-` } : {} });
      if (got > 0 && resp.status === 200) got = 0; // the server ignored the range
      else if (!resp.ok) {
        const err = new Error(`HTTP ${resp.status}`);
        err.status = resp.status;
        if (resp.status < 500) throw Object.assign(err, { fatal: true });
        throw err;
      }
      const reader = resp.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (got + value.length > size) throw Object.assign(new Error(`longer than the manifest's ${size} bytes`), { fatal: true });
        buf.set(value, got);
        got += value.length;
        if (got - lastPost >= 1 << 20 || got === size) {
          lastPost = got;
          progress.postMessage({ url, done: got, total: size });
        }
      }
      if (got === size) return buf;
      lastErr = new Error(`connection closed after ${got} of ${size} bytes`);
    } catch (err) {
      if (err.fatal) throw err;
      lastErr = err;
    }
  }
  throw lastErr || new Error('no data');
}

function bytesResponse(req, bytes, sha, stored, storeError) {
  const headers = { 'Content-Type': 'application/octet-stream', 'X-Ember-Verified': sha, 'X-Ember-Stored': stored, 'Accept-Ranges': 'bytes' };
  if (storeError) headers['X-Ember-Store-Error'] = storeError;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get('range') || '');
  if (m) {
    const start = +m[1], end = m[2] === '' ? bytes.length - 1 : Math.min(+m[2], bytes.length - 1);
    if (start >= bytes.length || end < start) return new Response('', { status: 416, headers: { 'Content-Range': `bytes */${bytes.length}` } });
    headers['Content-Range'] = `bytes ${start}-${end}/${bytes.length}`;
    return new Response(bytes.subarray(start, end + 1), { status: 206, headers });
  }
  return new Response(bytes, { status: 200, headers });
}

function errorResponse(status, message, kind) {
  return new Response(message, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Ember-Error': kind } });
}

async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- the shard store (same schema as wasm/shards/store.go) ----

let dbPromise = null;
function openDB() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('manifests')) db.createObjectStore('manifests', { keyPath: ['url', 'version'] });
        if (!db.objectStoreNames.contains('shards')) db.createObjectStore('shards', { keyPath: 'sha256' });
      };
      r.onsuccess = () => {
        r.result.onversionchange = () => { r.result.close(); dbPromise = null; };
        resolve(r.result);
      };
      r.onerror = () => { dbPromise = null; reject(r.error); };
      r.onblocked = () => { dbPromise = null; reject(new Error('IndexedDB open blocked')); };
    });
  }
  return dbPromise;
}

function reqP(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

function txDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new DOMException('transaction aborted', 'AbortError'));
  });
}

function urlRange(url) {
  return IDBKeyRange.bound([url, ''], [url, '\uffff']);
}

async function records(url) {
  const db = await openDB();
  return reqP(db.transaction('manifests').objectStore('manifests').getAll(urlRange(url)));
}

async function newestComplete(url) {
  try {
    const recs = (await records(url)).filter((r) => r.complete);
    recs.sort((a, b) => b.time - a.time);
    return recs[0] || null;
  } catch (err) {
    return null;
  }
}

async function recordWithFile(url, file) {
  const recs = (await records(url)).filter((r) => r.files.includes(file));
  recs.sort((a, b) => b.time - a.time);
  return recs[0] || null;
}

// recordManifest stores (or refreshes) the record of one manifest version
// (raw: the bytes of manifest.json); sig undefined keeps a signature the
// loader stored.
async function recordManifest(url, raw, sig) {
  const text = new TextDecoder().decode(raw);
  const m = JSON.parse(text);
  if (!m || !Array.isArray(m.shards)) throw new Error('not a bundle manifest');
  const version = await sha256Hex(raw);
  const db = await openDB();
  const tx = db.transaction('manifests', 'readwrite');
  const store = tx.objectStore('manifests');
  const old = await reqP(store.get([url, version]));
  const rec = old || {
    url, version, name: m.name || '', text, sig: null,
    files: m.shards.map((s) => s.file), shards: m.shards.map((s) => s.sha256), sizes: m.shards.map((s) => s.bytes),
    bytes: m.shards.reduce((n, s) => n + s.bytes, 0), complete: false,
  };
  if (sig !== undefined) rec.sig = sig;
  rec.time = Date.now();
  store.put(rec);
  await txDone(tx);
  return rec;
}

async function putShard(db, sha, bytes) {
  const tx = db.transaction('shards', 'readwrite');
  const data = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  tx.objectStore('shards').put({ sha256: sha, bytes: bytes.byteLength, data, time: Date.now() });
  await txDone(tx);
}

// finalize marks url@version complete once every shard is stored, then drops
// the model's other versions and every shard no remaining manifest uses.
async function finalize(db, url, version) {
  const tx = db.transaction(['manifests', 'shards'], 'readwrite');
  const ms = tx.objectStore('manifests'), ss = tx.objectStore('shards');
  const rec = await reqP(ms.get([url, version]));
  if (!rec) return txDone(tx);
  const have = new Set(await reqP(ss.getAllKeys()));
  if (!rec.shards.every((s) => have.has(s))) return txDone(tx);
  rec.complete = true;
  ms.put(rec);
  for (const other of await reqP(ms.getAllKeys(urlRange(url)))) {
    if (other[1] !== version) ms.delete(other);
  }
  const keep = new Set();
  for (const r of await reqP(ms.getAll())) {
    if (r.url === url && r.version !== version) continue;
    r.shards.forEach((s) => keep.add(s));
  }
  for (const s of have) if (!keep.has(s)) ss.delete(s);
  return txDone(tx);
}
