//go:build !js

// Command perplexity scores a text file with a bundle:
//
//	go run ./scripts/perplexity -model DIR -text FILE
//
// The text is encoded with BOS; the last line printed is "perplexity: X",
// exp of the mean negative log-likelihood of every token after BOS. Text
// longer than the context is scored in consecutive context-sized windows.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ember-llm/ember/llama"
	"github.com/ember-llm/ember/tokenizer"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("perplexity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "bundle directory")
	textFile := fs.String("text", "", "text file to score")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *model == "" || *textFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: perplexity -model DIR -text FILE")
		return 2
	}
	text, err := os.ReadFile(*textFile)
	if err != nil {
		fmt.Fprintf(stderr, "perplexity: %v\n", err)
		return 1
	}
	m, err := llama.LoadDir(*model)
	if err != nil {
		fmt.Fprintf(stderr, "perplexity: %v\n", err)
		return 1
	}
	tok, err := tokenizer.New(&m.Manifest().Tokenizer)
	if err != nil {
		fmt.Fprintf(stderr, "perplexity: %v\n", err)
		return 1
	}
	ids := tok.Encode(string(text), tokenizer.EncodeOptions{AddBOS: true})
	t0 := time.Now()
	ppl, n, err := llama.Perplexity(context.Background(), m, ids)
	if err != nil {
		fmt.Fprintf(stderr, "perplexity: %v\n", err)
		return 1
	}
	el := time.Since(t0)
	fmt.Fprintf(stdout, "model: %s (%s)\n", *model, m.Manifest().Quantization.Scheme)
	fmt.Fprintf(stdout, "tokens: %d scored (%.1f tok/s)\n", n, float64(n)/el.Seconds())
	fmt.Fprintf(stdout, "perplexity: %.6f\n", ppl)
	return 0
}
