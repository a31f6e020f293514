package shaders

import (
	"strings"
	"testing"
)

func TestKernels(t *testing.T) {
	for _, k := range All() {
		if len(k.Bindings) == 0 {
			t.Errorf("%s: no bindings parsed", k.Name)
		}
		if !strings.Contains(k.WGSL, "fn "+k.Name+"(") {
			t.Errorf("%s: entry point fn %s not found", k.Name, k.Name)
		}
		src := k.Source(Dot4I8Packed)
		if k.UsesInt8 != strings.Contains(src, "fn idot4") {
			t.Errorf("%s: idot4 prelude mismatch", k.Name)
		}
		if k.UsesStep != strings.Contains(src, "struct Step") {
			t.Errorf("%s: Step prelude mismatch", k.Name)
		}
		if !strings.HasPrefix(strings.TrimSpace(k.WGSL), "// "+k.Name+":") {
			t.Errorf("%s: the file must start with a header comment naming the kernel", k.Name)
		}
		if !strings.Contains(k.WGSL, "Bindings (group 0):") || !strings.Contains(k.WGSL, "Dispatch:") {
			t.Errorf("%s: header comment must document bindings and dispatch", k.Name)
		}
	}
	mv := Get(MatvecQ8)
	want := []BindingType{ReadOnly, ReadOnly, ReadOnly, ReadOnly, ReadWrite}
	for i, b := range mv.Bindings {
		if b.Type != want[i] {
			t.Errorf("matvec_q8 binding %d: %s, want %s", i, b.Type, want[i])
		}
	}
	if strings.Join(mv.Required, ",") != "COLS,ROWS" {
		t.Errorf("matvec_q8 required overrides %v", mv.Required)
	}
	if len(Step{}.Bytes()) != StepSize {
		t.Error("Step size")
	}
	if x, y := MatvecWorkgroups(1<<20, 4); int(x)*int(y) < 1<<18 || x > 65535 {
		t.Errorf("MatvecWorkgroups: %d×%d", x, y)
	}
}
