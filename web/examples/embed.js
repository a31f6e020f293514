// A minimal host page for Ember (docs/EMBEDDING.md): load a model, stream an
// answer with chat.completions.create, cancel it with an AbortSignal.
import { Ember } from "../ember.js";

const $ = (id) => document.getElementById(id);
const model = new URLSearchParams(location.search).get("model") || "../models/stories260K/";

let engine;
try {
  engine = await Ember.create({
    model,
    onProgress: (p) => ($("status").textContent = `Downloading: ${Math.floor(100 * p.fraction)}%`),
  });
} catch (err) {
  $("status").textContent = `Could not load the model: ${err.message}`;
  throw err;
}
const info = engine.info();
$("status").textContent = `Ready (${info.backend === "webgpu" ? info.adapter : "CPU"})`;
$("ask").disabled = false;

let controller = null;

$("ask").onclick = async () => {
  controller = new AbortController();
  $("ask").disabled = true;
  $("cancel").disabled = false;
  $("answer").textContent = "";
  $("status").textContent = "Answering…";
  try {
    const stream = await engine.chat.completions.create({
      messages: [{ role: "user", content: $("question").value }],
      stream: true,
      max_tokens: 120,
      temperature: 0.7,
      signal: controller.signal,
    });
    for await (const chunk of stream) {
      $("answer").textContent += chunk.choices[0].delta.content ?? "";
      if (chunk.usage) $("status").textContent = `Done: ${chunk.usage.completion_tokens} tokens`;
    }
  } catch (err) {
    $("status").textContent = err.name === "AbortError" ? "Cancelled" : `Error: ${err.message}`;
  } finally {
    $("ask").disabled = false;
    $("cancel").disabled = true;
  }
};

$("cancel").onclick = () => controller?.abort();

// For the test suite and the console.
globalThis.engine = engine;
