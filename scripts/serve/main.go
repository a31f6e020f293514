//go:build !js

// Command serve is Ember's static server: the app at /, every bundle of the
// models directory at /models/NAME/, and a generated /models.json catalog.
//
//	go run ./scripts/serve -addr 127.0.0.1:8080 -models DIR [-app build/app]
//
// It prints exactly one line, "ember serve: listening on http://ADDR", once
// it accepts connections. The -fault-* flags reproduce bad networks by hand;
// tests use the server package's Go API instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ember-llm/ember/scripts/serve/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0 picks a free one)")
	models := flag.String("models", "", "directory holding one bundle per subdirectory")
	app := flag.String("app", "build/app", "built app directory (web/ files, sw.js, ember.wasm, wasm_exec.js)")
	corrupt := flag.String("fault-corrupt", "", "comma-separated URL paths served with their middle byte flipped")
	cut := flag.String("fault-cut", "", "comma-separated URL paths whose first response is cut halfway")
	csp := flag.String("csp", "", "Content-Security-Policy to send instead of the default (\"none\": no header)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("ember serve: ")

	srv, err := server.New(server.Options{AppDir: *app, ModelsDir: *models, CSP: *csp})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(*app); err != nil {
		log.Printf("warning: app directory %s: %v (only /models and /models.json will work)", *app, err)
	}
	for _, p := range split(*corrupt) {
		srv.Corrupt(p, middle(*models, p))
	}
	for _, p := range split(*cut) {
		srv.CutHalfway(p, 1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("ember serve: listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// middle is the offset of the middle byte of the file behind a /models/ URL path.
func middle(modelsDir, urlPath string) int64 {
	fi, err := os.Stat(modelsDir + "/" + strings.TrimPrefix(urlPath, "/models/"))
	if err != nil {
		return 0
	}
	return fi.Size() / 2
}
