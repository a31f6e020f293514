//go:build !js

package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestEmbedExample loads docs/EMBEDDING.md's host page (web/examples/embed.html,
// which registers no service worker): it streams a completion through
// chat.completions.create({stream: true}), then another is cancelled through
// an AbortSignal; a non-streaming call returns the OpenAI completion shape.
func TestEmbedExample(t *testing.T) {
	ts, _, b := serve(t)
	// The CPU backend: the same API as WebGPU (which the chat tests cover) at a
	// fraction of SwiftShader's time for 120 tokens.
	ctx := browser(t, false)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/examples/embed.html?model=/models/"+b.model+"/")))
	waitFor(t, ctx, "the example to load its model", `document.getElementById('status').textContent.startsWith('Ready')`, 3*time.Minute)
	require.False(t, eval[bool](t, ctx, `!!navigator.serviceWorker.controller`), "the example runs without a service worker")

	// Stream through the page's own button.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#ask`))))
	waitFor(t, ctx, "the streamed answer", `/^(Done|Error|Cancelled)/.test(document.getElementById('status').textContent)`, 3*time.Minute)
	status := eval[string](t, ctx, `document.getElementById('status').textContent`)
	answer := eval[string](t, ctx, `document.getElementById('answer').textContent`)
	t.Logf("status %q, answer %q", status, answer)
	require.True(t, strings.HasPrefix(status, "Done"), "status %q", status)
	require.NotEmpty(t, answer)
	screenshot(t, ctx, "embed-example")

	// The chunk protocol, and an AbortSignal cancelling a second stream after three pieces.
	type result struct {
		Chunks, Pieces         int
		Object, Role, Finish   string
		Err, Text              string
		HasUsage               bool
		AbortPieces            int
		AbortErr, AbortAfter   string
		CompletionObject       string
		CompletionFinish       string
		CompletionTotal        int
		CompletionMessageIsStr bool
	}
	r := eval[result](t, ctx, `(async () => {
		const engine = globalThis.engine, out = {};
		const msgs = [{role: 'user', content: 'Once upon a time'}];
		const s = await engine.chat.completions.create({messages: msgs, stream: true, max_tokens: 8, temperature: 0, seed: 1});
		out.Chunks = 0; out.Pieces = 0; out.Text = '';
		for await (const c of s) {
			out.Chunks++; out.Object = c.object;
			const ch = c.choices[0];
			if (ch.delta.role) out.Role = ch.delta.role;
			if (ch.delta.content) { out.Pieces++; out.Text += ch.delta.content; }
			if (ch.finish_reason) { out.Finish = ch.finish_reason; out.HasUsage = !!c.usage; }
		}
		const ac = new AbortController();
		out.AbortPieces = 0;
		try {
			const s2 = await engine.chat.completions.create({messages: msgs, stream: true, max_tokens: 400, signal: ac.signal});
			for await (const c of s2) {
				if (c.choices[0].delta.content && ++out.AbortPieces === 3) ac.abort();
			}
			out.AbortErr = 'no error';
		} catch (e) { out.AbortErr = e.name; }
		const c3 = await engine.chat.completions.create({messages: msgs, max_tokens: 5});
		out.CompletionObject = c3.object; out.CompletionFinish = c3.choices[0].finish_reason;
		out.CompletionTotal = c3.usage.total_tokens; out.CompletionMessageIsStr = typeof c3.choices[0].message.content === 'string';
		return out;
	})()`)
	t.Logf("%+v", r)
	require.Equal(t, "chat.completion.chunk", r.Object)
	require.Equal(t, "assistant", r.Role)
	require.Positive(t, r.Pieces)
	require.NotEmpty(t, r.Finish)
	require.True(t, r.HasUsage, "the last chunk carries usage")
	require.Equal(t, "AbortError", r.AbortErr)
	require.Equal(t, 3, r.AbortPieces, "no chunk after the abort")
	require.Equal(t, "chat.completion", r.CompletionObject)
	require.True(t, r.CompletionMessageIsStr)
	require.Positive(t, r.CompletionTotal)
	require.NotEmpty(t, r.CompletionFinish)

	// The page's Cancel button does the same through its AbortController.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#ask`))))
	waitFor(t, ctx, "the answer to start", `document.getElementById('answer').textContent.length > 0 || /^(Done|Error)/.test(document.getElementById('status').textContent)`, time.Minute)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#cancel`))))
	waitFor(t, ctx, "the answer to end", `/^(Done|Error|Cancelled)/.test(document.getElementById('status').textContent)`, time.Minute)
	t.Logf("after Cancel: %s", eval[string](t, ctx, `document.getElementById('status').textContent`))
}
