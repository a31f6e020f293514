//go:build js && wasm

// Command probe drives wasm/shards from a test page: globalThis.emberProbe
// {open(url, opts), list(), del(url)}, each returning a Promise of a JSON
// string. The delivery end-to-end tests (serviceworker/e2e_test.go) use it
// until they can compare generations through the real wasm entry.
package main

import (
	"context"
	"encoding/json"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/wasm/shards"
)

type shardResult struct {
	File   string `json:"file"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

type openResult struct {
	Version   string            `json:"version"`
	Offline   bool              `json:"offline"`
	Persisted bool              `json:"persisted"`
	Complete  bool              `json:"complete"`
	Shards    []shardResult     `json:"shards"`
	Progress  []shards.Progress `json:"progress"`
	// Milliseconds spent in Open, Download (when asked) and reading every shard back.
	OpenMS     float64 `json:"open_ms"`
	DownloadMS float64 `json:"download_ms"`
	ReadMS     float64 `json:"read_ms"`
}

func open(url string, o js.Value) (any, error) {
	ctx := context.Background()
	opt := shards.Options{}
	if o.Truthy() {
		if k := o.Get("publicKey"); k.Type() == js.TypeString {
			pub, err := bundle.ParsePublicKey(k.String())
			if err != nil {
				return nil, err
			}
			opt.PublicKey = pub
		}
		if p := o.Get("parallel"); p.Type() == js.TypeNumber {
			opt.Parallel = p.Int()
		}
		opt.NoStore = o.Get("noStore").Truthy()
	}
	var res openResult
	opt.Progress = func(p shards.Progress) { res.Progress = append(res.Progress, p) }
	ms := func(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
	t0 := time.Now()
	m, l, err := shards.Open(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	res.OpenMS = ms(t0)
	res.Version, res.Offline, res.Persisted = l.Version, l.Offline, l.Persisted
	if o.Truthy() && o.Get("download").Truthy() {
		t0 = time.Now()
		if err := l.Download(ctx); err != nil {
			return nil, err
		}
		res.DownloadMS = ms(t0)
	}
	noHash := o.Truthy() && o.Get("noHash").Truthy()
	t0 = time.Now()
	for i, s := range m.Shards {
		data, err := l.Shard(ctx, i, nil)
		if err != nil {
			return nil, err
		}
		r := shardResult{File: s.File, Bytes: data.Get("byteLength").Int()}
		if !noHash {
			if r.SHA256, err = shards.SHA256(ctx, data); err != nil {
				return nil, err
			}
		}
		res.Shards = append(res.Shards, r)
	}
	res.ReadMS = ms(t0)
	res.Complete = l.Complete()
	return marshal(res)
}

func marshal(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func main() {
	p := js.Global().Get("Object").New()
	p.Set("open", js.FuncOf(func(_ js.Value, args []js.Value) any {
		url, o := args[0].String(), js.Undefined()
		if len(args) > 1 {
			o = args[1]
		}
		return jsbridge.Promise(func() (any, error) { return open(url, o) })
	}))
	p.Set("list", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return jsbridge.Promise(func() (any, error) {
			ms, err := shards.List(context.Background())
			if err != nil {
				return nil, err
			}
			return marshal(ms)
		})
	}))
	p.Set("del", js.FuncOf(func(_ js.Value, args []js.Value) any {
		url := args[0].String()
		return jsbridge.Promise(func() (any, error) { return nil, shards.Delete(context.Background(), url) })
	}))
	js.Global().Set("emberProbe", p)
	js.Global().Call("dispatchEvent", js.Global().Get("Event").New("ember-probe-ready"))
	select {}
}
