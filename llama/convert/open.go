package convert

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Open detects the checkpoint kind from the path: a .gguf file (OpenGGUF),
// a directory holding config.json (a HuggingFace model, OpenHF), else a
// llama2.c checkpoint (its magic or legacy header decides the version).
func Open(path string) (Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "config.json")); err != nil {
			return nil, fmt.Errorf("convert: %s is a directory without config.json: not a HuggingFace model", path)
		}
		return OpenHF(path)
	}
	if strings.EqualFold(filepath.Ext(path), ".gguf") {
		return OpenGGUF(path)
	}
	return OpenLlama2C(path)
}
