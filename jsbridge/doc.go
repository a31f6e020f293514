//go:build js && wasm

// Package jsbridge is the one place where Go meets JavaScript promises,
// exceptions, typed arrays and callbacks in the js/wasm build:
//
//   - Await(ctx, promise) waits for a Promise the way net/http's
//     roundtrip_js.go does (buffered channels, then/catch js.Funcs that
//     release themselves, a select that honours ctx.Done()). Never call it
//     inside a js.FuncOf callback: that blocks the event loop and deadlocks.
//   - JS exceptions and rejections become *Error{Name, Message} (errors.Is
//     matches by Name, errors.As reaches the js.Error); Call, New and Try
//     recover a thrown exception into an error at the API edge.
//   - Bytes cross in bulk: Go []byte/[]float32/[]uint32 go to JS with one
//     js.CopyBytesToJS into a reused staging Uint8Array (Staging), and come back
//     with one js.CopyBytesToGo (CopyToGo, Float32sFromJS, Uint32sFromJS).
//   - js.Func lifecycle: FuncOnce releases itself after its first call, Funcs
//     releases a set at once, and Promise turns a Go func into a JS Promise
//     (the shape of every exported JS entry point: start a goroutine, return a
//     Promise).
//
// It must not know about WebGPU or the model; it only moves values across.
package jsbridge
