//go:build !js

package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/llama/bundle"
)

// tooLargeModel is a bundle with a Llama-2-7B-shaped manifest (about 6.3
// GiB of int8 shards) whose shards do not exist: the CPU fallback must refuse
// it from the manifest alone. It sorts after html-token, so it never becomes
// the catalog's first model for the other tests.
const tooLargeModel = "llama2-7b-too-large"

// maxCPUModelBytes mirrors wasm.MaxCPUModelBytes (package main, js/wasm only).
const maxCPUModelBytes = 1536 << 20

// tooLargeManifest lays out every tensor of a Llama-2-7B config as
// bundle.Writer would (q8_channel, 64 MiB shards, 256-byte aligned offsets,
// tensors larger than a shard split at row boundaries), with made-up but
// well-formed shard SHA-256s.
func tooLargeManifest() *bundle.Manifest {
	cfg := bundle.Config{
		Architecture: "llama", Dim: 4096, HiddenDim: 11008, NLayers: 32, NHeads: 32, NKVHeads: 32, HeadDim: 128,
		VocabSize: 32000, ContextLength: 4096, RopeTheta: 10000, NormEps: 1e-5, BOSTokenID: 1, EOSTokenIDs: []int{2},
	}
	tok, _ := newHTMLSource().Tokenizer() // small and valid; the model never runs
	m := &bundle.Manifest{Format: bundle.FormatName, Version: bundle.FormatVersion, Name: "llama2-7b (manifest only)",
		Source: "test manifest: Llama-2-7B shapes, shards absent", Config: cfg, Tokenizer: *tok,
		Quantization: bundle.Quantization{Scheme: bundle.SchemeQ8Channel}}

	var size int64 // bytes in the current shard
	newShard := func() {
		i := len(m.Shards)
		sum := sha256.Sum256([]byte(fmt.Sprintf("absent shard %d", i)))
		m.Shards = append(m.Shards, bundle.Shard{File: bundle.ShardName(i), SHA256: hex.EncodeToString(sum[:])})
		size = 0
	}
	add := func(t bundle.Tensor) {
		t.Length = bundle.ByteLength(t.DType, t.Shape)
		rb := t.RowBytes()
		if aligned := (size + bundle.Alignment - 1) / bundle.Alignment * bundle.Alignment; len(m.Shards) == 0 || aligned+t.Length > bundle.DefaultShardBytes && size > 0 {
			newShard()
		} else {
			size = aligned
		}
		for left := t.Length; left > 0; {
			if size > 0 && size+rb > bundle.DefaultShardBytes {
				newShard()
			}
			n := min(left, (bundle.DefaultShardBytes-size)/rb*rb)
			t.Parts = append(t.Parts, bundle.Part{Shard: len(m.Shards) - 1, Offset: size, Length: n})
			size += n
			left -= n
			m.Shards[len(m.Shards)-1].Bytes = size
		}
		t.Shard, t.Offset = t.Parts[0].Shard, t.Parts[0].Offset
		if len(t.Parts) == 1 {
			t.Parts = nil
		}
		m.Tensors = append(m.Tensors, t)
	}
	shapes := cfg.ExpectedShapes()
	tensor := func(name string) {
		shape := shapes[name]
		if len(shape) == 1 {
			add(bundle.Tensor{Name: name, DType: bundle.F32, Shape: shape})
			return
		}
		add(bundle.Tensor{Name: name, DType: bundle.Q8, Shape: shape, Scale: name + bundle.ScaleSuffix, GroupSize: shape[1]})
		add(bundle.Tensor{Name: name + bundle.ScaleSuffix, DType: bundle.F32, Shape: shape[:1]})
	}
	tensor(bundle.TokEmbeddings)
	for l := range cfg.NLayers {
		for _, s := range []string{bundle.AttnNorm, bundle.WQ, bundle.WK, bundle.WV, bundle.WO, bundle.FFNNorm, bundle.W1, bundle.W2, bundle.W3} {
			tensor(bundle.LayerTensor(l, s))
		}
	}
	tensor(bundle.FinalNorm)
	tensor(bundle.Output)
	return m
}

// TestModelTooLargeForCPU (issue 7): in Chromium without WebGPU, choosing a
// model larger than the CPU engine's wasm memory shows a plain-words message
// with both sizes, fetches no shard of it, and leaves the page usable: the
// small model is picked next and answers.
func TestModelTooLargeForCPU(t *testing.T) {
	ts, srv, b := serve(t)
	m := tooLargeManifest()
	data, err := m.Marshal()
	require.NoError(t, err)
	_, err = bundle.Parse(data)
	require.NoError(t, err, "the synthetic 7B manifest must be a valid bundle manifest")
	total := m.TotalBytes()
	require.Greater(t, total, int64(maxCPUModelBytes))
	dir := filepath.Join(b.models, tooLargeModel)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.WriteFile(filepath.Join(dir, bundle.ManifestFile), data, 0o644))
	t.Logf("%s: %d tensors in %d shards, %d bytes (%.2f GiB); manifest %d bytes", tooLargeModel, len(m.Tensors), len(m.Shards), total, float64(total)/(1<<30), len(data))

	ctx := browser(t, false)
	start := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?debug&model="+tooLargeModel)))
	// waitFor fails on the error state, which is the expected outcome here.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`["error", "ready"].includes(document.body.dataset.model)`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute))); err != nil {
		t.Fatalf("waiting for the load to end: %v\npage state: %s", err, pageState(ctx))
	}
	t.Logf("refused after %v; page state: %s", time.Since(start).Round(time.Millisecond), pageState(ctx))
	require.Equal(t, "error", eval[string](t, ctx, `document.body.dataset.model`), "a 6 GiB model must not load on the CPU engine")

	msg := eval[string](t, ctx, `document.querySelector('[data-testid=error]').textContent`)
	require.False(t, eval[bool](t, ctx, `document.querySelector('[data-testid=error]').hidden`), "the error line is shown")
	want := fmt.Sprintf("Could not load “%s”: This model is too large for the CPU fallback: it needs %.1f GiB of memory and WebAssembly can hold about %.1f GiB. Use a browser with WebGPU, or a smaller model.",
		tooLargeModel, float64(total)/(1<<30), float64(maxCPUModelBytes)/(1<<30))
	require.Equal(t, want, msg)
	require.Equal(t, "error", eval[string](t, ctx, `document.querySelector('[data-testid=load-progress]').dataset.state`))
	require.Equal(t, tooLargeModel, eval[string](t, ctx, `document.querySelector('[data-testid=model-picker]').value`))

	// Refused from the manifest: not one shard byte was asked for.
	prefix := "/models/" + tooLargeModel + "/"
	// Everything asked for under the bundle's URL but manifest.json(.sig).
	otherRequests := func() int {
		return srv.RequestsWithPrefix(prefix) - srv.Requests(prefix+bundle.ManifestFile) - srv.Requests(prefix+bundle.ManifestFile+".sig")
	}
	require.Positive(t, srv.Requests(prefix+bundle.ManifestFile), "the page read the model's manifest")
	require.Zero(t, otherRequests(), "requests other than the manifest were made for %s (shard 0: %d)", tooLargeModel, srv.Requests(prefix+bundle.ShardName(0)))

	// The page is still usable: pick the small model and chat with it.
	require.False(t, eval[bool](t, ctx, `document.querySelector('[data-testid=model-picker]').disabled`), "the model picker stays enabled")
	eval[bool](t, ctx, `(() => { const p = document.querySelector('[data-testid=model-picker]');
		p.value = `+jsString(b.model)+`; p.dispatchEvent(new Event('change')); return true; })()`)
	waitFor(t, ctx, "the small model to load", `document.body.dataset.model === "ready"`, 2*time.Minute)
	require.True(t, eval[bool](t, ctx, `document.querySelector('[data-testid=error]').hidden`), "the error line is cleared: %s", pageState(ctx))
	require.Contains(t, eval[string](t, ctx, `document.querySelector('[data-testid=backend]').textContent`), "CPU — low-performance mode")
	require.Contains(t, eval[string](t, ctx, `location.search`), "model="+b.model)
	setSettings(t, ctx, "", "0", "1", "0", "8")
	send(t, ctx, "Once upon a time")
	waitFor(t, ctx, "the reply", lastReply+`?.dataset.state === 'done'`, 2*time.Minute)
	t.Logf("reply from %s: %q", b.model, eval[string](t, ctx, lastReply+`.querySelector('.text').textContent`))

	require.Zero(t, otherRequests(), "no request for %s's shards later either", tooLargeModel)
	panel := eval[string](t, ctx, `[...document.querySelectorAll('[data-testid=storage-panel] li')].map(l => l.textContent).join(' | ')`)
	t.Logf("storage panel after the refusal: %s", panel)
	// The service worker kept the refused manifest when it fetched it; the
	// loader forgets it (it holds no shard bytes), so the panel does not list
	// a model that can never load here as "incomplete".
	require.NotContains(t, panel, "manifest only", "the refused model is not listed in storage")
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
