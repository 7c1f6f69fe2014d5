package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserConsent runs the consent flow in headless Chromium: the
// consent page's Content-Security-Policy must let the decision's 303 reach
// the client's redirect URI (Chromium applies form-action to the redirects
// after a form submission), and a hostile client name must not become
// markup.
func TestBrowserConsent(t *testing.T) {
	chrome := startChromium(t)
	e := newTestEnv(t, "")
	redirectURI, got := callbackServer(t)
	clientID := e.registerRedirect("<img src=x onerror=alert(1)><script>alert(2)</script>", redirectURI)

	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			_, challenge := pkcePair()
			tab := chrome.newTab(t)
			tab.navigate(t, e.authorizeURL(clientID, redirectURI, challenge, "st-"+decision))
			tab.waitFor(t, e.issuer+"/consent?")
			assert.Equal(t, "0", tab.eval(t, `String(document.querySelectorAll("script, img").length)`), "the client name stays text")
			assert.Contains(t, tab.eval(t, `document.body.innerText`), "<script>alert(2)</script>")

			tab.eval(t, `document.getElementById("username").value = "alice"; document.querySelector('button[value="`+decision+`"]').click(); "clicked"`)
			select {
			case v := <-got:
				assert.Equal(t, "st-"+decision, v.Get("state"))
				assert.Equal(t, e.issuer, v.Get("iss"))
				if decision == "approve" {
					assert.NotEmpty(t, v.Get("code"))
				} else {
					assert.Equal(t, "access_denied", v.Get("error"))
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the browser never reached the redirect URI; now at %s", tab.eval(t, `location.href`))
			}
		})
	}
}

// callbackServer is a client's redirect URI: it returns the URI and the
// query of each request that reaches it.
func callbackServer(t *testing.T) (string, <-chan url.Values) {
	got := make(chan url.Values, 4)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			got <- r.URL.Query()
		}
		_, _ = w.Write([]byte("callback reached"))
	}))
	t.Cleanup(cb.Close)
	return cb.URL + "/callback", got
}

// registerRedirect registers a public client with one redirect URI.
func (e *testEnv) registerRedirect(clientName, redirectURI string) string {
	e.t.Helper()
	id, _ := e.registerClient(map[string]any{
		"client_name":                clientName,
		"redirect_uris":              []string{redirectURI},
		"token_endpoint_auth_method": "none",
	})
	return id
}

// screenshotsEnv names the variable that makes the browser tests copy their
// screenshots into testdata/screenshots (the committed ones). Without it the
// PNGs are written to the test's temporary directory only:
//
//	MCPOAUTH_SCREENSHOTS=1 go test -run Browser ./example/server
const screenshotsEnv = "MCPOAUTH_SCREENSHOTS"

// TestBrowserConsentPage shows the consent page to a user: the client's name
// and the scopes are on screen (screenshot consent.png), and approving
// reaches the client.
func TestBrowserConsentPage(t *testing.T) {
	chrome := startChromium(t)
	e := newTestEnv(t, "")
	redirectURI, got := callbackServer(t)
	clientID := e.registerRedirect("Example MCP Client", redirectURI)

	_, challenge := pkcePair()
	tab := chrome.newTab(t)
	tab.navigate(t, e.authorizeURL(clientID, redirectURI, challenge, "st"))
	tab.waitFor(t, e.issuer+"/consent?")
	text := tab.eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Example MCP Client")
	assert.Contains(t, text, scopeTools)
	assert.Contains(t, text, "self-asserted")
	tab.screenshot(t, "consent.png")

	tab.eval(t, `document.getElementById("username").value = "alice"; document.querySelector('button[value="approve"]').click(); "clicked"`)
	select {
	case v := <-got:
		assert.NotEmpty(t, v.Get("code"))
	case <-time.After(10 * time.Second):
		t.Fatalf("the browser never reached the redirect URI; now at %s", tab.eval(t, `location.href`))
	}
}

// TestBrowserDevice runs the device page in headless Chromium: the device
// starts the flow, the user opens verification_uri_complete, sees the
// client's name and the scopes (screenshot device.png), types a name,
// approves, and lands on the result page; the device then gets its token.
func TestBrowserDevice(t *testing.T) {
	chrome := startChromium(t)
	e := newTestEnv(t, "")
	clientID := e.registerDevice("Living Room TV")
	d := e.startDevice(clientID)

	tab := chrome.newTab(t)
	tab.navigate(t, d.VerificationURIComplete)
	tab.waitFor(t, d.VerificationURIComplete)
	text := tab.eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Living Room TV")
	assert.Contains(t, text, scopeTools)
	assert.Contains(t, text, "self-asserted")
	assert.Equal(t, d.UserCode, tab.eval(t, `document.getElementById("user_code").value`))
	tab.screenshot(t, "device.png")

	// Typed, as a user would: focus the field and insert the text.
	tab.eval(t, `document.getElementById("username").focus(); "focused"`)
	_, err := tab.c.call(tab.session, "Input.insertText", map[string]any{"text": "dana"})
	require.NoError(t, err)
	tab.eval(t, `document.querySelector('button[value="approve"]').click(); "clicked"`)
	tab.waitFor(t, e.issuer+"/activate?result=approved")
	assert.Contains(t, tab.eval(t, `document.body.innerText`), "Device connected")

	code, body := e.pollDevice(clientID, d.DeviceCode)
	require.Equal(t, http.StatusOK, code, body)
	var tr tokenResponse
	require.NoError(t, json.Unmarshal([]byte(body), &tr))
	assert.Equal(t, "dana", e.whoami(e.mcpSession(tr.AccessToken), tr.AccessToken).UserID)
}

// TestBrowserAccount shows the connected apps page to a user in Chromium:
// the demo sign-in, the user's apps with their self-asserted names and
// scopes (screenshot account.png), and a revoke button that ends an app's
// access and comes back to the page.
func TestBrowserAccount(t *testing.T) {
	chrome := startChromium(t)
	e := newTestEnv(t, "")
	_, notes := e.connect("Example MCP Client", "alice")
	e.connect("Claude", "alice")
	e.connect("Someone Else's App", "bob")

	tab := chrome.newTab(t)
	tab.navigate(t, e.issuer+"/account")
	tab.waitFor(t, e.issuer+"/account")
	tab.eval(t, `document.getElementById("username").focus(); "focused"`)
	_, err := tab.c.call(tab.session, "Input.insertText", map[string]any{"text": "alice"})
	require.NoError(t, err)
	tab.eval(t, `document.querySelector('form button[type="submit"]').click(); "clicked"`)
	require.Eventually(t, func() bool {
		v, err := tab.tryEval(`document.readyState + " " + document.body.innerText`)
		return err == nil && strings.HasPrefix(v, "complete ") && strings.Contains(v, "Signed in as alice")
	}, 10*time.Second, 50*time.Millisecond, "signed in")
	text := tab.eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Example MCP Client")
	assert.Contains(t, text, "Claude")
	assert.NotContains(t, text, "Someone Else's App")
	assert.Contains(t, text, "self-asserted")
	assert.Contains(t, text, scopeTools)
	assert.Equal(t, "2", tab.eval(t, `String(document.querySelectorAll("button.revoke").length)`))
	tab.screenshot(t, "account.png")

	// Revoke the older app (listed last).
	tab.eval(t, `const b = document.querySelectorAll("button.revoke"); b[b.length - 1].click(); "clicked"`)
	tab.waitFor(t, e.issuer+"/account?revoked=1")
	text = tab.eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Access revoked")
	assert.NotContains(t, text, "Example MCP Client")
	assert.Contains(t, text, "Claude")
	resp, _ := e.callMCP(notes.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the revoked app's token is dead")
}

// waitFor waits until the tab has loaded a URL starting with prefix.
func (tb *tab) waitFor(t *testing.T, prefix string) {
	t.Helper()
	require.Eventually(t, func() bool {
		// Errors are expected while the page navigates.
		v, err := tb.tryEval(`location.href + " " + document.readyState`)
		return err == nil && strings.HasPrefix(v, prefix) && strings.HasSuffix(v, " complete")
	}, 10*time.Second, 50*time.Millisecond, "waiting for %s", prefix)
}

// screenshot captures the page as a PNG, 600 CSS pixels wide and as tall as
// its content, into the test's temporary directory, and into
// testdata/screenshots when MCPOAUTH_SCREENSHOTS=1.
func (tb *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	const width = 600
	metrics := func(height int) {
		_, err := tb.c.call(tb.session, "Emulation.setDeviceMetricsOverride", map[string]any{
			"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
		})
		require.NoError(t, err)
	}
	metrics(800)
	// The page's card and the margin above it, below too.
	h, err := strconv.Atoi(tb.eval(t, `String(Math.ceil(document.querySelector("main").getBoundingClientRect().bottom) + 48)`))
	require.NoError(t, err)
	metrics(h)
	res, err := tb.c.call(tb.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	require.NoError(t, err)
	var shot struct {
		Data []byte `json:"data"` // base64 in JSON
	}
	require.NoError(t, json.Unmarshal(res, &shot))
	require.True(t, bytes.HasPrefix(shot.Data, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), name), shot.Data, 0o644))
	if os.Getenv(screenshotsEnv) == "1" {
		dir := filepath.Join("testdata", "screenshots")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), shot.Data, 0o644))
		t.Logf("wrote %s (%d bytes)", filepath.Join(dir, name), len(shot.Data))
	}
}

// chromium is a headless Chromium driven over the DevTools protocol on
// --remote-debugging-pipe: JSON messages separated by NUL bytes, written to
// its fd 3 and read from its fd 4. No websocket client needed.
type chromium struct {
	cmd *exec.Cmd
	in  *os.File

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startChromium starts the browser, or skips the test when it is missing
// (fails instead under MCPOAUTH_REQUIRE_BROWSER=1).
func startChromium(t *testing.T) *chromium {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := "needs Chromium (apt-get install -y chromium); MCPOAUTH_REQUIRE_BROWSER=1 makes its absence a failure"
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
	c := &chromium{cmd: cmd, in: in, pending: map[int]chan cdpMessage{}}
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

func (c *chromium) read(out *os.File) {
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
func (c *chromium) call(session, method string, params any) (json.RawMessage, error) {
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
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s: no answer", method)
	}
}

type tab struct {
	c       *chromium
	session string
}

func (c *chromium) newTab(t *testing.T) *tab {
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
	return &tab{c: c, session: att.SessionID}
}

func (tb *tab) navigate(t *testing.T, u string) {
	t.Helper()
	_, err := tb.c.call(tb.session, "Page.navigate", map[string]any{"url": u})
	require.NoError(t, err)
}

// eval evaluates a JavaScript expression in the page (DevTools is not
// subject to the page's CSP) and returns its string value.
func (tb *tab) eval(t *testing.T, expr string) string {
	t.Helper()
	v, err := tb.tryEval(expr)
	require.NoError(t, err)
	return v
}

func (tb *tab) tryEval(expr string) (string, error) {
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
