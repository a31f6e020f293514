package jsbridge_test

import (
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWasmBuildTags keeps syscall/js out of the host build: every .go file
// under jsbridge/, webgpu/ and wasm/ must carry a build constraint that is
// true for js/wasm and false on the host (like hack-pad/go-indexeddb's
// wasm_tags_test.go). Host-side _test.go files that do not import
// syscall/js (drivers that only build and run wasm programs, or read files)
// are exempt, as is testdata/. shaders/ is pure Go (embed) and not checked.
func TestWasmBuildTags(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, dir := range []string{"../jsbridge", "../webgpu", "../wasm"} {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
			var expr constraint.Expr
			for _, cg := range f.Comments {
				if cg.Pos() > f.Package {
					break
				}
				for _, c := range cg.List {
					if constraint.IsGoBuild(c.Text) {
						if expr, err = constraint.Parse(c.Text); err != nil {
							t.Errorf("%s: bad constraint %q: %v", path, c.Text, err)
						}
					}
				}
			}
			importsJS := false
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); p == "syscall/js" {
					importsJS = true
				}
			}
			checked++
			if strings.HasSuffix(path, "_test.go") && !importsJS && expr == nil {
				return nil // host-side driver test
			}
			wasmOnly := expr != nil &&
				expr.Eval(func(tag string) bool { return tag == "js" || tag == "wasm" }) &&
				!expr.Eval(func(tag string) bool { return tag == "linux" || tag == "amd64" || tag == "unix" }) &&
				!expr.Eval(func(tag string) bool { return tag == "darwin" || tag == "arm64" || tag == "unix" }) &&
				!expr.Eval(func(tag string) bool { return tag == "windows" || tag == "amd64" })
			if !wasmOnly {
				t.Errorf("%s lacks the //go:build js && wasm constraint", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no files checked: run from the jsbridge directory")
	}
}
