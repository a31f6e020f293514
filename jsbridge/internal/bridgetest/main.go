//go:build js && wasm

// Command bridgetest exercises jsbridge inside a real JS runtime; the host
// test jsbridge/bridge_test.go runs it with wasmrun and checks its exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/jsbridge"
)

var failed bool

func check(name string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok   %s\n", name)
}

func eval(src string) js.Value { return js.Global().Call("eval", src) }

func main() {
	ctx := context.Background()

	check("await resolved", func() error {
		v, err := jsbridge.Await(ctx, eval(`new Promise(r => setTimeout(() => r(42), 1))`))
		if err != nil || v.Int() != 42 {
			return fmt.Errorf("got %v, %v", v, err)
		}
		return nil
	}())
	check("await non-promise", func() error {
		v, err := jsbridge.Await(ctx, js.ValueOf("x"))
		if err != nil || v.String() != "x" {
			return fmt.Errorf("got %v, %v", v, err)
		}
		return nil
	}())
	check("await rejected TypeError", func() error {
		_, err := jsbridge.Await(ctx, eval(`Promise.reject(new TypeError("bad thing"))`))
		var je js.Error
		var e *jsbridge.Error
		if !errors.Is(err, jsbridge.ErrTypeError) || !errors.As(err, &je) || !errors.As(err, &e) || e.Message != "bad thing" {
			return fmt.Errorf("got %v", err)
		}
		if err.Error() != "TypeError: bad thing" {
			return fmt.Errorf("message %q", err.Error())
		}
		return nil
	}())
	check("await rejected DOMException", func() error {
		_, err := jsbridge.Await(ctx, eval(`Promise.reject(new DOMException("stopped", "AbortError"))`))
		if !errors.Is(err, jsbridge.ErrAbort) || errors.Is(err, jsbridge.ErrTypeError) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}())
	check("await rejected string", func() error {
		_, err := jsbridge.Await(ctx, eval(`Promise.reject("plain")`))
		if err == nil || err.Error() != "plain" {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}())
	check("await context", func() error {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := jsbridge.Await(c, eval(`new Promise(() => {})`))
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}())
	check("call throws", func() error {
		obj := eval(`({ boom() { throw new RangeError("out of range") }, ok(a) { return a + 1 } })`)
		if _, err := jsbridge.Call(obj, "boom"); !errors.Is(err, jsbridge.ErrRangeError) {
			return fmt.Errorf("boom: %v", err)
		}
		if v, err := jsbridge.Call(obj, "ok", 1); err != nil || v.Int() != 2 {
			return fmt.Errorf("ok: %v %v", v, err)
		}
		if _, err := jsbridge.Call(obj, "missing"); err == nil {
			return errors.New("calling a missing method gave no error")
		}
		if _, err := jsbridge.New(js.Global().Get("Array"), -1); !errors.Is(err, jsbridge.ErrRangeError) {
			return fmt.Errorf("new Array(-1): %v", err)
		}
		if err := jsbridge.Try(func() { eval(`null.x`) }); !errors.Is(err, jsbridge.ErrTypeError) {
			return fmt.Errorf("try: %v", err)
		}
		return nil
	}())
	check("staging round trip", func() error {
		var s jsbridge.Staging
		f := []float32{1.5, -2, 3.25e-7, 65504}
		v := s.Float32s(f)
		if v.Get("byteLength").Int() != 16 {
			return fmt.Errorf("byteLength %d", v.Get("byteLength").Int())
		}
		fa := js.Global().Get("Float32Array").New(v.Get("buffer"), 0, 4)
		if fa.Index(1).Float() != -2 {
			return fmt.Errorf("JS sees %v", fa.Index(1))
		}
		back := make([]float32, 4)
		if err := jsbridge.Float32sFromJS(back, fa); err != nil {
			return err
		}
		for i := range f {
			if back[i] != f[i] {
				return fmt.Errorf("back[%d] = %v", i, back[i])
			}
		}
		big := make([]uint32, 5000)
		for i := range big {
			big[i] = uint32(i * 7)
		}
		v = s.Uint32s(big)
		u := make([]uint32, 5000)
		if err := jsbridge.Uint32sFromJS(u, v); err != nil || u[4999] != 4999*7 {
			return fmt.Errorf("big: %v %v", u[4999], err)
		}
		if err := jsbridge.Uint32sFromJS(u[:3], v); err == nil {
			return errors.New("size mismatch not reported")
		}
		b, err := jsbridge.BytesFromJS(js.Global().Get("ArrayBuffer").New(3))
		if err != nil || len(b) != 3 {
			return fmt.Errorf("BytesFromJS: %v %v", b, err)
		}
		return nil
	}())
	check("promise", func() error {
		p := jsbridge.Promise(func() (any, error) { return "fine", nil })
		v, err := jsbridge.Await(ctx, p)
		if err != nil || v.String() != "fine" {
			return fmt.Errorf("resolve: %v %v", v, err)
		}
		p = jsbridge.Promise(func() (any, error) { return nil, errors.New("plain words") })
		_, err = jsbridge.Await(ctx, p)
		if err == nil || err.Error() != "Error: plain words" {
			return fmt.Errorf("reject: %v", err)
		}
		return nil
	}())
	check("func once", func() error {
		n := 0
		f := jsbridge.FuncOnce(func(this js.Value, args []js.Value) any { n++; return nil })
		f.Invoke()
		if n != 1 {
			return fmt.Errorf("called %d times", n)
		}
		return nil
	}())
	if failed {
		os.Exit(1)
	}
}
