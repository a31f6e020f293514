// Package shaders holds Ember's WGSL compute kernels (go:embed) and a pure-Go
// description of each: entry point, bindings (parsed from the WGSL) and
// override constants. It has no syscall/js, so host tests and tools can read
// the sources; webgpu/ and webgpu/engine compile them.
//
// Each kernel lives in <name>.wgsl with its entry point named <name>; the
// file's header comment documents bindings, shapes, overrides and the
// dispatch size. Kernel.Source prepends what the kernel needs: the Step
// uniform struct (step.wgsl) and one implementation of idot4, the packed int8
// dot product, chosen by Int8Dot (dot4I8Packed when the
// packed_4x8_integer_dot_product WGSL language extension is present,
// otherwise the extension-free Bits variant; Unpack4xI8 exists for testing
// and gives identical results).
//
// Data layout (docs/ARCHITECTURE.md, llama/bundle): q8 weights are rows of
// int8 zero-padded to KP = PadQ8(cols), 4 per little-endian u32 (element 0 in
// the low byte); q8_channel scales are f32 [rows], q8_block32 scales f16
// [rows][ceil(cols/32)] read as u32 pairs through unpack2x16float.
// Activations entering int8 kernels are quantized in groups of 32 (scale
// maxabs/127, round half away from zero) like the CPU engine's runq path.
package shaders

import (
	"embed"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Int8Dot selects the implementation of idot4 (packed int8 dot product).
type Int8Dot int

const (
	Dot4I8Packed Int8Dot = iota // dot4I8Packed: needs packed_4x8_integer_dot_product
	Unpack4xI8                  // unpack4xI8 + dot: needs packed_4x8_integer_dot_product
	Bits                        // shifts and dot: core WGSL, always available
)

func (d Int8Dot) String() string {
	switch d {
	case Dot4I8Packed:
		return "dot4I8Packed"
	case Unpack4xI8:
		return "unpack4xI8"
	case Bits:
		return "bits"
	}
	return fmt.Sprintf("Int8Dot(%d)", int(d))
}

// ChooseInt8Dot picks the fastest variant for a device:
// Dot4I8Packed when the WGSL language feature is present, else Bits.
func ChooseInt8Dot(hasPacked4x8 bool) Int8Dot {
	if hasPacked4x8 {
		return Dot4I8Packed
	}
	return Bits
}

func (d Int8Dot) file() string {
	switch d {
	case Unpack4xI8:
		return "int8_unpack.wgsl"
	case Bits:
		return "int8_bits.wgsl"
	}
	return "int8_dot4.wgsl"
}

// BindingType is a WebGPU GPUBufferBindingType string.
type BindingType string

const (
	ReadOnly  BindingType = "read-only-storage"
	ReadWrite BindingType = "storage"
	Uniform   BindingType = "uniform"
)

// Binding is one @group(0) @binding(i) variable of a kernel.
type Binding struct {
	Index int
	Name  string
	Type  BindingType
}

// Kernel describes one compute entry point.
type Kernel struct {
	Name        string    // entry point, and the file <Name>.wgsl
	Bindings    []Binding // in binding order 0..n-1
	Required    []string  // override constants without a default
	Optional    []string  // override constants with a default
	UsesStep    bool      // needs the Step uniform
	UsesInt8    bool      // calls idot4
	UsesCombine bool      // calls attn_combine (attn_combine.wgsl)
	UsesRope    bool      // calls rope_rot (rope.wgsl)
	UsesActQ8   bool      // calls act_q8* (act_q8.wgsl)
	WGSL        string    // the file as stored (without the prelude)
	Workgroup   string    // the @workgroup_size attribute's arguments, as written
}

// Source returns the complete WGSL module for the kernel: its preludes (the
// Step struct, the chosen idot4, the attention combine, RoPE, activation quantization, as used), then
// the kernel file.
func (k *Kernel) Source(d Int8Dot) string {
	var b strings.Builder
	for _, f := range k.preludes(d) {
		b.WriteString(mustRead(f))
		b.WriteByte('\n')
	}
	b.WriteString(k.WGSL)
	return b.String()
}

// PreludeLines is the number of lines Source puts before the kernel file,
// for mapping compilation messages back to <name>.wgsl line numbers.
func (k *Kernel) PreludeLines(d Int8Dot) int {
	n := 0
	for _, f := range k.preludes(d) {
		n += strings.Count(mustRead(f), "\n") + 1
	}
	return n
}

// preludes lists the files Source puts before the kernel.
func (k *Kernel) preludes(d Int8Dot) []string {
	var out []string
	if k.UsesStep {
		out = append(out, "step.wgsl")
	}
	if k.UsesInt8 {
		out = append(out, d.file())
	}
	if k.UsesCombine {
		out = append(out, "attn_combine.wgsl")
	}
	if k.UsesRope {
		out = append(out, "rope.wgsl")
	}
	if k.UsesActQ8 {
		out = append(out, "act_q8.wgsl")
	}
	return out
}

// Names of the kernels.
const (
	MatvecQ8     = "matvec_q8"
	MatvecF32    = "matvec_f32"
	MatmulQ8     = "matmul_q8"
	QuantizeQ8   = "quantize_q8"
	RMSNorm      = "rmsnorm"
	RMSNormQ8    = "rmsnorm_q8"
	KVStore      = "kv_store"
	AttnPartial  = "attn_partial"
	AttnReduce   = "attn_reduce"
	AttnReduceQ8 = "attn_reduce_q8"
	EmbedF32     = "embed_f32"
	EmbedQ8      = "embed_q8"
	Add          = "add"
	SiluMul      = "silu_mul"
	Softmax      = "softmax"
	Argmax       = "argmax"
	Sample       = "sample"
)

var kernels = map[string]*Kernel{}

// Get returns the named kernel; it panics on an unknown name (names are constants).
func Get(name string) *Kernel {
	k, ok := kernels[name]
	if !ok {
		panic("shaders: unknown kernel " + strconv.Quote(name))
	}
	return k
}

// All lists every kernel, sorted by name.
func All() []*Kernel {
	out := make([]*Kernel, 0, len(kernels))
	for _, k := range kernels {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func mustRead(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var (
	bindingRE  = regexp.MustCompile(`@group\(0\)\s*@binding\((\d+)\)\s*var<([a-z_, ]+)>\s*(\w+)`)
	overrideRE = regexp.MustCompile(`(?m)^override\s+(\w+)\s*(?::\s*\w+)?\s*(=)?`)
	wgRE       = regexp.MustCompile(`@workgroup_size\(([^)]*)\)`)
)

func init() {
	names := []string{MatvecQ8, MatvecF32, MatmulQ8, QuantizeQ8, RMSNorm, RMSNormQ8, KVStore, AttnPartial,
		AttnReduce, AttnReduceQ8, EmbedF32, EmbedQ8, Add, SiluMul, Softmax, Argmax, Sample}
	for _, n := range names {
		src := mustRead(n + ".wgsl")
		k := &Kernel{Name: n, WGSL: src}
		for _, m := range bindingRE.FindAllStringSubmatch(src, -1) {
			i, _ := strconv.Atoi(m[1])
			var t BindingType
			switch strings.ReplaceAll(m[2], " ", "") {
			case "storage,read":
				t = ReadOnly
			case "storage,read_write":
				t = ReadWrite
			case "uniform":
				t = Uniform
			default:
				panic(fmt.Sprintf("shaders: %s: unsupported binding %q", n, m[2]))
			}
			k.Bindings = append(k.Bindings, Binding{Index: i, Name: m[3], Type: t})
		}
		sort.Slice(k.Bindings, func(i, j int) bool { return k.Bindings[i].Index < k.Bindings[j].Index })
		for i, b := range k.Bindings {
			if b.Index != i {
				panic(fmt.Sprintf("shaders: %s: bindings are not 0..n-1", n))
			}
		}
		for _, m := range overrideRE.FindAllStringSubmatch(src, -1) {
			if m[2] == "" {
				k.Required = append(k.Required, m[1])
			} else {
				k.Optional = append(k.Optional, m[1])
			}
		}
		if m := wgRE.FindStringSubmatch(src); m != nil {
			k.Workgroup = m[1]
		}
		k.UsesStep = strings.Contains(src, "var<uniform> step: Step")
		k.UsesInt8 = strings.Contains(src, "idot4(")
		k.UsesCombine = strings.Contains(src, "attn_combine(")
		k.UsesRope = strings.Contains(src, "rope_rot(")
		k.UsesActQ8 = strings.Contains(src, "act_q8_")
		kernels[n] = k
	}
}

// StepSize is the byte size of the Step uniform.
const StepSize = 32

// Step is the per-call uniform (step.wgsl) that attention,
// matmul_q8 and sample read.
type Step struct {
	Pos         uint32  // position of the first token of the call
	NTokens     uint32  // tokens in the call
	Temperature float32 // sampling; <= 0 greedy
	TopK        uint32
	TopP        float32
	MinP        float32
	Rand        float32 // uniform in [0, 1)
}

// Bytes encodes the struct as WGSL lays it out (little-endian, 32 bytes).
func (s Step) Bytes() []byte {
	b := make([]byte, StepSize)
	binary.LittleEndian.PutUint32(b[0:], s.Pos)
	binary.LittleEndian.PutUint32(b[4:], s.NTokens)
	binary.LittleEndian.PutUint32(b[8:], math.Float32bits(s.Temperature))
	binary.LittleEndian.PutUint32(b[12:], s.TopK)
	binary.LittleEndian.PutUint32(b[16:], math.Float32bits(s.TopP))
	binary.LittleEndian.PutUint32(b[20:], math.Float32bits(s.MinP))
	binary.LittleEndian.PutUint32(b[24:], math.Float32bits(s.Rand))
	return b
}

// RopeTable fills cs with the (cos, sin) pairs attn_partial reads for
// positions [pos, pos+T): cs[(t·half + i)·2 + {0,1}] = cos/sin((pos+t)·invFreq[i]),
// computed in float64 and rounded to f32 exactly like the CPU engine's tables.
// len(cs) must be at least 2·T·len(invFreq).
func RopeTable(cs []float32, invFreq []float64, pos, T int) {
	half := len(invFreq)
	for t := 0; t < T; t++ {
		p := float64(pos + t)
		for i, f := range invFreq {
			sn, c := math.Sincos(p * f)
			cs[(t*half+i)*2] = float32(c)
			cs[(t*half+i)*2+1] = float32(sn)
		}
	}
}

// SampleOverflow is the id sample writes when the host must sample on the CPU.
const SampleOverflow = 0xFFFFFFFF

// MatvecConfig returns the rows-per-workgroup (RPW) and workgroup size (WG)
// overrides of matvec_q8 that streamed weights fastest on an H100 under
// Deno/wgpu (docs/PERFORMANCE.md: 2.2–2.3 TB/s for Llama-7B shapes, 2.4–2.6
// TB/s for the fused SwiGLU, where RPW 2 with WG 128 is a little faster).
func MatvecConfig(rows, cols int) (rpw, wg int) {
	return 4, 256
}

// MatvecWorkgroups returns the (x, y) workgroup counts for ceil(rows/rpw)
// workgroups within the 65535-per-dimension limit.
func MatvecWorkgroups(rows, rpw int) (x, y uint32) {
	n := (rows + rpw - 1) / rpw
	if n <= 65535 {
		return uint32(n), 1
	}
	y = uint32((n + 65534) / 65535)
	x = uint32((n + int(y) - 1) / int(y))
	return x, y
}
