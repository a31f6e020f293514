package llama

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
)

// Benchmark shapes: llama2.c's TinyStories models.
var benchConfigs = map[string]bundle.Config{
	"stories15m": {Architecture: "llama", Dim: 288, HiddenDim: 768, NLayers: 6, NHeads: 6, NKVHeads: 6, HeadDim: 48,
		VocabSize: 32000, ContextLength: 256, RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true, BOSTokenID: 1, EOSTokenIDs: []int{2}},
	"stories110m": {Architecture: "llama", Dim: 768, HiddenDim: 2048, NLayers: 12, NHeads: 12, NKVHeads: 12, HeadDim: 64,
		VocabSize: 32000, ContextLength: 1024, RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true, BOSTokenID: 1, EOSTokenIDs: []int{2}},
}

// fastWeights is randomWeights with a cheap generator (uniform, same
// variance), fast enough for 110M parameters.
func fastWeights(c bundle.Config, seed uint64) map[string][]float32 {
	w := map[string][]float32{}
	x := seed*0x9E3779B97F4A7C15 + 1
	shapes := c.ExpectedShapes()
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		shape := shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		amp := float32(math.Sqrt(3))
		if len(shape) == 2 && name != bundle.TokEmbeddings && name != bundle.Output {
			amp /= float32(math.Sqrt(float64(shape[1])))
		}
		for i := range v {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			u := float32(x>>40)/float32(1<<24)*2 - 1
			if len(shape) == 1 {
				v[i] = 1 + 0.2*u
			} else {
				v[i] = amp * u
			}
		}
		w[name] = v
	}
	return w
}

var benchDirs sync.Map // shape/scheme → bundle dir, shared by the benchmarks of one run

func benchModel(b *testing.B, shape, scheme string) *Model {
	b.Helper()
	if testing.Short() {
		b.Skip("benchmark bundles are large; not in -short mode")
	}
	key := shape + "/" + scheme
	dir, ok := benchDirs.Load(key)
	if !ok {
		root := filepath.Join(os.TempDir(), fmt.Sprintf("ember-llama-bench-%d", os.Getpid()))
		c := benchConfigs[shape]
		dir = writeBundle(b, filepath.Join(root, shape), c, fastWeights(c, 1), scheme)
		benchDirs.Store(key, dir)
		runtime.GC()
	}
	b.Cleanup(func() {})
	m, err := LoadDir(dir.(string))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkDecode: tok/s of one-token Eval calls from position 0 to 127
// (the KV cache grows as in generation).
// BenchmarkPrefill: tok/s of one 128-token Eval.
func BenchmarkDecode(b *testing.B)  { benchAll(b, false) }
func BenchmarkPrefill(b *testing.B) { benchAll(b, true) }

// EMBER_LLAMA_PUREGO=1 benchmarks the pure Go kernels (what js/wasm runs)
// on a machine that has AVX2.
func benchAll(b *testing.B, prefill bool) {
	if os.Getenv("EMBER_LLAMA_PUREGO") != "" && useAVX2 {
		useAVX2 = false
		defer func() { useAVX2 = true }()
	}
	ctx := context.Background()
	const n = 128
	toks := testTokens(n, 32000)
	for _, shape := range []string{"stories15m", "stories110m"} {
		for _, scheme := range []string{bundle.SchemeF32, bundle.SchemeQ8Channel, bundle.SchemeQ8Block32} {
			acts := []bool{true}
			if scheme != bundle.SchemeF32 {
				acts = []bool{true, false}
			}
			for _, qa := range acts {
				for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
					name := fmt.Sprintf("%s/%s/threads=%d", shape, scheme, threads)
					if scheme != bundle.SchemeF32 {
						name = fmt.Sprintf("%s/%s-act=%s/threads=%d", shape, scheme, map[bool]string{true: "q8", false: "f32"}[qa], threads)
					}
					b.Run(name, func(b *testing.B) {
						m := benchModel(b, shape, scheme)
						m.SetThreads(threads)
						m.SetQuantizedActivations(qa)
						runtime.GC()
						b.ResetTimer()
						cpu0 := cpuTime()
						for i := 0; i < b.N; i++ {
							if prefill {
								if _, err := m.Eval(ctx, toks, 0); err != nil {
									b.Fatal(err)
								}
								continue
							}
							for pos, tok := range toks {
								if _, err := m.Eval(ctx, []int{tok}, pos); err != nil {
									b.Fatal(err)
								}
							}
						}
						b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
						if cpu := cpuTime() - cpu0; cpu > 0 {
							b.ReportMetric(float64(n*b.N)/cpu.Seconds(), "tok/cpu-s")
						}
					})
				}
			}
		}
	}
}
