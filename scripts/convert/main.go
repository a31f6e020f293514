//go:build !js

// Command convert turns a checkpoint into an Ember bundle (docs/FORMAT.md),
// writes synthetic bundles for tests and benchmarks, and verifies bundles.
//
//	convert -in PATH [-tokenizer PATH] -out DIR [-quant f32|q8_channel|q8_block32] [-shard-mib N] [-sign-key FILE]
//	convert -synthetic PRESET -out DIR [-quant …] [-shard-mib N] [-sign-key FILE]
//	convert -verify DIR [-public-key KEY]
//	convert -gen-key FILE
//
// PATH is a .gguf file, a HuggingFace model directory (config.json +
// safetensors) or a llama2.c checkpoint (legacy or version 1/2).
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/convert"
	"github.com/ember-llm/ember/tokenizer"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "convert:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	in := fs.String("in", "", "checkpoint: a .gguf file, a HuggingFace directory (config.json) or a llama2.c .bin")
	tokPath := fs.String("tokenizer", "", "tokenizer.model, llama2.c tokenizer.bin or tokenizer.json (default: the checkpoint's own)")
	out := fs.String("out", "", "bundle directory to write (replaced atomically)")
	q := fs.String("quant", bundle.SchemeQ8Channel, "weight scheme: f32, q8_channel or q8_block32")
	shardMiB := fs.Int("shard-mib", bundle.DefaultShardBytes>>20, "maximum shard size in MiB")
	synthetic := fs.String("synthetic", "", "write random weights of a preset: "+strings.Join(convert.SyntheticPresets(), ", "))
	verify := fs.String("verify", "", "re-hash every shard of this bundle and check its manifest")
	signKey := fs.String("sign-key", "", "Ed25519 private key (PEM PKCS#8) to sign manifest.json with")
	pubKey := fs.String("public-key", "", "with -verify: also check manifest.json.sig against this public key (base64 or PEM)")
	genKey := fs.String("gen-key", "", "write a new Ed25519 signing key to this file and print its public key")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage:\n  convert -in PATH [-tokenizer PATH] -out DIR [-quant f32|q8_channel|q8_block32] [-shard-mib N] [-sign-key FILE]\n  convert -synthetic PRESET -out DIR [-quant ...]\n  convert -verify DIR [-public-key KEY]\n  convert -gen-key FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case *genKey != "":
		return generateKey(*genKey)
	case *verify != "":
		return verifyBundle(*verify, *pubKey)
	}
	if *out == "" || (*in == "") == (*synthetic == "") {
		fs.Usage()
		return errors.New("give -out DIR and exactly one of -in PATH or -synthetic PRESET")
	}
	if *shardMiB <= 0 || *shardMiB > 1<<14 {
		return fmt.Errorf("-shard-mib %d is out of range (1..16384)", *shardMiB)
	}
	opts := convert.Options{Out: *out, Quant: *q, ShardBytes: int64(*shardMiB) << 20, Progress: os.Stderr}
	if *signKey != "" {
		k, err := bundle.LoadPrivateKey(*signKey)
		if err != nil {
			return err
		}
		opts.SignKey = k
	}
	var src convert.Source
	var tok *bundle.Tokenizer
	var err error
	if *synthetic != "" {
		src, err = convert.Synthetic(*synthetic)
		opts.Name, opts.Source = "synthetic-"+*synthetic, "synthetic"
	} else {
		src, err = convert.Open(*in)
		opts.Name, opts.Source = modelName(*in), filepath.Base(filepath.Clean(*in))
	}
	if err != nil {
		return err
	}
	defer src.Close()
	if *tokPath != "" {
		cfg := src.Config()
		tok, err = tokenizer.LoadFile(*tokPath, cfg.VocabSize)
		if err != nil {
			return err
		}
	}
	stop := removeTempOnInterrupt(*out)
	defer stop()
	m, err := convert.Convert(src, tok, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %s, %d tensors, %d shards, %.1f MiB\n", *out, m.Quantization.Scheme,
		len(m.Tensors), len(m.Shards), float64(m.TotalBytes())/(1<<20))
	return nil
}

func verifyBundle(dir, pub string) error {
	b, err := bundle.Open(dir)
	if err != nil {
		return err
	}
	if err := b.Verify(); err != nil {
		return err
	}
	if pub != "" {
		if data, err := os.ReadFile(pub); err == nil {
			pub = string(data)
		}
		k, err := bundle.ParsePublicKey(pub)
		if err != nil {
			return err
		}
		if err := b.VerifySignature(k); err != nil {
			return err
		}
	}
	fmt.Printf("%s: OK (%d shards, %d tensors, %.1f MiB)\n", dir, len(b.Manifest.Shards), len(b.Manifest.Tensors),
		float64(b.Manifest.TotalBytes())/(1<<20))
	return nil
}

func generateKey(path string) error {
	priv, pub, err := bundle.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(pub)
	return nil
}

// removeTempOnInterrupt makes Ctrl-C remove the bundle writer's temporary
// directory (.NAME.tmp-* beside the destination) before exiting, so an
// interrupted conversion leaves nothing behind.
func removeTempOnInterrupt(out string) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-ch; !ok {
			return
		}
		out = filepath.Clean(out)
		tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*"))
		for _, t := range tmps {
			if !strings.HasSuffix(t, ".old") { // a replaced bundle being moved aside: keep it
				os.RemoveAll(t)
			}
		}
		fmt.Fprintln(os.Stderr, "\nconvert: interrupted; nothing written to", out)
		os.Exit(130)
	}()
	return func() { signal.Stop(ch); close(ch) }
}

// modelName is the manifest name for an input path: its base name without a
// checkpoint extension (a HuggingFace directory such as Llama-3.2-1B keeps
// its dots).
func modelName(in string) string {
	base := filepath.Base(filepath.Clean(in))
	for _, ext := range []string{".gguf", ".bin", ".safetensors"} {
		if len(base) > len(ext) && strings.EqualFold(base[len(base)-len(ext):], ext) {
			return base[:len(base)-len(ext)]
		}
	}
	return base
}
