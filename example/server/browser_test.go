package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/interop/chromium"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserConsent runs the consent flow in headless Chromium: the
// consent page's Content-Security-Policy must let the decision's 303 reach
// the client's redirect URI (Chromium applies form-action to the redirects
// after a form submission), and a hostile client name must not become
// markup.
func TestBrowserConsent(t *testing.T) {
	chrome := chromium.Start(t)
	e := newTestEnv(t, "")
	redirectURI, got := callbackServer(t)
	clientID := e.registerRedirect("<img src=x onerror=alert(1)><script>alert(2)</script>", redirectURI)

	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			_, challenge := pkcePair()
			tab := chrome.NewTab(t)
			tab.Navigate(t, e.authorizeURL(clientID, redirectURI, challenge, "st-"+decision))
			tab.WaitFor(t, e.issuer+"/consent?", "")
			assert.Equal(t, "0", tab.Eval(t, `String(document.querySelectorAll("script, img").length)`), "the client name stays text")
			assert.Contains(t, tab.Eval(t, `document.body.innerText`), "<script>alert(2)</script>")

			tab.Eval(t, `document.getElementById("username").value = "alice"; document.querySelector('button[value="`+decision+`"]').click(); "clicked"`)
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
				t.Fatalf("the browser never reached the redirect URI; now at %s", tab.Eval(t, `location.href`))
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
	chrome := chromium.Start(t)
	e := newTestEnv(t, "")
	redirectURI, got := callbackServer(t)
	clientID := e.registerRedirect("Example MCP Client", redirectURI)

	_, challenge := pkcePair()
	tab := chrome.NewTab(t)
	tab.Navigate(t, e.authorizeURL(clientID, redirectURI, challenge, "st"))
	tab.WaitFor(t, e.issuer+"/consent?", "")
	text := tab.Eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Example MCP Client")
	assert.Contains(t, text, scopeTools)
	assert.Contains(t, text, "self-asserted")
	screenshot(t, tab, "consent.png")

	tab.Eval(t, `document.getElementById("username").value = "alice"; document.querySelector('button[value="approve"]').click(); "clicked"`)
	select {
	case v := <-got:
		assert.NotEmpty(t, v.Get("code"))
	case <-time.After(10 * time.Second):
		t.Fatalf("the browser never reached the redirect URI; now at %s", tab.Eval(t, `location.href`))
	}
}

// TestBrowserDevice runs the device page in headless Chromium: the device
// starts the flow, the user opens verification_uri_complete, sees the
// client's name and the scopes (screenshot device.png), types a name,
// approves, and lands on the result page; the device then gets its token.
func TestBrowserDevice(t *testing.T) {
	chrome := chromium.Start(t)
	e := newTestEnv(t, "")
	clientID := e.registerDevice("Living Room TV")
	d := e.startDevice(clientID)

	tab := chrome.NewTab(t)
	tab.Navigate(t, d.VerificationURIComplete)
	tab.WaitFor(t, d.VerificationURIComplete, "")
	text := tab.Eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Living Room TV")
	assert.Contains(t, text, scopeTools)
	assert.Contains(t, text, "self-asserted")
	assert.Equal(t, d.UserCode, tab.Eval(t, `document.getElementById("user_code").value`))
	screenshot(t, tab, "device.png")

	// Typed, as a user would: focus the field and insert the text.
	tab.Eval(t, `document.getElementById("username").focus(); "focused"`)
	_, err := tab.Call("Input.insertText", map[string]any{"text": "dana"})
	require.NoError(t, err)
	tab.Eval(t, `document.querySelector('button[value="approve"]').click(); "clicked"`)
	tab.WaitFor(t, e.issuer+"/activate?result=approved", "")
	assert.Contains(t, tab.Eval(t, `document.body.innerText`), "Device connected")

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
	chrome := chromium.Start(t)
	e := newTestEnv(t, "")
	_, notes := e.connect("Example MCP Client", "alice")
	e.connect("Claude", "alice")
	e.connect("Someone Else's App", "bob")

	tab := chrome.NewTab(t)
	tab.Navigate(t, e.issuer+"/account")
	tab.WaitFor(t, e.issuer+"/account", "")
	tab.Eval(t, `document.getElementById("username").focus(); "focused"`)
	_, err := tab.Call("Input.insertText", map[string]any{"text": "alice"})
	require.NoError(t, err)
	tab.Eval(t, `document.querySelector('form button[type="submit"]').click(); "clicked"`)
	require.Eventually(t, func() bool {
		v, err := tab.TryEval(`document.readyState + " " + document.body.innerText`)
		return err == nil && strings.HasPrefix(v, "complete ") && strings.Contains(v, "Signed in as alice")
	}, 10*time.Second, 50*time.Millisecond, "signed in")
	text := tab.Eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Example MCP Client")
	assert.Contains(t, text, "Claude")
	assert.NotContains(t, text, "Someone Else's App")
	assert.Contains(t, text, "self-asserted")
	assert.Contains(t, text, scopeTools)
	assert.Equal(t, "2", tab.Eval(t, `String(document.querySelectorAll("button.revoke").length)`))
	screenshot(t, tab, "account.png")

	// Revoke the older app (listed last).
	tab.Eval(t, `const b = document.querySelectorAll("button.revoke"); b[b.length - 1].click(); "clicked"`)
	tab.WaitFor(t, e.issuer+"/account?revoked=1", "")
	text = tab.Eval(t, `document.body.innerText`)
	assert.Contains(t, text, "Access revoked")
	assert.NotContains(t, text, "Example MCP Client")
	assert.Contains(t, text, "Claude")
	resp, _ := e.callMCP(notes.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the revoked app's token is dead")
}

// screenshot captures the page as a PNG, 600 CSS pixels wide and as tall as
// its card (main) and the margin around it, into the test's temporary
// directory, and into testdata/screenshots when MCPOAUTH_SCREENSHOTS=1.
func screenshot(t *testing.T, tab *chromium.Tab, name string) {
	t.Helper()
	png := tab.Screenshot(t, 600, "main", 48)
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), name), png, 0o644))
	if os.Getenv(screenshotsEnv) == "1" {
		dir := filepath.Join("testdata", "screenshots")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
		t.Logf("wrote %s (%d bytes)", filepath.Join(dir, name), len(png))
	}
}
