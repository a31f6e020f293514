//go:build js && wasm

// Command kerneltest runs every WGSL kernel of shaders/ on the WebGPU device
// of the JS runtime (headless Chromium with SwiftShader, or Deno) against a Go
// reference on fresh random inputs, including sizes that are not multiples
// of the workgroup or of 32, for each int8 dot-product variant the device
// supports. It prints one line per case and exits 1 on any failure.
// scripts/internal/wasmrun/wasmtests/kernels_test.go drives it.
//
// Tolerances: f32 results within 1e-5 relative to the magnitude of the sum
// that produced them; int8 dot products exact (checked with unit scales,
// where any rounding would show); quantized activations exact up to ±1 at
// rounding ties.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ember-llm/ember/shaders"
	"github.com/ember-llm/ember/webgpu"
)

var verbose = flag.Bool("v", false, "print progress within cases")

type env struct {
	ctx     context.Context
	dev     *webgpu.Device
	variant shaders.Int8Dot
	rng     *rand.Rand
	fails   int
	filter  *regexp.Regexp
	modules map[string]*webgpu.ShaderModule
	layouts map[string]*webgpu.BindGroupLayout
	plays   map[string]*webgpu.PipelineLayout
	pipes   map[string]*webgpu.ComputePipeline
	bufs    []*webgpu.Buffer
}

func main() {
	variants := flag.String("variants", "all", "int8 dot variants: dot4,unpack,bits or all (those the device supports)")
	run := flag.String("run", "", "regexp selecting test cases")
	seed := flag.Uint64("seed", 0, "random seed (0: time)")
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	gpu, err := webgpu.Get()
	if err != nil {
		fmt.Println("FAIL setup:", err)
		os.Exit(1)
	}
	ad, err := gpu.RequestAdapter(ctx, webgpu.AdapterOptions{PowerPreference: "high-performance"})
	if err != nil {
		fmt.Println("FAIL setup:", err)
		os.Exit(1)
	}
	dev, err := ad.RequestDevice(ctx, nil)
	if err != nil {
		fmt.Println("FAIL setup:", err)
		os.Exit(1)
	}
	packed := dev.HasWGSLLanguageFeature(ctx, webgpu.LangPacked4x8IntegerDotProduct)
	fmt.Printf("adapter: %s; wgsl features %v; device features %v; maxStorageBufferBindingSize %d; seed %d\n",
		ad.Info, gpu.WGSLLanguageFeatures(), keys(dev.Features), dev.Limits.MaxStorageBufferBindingSize, *seed)
	var vs []shaders.Int8Dot
	for _, v := range strings.Split(*variants, ",") {
		switch v {
		case "all":
			vs = []shaders.Int8Dot{shaders.Bits}
			if packed {
				vs = []shaders.Int8Dot{shaders.Dot4I8Packed, shaders.Unpack4xI8, shaders.Bits}
			}
		case "dot4":
			vs = append(vs, shaders.Dot4I8Packed)
		case "unpack":
			vs = append(vs, shaders.Unpack4xI8)
		case "bits":
			vs = append(vs, shaders.Bits)
		}
	}
	e := &env{ctx: ctx, dev: dev, rng: rand.New(rand.NewPCG(*seed, 1)), filter: regexp.MustCompile(*run),
		modules: map[string]*webgpu.ShaderModule{}, layouts: map[string]*webgpu.BindGroupLayout{}, plays: map[string]*webgpu.PipelineLayout{},
		pipes: map[string]*webgpu.ComputePipeline{}}
	e.wrapperTests()
	for i, v := range vs {
		e.variant = v
		e.int8Tests(i == 0)
		if i == 0 {
			e.floatTests()
		}
	}
	for _, err := range dev.TakeUncapturedErrors() {
		e.fails++
		fmt.Println("FAIL uncaptured GPU error:", err)
	}
	dev.Destroy()
	e.check("wrapper/device-lost", func() error {
		select {
		case <-dev.Lost():
		case <-time.After(5 * time.Second):
			return errors.New("device.lost did not resolve after destroy()")
		}
		if !errors.Is(dev.Err(), webgpu.ErrDeviceLost) {
			return fmt.Errorf("Err() = %v, want ErrDeviceLost", dev.Err())
		}
		if _, err := dev.CreateBuffer(webgpu.BufferDescriptor{Size: 16, Usage: webgpu.BufferStorage}); !errors.Is(err, webgpu.ErrDeviceLost) {
			return fmt.Errorf("CreateBuffer after loss: %v", err)
		}
		return nil
	})
	fmt.Printf("done in %v: %d failures\n", time.Since(start).Round(time.Millisecond), e.fails)
	if e.fails > 0 {
		os.Exit(1)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// check runs one named case; f returns an error describing a mismatch.
func (e *env) check(name string, f func() error) {
	if !e.filter.MatchString(name) {
		return
	}
	t0 := time.Now()
	err := f()
	for _, b := range e.bufs {
		b.Destroy()
	}
	e.bufs = nil
	if err != nil {
		e.fails++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok   %s (%v)\n", name, time.Since(t0).Round(time.Millisecond))
}
