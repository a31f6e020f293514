//go:build !js

// Command tokenize encodes stdin to token ids, or decodes ids to text.
//
//	go run ./scripts/tokenize -tokenizer PATH [-bos] [-special] < text      # prints ids on one line
//	go run ./scripts/tokenize -tokenizer PATH -decode < ids                 # prints the text
//
// PATH is a tokenizer.model, a llama2.c tokenizer.bin (give -vocab), a
// HuggingFace tokenizer.json, a GGUF file, a bundle's manifest.json, or a
// directory holding one of these. Other tools rely on this interface.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ember-llm/ember/llama/bundle"
	"github.com/ember-llm/ember/llama/gguf"
	"github.com/ember-llm/ember/tokenizer"
)

func main() {
	path := flag.String("tokenizer", "", "tokenizer file or bundle directory (required)")
	bos := flag.Bool("bos", false, "prepend the BOS id")
	special := flag.Bool("special", false, "parse special-token texts such as <s> or <|eot_id|> into their ids")
	decode := flag.Bool("decode", false, "read space-separated ids and print the text")
	vocab := flag.Int("vocab", 0, "vocabulary size, checked against the file (llama2.c tokenizer.bin: default is the number of records)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tokenize -tokenizer PATH [-bos] [-special] [-decode] < input\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *path == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*path, *vocab, *bos, *special, *decode, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tokenize:", err)
		os.Exit(1)
	}
}

func run(path string, vocab int, bos, special, decode bool, in io.Reader, out io.Writer) error {
	bt, err := load(path, vocab)
	if err != nil {
		return err
	}
	tok, err := tokenizer.New(bt)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	if decode {
		fields := strings.Fields(string(data))
		ids := make([]int, len(fields))
		for i, f := range fields {
			id, err := strconv.Atoi(f)
			if err != nil || id < 0 || id >= tok.VocabSize() {
				return fmt.Errorf("input item %d: %q is not a token id (0..%d)", i+1, f, tok.VocabSize()-1)
			}
			ids[i] = id
		}
		w.WriteString(tok.Decode(ids))
		return w.Flush()
	}
	ids := tok.Encode(string(data), tokenizer.EncodeOptions{AddBOS: bos, ParseSpecial: special})
	for i, id := range ids {
		if i > 0 {
			w.WriteByte(' ')
		}
		w.WriteString(strconv.Itoa(id))
	}
	w.WriteByte('\n')
	return w.Flush()
}

func load(path string, vocab int) (*bundle.Tokenizer, error) {
	if strings.HasSuffix(strings.ToLower(path), ".gguf") {
		f, err := gguf.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return tokenizer.FromGGUF(f.Metadata)
	}
	if vocab == 0 && strings.HasSuffix(strings.ToLower(path), ".bin") {
		vocab = llama2cVocab(path)
	}
	return tokenizer.LoadFile(path, vocab)
}

// llama2cVocab counts the records of a llama2.c tokenizer file, which does
// not store its size (0 when the file is unreadable; LoadFile then reports it).
func llama2cVocab(path string) int {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 4 {
		return 0
	}
	n := 0
	for off := 4; off+8 <= len(data); n++ {
		l := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		if l < 0 || off+8+l > len(data) {
			return n + 1 // malformed: let LoadFile say where
		}
		off += 8 + l
	}
	return n
}
