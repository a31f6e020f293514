//go:build !js

package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestModelTextIsText: a model whose tokens are HTML (<script>, <img
// onerror>, <b>) and a user message full of markup are both shown literally;
// nothing is parsed or run.
func TestModelTextIsText(t *testing.T) {
	ts, _, _ := serve(t)
	ctx := browser(t, false)
	// An unknown ?model= is said in plain words, and the catalog's first model
	// (html-token sorts first) loads instead.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?model=no-such-model")))
	waitFor(t, ctx, "the model to load", `document.body.dataset.model === "ready"`, 2*time.Minute)
	require.Contains(t, eval[string](t, ctx, `document.querySelector('[data-testid=error]').textContent`), "There is no model named “no-such-model”")
	require.Equal(t, htmlModel, eval[string](t, ctx, `document.querySelector('[data-testid=model-picker]').value`))
	setSettings(t, ctx, "", "0", "1", "0", "3")
	prompt := `<b>not bold</b><script>window.pwned=3</script>`
	eval[bool](t, ctx, `(document.getElementById('prompt').value = `+jsString(prompt)+`, true)`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="send"]`))))
	waitFor(t, ctx, "the reply", lastReply+`?.dataset.state === 'done'`, 2*time.Minute)

	user := eval[string](t, ctx, `document.querySelector('.msg.user .text').textContent`)
	require.Equal(t, prompt, user)
	reply := eval[string](t, ctx, lastReply+`.querySelector('.text').textContent`)
	require.True(t, strings.HasPrefix(reply, htmlPiece), "reply %q", reply)
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('#messages img, #messages script, #messages b').length`), "markup became elements")
	require.True(t, eval[bool](t, ctx, `window.pwned === undefined`), "model text ran as script")
	screenshot(t, ctx, "html-literal")

	// Sliding window: a long reply fills most of the 1024-token context, so the
	// next message cannot fit with its max tokens; the oldest exchanges are
	// dropped from what the model sees, with a visible notice.
	setSettings(t, ctx, "", "0", "1", "0", "700")
	send(t, ctx, "a long one")
	waitFor(t, ctx, "the long reply", `document.querySelectorAll('[data-testid=assistant-message]').length === 2 && `+lastReply+`.dataset.state === 'done'`, 2*time.Minute)
	require.True(t, eval[bool](t, ctx, `document.getElementById('window-notice').hidden`), "no notice while the conversation fits")
	send(t, ctx, "and another")
	waitFor(t, ctx, "the sliding-window notice", `!document.getElementById('window-notice').hidden`, 10*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="stop"]`))))
	notice := eval[string](t, ctx, `document.getElementById('window-notice').textContent`)
	t.Logf("notice: %s", notice)
	require.Contains(t, notice, "dropped")
	require.Positive(t, eval[int](t, ctx, `document.querySelectorAll('#messages .dropped').length`))
	waitFor(t, ctx, "the stopped reply", lastReply+`.dataset.state === 'stopped' || `+lastReply+`.dataset.state === 'done'`, time.Minute)
}
