//go:build js && wasm

package jsbridge

import (
	"context"
	"syscall/js"
)

// IsThenable reports whether v is an object with a then method.
func IsThenable(v js.Value) bool {
	t := v.Type()
	return (t == js.TypeObject || t == js.TypeFunction) && v.Get("then").Type() == js.TypeFunction
}

// Await waits for the promise p to settle and returns its value, or the
// rejection as an error (see FromJS). A value that is not a thenable is
// returned as is. When ctx ends first Await returns ctx.Err(); the promise's
// callbacks release themselves whenever it settles later.
//
// Await blocks the calling goroutine: never call it from inside a js.FuncOf
// callback (the event loop would wait for itself).
func Await(ctx context.Context, p js.Value) (js.Value, error) {
	if !IsThenable(p) {
		return p, nil
	}
	if err := ctx.Err(); err != nil {
		return js.Undefined(), err
	}
	resc := make(chan js.Value, 1)
	errc := make(chan error, 1)
	var onResolve, onReject js.Func
	onResolve = js.FuncOf(func(this js.Value, args []js.Value) any {
		onResolve.Release()
		onReject.Release()
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		resc <- v
		return nil
	})
	onReject = js.FuncOf(func(this js.Value, args []js.Value) any {
		onResolve.Release()
		onReject.Release()
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		errc <- FromJS(v)
		return nil
	})
	if _, err := Call(p, "then", onResolve, onReject); err != nil {
		onResolve.Release()
		onReject.Release()
		return js.Undefined(), err
	}
	select {
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	case v := <-resc:
		return v, nil
	case err := <-errc:
		return js.Undefined(), err
	}
}

// CallAwait calls v[method](args...) and awaits the returned promise; a
// synchronous throw and a rejection both come back as errors.
func CallAwait(ctx context.Context, v js.Value, method string, args ...any) (js.Value, error) {
	p, err := Call(v, method, args...)
	if err != nil {
		return js.Undefined(), err
	}
	return Await(ctx, p)
}
