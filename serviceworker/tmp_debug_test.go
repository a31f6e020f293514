//go:build !js

package serviceworker_test

import "testing"

func TestDebugCut(t *testing.T) {
	e := newEnv(t)
	e.load("")
	for _, p := range []string{"/models/tiny/shard-00001.bin", "/probe.wasm"} {
		e.srv.CutHalfway(p, 1)
		dbg, err := e.eval(`(async () => { const r = await fetch('` + p + `', {cache: 'no-store'}); const rd = r.body.getReader(); let got = 0, n = 0; try { for (;;) { const {done, value} = await rd.read(); if (done) break; got += value.length; n++; } return 'done ' + got + ' in ' + n; } catch (e) { return 'error after ' + got + ' in ' + n + ': ' + e; } })()`)
		t.Logf("%s: %s %v", p, dbg, err)
	}
}
