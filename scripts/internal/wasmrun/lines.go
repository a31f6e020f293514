//go:build !js

package wasmrun

import "bytes"

// LineWriter is an Options.Stdout that calls Fn with each complete line the
// program writes (without the newline), for callers that read a line
// protocol from the program.
type LineWriter struct {
	Fn  func(line []byte)
	buf bytes.Buffer
}

func (w *LineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append([]byte(nil), w.buf.Next(i + 1)[:i]...)
		w.Fn(line)
	}
}
