//go:build !js

// Package servertest writes small valid bundles for the delivery tests
// (scripts/serve, the service worker, wasm/shards) without the converter.
package servertest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/ember-llm/ember/llama/bundle"
)

// TinyConfig is a valid, very small Llama configuration.
func TinyConfig() bundle.Config {
	return bundle.Config{Architecture: "llama", Dim: 64, HiddenDim: 128, NLayers: 2, NHeads: 4, NKVHeads: 2,
		HeadDim: 16, VocabSize: 32, ContextLength: 64, RopeTheta: 10000, NormEps: 1e-5,
		BOSTokenID: 1, EOSTokenIDs: []int{2}}
}

// WriteBundle writes an f32 bundle of TinyConfig with random weights drawn
// from seed into dir, in shards of at most shardBytes. Different seeds give
// different shard bytes (a new version of the model).
func WriteBundle(dir string, seed uint64, shardBytes int64) (*bundle.Manifest, error) {
	return WriteBundleConfig(dir, TinyConfig(), seed, shardBytes)
}

// WriteBundleConfig is WriteBundle for any config. The weights are random
// bits, not a model anyone would run: the delivery tests only move bytes.
func WriteBundleConfig(dir string, cfg bundle.Config, seed uint64, shardBytes int64) (*bundle.Manifest, error) {
	w, err := bundle.Create(dir, shardBytes)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	shapes := cfg.ExpectedShapes()
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		shape := shapes[n]
		count := 1
		for _, d := range shape {
			count *= d
		}
		buf := make([]byte, 4*count)
		for i := 0; i < count; i++ {
			// Small finite floats: a sign, an exponent near 2^-4 and random mantissa.
			binary.LittleEndian.PutUint32(buf[4*i:], uint32(rng.Uint64())&0x807fffff|0x3d800000)
		}
		if err := w.WriteTensor(bundle.TensorSpec{Name: n, DType: bundle.F32, Shape: shape}, bytes.NewReader(buf)); err != nil {
			w.Abort()
			return nil, err
		}
	}
	pieces := make([]string, cfg.VocabSize)
	for i := range pieces {
		pieces[i] = fmt.Sprintf("t%d", i)
	}
	pieces[0], pieces[1], pieces[2] = "<unk>", "<s>", "</s>"
	m := &bundle.Manifest{Name: "synthetic-tiny", Source: "synthetic test bundle", Config: cfg,
		Tokenizer: bundle.Tokenizer{Kind: bundle.TokenizerSentencePiece, Pieces: pieces,
			BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true},
		Quantization: bundle.Quantization{Scheme: bundle.SchemeF32}}
	if err := w.Commit(m); err != nil {
		return nil, err
	}
	return m, nil
}
