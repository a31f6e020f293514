//go:build js && wasm

package webgpu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
)

// Device is a GPUDevice: https://www.w3.org/TR/webgpu/#gpudevice
type Device struct {
	v        js.Value
	Adapter  *Adapter
	Queue    *Queue
	Features map[string]bool // enabled features
	Limits   Limits          // granted limits

	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error

	mu          sync.Mutex
	uncaptured  []error
	onUncapture js.Func
	readback    *Buffer // reused MAP_READ staging buffer of ReadBuffer
}

func newDevice(v js.Value, a *Adapter) *Device {
	d := &Device{
		v: v, Adapter: a,
		Features: setMap(v.Get("features")),
		Limits:   readLimits(v.Get("limits")),
		lost:     make(chan struct{}),
	}
	d.Queue = &Queue{v: v.Get("queue"), dev: d}
	// device.lost never rejects; it resolves once with GPUDeviceLostInfo.
	v.Get("lost").Call("then", jsbridge.FuncOnce(func(this js.Value, args []js.Value) any {
		reason, msg := "unknown", ""
		if len(args) > 0 && args[0].Type() == js.TypeObject {
			reason, msg = str(args[0].Get("reason")), str(args[0].Get("message"))
		}
		d.markLost(fmt.Errorf("%w (reason %q): %s", ErrDeviceLost, reason, msg))
		return nil
	}))
	// https://www.w3.org/TR/webgpu/#eventdef-gpudevice-uncapturederror
	d.onUncapture = js.FuncOf(func(this js.Value, args []js.Value) any {
		if len(args) == 0 {
			return nil
		}
		args[0].Call("preventDefault")
		err := gpuError(args[0].Get("error"), "uncaptured")
		d.mu.Lock()
		if len(d.uncaptured) < 32 {
			d.uncaptured = append(d.uncaptured, err)
		}
		d.mu.Unlock()
		return nil
	})
	v.Call("addEventListener", "uncapturederror", d.onUncapture)
	return d
}

func (d *Device) markLost(err error) {
	d.lostOnce.Do(func() {
		d.mu.Lock()
		d.lostErr = err
		d.mu.Unlock()
		close(d.lost)
	})
}

// JS returns the underlying GPUDevice.
func (d *Device) JS() js.Value { return d.v }

// Lost is closed when the device is lost (https://www.w3.org/TR/webgpu/#dom-gpudevice-lost);
// Err then says why.
func (d *Device) Lost() <-chan struct{} { return d.lost }

// Err is nil while the device works, and an error wrapping ErrDeviceLost
// once it is lost.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lostErr
}

// TakeUncapturedErrors returns (and clears) the errors raised outside any
// error scope since the last call (at most 32 kept).
func (d *Device) TakeUncapturedErrors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.uncaptured
	d.uncaptured = nil
	return e
}

// HasFeature reports whether feature f was enabled on the device.
func (d *Device) HasFeature(f string) bool { return d.Features[f] }

// wgslProbes are shaders that compile only where a WGSL language feature is
// supported, for runtimes whose navigator.gpu lacks wgslLanguageFeatures
// (dawn.node).
var wgslProbes = map[string]string{
	LangPacked4x8IntegerDotProduct: "@compute @workgroup_size(1) fn main() { _ = dot4I8Packed(1u, 2u); _ = unpack4xI8(3u); }",
}

// HasWGSLLanguageFeature reports whether the device compiles WGSL that uses
// the language feature name: navigator.gpu.wgslLanguageFeatures where the
// runtime has it, else by compiling a probe shader (known features only).
func (d *Device) HasWGSLLanguageFeature(ctx context.Context, name string) bool {
	if g, err := Get(); err == nil && g.v.Get("wgslLanguageFeatures").Type() == js.TypeObject {
		return g.HasWGSLLanguageFeature(name)
	}
	probe, ok := wgslProbes[name]
	if !ok {
		return false
	}
	_, err := d.CreateShaderModule(ctx, "probe "+name, probe)
	return err == nil
}

// PushErrorScope: https://www.w3.org/TR/webgpu/#dom-gpudevice-pusherrorscope
func (d *Device) PushErrorScope(f ErrorFilter) { d.v.Call("pushErrorScope", string(f)) }

// PopErrorScope pops the innermost scope and returns the error it captured
// as a *GPUError (nil when none). https://www.w3.org/TR/webgpu/#dom-gpudevice-poperrorscope
func (d *Device) PopErrorScope(ctx context.Context) error {
	v, err := jsbridge.CallAwait(ctx, d.v, "popErrorScope")
	if err != nil {
		if lerr := d.Err(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("webgpu: popErrorScope: %w", err)
	}
	if v.IsNull() || v.IsUndefined() {
		return nil
	}
	return gpuError(v, "")
}

// Scoped runs f inside validation, out-of-memory and internal error scopes
// and returns f's error, else the first GPU error captured (with op as
// context), else a device loss.
func (d *Device) Scoped(ctx context.Context, op string, f func() error) error {
	d.PushErrorScope(FilterInternal)
	d.PushErrorScope(FilterOutOfMemory)
	d.PushErrorScope(FilterValidation)
	ferr := f()
	var first error
	for i := 0; i < 3; i++ {
		if err := d.PopErrorScope(ctx); err != nil && first == nil {
			first = err
		}
	}
	if ferr != nil {
		return ferr
	}
	var ge *GPUError
	if errors.As(first, &ge) && ge.Op == "" {
		ge.Op = op
	}
	if first == nil {
		first = d.Err()
	}
	return first
}

func gpuError(e js.Value, op string) error {
	kind := FilterValidation
	switch str(e.Get("constructor").Get("name")) {
	case "GPUOutOfMemoryError":
		kind = FilterOutOfMemory
	case "GPUInternalError":
		kind = FilterInternal
	}
	return &GPUError{Kind: kind, Op: op, Message: str(e.Get("message"))}
}

// Destroy destroys the device (https://www.w3.org/TR/webgpu/#dom-gpudevice-destroy)
// and releases the wrapper's callbacks.
func (d *Device) Destroy() {
	if d.readback != nil {
		d.readback.Destroy()
		d.readback = nil
	}
	d.v.Call("removeEventListener", "uncapturederror", d.onUncapture)
	d.v.Call("destroy")
	d.onUncapture.Release()
	d.Queue.staging.Release()
}

// BufferUsage flags: https://www.w3.org/TR/webgpu/#buffer-usage
type BufferUsage uint32

const (
	BufferMapRead      BufferUsage = 0x0001
	BufferMapWrite     BufferUsage = 0x0002
	BufferCopySrc      BufferUsage = 0x0004
	BufferCopyDst      BufferUsage = 0x0008
	BufferIndex        BufferUsage = 0x0010
	BufferVertex       BufferUsage = 0x0020
	BufferUniform      BufferUsage = 0x0040
	BufferStorage      BufferUsage = 0x0080
	BufferIndirect     BufferUsage = 0x0100
	BufferQueryResolve BufferUsage = 0x0200
)

// BufferDescriptor is GPUBufferDescriptor: https://www.w3.org/TR/webgpu/#dictdef-gpubufferdescriptor
type BufferDescriptor struct {
	Label            string
	Size             uint64 // bytes; WriteBuffer needs a multiple of 4
	Usage            BufferUsage
	MappedAtCreation bool
}

// CreateBuffer creates a buffer: https://www.w3.org/TR/webgpu/#dom-gpudevice-createbuffer.
// Validation and out-of-memory errors are asynchronous: wrap creation in
// Scoped (or Push/PopErrorScope) to see them.
func (d *Device) CreateBuffer(desc BufferDescriptor) (*Buffer, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	o := map[string]any{"size": float64(desc.Size), "usage": uint32(desc.Usage)}
	if desc.Label != "" {
		o["label"] = desc.Label
	}
	if desc.MappedAtCreation {
		o["mappedAtCreation"] = true
	}
	v, err := jsbridge.Call(d.v, "createBuffer", o)
	if err != nil {
		return nil, fmt.Errorf("webgpu: createBuffer %q (%d bytes): %w", desc.Label, desc.Size, err)
	}
	return &Buffer{v: v, dev: d, Size: desc.Size, Usage: desc.Usage, Label: desc.Label}, nil
}

// CreateCommandEncoder: https://www.w3.org/TR/webgpu/#dom-gpudevice-createcommandencoder
func (d *Device) CreateCommandEncoder(label string) *CommandEncoder {
	o := map[string]any{}
	if label != "" {
		o["label"] = label
	}
	return &CommandEncoder{v: d.v.Call("createCommandEncoder", o)}
}

// ReadBuffer copies size bytes of src at offset into dst (len(dst) ≥ size)
// through a reused MAP_READ staging buffer: one copy command, one submit,
// mapAsync, one js.CopyBytesToGo. src needs BufferCopySrc; offset and size
// must be multiples of 4.
func (d *Device) ReadBuffer(ctx context.Context, src *Buffer, offset uint64, dst []byte) error {
	size := uint64(len(dst))
	if size%4 != 0 || offset%4 != 0 {
		return fmt.Errorf("webgpu: ReadBuffer %q: offset %d and size %d must be multiples of 4", src.Label, offset, size)
	}
	if size == 0 {
		return nil
	}
	if d.readback == nil || d.readback.Size < size {
		if d.readback != nil {
			d.readback.Destroy()
		}
		sz := max(size, 4096)
		rb, err := d.CreateBuffer(BufferDescriptor{Label: "ember readback", Size: sz, Usage: BufferMapRead | BufferCopyDst})
		if err != nil {
			return err
		}
		d.readback = rb
	}
	rb := d.readback
	enc := d.CreateCommandEncoder("readback")
	enc.CopyBufferToBuffer(src, offset, rb, 0, size)
	d.Queue.Submit(enc.Finish())
	if err := rb.MapAsync(ctx, MapRead, 0, size); err != nil {
		return fmt.Errorf("webgpu: ReadBuffer %q: %w", src.Label, err)
	}
	r, err := rb.GetMappedRange(0, size)
	if err == nil {
		_, err = jsbridge.CopyToGo(dst, r)
	}
	rb.Unmap()
	return err
}

// ReadFloat32s reads len(dst) floats of src starting at byte offset.
func (d *Device) ReadFloat32s(ctx context.Context, src *Buffer, offset uint64, dst []float32) error {
	return d.ReadBuffer(ctx, src, offset, jsbridge.AsBytes(dst))
}

// ReadUint32s reads len(dst) u32 of src starting at byte offset.
func (d *Device) ReadUint32s(ctx context.Context, src *Buffer, offset uint64, dst []uint32) error {
	return d.ReadBuffer(ctx, src, offset, jsbridge.AsBytes(dst))
}
