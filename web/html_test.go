//go:build !js

package web

import (
	"fmt"
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
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/?debug&model=no-such-model")))
	waitFor(t, ctx, "the model to load", `document.body.dataset.model === "ready"`, 2*time.Minute)
	require.Contains(t, eval[string](t, ctx, `document.querySelector('[data-testid=error]').textContent`), "There is no model named “no-such-model”")
	require.Equal(t, htmlModel, eval[string](t, ctx, `document.querySelector('[data-testid=model-picker]').value`))
	require.True(t, eval[bool](t, ctx, `!document.getElementById('synthetic-notice').hidden`), "synthetic bundle: the page says its weights are random")
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

	// Sliding window: with 200 max tokens in a 384-token context, the engine
	// drops the oldest exchanges within a few long replies; the page greys them
	// out, says so, and stops sending them.
	require.True(t, eval[bool](t, ctx, `document.getElementById('window-notice').hidden`), "no notice while the conversation fits")
	setSettings(t, ctx, "", "0", "1", "0", "200")
	for i := 2; i <= 4 && eval[bool](t, ctx, `document.getElementById('window-notice').hidden`); i++ {
		send(t, ctx, fmt.Sprintf("long reply %d", i))
		waitFor(t, ctx, "a long reply", fmt.Sprintf(`document.querySelectorAll('[data-testid=assistant-message]').length === %d && `, i)+lastReply+`.dataset.state === 'done'`, 2*time.Minute)
		t.Logf("reply %d: %v", i, eval[map[string]string](t, ctx, `({...`+lastReply+`.dataset})`))
	}
	notice := eval[string](t, ctx, `document.getElementById('window-notice').textContent`)
	t.Logf("notice: %s", notice)
	require.Contains(t, notice, "dropped")
	require.True(t, eval[bool](t, ctx, `document.querySelector('#messages .msg.user').classList.contains('dropped')`), "the first exchange is greyed out")
	require.True(t, eval[bool](t, ctx, `!`+lastReply+`.classList.contains('dropped')`), "the newest reply is kept")
}
