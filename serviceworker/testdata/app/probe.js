// Test page of the delivery end-to-end tests (serviceworker/e2e_test.go):
// registers the service worker when the URL has ?sw=1, then starts the probe
// wasm (serviceworker/internal/probe), which sets globalThis.emberProbe.
'use strict';
window.probeState = 'starting';
window.idbDump = () => new Promise((resolve, reject) => {
  const r = indexedDB.open('ember');
  r.onerror = () => reject(r.error);
  r.onupgradeneeded = () => { r.transaction.abort(); };
  r.onsuccess = () => {
    const db = r.result, out = { manifests: [], shards: [] };
    if (!db.objectStoreNames.contains('shards')) { db.close(); resolve(JSON.stringify(out)); return; }
    const tx = db.transaction(['manifests', 'shards']);
    tx.objectStore('manifests').getAll().onsuccess = (e) => {
      out.manifests = e.target.result.map((m) => ({ url: m.url, version: m.version, complete: m.complete, signed: !!m.sig, shards: m.shards }));
    };
    tx.objectStore('shards').getAll().onsuccess = (e) => {
      out.shards = e.target.result.map((s) => ({ sha256: s.sha256, bytes: s.bytes, stored: s.data.byteLength }));
    };
    tx.oncomplete = () => { db.close(); resolve(JSON.stringify(out)); };
    tx.onerror = () => reject(tx.error);
  };
});
(async () => {
  try {
    if (new URLSearchParams(location.search).get('sw') === '1') {
      await navigator.serviceWorker.register('sw.js', { scope: './' });
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
      }
    }
    const ready = new Promise((r) => addEventListener('ember-probe-ready', r, { once: true }));
    const go = new Go();
    const { instance } = await WebAssembly.instantiateStreaming(fetch('probe.wasm'), go.importObject);
    go.run(instance);
    await ready;
    window.probeState = 'ready';
  } catch (err) {
    window.probeState = 'error: ' + (err && err.stack || err);
  }
})();
