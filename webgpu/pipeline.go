//go:build js && wasm

package webgpu

import (
	"context"
	"fmt"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
)

// ShaderModule is a GPUShaderModule: https://www.w3.org/TR/webgpu/#gpushadermodule
type ShaderModule struct {
	v        js.Value
	Label    string
	Warnings []CompilationMessage // warnings and info from getCompilationInfo
}

// JS returns the underlying GPUShaderModule.
func (m *ShaderModule) JS() js.Value { return m.v }

// CreateShaderModule compiles WGSL and waits for getCompilationInfo
// (https://www.w3.org/TR/webgpu/#dom-gpushadermodule-getcompilationinfo):
// any error message becomes a *CompilationError naming label:line:col.
func (d *Device) CreateShaderModule(ctx context.Context, label, code string) (*ShaderModule, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	o := map[string]any{"code": code}
	if label != "" {
		o["label"] = label
	}
	d.PushErrorScope(FilterValidation)
	v, err := jsbridge.Call(d.v, "createShaderModule", o)
	scopeErr := d.PopErrorScope(ctx)
	if err != nil {
		return nil, fmt.Errorf("webgpu: createShaderModule %q: %w", label, err)
	}
	m := &ShaderModule{v: v, Label: label}
	cerr := &CompilationError{Label: label, Source: code}
	if v.Get("getCompilationInfo").Type() == js.TypeFunction {
		info, err := jsbridge.CallAwait(ctx, v, "getCompilationInfo")
		if err != nil {
			return nil, fmt.Errorf("webgpu: getCompilationInfo %q: %w", label, err)
		}
		msgs := info.Get("messages")
		for i := 0; i < msgs.Length(); i++ {
			mv := msgs.Index(i)
			cm := CompilationMessage{Type: str(mv.Get("type")), Line: num(mv.Get("lineNum")), Column: num(mv.Get("linePos")), Message: str(mv.Get("message"))}
			if cm.Type == "error" {
				cerr.Messages = append(cerr.Messages, cm)
			} else {
				m.Warnings = append(m.Warnings, cm)
			}
		}
	}
	if len(cerr.Messages) > 0 {
		return nil, cerr
	}
	if scopeErr != nil {
		// Implementations without compilation messages (or a validation
		// error outside WGSL) still report through the scope.
		cerr.Messages = append(cerr.Messages, CompilationMessage{Type: "error", Message: scopeErr.Error()})
		return nil, cerr
	}
	return m, nil
}

// ShaderStage flags: https://www.w3.org/TR/webgpu/#typedefdef-gpushaderstageflags
const StageCompute = 0x4

// BufferBindingType: https://www.w3.org/TR/webgpu/#enumdef-gpubufferbindingtype
type BufferBindingType string

const (
	BindingUniform         BufferBindingType = "uniform"
	BindingStorage         BufferBindingType = "storage"
	BindingReadOnlyStorage BufferBindingType = "read-only-storage"
)

// BindGroupLayoutEntry is a buffer entry of a GPUBindGroupLayoutEntry
// (compute stage): https://www.w3.org/TR/webgpu/#dictdef-gpubindgrouplayoutentry
type BindGroupLayoutEntry struct {
	Binding          uint32
	Type             BufferBindingType
	HasDynamicOffset bool
	MinBindingSize   uint64
}

// BindGroupLayout is a GPUBindGroupLayout: https://www.w3.org/TR/webgpu/#gpubindgrouplayout
type BindGroupLayout struct {
	v     js.Value
	Label string
}

// JS returns the underlying object.
func (l *BindGroupLayout) JS() js.Value { return l.v }

// CreateBindGroupLayout creates an explicit layout of compute buffer bindings.
// https://www.w3.org/TR/webgpu/#dom-gpudevice-createbindgrouplayout
func (d *Device) CreateBindGroupLayout(label string, entries []BindGroupLayoutEntry) (*BindGroupLayout, error) {
	es := make([]any, len(entries))
	for i, e := range entries {
		buf := map[string]any{"type": string(e.Type)}
		if e.HasDynamicOffset {
			buf["hasDynamicOffset"] = true
		}
		if e.MinBindingSize > 0 {
			buf["minBindingSize"] = float64(e.MinBindingSize)
		}
		es[i] = map[string]any{"binding": e.Binding, "visibility": StageCompute, "buffer": buf}
	}
	o := map[string]any{"entries": es}
	if label != "" {
		o["label"] = label
	}
	v, err := jsbridge.Call(d.v, "createBindGroupLayout", o)
	if err != nil {
		return nil, fmt.Errorf("webgpu: createBindGroupLayout %q: %w", label, err)
	}
	return &BindGroupLayout{v: v, Label: label}, nil
}

// StorageLayout is a shorthand: bindings 0..n-1 with the given types.
func (d *Device) StorageLayout(label string, types ...BufferBindingType) (*BindGroupLayout, error) {
	es := make([]BindGroupLayoutEntry, len(types))
	for i, t := range types {
		es[i] = BindGroupLayoutEntry{Binding: uint32(i), Type: t}
	}
	return d.CreateBindGroupLayout(label, es)
}

// PipelineLayout is a GPUPipelineLayout: https://www.w3.org/TR/webgpu/#gpupipelinelayout
type PipelineLayout struct {
	v     js.Value
	Label string
}

// JS returns the underlying object.
func (l *PipelineLayout) JS() js.Value { return l.v }

// CreatePipelineLayout: https://www.w3.org/TR/webgpu/#dom-gpudevice-createpipelinelayout
func (d *Device) CreatePipelineLayout(label string, groups ...*BindGroupLayout) (*PipelineLayout, error) {
	gs := make([]any, len(groups))
	for i, g := range groups {
		gs[i] = g.v
	}
	o := map[string]any{"bindGroupLayouts": gs}
	if label != "" {
		o["label"] = label
	}
	v, err := jsbridge.Call(d.v, "createPipelineLayout", o)
	if err != nil {
		return nil, fmt.Errorf("webgpu: createPipelineLayout %q: %w", label, err)
	}
	return &PipelineLayout{v: v, Label: label}, nil
}

// ComputePipelineDescriptor is GPUComputePipelineDescriptor:
// https://www.w3.org/TR/webgpu/#dictdef-gpucomputepipelinedescriptor.
// Constants are WGSL override constants by name
// (https://www.w3.org/TR/webgpu/#dom-gpuprogrammablestage-constants).
type ComputePipelineDescriptor struct {
	Label      string
	Layout     *PipelineLayout // nil: "auto"
	Module     *ShaderModule
	EntryPoint string
	Constants  map[string]float64
}

func (desc *ComputePipelineDescriptor) js() map[string]any {
	stage := map[string]any{"module": desc.Module.v}
	if desc.EntryPoint != "" {
		stage["entryPoint"] = desc.EntryPoint
	}
	if len(desc.Constants) > 0 {
		c := map[string]any{}
		for k, v := range desc.Constants {
			c[k] = v
		}
		stage["constants"] = c
	}
	o := map[string]any{"compute": stage, "layout": "auto"}
	if desc.Layout != nil {
		o["layout"] = desc.Layout.v
	}
	if desc.Label != "" {
		o["label"] = desc.Label
	}
	return o
}

// ComputePipeline is a GPUComputePipeline: https://www.w3.org/TR/webgpu/#gpucomputepipeline
type ComputePipeline struct {
	v     js.Value
	Label string
}

// JS returns the underlying object.
func (p *ComputePipeline) JS() js.Value { return p.v }

// GetBindGroupLayout returns group i's layout (for Layout "auto").
func (p *ComputePipeline) GetBindGroupLayout(i int) *BindGroupLayout {
	return &BindGroupLayout{v: p.v.Call("getBindGroupLayout", i)}
}

// CreateComputePipelineAsync: https://www.w3.org/TR/webgpu/#dom-gpudevice-createcomputepipelineasync.
// A GPUPipelineError rejection becomes a *GPUError.
func (d *Device) CreateComputePipelineAsync(ctx context.Context, desc ComputePipelineDescriptor) (*ComputePipeline, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	v, err := jsbridge.CallAwait(ctx, d.v, "createComputePipelineAsync", desc.js())
	if err != nil {
		if lerr := d.Err(); lerr != nil {
			return nil, lerr
		}
		if je, ok := err.(*jsbridge.Error); ok && je.Name == "GPUPipelineError" {
			kind := FilterValidation
			if str(je.Value.Get("reason")) == "internal" {
				kind = FilterInternal
			}
			return nil, &GPUError{Kind: kind, Op: fmt.Sprintf("createComputePipelineAsync %q (%s)", desc.Label, desc.EntryPoint), Message: je.Message}
		}
		return nil, fmt.Errorf("webgpu: createComputePipelineAsync %q: %w", desc.Label, err)
	}
	return &ComputePipeline{v: v, Label: desc.Label}, nil
}

// CreateComputePipeline is the synchronous form; errors surface through
// error scopes. https://www.w3.org/TR/webgpu/#dom-gpudevice-createcomputepipeline
func (d *Device) CreateComputePipeline(desc ComputePipelineDescriptor) (*ComputePipeline, error) {
	v, err := jsbridge.Call(d.v, "createComputePipeline", desc.js())
	if err != nil {
		return nil, fmt.Errorf("webgpu: createComputePipeline %q: %w", desc.Label, err)
	}
	return &ComputePipeline{v: v, Label: desc.Label}, nil
}

// BindGroupEntry binds a buffer range (Size 0: to the end of the buffer).
// https://www.w3.org/TR/webgpu/#dictdef-gpubindgroupentry
type BindGroupEntry struct {
	Binding uint32
	Buffer  *Buffer
	Offset  uint64
	Size    uint64
}

// BindGroup is a GPUBindGroup: https://www.w3.org/TR/webgpu/#gpubindgroup
type BindGroup struct {
	v     js.Value
	Label string
}

// JS returns the underlying object.
func (g *BindGroup) JS() js.Value { return g.v }

// CreateBindGroup: https://www.w3.org/TR/webgpu/#dom-gpudevice-createbindgroup
func (d *Device) CreateBindGroup(label string, layout *BindGroupLayout, entries []BindGroupEntry) (*BindGroup, error) {
	es := make([]any, len(entries))
	for i, e := range entries {
		if e.Buffer == nil {
			return nil, fmt.Errorf("webgpu: createBindGroup %q: binding %d has no buffer", label, e.Binding)
		}
		res := map[string]any{"buffer": e.Buffer.v}
		if e.Offset > 0 {
			res["offset"] = float64(e.Offset)
		}
		if e.Size > 0 {
			res["size"] = float64(e.Size)
		}
		es[i] = map[string]any{"binding": e.Binding, "resource": res}
	}
	o := map[string]any{"layout": layout.v, "entries": es}
	if label != "" {
		o["label"] = label
	}
	v, err := jsbridge.Call(d.v, "createBindGroup", o)
	if err != nil {
		return nil, fmt.Errorf("webgpu: createBindGroup %q: %w", label, err)
	}
	return &BindGroup{v: v, Label: label}, nil
}

// BindBuffers is a shorthand: buffers bound whole at bindings 0..n-1.
func (d *Device) BindBuffers(label string, layout *BindGroupLayout, bufs ...*Buffer) (*BindGroup, error) {
	es := make([]BindGroupEntry, len(bufs))
	for i, b := range bufs {
		es[i] = BindGroupEntry{Binding: uint32(i), Buffer: b}
	}
	return d.CreateBindGroup(label, layout, es)
}
