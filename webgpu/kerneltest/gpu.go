//go:build js && wasm

package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/shaders"
	"github.com/ember-llm/ember/webgpu"
)

// pipeline compiles kernel name with the current int8 variant and the
// given override constants, with an explicit layout built from the kernel's
// binding table.
func (e *env) pipeline(name string, consts map[string]float64) (*webgpu.ComputePipeline, *webgpu.BindGroupLayout, error) {
	k := shaders.Get(name)
	mkey := name + "/" + e.variant.String()
	mod, ok := e.modules[mkey]
	if !ok {
		var err error
		mod, err = e.dev.CreateShaderModule(e.ctx, name+".wgsl", k.Source(e.variant))
		if err != nil {
			return nil, nil, err
		}
		e.modules[mkey] = mod
	}
	bgl, ok := e.layouts[name]
	if !ok {
		var types []webgpu.BufferBindingType
		for _, b := range k.Bindings {
			types = append(types, webgpu.BufferBindingType(b.Type))
		}
		var err error
		if bgl, err = e.dev.StorageLayout(name, types...); err != nil {
			return nil, nil, err
		}
		pl, err := e.dev.CreatePipelineLayout(name, bgl)
		if err != nil {
			return nil, nil, err
		}
		e.layouts[name] = bgl
		e.plays[name] = pl
	}
	pkey := mkey + describe(consts)
	if p, ok := e.pipes[pkey]; ok {
		return p, bgl, nil
	}
	p, err := e.dev.CreateComputePipelineAsync(e.ctx, webgpu.ComputePipelineDescriptor{
		Label: name + describe(consts), Layout: e.plays[name], Module: mod, EntryPoint: name, Constants: consts,
	})
	if err == nil {
		e.pipes[pkey] = p
	}
	return p, bgl, err
}

func describe(c map[string]float64) string {
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s=%g", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// dispatch runs one kernel over the buffers (bindings 0..n-1) and waits.
func (e *env) dispatch(name string, consts map[string]float64, bufs []*webgpu.Buffer, x, y, z uint32) error {
	return e.dev.Scoped(e.ctx, name, func() error {
		p, bgl, err := e.pipeline(name, consts)
		if err != nil {
			return err
		}
		bg, err := e.dev.BindBuffers(name, bgl, bufs...)
		if err != nil {
			return err
		}
		enc := e.dev.CreateCommandEncoder(name)
		pass := enc.BeginComputePass(name)
		pass.SetPipeline(p)
		pass.SetBindGroup(0, bg)
		pass.DispatchWorkgroups(x, y, z)
		pass.End()
		e.dev.Queue.Submit(enc.Finish())
		return e.dev.Queue.OnSubmittedWorkDone(e.ctx)
	})
}

const storage = webgpu.BufferStorage | webgpu.BufferCopySrc | webgpu.BufferCopyDst

// buffer uploads b (padded to 4 bytes, at least 16) into a new storage buffer.
func (e *env) buffer(label string, b []byte) *webgpu.Buffer {
	n := (len(b) + 3) &^ 3
	pad := make([]byte, max(n, 16))
	copy(pad, b)
	buf, err := e.dev.CreateBuffer(webgpu.BufferDescriptor{Label: label, Size: uint64(len(pad)), Usage: storage})
	if err != nil {
		panic(err)
	}
	if err := buf.Write(0, pad); err != nil {
		panic(err)
	}
	e.bufs = append(e.bufs, buf)
	return buf
}

func (e *env) f32(label string, v []float32) *webgpu.Buffer {
	return e.buffer(label, jsbridge.AsBytes(v))
}
func (e *env) u32(label string, v []uint32) *webgpu.Buffer {
	return e.buffer(label, jsbridge.AsBytes(v))
}
func (e *env) zeros(label string, n int) *webgpu.Buffer { return e.buffer(label, make([]byte, 4*n)) }

func (e *env) uniform(step shaders.Step) *webgpu.Buffer {
	b, err := e.dev.CreateBuffer(webgpu.BufferDescriptor{Label: "step", Size: shaders.StepSize, Usage: webgpu.BufferUniform | webgpu.BufferCopyDst})
	if err != nil {
		panic(err)
	}
	if err := b.Write(0, step.Bytes()); err != nil {
		panic(err)
	}
	e.bufs = append(e.bufs, b)
	return b
}

func (e *env) readF32(b *webgpu.Buffer, n int) ([]float32, error) {
	out := make([]float32, n)
	return out, e.dev.ReadFloat32s(e.ctx, b, 0, out)
}

func (e *env) readU32(b *webgpu.Buffer, n int) ([]uint32, error) {
	out := make([]uint32, n)
	return out, e.dev.ReadUint32s(e.ctx, b, 0, out)
}
