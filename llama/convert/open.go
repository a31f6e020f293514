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
		return openHF(path)
	}
	if strings.EqualFold(filepath.Ext(path), ".gguf") {
		return openGGUF(path)
	}
	return OpenLlama2C(path)
}

// TODO(convert): call OpenGGUF / OpenHF once gguf_source.go and hf_source.go land.
func openGGUF(path string) (Source, error) {
	return nil, fmt.Errorf("convert: %s: GGUF input is not available in this build yet", path)
}

func openHF(path string) (Source, error) {
	return nil, fmt.Errorf("convert: %s: HuggingFace input is not available in this build yet", path)
}
