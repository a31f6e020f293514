//go:build js && wasm

package webgpu

import (
	"context"
	"fmt"
	"sort"
	"syscall/js"

	"github.com/ember-llm/ember/jsbridge"
)

// GPU is navigator.gpu: https://www.w3.org/TR/webgpu/#gpu-interface
type GPU struct{ v js.Value }

// Get returns navigator.gpu, or ErrNoWebGPU.
func Get() (*GPU, error) {
	nav := js.Global().Get("navigator")
	if nav.Type() != js.TypeObject {
		return nil, fmt.Errorf("%w (no navigator)", ErrNoWebGPU)
	}
	g := nav.Get("gpu")
	if g.Type() != js.TypeObject {
		return nil, fmt.Errorf("%w (navigator.gpu is undefined: the browser lacks WebGPU or it is disabled; a secure context is required)", ErrNoWebGPU)
	}
	return &GPU{v: g}, nil
}

// JS returns the underlying GPU object.
func (g *GPU) JS() js.Value { return g.v }

// WGSL language extensions (https://www.w3.org/TR/WGSL/#language-extensions-sec).
const (
	LangPacked4x8IntegerDotProduct = "packed_4x8_integer_dot_product"
	LangPointerCompositeAccess     = "pointer_composite_access"
	LangReadonlyReadwriteStorage   = "readonly_and_readwrite_storage_textures"
	LangUnrestrictedPointerParams  = "unrestricted_pointer_parameters"
)

// WGSLLanguageFeatures lists navigator.gpu.wgslLanguageFeatures
// (https://www.w3.org/TR/webgpu/#gpuwgsllanguagefeatures), sorted.
func (g *GPU) WGSLLanguageFeatures() []string { return setList(g.v.Get("wgslLanguageFeatures")) }

// HasWGSLLanguageFeature reports whether the WGSL extension name is supported,
// e.g. LangPacked4x8IntegerDotProduct (dot4I8Packed, unpack4xI8).
func (g *GPU) HasWGSLLanguageFeature(name string) bool {
	s := g.v.Get("wgslLanguageFeatures")
	if s.Type() != js.TypeObject {
		return false
	}
	return s.Call("has", name).Bool()
}

// AdapterOptions is GPURequestAdapterOptions: https://www.w3.org/TR/webgpu/#dictdef-gpurequestadapteroptions
type AdapterOptions struct {
	PowerPreference      string // "", "low-power", "high-performance"
	ForceFallbackAdapter bool
}

// RequestAdapter calls requestAdapter; a null adapter is ErrNoWebGPU.
// https://www.w3.org/TR/webgpu/#dom-gpu-requestadapter
func (g *GPU) RequestAdapter(ctx context.Context, o AdapterOptions) (*Adapter, error) {
	opts := map[string]any{}
	if o.PowerPreference != "" {
		opts["powerPreference"] = o.PowerPreference
	}
	if o.ForceFallbackAdapter {
		opts["forceFallbackAdapter"] = true
	}
	v, err := jsbridge.CallAwait(ctx, g.v, "requestAdapter", opts)
	if err != nil {
		return nil, fmt.Errorf("webgpu: requestAdapter: %w", err)
	}
	if v.IsNull() || v.IsUndefined() {
		return nil, fmt.Errorf("%w (requestAdapter returned null: no suitable GPU adapter)", ErrNoWebGPU)
	}
	a := &Adapter{v: v, Features: setMap(v.Get("features")), Limits: readLimits(v.Get("limits"))}
	info := v.Get("info")
	if info.Type() == js.TypeObject {
		a.Info = AdapterInfo{
			Vendor:          str(info.Get("vendor")),
			Architecture:    str(info.Get("architecture")),
			Device:          str(info.Get("device")),
			Description:     str(info.Get("description")),
			SubgroupMinSize: num(info.Get("subgroupMinSize")),
			SubgroupMaxSize: num(info.Get("subgroupMaxSize")),
			IsFallback:      info.Get("isFallbackAdapter").Truthy(),
		}
	}
	if v.Get("isFallbackAdapter").Truthy() {
		a.Info.IsFallback = true
	}
	return a, nil
}

// Adapter is a GPUAdapter: https://www.w3.org/TR/webgpu/#gpuadapter
type Adapter struct {
	v        js.Value
	Features map[string]bool // GPUSupportedFeatures
	Limits   Limits          // GPUSupportedLimits
	Info     AdapterInfo     // GPUAdapterInfo
}

// JS returns the underlying GPUAdapter.
func (a *Adapter) JS() js.Value { return a.v }

// AdapterInfo is GPUAdapterInfo: https://www.w3.org/TR/webgpu/#gpuadapterinfo
type AdapterInfo struct {
	Vendor, Architecture, Device, Description string
	SubgroupMinSize, SubgroupMaxSize          int
	IsFallback                                bool
}

// String is a one-line description for logs and info().
func (i AdapterInfo) String() string {
	s := i.Vendor
	for _, p := range []string{i.Architecture, i.Device, i.Description} {
		if p != "" {
			if s != "" {
				s += " "
			}
			s += p
		}
	}
	if s == "" {
		s = "unknown adapter"
	}
	if i.IsFallback {
		s += " (fallback)"
	}
	return s
}

// Feature names: https://www.w3.org/TR/webgpu/#feature-index
const (
	FeatureShaderF16      = "shader-f16"
	FeatureSubgroups      = "subgroups"
	FeatureTimestampQuery = "timestamp-query"
)

// Limits holds the GPUSupportedLimits a compute engine cares about
// (https://www.w3.org/TR/webgpu/#limits). All holds every numeric limit the
// implementation reported, by name.
type Limits struct {
	MaxStorageBufferBindingSize               uint64
	MaxBufferSize                             uint64
	MaxUniformBufferBindingSize               uint64
	MaxComputeWorkgroupStorageSize            uint64
	MaxStorageBuffersPerShaderStage           uint64
	MaxUniformBuffersPerShaderStage           uint64
	MaxComputeInvocationsPerWorkgroup         uint64
	MaxComputeWorkgroupSizeX                  uint64
	MaxComputeWorkgroupSizeY                  uint64
	MaxComputeWorkgroupSizeZ                  uint64
	MaxComputeWorkgroupsPerDimension          uint64
	MaxBindGroups                             uint64
	MaxBindingsPerBindGroup                   uint64
	MaxDynamicStorageBuffersPerPipelineLayout uint64
	MinStorageBufferOffsetAlignment           uint64
	MinUniformBufferOffsetAlignment           uint64
	All                                       map[string]float64
}

// raisedLimits are the limits RequestDevice raises to the adapter's value
// (the defaults are far below what LLM weights need).
var raisedLimits = []string{
	"maxStorageBufferBindingSize", "maxBufferSize", "maxUniformBufferBindingSize",
	"maxComputeWorkgroupStorageSize", "maxStorageBuffersPerShaderStage", "maxUniformBuffersPerShaderStage",
	"maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
	"maxComputeWorkgroupSizeZ", "maxComputeWorkgroupsPerDimension", "maxBindGroups",
	"maxBindingsPerBindGroup", "maxDynamicStorageBuffersPerPipelineLayout",
}

func readLimits(v js.Value) Limits {
	l := Limits{All: map[string]float64{}}
	if v.Type() != js.TypeObject {
		return l
	}
	names := []string{
		"maxTextureDimension1D", "maxTextureDimension2D", "maxTextureDimension3D", "maxTextureArrayLayers",
		"maxBindGroups", "maxBindGroupsPlusVertexBuffers", "maxBindingsPerBindGroup",
		"maxDynamicUniformBuffersPerPipelineLayout", "maxDynamicStorageBuffersPerPipelineLayout",
		"maxSampledTexturesPerShaderStage", "maxSamplersPerShaderStage", "maxStorageBuffersPerShaderStage",
		"maxStorageTexturesPerShaderStage", "maxUniformBuffersPerShaderStage", "maxUniformBufferBindingSize",
		"maxStorageBufferBindingSize", "minUniformBufferOffsetAlignment", "minStorageBufferOffsetAlignment",
		"maxVertexBuffers", "maxBufferSize", "maxVertexAttributes", "maxVertexBufferArrayStride",
		"maxInterStageShaderVariables", "maxColorAttachments", "maxColorAttachmentBytesPerSample",
		"maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX",
		"maxComputeWorkgroupSizeY", "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupsPerDimension",
		"maxImmediateSize",
	}
	for _, n := range names {
		x := v.Get(n)
		if x.Type() == js.TypeNumber {
			l.All[n] = x.Float()
		}
	}
	g := func(n string) uint64 { return uint64(l.All[n]) }
	l.MaxStorageBufferBindingSize = g("maxStorageBufferBindingSize")
	l.MaxBufferSize = g("maxBufferSize")
	l.MaxUniformBufferBindingSize = g("maxUniformBufferBindingSize")
	l.MaxComputeWorkgroupStorageSize = g("maxComputeWorkgroupStorageSize")
	l.MaxStorageBuffersPerShaderStage = g("maxStorageBuffersPerShaderStage")
	l.MaxUniformBuffersPerShaderStage = g("maxUniformBuffersPerShaderStage")
	l.MaxComputeInvocationsPerWorkgroup = g("maxComputeInvocationsPerWorkgroup")
	l.MaxComputeWorkgroupSizeX = g("maxComputeWorkgroupSizeX")
	l.MaxComputeWorkgroupSizeY = g("maxComputeWorkgroupSizeY")
	l.MaxComputeWorkgroupSizeZ = g("maxComputeWorkgroupSizeZ")
	l.MaxComputeWorkgroupsPerDimension = g("maxComputeWorkgroupsPerDimension")
	l.MaxBindGroups = g("maxBindGroups")
	l.MaxBindingsPerBindGroup = g("maxBindingsPerBindGroup")
	l.MaxDynamicStorageBuffersPerPipelineLayout = g("maxDynamicStorageBuffersPerPipelineLayout")
	l.MinStorageBufferOffsetAlignment = g("minStorageBufferOffsetAlignment")
	l.MinUniformBufferOffsetAlignment = g("minUniformBufferOffsetAlignment")
	return l
}

// DeviceDescriptor is GPUDeviceDescriptor: https://www.w3.org/TR/webgpu/#dictdef-gpudevicedescriptor
type DeviceDescriptor struct {
	Label            string
	RequiredFeatures []string
	RequiredLimits   map[string]float64
}

// DefaultDeviceDescriptor asks for everything an LLM engine can use: the
// adapter's own values of the buffer-size, workgroup and binding limits, and
// the shader-f16, subgroups and timestamp-query features when present.
func (a *Adapter) DefaultDeviceDescriptor() DeviceDescriptor {
	d := DeviceDescriptor{Label: "ember", RequiredLimits: map[string]float64{}}
	for _, n := range raisedLimits {
		if v, ok := a.Limits.All[n]; ok && v > 0 {
			d.RequiredLimits[n] = v
		}
	}
	for _, f := range []string{FeatureShaderF16, FeatureSubgroups, FeatureTimestampQuery} {
		if a.Features[f] {
			d.RequiredFeatures = append(d.RequiredFeatures, f)
		}
	}
	return d
}

// RequestDevice calls requestDevice (https://www.w3.org/TR/webgpu/#dom-gpuadapter-requestdevice);
// a nil descriptor means DefaultDeviceDescriptor.
func (a *Adapter) RequestDevice(ctx context.Context, desc *DeviceDescriptor) (*Device, error) {
	if desc == nil {
		d := a.DefaultDeviceDescriptor()
		desc = &d
	}
	feats := make([]any, len(desc.RequiredFeatures))
	for i, f := range desc.RequiredFeatures {
		feats[i] = f
	}
	lims := map[string]any{}
	for k, v := range desc.RequiredLimits {
		lims[k] = v
	}
	o := map[string]any{"requiredFeatures": feats, "requiredLimits": lims}
	if desc.Label != "" {
		o["label"] = desc.Label
	}
	v, err := jsbridge.CallAwait(ctx, a.v, "requestDevice", o)
	if err != nil {
		return nil, fmt.Errorf("webgpu: requestDevice: %w", err)
	}
	return newDevice(v, a), nil
}

// setList lists a setlike (GPUSupportedFeatures, WGSLLanguageFeatures)
// through the iterator protocol, which every implementation has (dawn.node's
// lack the setlike forEach), sorted.
func setList(s js.Value) []string {
	if s.Type() != js.TypeObject {
		return nil
	}
	a := js.Global().Get("Array").Call("from", s)
	out := make([]string, a.Length())
	for i := range out {
		out[i] = a.Index(i).String()
	}
	sort.Strings(out)
	return out
}

func setMap(s js.Value) map[string]bool {
	m := map[string]bool{}
	for _, n := range setList(s) {
		m[n] = true
	}
	return m
}

func str(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

func num(v js.Value) int {
	if v.Type() == js.TypeNumber {
		return v.Int()
	}
	return 0
}
