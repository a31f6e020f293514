//go:build js && wasm

// Package engine is the Llama forward pass on WebGPU: it implements
// llama.Engine and llama.DeviceSampler with every weight, the KV cache and
// all activations in GPU buffers.
//
// Load streams the bundle's shards (JS Uint8Arrays from a shard source)
// straight into GPU buffers with queue.writeBuffer: weight bytes never enter
// Go memory. Tensors are placed by the manifest's offsets; q/k/v and the
// gate/up projections are stacked into one matrix each (one dispatch), and a
// matrix larger than maxStorageBufferBindingSize is split along rows into
// several buffers (chunks), one dispatch each. Every matrix can be split: the
// gate/up matrix is laid out chunk by chunk (gate rows then up rows of the
// same hidden units) so that each chunk computes its own SwiGLU outputs, and
// the embedding gather runs once per chunk of the table, each dispatch
// writing the tokens in its rows (the ids are on the GPU). Only a single row
// larger than the limit is refused. Pipelines and bind groups are built once
// at load.
//
// A forward pass is a fixed list of dispatches (the kernels of package
// shaders) encoded by a small JavaScript function in one call from Go, so a
// decode step costs one Go→JS call and one command buffer; the token id chosen
// on the GPU feeds the next step's embedding on the GPU, so greedy decoding
// runs up to Lookahead steps ahead and reads their ids back in batches
// (readback.go); the logits are read back only by Eval. Prefill runs the
// tiled int8 matmul over up to MaxBatch prompt tokens per command buffer.
//
// The per-layer sequence mirrors the CPU engine (llama/forward.go):
// rmsnorm (+ int8 quantization) → qkv → rope + KV store + attention partials
// (one dispatch in decode; prefill stores the keys first, kv_store) →
// combine (+ int8 quantization) → wo (+ residual) → rmsnorm → w1/w3 with
// silu·mul → quantization → w2 (+ residual): 8 dispatches per layer in
// decode for int8 models. Int8 matrices multiply activations quantized in
// groups of 32 exactly as the CPU's runq path does.
package engine
