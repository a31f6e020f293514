//go:build !js

package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ember-llm/ember/scripts/serve/server"
	"github.com/ember-llm/ember/scripts/serve/servertest"
)

func setup(t *testing.T) (*server.Server, *httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	_, err := servertest.WriteBundle(filepath.Join(models, "tiny"), 1, 64<<10)
	require.NoError(t, err)
	app := filepath.Join(dir, "app")
	require.NoError(t, os.MkdirAll(app, 0o755))
	for name, body := range map[string]string{"index.html": "<!doctype html>hi", "app.js": "1", "ember.wasm": "\x00asm", "wasm_exec.js": "x"} {
		require.NoError(t, os.WriteFile(filepath.Join(app, name), []byte(body), 0o644))
	}
	srv, err := server.New(server.Options{AppDir: app, ModelsDir: models})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts, models
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHeadersAndCatalog(t *testing.T) {
	_, ts, models := setup(t)
	for path, ct := range map[string]string{
		"/":                          "text/html; charset=utf-8",
		"/app.js":                    "text/javascript; charset=utf-8",
		"/ember.wasm":                "application/wasm",
		"/models.json":               "application/json",
		"/models/tiny/manifest.json": "application/json",
		"/sw.js":                     "text/javascript; charset=utf-8",
	} {
		resp, _ := get(t, ts.URL+path)
		require.Equal(t, 200, resp.StatusCode, path)
		require.Equal(t, ct, resp.Header.Get("Content-Type"), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "'wasm-unsafe-eval'", path)
	}
	resp, body := get(t, ts.URL+"/sw.js")
	require.Equal(t, "/", resp.Header.Get("Service-Worker-Allowed"))
	require.NotContains(t, string(body), "__EMBER_APP_VERSION__")
	require.Contains(t, string(body), `"ember.wasm"`)

	_, body = get(t, ts.URL+"/models.json")
	var cat struct{ Models []server.CatalogEntry }
	require.NoError(t, json.Unmarshal(body, &cat))
	require.Len(t, cat.Models, 1)
	e := cat.Models[0]
	require.Equal(t, "tiny", e.Name)
	require.Equal(t, "/models/tiny/", e.URL)
	require.True(t, e.Synthetic)
	require.Equal(t, "f32", e.Quantization)
	require.Equal(t, 64, e.Config.Dim)
	require.Greater(t, e.Shards, 2)

	// Range requests and the shard ETag.
	shard, err := os.ReadFile(filepath.Join(models, "tiny", "shard-00001.bin"))
	require.NoError(t, err)
	resp, body = get(t, ts.URL+"/models/tiny/shard-00001.bin", "Range", "bytes=100-")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, shard[100:], body)
	sum := sha256.Sum256(shard)
	require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, resp.Header.Get("ETag"))

	for _, bad := range []string{"/models/../models/tiny/manifest.json", "/models/tiny/../../etc/passwd", "/models/tiny", "/.hidden", "/models/tiny/nope.bin"} {
		resp, _ := get(t, ts.URL+bad)
		require.Equal(t, 404, resp.StatusCode, bad)
	}
}

func TestFaults(t *testing.T) {
	srv, ts, models := setup(t)
	p := "/models/tiny/shard-00000.bin"
	good, err := os.ReadFile(filepath.Join(models, "tiny", "shard-00000.bin"))
	require.NoError(t, err)

	srv.Corrupt(p, 10)
	_, body := get(t, ts.URL+p)
	require.Len(t, body, len(good))
	require.Equal(t, good[10]^0xff, body[10])
	require.Equal(t, good[11:], body[11:])
	srv.Uncorrupt(p)
	_, body = get(t, ts.URL+p)
	require.Equal(t, good, body)

	srv.CutHalfway(p, 1)
	resp, err := http.Get(ts.URL + p)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Error(t, err, "a cut response must fail mid-body")
	require.Less(t, len(b), len(good))
	_, body = get(t, ts.URL+p)
	require.Equal(t, good, body, "only the first response is cut")
	require.Equal(t, 4, srv.Requests(p))

	srv.SetOffline(true)
	_, err = http.Get(ts.URL + "/models.json")
	require.Error(t, err)
	srv.SetOffline(false)
	require.True(t, strings.HasPrefix(ts.URL, "http://127.0.0.1"))
}
