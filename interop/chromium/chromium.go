// Package chromium drives a headless Chromium for the browser tests of the
// example server and the interop suite: pages are loaded, read and clicked
// through the DevTools protocol over a pipe, so that no WebDriver or
// websocket library is needed. It is test support, not for import by the
// library.
package chromium

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// chromiumCallTimeout bounds one DevTools command; PageTimeout the wait for
// a page to load (WaitFor), which tests waiting on a page use too.
const (
	chromiumCallTimeout = 10 * time.Second
	// PageTimeout bounds WaitFor.
	PageTimeout = 15 * time.Second
)

// Browser is a headless Chromium driven over the DevTools protocol on
// --remote-debugging-pipe: JSON messages separated by NUL bytes, written to
// its fd 3 and read from its fd 4. No websocket client needed.
type Browser struct {
	cmd *exec.Cmd
	in  *os.File

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
}

// cdpMessage is a DevTools answer (events are read and dropped).
type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Start starts the browser for the test, or skips the test when it is
// missing (fails instead under MCPOAUTH_REQUIRE_BROWSER=1); the browser is
// closed when the test ends.
func Start(t testing.TB) *Browser {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := t.Name() + " needs Chromium (apt-get install -y chromium); MCPOAUTH_REQUIRE_BROWSER=1 makes its absence a failure"
		if os.Getenv("MCPOAUTH_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	toChrome, in, err := os.Pipe()
	require.NoError(t, err)
	out, fromChrome, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fd 3 and fd 4
	require.NoError(t, cmd.Start())
	_ = toChrome.Close()
	_ = fromChrome.Close()
	c := &Browser{cmd: cmd, in: in, pending: map[int]chan cdpMessage{}}
	go c.read(out)
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		_, _ = c.call("", "Browser.close", nil)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = in.Close()
	})
	return c
}

// read delivers the browser's answers to their callers.
func (c *Browser) read(out *os.File) {
	defer out.Close()
	r := bufio.NewReader(out)
	for {
		b, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(b[:len(b)-1], &m) != nil || m.ID == 0 {
			continue // an event
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one command (to a page session, or to the browser when session
// is "") and waits for its result.
func (c *Browser) call(session, method string, params any) (json.RawMessage, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	msg := map[string]any{"id": id, "method": method, "params": params}
	if params == nil {
		msg["params"] = struct{}{}
	}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	_, err := c.in.Write(append(b, 0))
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		return m.Result, nil
	case <-time.After(chromiumCallTimeout):
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: no answer within %s", method, chromiumCallTimeout)
	}
}

// Tab is one page of the browser.
type Tab struct {
	c       *Browser
	session string
}

// NewTab opens a blank page.
func (c *Browser) NewTab(t testing.TB) *Tab {
	t.Helper()
	res, err := c.call("", "Target.createTarget", map[string]any{"url": "about:blank"})
	require.NoError(t, err)
	var target struct {
		TargetID string `json:"targetId"`
	}
	require.NoError(t, json.Unmarshal(res, &target))
	res, err = c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	require.NoError(t, err)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	require.NoError(t, json.Unmarshal(res, &att))
	return &Tab{c: c, session: att.SessionID}
}

// Navigate loads u in the tab (without waiting: see WaitFor).
func (tb *Tab) Navigate(t testing.TB, u string) {
	t.Helper()
	_, err := tb.c.call(tb.session, "Page.navigate", map[string]any{"url": u})
	require.NoError(t, err)
}

// Eval evaluates a JavaScript expression in the page (DevTools is not
// subject to the page's CSP) and returns its string value.
func (tb *Tab) Eval(t testing.TB, expr string) string {
	t.Helper()
	v, err := tb.TryEval(expr)
	require.NoError(t, err)
	return v
}

// TryEval is Eval returning its error, for expressions that may fail while
// a page navigates.
func (tb *Tab) TryEval(expr string) (string, error) {
	res, err := tb.c.call(tb.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return "", err
	}
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return "", err
	}
	if r.ExceptionDetails != nil {
		return "", fmt.Errorf("evaluate %q: %s", expr, r.ExceptionDetails.Text)
	}
	return fmt.Sprint(r.Result.Value), nil
}

// WaitFor waits until the tab has loaded a URL starting with prefix and, if
// ready is not empty, the JavaScript expression ready is true on it.
func (tb *Tab) WaitFor(t testing.TB, prefix, ready string) {
	t.Helper()
	cond := "true"
	if ready != "" {
		cond = "Boolean(" + ready + ")"
	}
	deadline := time.Now().Add(PageTimeout)
	for {
		// Errors are expected while the page navigates.
		v, err := tb.TryEval(`location.href + " " + document.readyState + " " + ` + cond)
		if err == nil && strings.HasPrefix(v, prefix) && strings.HasSuffix(v, " complete true") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for a page at %s (with %s); last: %q %v", PageTimeout, prefix, cond, v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TypeInto focuses the element of selector and types text, as a user would.
func (tb *Tab) TypeInto(t testing.TB, selector, text string) {
	t.Helper()
	tb.Eval(t, `document.querySelector(`+jsString(selector)+`).focus(); "focused"`)
	_, err := tb.c.call(tb.session, "Input.insertText", map[string]any{"text": text})
	require.NoError(t, err)
}

// Click clicks the element of selector.
func (tb *Tab) Click(t testing.TB, selector string) {
	t.Helper()
	tb.Eval(t, `document.querySelector(`+jsString(selector)+`).click(); "clicked"`)
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Call sends one DevTools command to the tab's page and returns its result.
func (tb *Tab) Call(method string, params any) (json.RawMessage, error) {
	return tb.c.call(tb.session, method, params)
}

// Screenshot returns the page as a PNG, width CSS pixels wide and as tall
// as the bottom of the element of selector plus margin.
func (tb *Tab) Screenshot(t testing.TB, width int, selector string, margin int) []byte {
	t.Helper()
	metrics := func(height int) {
		_, err := tb.Call("Emulation.setDeviceMetricsOverride", map[string]any{
			"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
		})
		require.NoError(t, err)
	}
	metrics(800)
	h, err := strconv.Atoi(tb.Eval(t, `String(Math.ceil(document.querySelector(`+jsString(selector)+`).getBoundingClientRect().bottom) + `+strconv.Itoa(margin)+`)`))
	require.NoError(t, err)
	metrics(h)
	res, err := tb.Call("Page.captureScreenshot", map[string]any{"format": "png"})
	require.NoError(t, err)
	var shot struct {
		Data []byte `json:"data"` // base64 in JSON
	}
	require.NoError(t, json.Unmarshal(res, &shot))
	require.True(t, bytes.HasPrefix(shot.Data, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	return shot.Data
}
