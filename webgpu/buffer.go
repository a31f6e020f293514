//go:build js && wasm

package webgpu

import (
	"context"
	"fmt"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
)

// Buffer is a GPUBuffer: https://www.w3.org/TR/webgpu/#gpubuffer
type Buffer struct {
	v     js.Value
	dev   *Device
	Size  uint64
	Usage BufferUsage
	Label string
}

// JS returns the underlying GPUBuffer.
func (b *Buffer) JS() js.Value { return b.v }

// MapMode flags: https://www.w3.org/TR/webgpu/#typedefdef-gpumapmodeflags
type MapMode uint32

const (
	MapRead  MapMode = 1
	MapWrite MapMode = 2
)

// MapAsync maps [offset, offset+size) for reading or writing:
// https://www.w3.org/TR/webgpu/#dom-gpubuffer-mapasync
func (b *Buffer) MapAsync(ctx context.Context, mode MapMode, offset, size uint64) error {
	_, err := jsbridge.CallAwait(ctx, b.v, "mapAsync", uint32(mode), float64(offset), float64(size))
	if err != nil {
		if lerr := b.dev.Err(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("webgpu: mapAsync %q: %w", b.Label, err)
	}
	return nil
}

// GetMappedRange returns the mapped bytes as an ArrayBuffer (valid until
// Unmap): https://www.w3.org/TR/webgpu/#dom-gpubuffer-getmappedrange
func (b *Buffer) GetMappedRange(offset, size uint64) (js.Value, error) {
	v, err := jsbridge.Call(b.v, "getMappedRange", float64(offset), float64(size))
	if err != nil {
		return js.Undefined(), fmt.Errorf("webgpu: getMappedRange %q: %w", b.Label, err)
	}
	return v, nil
}

// Unmap: https://www.w3.org/TR/webgpu/#dom-gpubuffer-unmap
func (b *Buffer) Unmap() { b.v.Call("unmap") }

// Destroy frees the buffer's memory: https://www.w3.org/TR/webgpu/#dom-gpubuffer-destroy
func (b *Buffer) Destroy() { b.v.Call("destroy") }

// Write uploads Go bytes at offset (queue.writeBuffer through the queue's
// reused staging array).
func (b *Buffer) Write(offset uint64, data []byte) error {
	return b.dev.Queue.WriteBytes(b, offset, data)
}

// WriteFloat32s uploads f at byte offset.
func (b *Buffer) WriteFloat32s(offset uint64, f []float32) error {
	return b.dev.Queue.WriteBytes(b, offset, jsbridge.AsBytes(f))
}

// WriteUint32s uploads u at byte offset.
func (b *Buffer) WriteUint32s(offset uint64, u []uint32) error {
	return b.dev.Queue.WriteBytes(b, offset, jsbridge.AsBytes(u))
}

// WriteJS uploads a JS ArrayBuffer or typed array at offset; the bytes never
// enter Go memory.
func (b *Buffer) WriteJS(offset uint64, data js.Value) error {
	return b.dev.Queue.WriteBuffer(b, offset, data)
}
