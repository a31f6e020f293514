package convert

import (
	"path/filepath"
	"testing"

	"github.com/ember-llm/ember/llama/bundle"
)

// BenchmarkSyntheticQ8Channel converts the stories15m preset (generate,
// quantize, hash, write); bytes/s is bundle bytes written.
func BenchmarkSyntheticQ8Channel(b *testing.B) {
	src, err := Synthetic("stories15m")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		m, err := Convert(src, nil, Options{Out: filepath.Join(dir, "b"), Quant: bundle.SchemeQ8Channel})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(m.TotalBytes())
	}
}
