//go:build js && wasm

package jsbridge

import (
	"errors"
	"fmt"
	"syscall/js"
)

// Error is a JavaScript exception or promise rejection as a Go error: the
// Error (or DOMException) name and message, and the original value.
//
// errors.Is(err, &Error{Name: "AbortError"}) matches by name (and by message
// too when the target's Message is set); errors.As(err, &js.Error{}) reaches
// the thrown value.
type Error struct {
	Name    string   // "TypeError", "OperationError", ...; "" for a thrown non-Error value
	Message string   // the message, or the String() of a non-Error value
	Value   js.Value // what was thrown
}

// Common DOMException names (WebIDL §3.14.1), for errors.Is.
var (
	ErrAbort          = &Error{Name: "AbortError"}
	ErrOperation      = &Error{Name: "OperationError"}
	ErrNotSupported   = &Error{Name: "NotSupportedError"}
	ErrQuotaExceeded  = &Error{Name: "QuotaExceededError"}
	ErrInvalidState   = &Error{Name: "InvalidStateError"}
	ErrTypeError      = &Error{Name: "TypeError"}
	ErrRangeError     = &Error{Name: "RangeError"}
	ErrNotFound       = &Error{Name: "NotFoundError"}
	ErrSecurity       = &Error{Name: "SecurityError"}
	ErrDataError      = &Error{Name: "DataError"}
	ErrUnknownJSValue = &Error{Name: "jsbridge.UnknownValue"}
)

func (e *Error) Error() string {
	switch {
	case e.Name == "":
		return e.Message
	case e.Message == "":
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// Is matches another *Error with the same Name (and Message, when the
// target's is non-empty).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Name == e.Name && (t.Message == "" || t.Message == e.Message)
}

// Unwrap gives errors.As access to the thrown value as a js.Error.
func (e *Error) Unwrap() error {
	if e.Value.IsUndefined() && e.Name == "" {
		return nil
	}
	return js.Error{Value: e.Value}
}

// FromJS turns a thrown or rejected JS value into an *Error.
func FromJS(v js.Value) error {
	e := &Error{Value: v}
	switch v.Type() {
	case js.TypeObject, js.TypeFunction:
		name, msg := v.Get("name"), v.Get("message")
		if name.Type() == js.TypeString {
			e.Name = name.String()
		}
		if msg.Type() == js.TypeString {
			e.Message = msg.String()
		} else {
			e.Message = safeString(v)
		}
	case js.TypeString:
		e.Message = v.String()
	case js.TypeUndefined:
		e.Message = "undefined"
	default:
		e.Message = safeString(v)
	}
	return e
}

// safeString is String(v) that cannot throw.
func safeString(v js.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = "<unprintable JS value>"
		}
	}()
	return js.Global().Get("String").Invoke(v).String()
}

// recovered converts a panic value from a syscall/js call into an error.
func recovered(r any, what string) error {
	switch r := r.(type) {
	case js.Error:
		return FromJS(r.Value)
	case *js.ValueError:
		return fmt.Errorf("jsbridge: %s: %w", what, r)
	case error:
		return fmt.Errorf("jsbridge: %s: %w", what, r)
	}
	return fmt.Errorf("jsbridge: %s: %v", what, r)
}

// Call calls v[method](args...) and returns a thrown exception as an error.
func Call(v js.Value, method string, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = js.Undefined(), recovered(r, method)
		}
	}()
	return v.Call(method, args...), nil
}

// Invoke calls the function f(args...), returning a thrown exception as an error.
func Invoke(f js.Value, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = js.Undefined(), recovered(r, "invoke")
		}
	}()
	return f.Invoke(args...), nil
}

// New calls new ctor(args...), returning a thrown exception as an error.
func New(ctor js.Value, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = js.Undefined(), recovered(r, "new")
		}
	}()
	return ctor.New(args...), nil
}

// Try runs f and returns a JS exception (or syscall/js misuse) it panics
// with as an error. Other panics are re-raised.
func Try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch r.(type) {
			case js.Error, *js.ValueError:
				err = recovered(r, "try")
			default:
				panic(r)
			}
		}
	}()
	f()
	return nil
}

// ToJSError makes a JS Error object carrying err's message (for rejecting a
// Promise handed to JavaScript). A *Error that came from JS is returned as
// its original value.
func ToJSError(err error) js.Value {
	var e *Error
	if errors.As(err, &e) && !e.Value.IsUndefined() && e.Error() == err.Error() {
		return e.Value
	}
	return js.Global().Get("Error").New(err.Error())
}
