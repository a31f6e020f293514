//go:build !js

// Package wasmtests holds the host-side drivers of the js/wasm test programs
// of jsbridge/ and webgpu/ (they live here because wasmrun is internal to
// scripts/): each test builds a program with wasmrun.Build and runs it in
// Deno and/or headless Chromium with SwiftShader WebGPU.
package wasmtests
