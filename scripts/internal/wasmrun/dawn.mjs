// wasmrun Dawn shim: navigator.gpu is Dawn (Chrome's WebGPU), loaded from the
// npm package webgpu's Node-API addon, in place of Deno's wgpu.
// EMBER_DAWN_NODE: the addon; EMBER_DAWN_FLAGS: Dawn flags, space-separated.
import { createRequire } from "node:module";
const { create, globals } = createRequire(import.meta.url)(Deno.env.get("EMBER_DAWN_NODE"));
for (const [k, v] of Object.entries(globals)) { try { globalThis[k] = v; } catch { /* Deno's own, read-only */ } }
const gpu = create((Deno.env.get("EMBER_DAWN_FLAGS") ?? "").split(" ").filter(Boolean));
Object.defineProperty(Navigator.prototype, "gpu", { get: () => gpu, configurable: true });
