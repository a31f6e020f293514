//go:build js && wasm

package webgpu

import (
	"context"
	"fmt"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
)

// CommandEncoder is a GPUCommandEncoder: https://www.w3.org/TR/webgpu/#gpucommandencoder
type CommandEncoder struct{ v js.Value }

// JS returns the underlying object.
func (e *CommandEncoder) JS() js.Value { return e.v }

// BeginComputePass: https://www.w3.org/TR/webgpu/#dom-gpucommandencoder-begincomputepass
func (e *CommandEncoder) BeginComputePass(label string) *ComputePass {
	o := map[string]any{}
	if label != "" {
		o["label"] = label
	}
	return &ComputePass{v: e.v.Call("beginComputePass", o)}
}

// CopyBufferToBuffer: https://www.w3.org/TR/webgpu/#dom-gpucommandencoder-copybuffertobuffer
func (e *CommandEncoder) CopyBufferToBuffer(src *Buffer, srcOffset uint64, dst *Buffer, dstOffset, size uint64) {
	e.v.Call("copyBufferToBuffer", src.v, float64(srcOffset), dst.v, float64(dstOffset), float64(size))
}

// ClearBuffer zeroes [offset, offset+size): https://www.w3.org/TR/webgpu/#dom-gpucommandencoder-clearbuffer
func (e *CommandEncoder) ClearBuffer(b *Buffer, offset, size uint64) {
	e.v.Call("clearBuffer", b.v, float64(offset), float64(size))
}

// Finish: https://www.w3.org/TR/webgpu/#dom-gpucommandencoder-finish
func (e *CommandEncoder) Finish() *CommandBuffer {
	return &CommandBuffer{v: e.v.Call("finish")}
}

// CommandBuffer is a GPUCommandBuffer: https://www.w3.org/TR/webgpu/#gpucommandbuffer
type CommandBuffer struct{ v js.Value }

// ComputePass is a GPUComputePassEncoder: https://www.w3.org/TR/webgpu/#gpucomputepassencoder
type ComputePass struct{ v js.Value }

// JS returns the underlying object.
func (p *ComputePass) JS() js.Value { return p.v }

// SetPipeline: https://www.w3.org/TR/webgpu/#dom-gpucomputepassencoder-setpipeline
func (p *ComputePass) SetPipeline(pl *ComputePipeline) { p.v.Call("setPipeline", pl.v) }

// SetBindGroup: https://www.w3.org/TR/webgpu/#dom-gpubindingcommandsmixin-setbindgroup
func (p *ComputePass) SetBindGroup(index int, g *BindGroup, dynamicOffsets ...uint32) {
	if len(dynamicOffsets) == 0 {
		p.v.Call("setBindGroup", index, g.v)
		return
	}
	offs := make([]any, len(dynamicOffsets))
	for i, o := range dynamicOffsets {
		offs[i] = o
	}
	p.v.Call("setBindGroup", index, g.v, offs)
}

// DispatchWorkgroups: https://www.w3.org/TR/webgpu/#dom-gpucomputepassencoder-dispatchworkgroups
func (p *ComputePass) DispatchWorkgroups(x, y, z uint32) {
	p.v.Call("dispatchWorkgroups", x, y, z)
}

// DispatchWorkgroupsIndirect reads the three u32 counts from b at offset:
// https://www.w3.org/TR/webgpu/#dom-gpucomputepassencoder-dispatchworkgroupsindirect
func (p *ComputePass) DispatchWorkgroupsIndirect(b *Buffer, offset uint64) {
	p.v.Call("dispatchWorkgroupsIndirect", b.v, float64(offset))
}

// End: https://www.w3.org/TR/webgpu/#dom-gpucomputepassencoder-end
func (p *ComputePass) End() { p.v.Call("end") }

// Queue is a GPUQueue: https://www.w3.org/TR/webgpu/#gpuqueue
type Queue struct {
	v       js.Value
	dev     *Device
	staging jsbridge.Staging
}

// JS returns the underlying object.
func (q *Queue) JS() js.Value { return q.v }

// Submit: https://www.w3.org/TR/webgpu/#dom-gpuqueue-submit
func (q *Queue) Submit(cmds ...*CommandBuffer) {
	a := make([]any, len(cmds))
	for i, c := range cmds {
		a[i] = c.v
	}
	q.v.Call("submit", a)
}

// WriteBuffer writes a JS ArrayBuffer or typed array (all of it) at
// offset: https://www.w3.org/TR/webgpu/#dom-gpuqueue-writebuffer. Its byte
// length must be a multiple of 4.
func (q *Queue) WriteBuffer(b *Buffer, offset uint64, data js.Value) error {
	if _, err := jsbridge.Call(q.v, "writeBuffer", b.v, float64(offset), data); err != nil {
		return fmt.Errorf("webgpu: writeBuffer %q at %d: %w", b.Label, offset, err)
	}
	return nil
}

// WriteBufferRange writes size bytes of data starting at byte dataOffset
// (data: ArrayBuffer or any typed array; the range is taken in bytes).
func (q *Queue) WriteBufferRange(b *Buffer, offset uint64, data js.Value, dataOffset, size uint64) error {
	u8, err := jsbridge.Uint8View(data)
	if err != nil {
		return err
	}
	if _, err := jsbridge.Call(q.v, "writeBuffer", b.v, float64(offset), u8, float64(dataOffset), float64(size)); err != nil {
		return fmt.Errorf("webgpu: writeBuffer %q at %d (%d bytes): %w", b.Label, offset, size, err)
	}
	return nil
}

// WriteBytes writes Go bytes through the queue's reused staging array (one
// js.CopyBytesToJS). len(data) must be a multiple of 4.
func (q *Queue) WriteBytes(b *Buffer, offset uint64, data []byte) error {
	if len(data)%4 != 0 {
		return fmt.Errorf("webgpu: writeBuffer %q: %d bytes is not a multiple of 4", b.Label, len(data))
	}
	if len(data) == 0 {
		return nil
	}
	return q.WriteBuffer(b, offset, q.staging.Bytes(data))
}

// WriteFloat32s writes f at byte offset.
func (q *Queue) WriteFloat32s(b *Buffer, offset uint64, f []float32) error {
	return q.WriteBytes(b, offset, jsbridge.AsBytes(f))
}

// WriteUint32s writes u at byte offset.
func (q *Queue) WriteUint32s(b *Buffer, offset uint64, u []uint32) error {
	return q.WriteBytes(b, offset, jsbridge.AsBytes(u))
}

// OnSubmittedWorkDone waits until the GPU has finished all work submitted so far:
// https://www.w3.org/TR/webgpu/#dom-gpuqueue-onsubmittedworkdone
func (q *Queue) OnSubmittedWorkDone(ctx context.Context) error {
	if _, err := jsbridge.CallAwait(ctx, q.v, "onSubmittedWorkDone"); err != nil {
		if lerr := q.dev.Err(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("webgpu: onSubmittedWorkDone: %w", err)
	}
	return q.dev.Err()
}
