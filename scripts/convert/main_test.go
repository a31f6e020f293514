//go:build !js

package main

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/hffixture"
	"github.com/stretchr/testify/require"
)

func models(t *testing.T) string {
	dir := os.Getenv("EMBER_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "stories260K", "stories260K.bin")); err != nil {
		t.Skipf("real model data not found (set EMBER_MODELS to the shared models directory): %v", err)
	}
	return filepath.Join(dir, "stories260K")
}

func TestConvertVerify(t *testing.T) {
	m := models(t)
	out := filepath.Join(t.TempDir(), "stories260K")
	require.NoError(t, run([]string{"-in", filepath.Join(m, "stories260K.bin"), "-tokenizer", filepath.Join(m, "tok512.bin"),
		"-out", out, "-quant", "q8_block32", "-shard-mib", "1"}))
	require.NoError(t, run([]string{"-verify", out}))

	b, err := bundle.Open(out)
	require.NoError(t, err)
	require.Equal(t, "stories260K", b.Manifest.Name)
	p := b.ShardPath(0)
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	raw[1000] ^= 0x10
	require.NoError(t, os.WriteFile(p, raw, 0o644))
	err = run([]string{"-verify", out})
	require.Error(t, err)
	require.Contains(t, err.Error(), "shard-00000.bin")
}

func TestSyntheticSigned(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	require.NoError(t, run([]string{"-gen-key", key}))
	priv, err := bundle.LoadPrivateKey(key)
	require.NoError(t, err)
	pub := bundle.FormatPublicKey(priv.Public().(ed25519.PublicKey))
	out := filepath.Join(dir, "tiny")
	require.NoError(t, run([]string{"-synthetic", "tiny", "-out", out, "-quant", "q8_channel", "-sign-key", key}))
	require.NoError(t, run([]string{"-verify", out, "-public-key", pub}))
	b, err := bundle.Open(out)
	require.NoError(t, err)
	require.Equal(t, "synthetic-tiny", b.Manifest.Name)
	require.Equal(t, "synthetic", b.Manifest.Source)

	// Re-converting unsigned replaces the signature too: -verify with the key fails.
	require.NoError(t, run([]string{"-synthetic", "tiny", "-out", out}))
	err = run([]string{"-verify", out, "-public-key", pub})
	require.ErrorIs(t, err, bundle.ErrSignature)
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-out", dir}, "exactly one of -in"},
		{[]string{"-synthetic", "nope", "-out", filepath.Join(dir, "x")}, "unknown synthetic preset"},
		{[]string{"-synthetic", "tiny", "-out", filepath.Join(dir, "x"), "-quant", "q4"}, "scheme"},
		{[]string{"-synthetic", "tiny", "-out", filepath.Join(dir, "x"), "-shard-mib", "0"}, "-shard-mib"},
		{[]string{"-in", filepath.Join(dir, "missing.bin"), "-out", filepath.Join(dir, "x")}, "missing.bin"},
		{[]string{"-verify", filepath.Join(dir, "none")}, "manifest.json"},
	} {
		err := run(c.args)
		require.Error(t, err, c.args)
		require.True(t, strings.Contains(err.Error(), c.want), "%v: %v", c.args, err)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestModelName(t *testing.T) {
	for in, want := range map[string]string{
		"/m/stories260K.bin": "stories260K", "x/Llama-3.2-1B/": "Llama-3.2-1B", "tiny.GGUF": "tiny", "model": "model",
	} {
		require.Equal(t, want, modelName(in), in)
	}
}

// Input kind is detected from the path: .gguf, an HF directory, llama2.c.
func TestDetectInputs(t *testing.T) {
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf-model")
	_, err := hffixture.Write(hf, hffixture.Tiny(), 1)
	require.NoError(t, err)
	out := filepath.Join(dir, "from-hf")
	require.NoError(t, run([]string{"-in", hf, "-out", out, "-quant", "q8_block32"}))
	require.NoError(t, run([]string{"-verify", out}))
	b, err := bundle.Open(out)
	require.NoError(t, err)
	require.Equal(t, "hf-model", b.Manifest.Name)

	m := models(t)
	out = filepath.Join(dir, "from-gguf")
	require.NoError(t, run([]string{"-in", filepath.Join(m, "stories260K.gguf"), "-out", out, "-quant", "f32"}))
	require.NoError(t, run([]string{"-verify", out}))
	b, err = bundle.Open(out)
	require.NoError(t, err)
	require.Len(t, b.Manifest.Tokenizer.Pieces, 512, "the GGUF's own tokenizer")

	// A llama2.c checkpoint without -tokenizer: a clear error, nothing written.
	err = run([]string{"-in", filepath.Join(m, "stories260K.bin"), "-out", filepath.Join(dir, "x")})
	require.ErrorContains(t, err, "-tokenizer")
	_, err = os.Stat(filepath.Join(dir, "x"))
	require.True(t, os.IsNotExist(err))
}
