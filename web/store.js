// The shard store as the page sees it: which models this browser holds, their
// size, and deleting one. It reads the IndexedDB database that the engine
// (wasm/shards) and the service worker write; docs/FORMAT.md, "Shard store",
// is the schema: database "ember" version 1, object store "manifests" (key
// [url, version]; url, version, name, shards: [sha256], sizes, bytes,
// complete, time) and object store "shards" (key sha256).

const DB_NAME = "ember";
const DB_VERSION = 1;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("the storage transaction was aborted"));
  });
}

// open returns the database, or null when this browser has none yet (opening
// would create an empty one).
async function open() {
  if (!globalThis.indexedDB) throw new Error("this browser has no IndexedDB");
  if (indexedDB.databases) {
    const dbs = await indexedDB.databases();
    if (!dbs.some((d) => d.name === DB_NAME)) return null;
  }
  const req = indexedDB.open(DB_NAME, DB_VERSION);
  // Same schema as wasm/shards OpenStore, in case the page is first.
  req.onupgradeneeded = () => {
    const db = req.result;
    if (!db.objectStoreNames.contains("manifests")) db.createObjectStore("manifests", { keyPath: ["url", "version"] });
    if (!db.objectStoreNames.contains("shards")) db.createObjectStore("shards", { keyPath: "sha256" });
  };
  const db = await request(req);
  // Let an engine that needs a newer schema upgrade the database.
  db.onversionchange = () => db.close();
  return db;
}

function modelName(rec) {
  if (rec.name) return rec.name;
  const parts = String(rec.url).split("/").filter(Boolean);
  return parts.length ? decodeURIComponent(parts[parts.length - 1]) : String(rec.url);
}

/**
 * Lists cached models, newest first:
 * [{name, url, version, bytes, storedBytes, complete, time}].
 */
export async function listModels() {
  const db = await open();
  if (!db) return [];
  try {
    const tx = db.transaction(["manifests", "shards"], "readonly");
    const [recs, keys] = await Promise.all([
      request(tx.objectStore("manifests").getAll()),
      request(tx.objectStore("shards").getAllKeys()),
    ]);
    const have = new Set(keys.map(String));
    return recs
      .map((r) => {
        let stored = 0;
        (r.shards || []).forEach((sha, i) => {
          if (have.has(sha)) stored += Number((r.sizes || [])[i] || 0);
        });
        return {
          name: modelName(r),
          url: r.url,
          version: r.version,
          bytes: Number(r.bytes || 0),
          storedBytes: stored,
          complete: !!r.complete,
          time: Number(r.time || 0),
        };
      })
      .sort((a, b) => b.time - a.time);
  } finally {
    db.close();
  }
}

/** Deletes every version of a cached model (an entry of listModels) and the shards no other model uses. */
export async function deleteModel(model) {
  const db = await open();
  if (!db) return;
  try {
    const tx = db.transaction(["manifests", "shards"], "readwrite");
    const finished = done(tx);
    const ms = tx.objectStore("manifests");
    const ss = tx.objectStore("shards");
    const [recs, keys] = await Promise.all([request(ms.getAll()), request(ss.getAllKeys())]);
    const keep = new Set();
    for (const r of recs) {
      if (r.url === model.url) ms.delete([r.url, r.version]);
      else for (const sha of r.shards || []) keep.add(sha);
    }
    for (const k of keys) if (!keep.has(k)) ss.delete(k);
    await finished;
  } finally {
    db.close();
  }
}
