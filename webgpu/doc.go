//go:build js && wasm

// Package webgpu is a typed Go wrapper of the WebGPU API
// (https://www.w3.org/TR/webgpu/) for compute work, over syscall/js. It holds
// what an LLM engine needs and nothing about models: GPU/Adapter (features,
// limits, info, WGSL language features), Device (requestDevice with raised
// limits, error scopes, loss), Buffer, ShaderModule (compilation messages as
// errors), explicit BindGroupLayout/PipelineLayout, ComputePipeline (async,
// override constants), BindGroup, CommandEncoder, ComputePass and Queue.
//
// Errors are typed: ErrNoWebGPU (no navigator.gpu or no adapter),
// ErrDeviceLost (wrapped with the loss reason), *GPUError for validation /
// out-of-memory / internal errors (errors.Is with ErrValidation,
// ErrOutOfMemory, ErrInternal), *CompilationError for WGSL with
// label:line:col messages. JS exceptions never escape as panics; promise
// rejections come back through jsbridge.Await.
//
// # API for the engine
//
// Setup (once, at load):
//
//	gpu, err := webgpu.Get()                                  // ErrNoWebGPU when absent
//	ad, err := gpu.RequestAdapter(ctx, webgpu.AdapterOptions{PowerPreference: "high-performance"})
//	dev, err := ad.RequestDevice(ctx, nil)                    // nil: DefaultDeviceDescriptor: every
//	    // buffer/workgroup/binding limit raised to the adapter's, features shader-f16, subgroups,
//	    // timestamp-query when present. dev.Limits holds what was granted
//	    // (MaxStorageBufferBindingSize, MaxBufferSize, ...), dev.Features the enabled features.
//	variant := shaders.ChooseInt8Dot(gpu.HasWGSLLanguageFeature(webgpu.LangPacked4x8IntegerDotProduct))
//	k := shaders.Get(shaders.MatvecQ8)                       // rpw, wg := shaders.MatvecConfig(rows, cols)
//	mod, err := dev.CreateShaderModule(ctx, k.Name, k.Source(variant)) // *CompilationError on bad WGSL
//	types := []webgpu.BufferBindingType{}                     // from k.Bindings[i].Type (same strings)
//	bgl, err := dev.StorageLayout(k.Name, types...)           // or CreateBindGroupLayout for full control
//	pl, err := dev.CreatePipelineLayout(k.Name, bgl)
//	pipe, err := dev.CreateComputePipelineAsync(ctx, webgpu.ComputePipelineDescriptor{
//	    Label: "wq", Layout: pl, Module: mod, EntryPoint: k.Name,
//	    Constants: map[string]float64{"COLS": 4096, "ROWS": 12288, "BLOCK32": 0}})
//	buf, err := dev.CreateBuffer(webgpu.BufferDescriptor{Label: "wq", Size: n,
//	    Usage: webgpu.BufferStorage | webgpu.BufferCopyDst})
//	err = dev.Queue.WriteBuffer(buf, off, shardUint8Array)    // JS bytes, never copied into Go
//	err = dev.Queue.WriteBufferRange(buf, off, shard, dataOff, size) // byte range of a shard
//	err = buf.WriteFloat32s(0, norms)                         // Go slices: one bulk copy via a reused staging array
//	bg, err := dev.BindBuffers("layer0.wq", bgl, w, s, xq, xs, y)    // bindings 0..n-1, whole buffers
//	bg, err := dev.CreateBindGroup(label, bgl, []webgpu.BindGroupEntry{{Binding: 0, Buffer: b, Offset: o, Size: n}})
//
// Wrap load in dev.Scoped(ctx, "load", func() error {...}): validation and
// out-of-memory errors are asynchronous in WebGPU and only error scopes (or
// dev.TakeUncapturedErrors) reveal them; an OOM comes back as
// errors.Is(err, webgpu.ErrOutOfMemory).
//
// Per step (no allocation beyond the JS wrapper objects of the calls):
//
//	dev.Queue.WriteBytes(stepBuf, 0, shaders.Step{Pos: p, NTokens: 1, ...}.Bytes())
//	enc := dev.CreateCommandEncoder("decode")
//	pass := enc.BeginComputePass("")
//	pass.SetPipeline(pipe); pass.SetBindGroup(0, bg); pass.DispatchWorkgroups(x, y, z) // ... every kernel
//	pass.End()
//	enc.CopyBufferToBuffer(out, 0, readback, 0, 4)           // or dev.ReadUint32s after submit
//	dev.Queue.Submit(enc.Finish())
//	err = readback.MapAsync(ctx, webgpu.MapRead, 0, 4); r, _ := readback.GetMappedRange(0, 4)
//	jsbridge.CopyToGo(dst, r); readback.Unmap()
//	// convenience: dev.ReadBuffer / ReadFloat32s / ReadUint32s(ctx, src, offset, dst) do
//	// copy + submit + map + copy through one reused MAP_READ buffer.
//	err = dev.Queue.OnSubmittedWorkDone(ctx)                 // wait without reading
//
// Device loss: <-dev.Lost() closes and dev.Err() wraps ErrDeviceLost; every
// later call that awaits returns it. dev.Destroy() releases the device and the
// wrapper's js.Funcs. Each wrapper type exposes JS() for anything not wrapped.
//
// Latency (docs/PERFORMANCE.md): under Deno an onSubmittedWorkDone or
// mapAsync resolves 11–12 ms after the work is done (wgpu is polled), in
// Chromium about 1 ms. Do not wait per token: keep several decode steps in
// flight (the sampled id can stay on the GPU — point sample/argmax's out at
// the token buffer the next step's embed reads — and read ids back through a
// ring of MAP_READ buffers). Encoding costs ~4 µs per dispatch.
//
// Kernel bindings, shapes, override constants and dispatch sizes are in the
// header comment of each shaders/<name>.wgsl; the shaders package parses the
// bindings into Kernel.Bindings.
package webgpu
