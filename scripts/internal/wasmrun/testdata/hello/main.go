//go:build js && wasm

// Command hello is wasmrun's test program: it echoes its arguments and
// environment, writes to stderr, reports WebGPU presence and exits with the
// code given by -exit.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall/js"
)

func main() {
	code := flag.Int("exit", 0, "exit code")
	block := flag.Bool("block", false, "block forever")
	flag.Parse()
	if *block {
		select {}
	}
	fmt.Printf("args=%s\n", strings.Join(flag.Args(), ","))
	fmt.Printf("env=%s\n", os.Getenv("WASMRUN_TEST"))
	fmt.Fprintf(os.Stderr, "to stderr ✓\n")
	gpu := js.Global().Get("navigator").Get("gpu")
	fmt.Printf("gpu=%v\n", !gpu.IsUndefined())
	fmt.Print("no newline")
	os.Exit(*code)
}
