//go:build js && wasm

package jsbridge

import (
	"fmt"
	"syscall/js"
)

// FuncOnce returns a js.Func that releases itself after its first call. Use
// it for one-shot callbacks (a promise's then, an event listener with
// {once: true}); JS must not call it again (Go reports "call to released
// function").
func FuncOnce(fn func(this js.Value, args []js.Value) any) js.Func {
	var f js.Func
	f = js.FuncOf(func(this js.Value, args []js.Value) any {
		f.Release()
		return fn(this, args)
	})
	return f
}

// Funcs collects js.Funcs that live as long as some owner (a device, a
// loaded model) and releases them together.
type Funcs struct {
	list []js.Func
}

// Add wraps fn with js.FuncOf and keeps it for Release.
func (fs *Funcs) Add(fn func(this js.Value, args []js.Value) any) js.Func {
	f := js.FuncOf(fn)
	fs.list = append(fs.list, f)
	return f
}

// Release releases every collected func. Calling them afterwards from JS
// throws.
func (fs *Funcs) Release() {
	for _, f := range fs.list {
		f.Release()
	}
	fs.list = nil
}

// Len is the number of funcs held.
func (fs *Funcs) Len() int { return len(fs.list) }

// Promise starts fn in a new goroutine and returns a JS Promise settled by
// its result: resolved with the value (converted by js.ValueOf) or rejected
// with a JS Error carrying the error's message. A panic in fn rejects too.
// This is the shape of every exported JS entry point: JS code must never
// block on Go.
func Promise(fn func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(js.Global().Get("Error").New(fmt.Sprint("internal error: ", r)))
				}
			}()
			v, err := fn()
			if err != nil {
				reject.Invoke(ToJSError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	// The executor runs synchronously inside the constructor.
	p := js.Global().Get("Promise").New(executor)
	executor.Release()
	return p
}
