package main

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/interop/browser"
)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

// registerDevice registers a public client for the device flow.
func (e *testEnv) registerDevice(clientName string) string {
	e.t.Helper()
	id, _ := e.registerClient(map[string]any{
		"client_name":                clientName,
		"grant_types":                []string{deviceGrant, "refresh_token"},
		"token_endpoint_auth_method": "none",
	})
	return id
}

// startDevice is what the device does first: POST /device.
// The RFC 8628 §3.2 response is read as a device using x/oauth2 reads it.
func (e *testEnv) startDevice(clientID string) oauth2.DeviceAuthResponse {
	e.t.Helper()
	resp, body := e.postForm(http.DefaultClient, e.issuer+"/device", url.Values{
		"client_id": {clientID}, "scope": {scopeTools}, "resource": {e.issuer + "/mcp"},
	})
	require.Equal(e.t, http.StatusOK, resp.StatusCode, body)
	var d oauth2.DeviceAuthResponse
	require.NoError(e.t, json.Unmarshal([]byte(body), &d))
	require.Equal(e.t, e.issuer+"/activate", d.VerificationURI)
	require.True(e.t, strings.HasPrefix(d.VerificationURIComplete, e.issuer+"/activate?user_code="), d.VerificationURIComplete)
	return d
}

// pollDevice is the device's token request; it returns the status and body.
func (e *testEnv) pollDevice(clientID, deviceCode string) (int, string) {
	e.t.Helper()
	resp, body := e.postForm(http.DefaultClient, e.issuer+"/token", url.Values{
		"grant_type": {deviceGrant}, "client_id": {clientID}, "device_code": {deviceCode},
	})
	return resp.StatusCode, body
}

// submitDevice posts the device form with the code field set to userCode.
func (e *testEnv) submitDevice(b *http.Client, f htmlForm, userCode, user, decision string) (*http.Response, string) {
	e.t.Helper()
	return e.submitForm(b, e.issuer+"/activate", f, url.Values{"user_code": {userCode}, "username": {user}, "decision": {decision}})
}

// wantPageHeaders are the security headers of every device and account
// page response.
var wantPageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"X-Content-Type-Options":  "nosniff",
	"Cache-Control":           "no-store",
	"Content-Type":            "text/html; charset=utf-8",
}

func assertPageHeaders(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	for k, v := range wantPageHeaders {
		assert.Equal(t, v, resp.Header.Get(k), "%s: %s", what, k)
	}
}

// assertSelfContained checks that a page loads nothing from anywhere.
func assertSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, s := range []string{"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"} {
		assert.NotContains(t, page, s)
	}
}

func TestDevicePageWithoutCode(t *testing.T) {
	e := newTestEnv(t, "")
	f, resp, page := e.openForm(newBrowser(t), e.issuer+"/activate")
	assertPageHeaders(t, resp, "form")
	assertSelfContained(t, page)
	assert.Equal(t, "/activate", f.action)
	assert.Equal(t, []string{mcpoauth.FormCSRFToken}, keys(f.hidden))
	assert.NotEmpty(t, f.hidden.Get(mcpoauth.FormCSRFToken))
	assert.Equal(t, []string{"user_code", "username"}, f.textNames)
	assert.Empty(t, f.text.Get("user_code"))
	assert.Equal(t, []string{"approve", "deny"}, f.decisions)
	assert.NotContains(t, page, "self-asserted", "no client is shown without a code")
	assert.NotEmpty(t, resp.Cookies(), "the browser-binding cookie the CSRF token is derived from")
	for _, c := range resp.Cookies() {
		assert.True(t, c.HttpOnly, c.Name)
		assert.Equal(t, http.SameSiteLaxMode, c.SameSite, c.Name)
	}
}

func TestDevicePageShowsPendingRequest(t *testing.T) {
	e := newTestEnv(t, "")
	clientID := e.registerDevice(`TV <script>alert(1)</script> & "Co"`)
	d := e.startDevice(clientID)
	require.Regexp(t, `^[A-Z]{4}-[A-Z]{4}$`, d.UserCode)

	// verification_uri_complete, and the code as a user might type it.
	typed := strings.ToLower(strings.ReplaceAll(d.UserCode, "-", " "))
	for _, u := range []string{d.VerificationURIComplete, e.issuer + "/activate?user_code=" + url.QueryEscape(typed)} {
		f, resp, page := e.openForm(newBrowser(t), u)
		assertPageHeaders(t, resp, u)
		assertSelfContained(t, page)
		assert.Equal(t, d.UserCode, f.text.Get("user_code"), "pre-filled in display form")
		assert.Equal(t, []string{"approve", "deny"}, f.decisions)
		assert.Contains(t, page, "TV &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34;", "the client name, escaped")
		assert.NotContains(t, page, "<script")
		assert.Contains(t, page, "self-asserted")
		assert.Contains(t, page, "<code>"+clientID+"</code>")
		assert.Contains(t, page, "<li><code>"+scopeTools+"</code></li>")
		assert.Contains(t, page, "<code>"+e.issuer+"/mcp</code>")
	}
}

func TestDevicePageUnknownCode(t *testing.T) {
	e := newTestEnv(t, "")
	hostile := `"><script>alert(1)</script>`
	for _, code := range []string{"BCDF-GHJK", hostile, strings.Repeat("A", 200)} {
		resp, page := e.get(newBrowser(t), e.issuer+"/activate?user_code="+url.QueryEscape(code))
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assertPageHeaders(t, resp, code)
		assert.Contains(t, page, html.EscapeString(noticeUnknown))
		assert.NotContains(t, page, "<script")
		assert.NotContains(t, page, "BCDF", "the code is not echoed")
		f := parseHTMLForm(t, page)
		assert.Empty(t, f.text.Get("user_code"))
		assert.Equal(t, []string{"approve", "deny"}, f.decisions, "the form is there to try again")
	}
}

func TestDevicePageExpiredCode(t *testing.T) {
	clock := testclock.New(time.Now())
	e := newTestEnvWith(t, options{now: clock.Now})
	clientID := e.registerDevice("Slow TV")
	d := e.startDevice(clientID)
	clock.Advance(mcpoauth.DefaultDeviceAuthorizationLifetime + time.Second)
	resp, page := e.get(newBrowser(t), d.VerificationURIComplete)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, page, html.EscapeString(noticeExpired))
	assert.NotContains(t, page, "Slow TV")
}

func TestDeviceApproveAndDeny(t *testing.T) {
	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			e := newTestEnv(t, "")
			clientID := e.registerDevice("Living Room TV")
			d := e.startDevice(clientID)
			code, body := e.pollDevice(clientID, d.DeviceCode)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, body, "authorization_pending")

			b := newBrowser(t)
			f, _, _ := e.openForm(b, d.VerificationURIComplete)
			resp, body := e.submitDevice(b, f, f.text.Get("user_code"), "  dana ", decision)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
				assert.Equal(t, wantPageHeaders[h], resp.Header.Get(h), h)
			}
			want := map[string]string{"approve": "approved", "deny": "denied"}[decision]
			loc := resp.Header.Get("Location")
			require.Equal(t, e.issuer+"/activate?result="+want, loc)

			resp, page := e.get(b, loc)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assertPageHeaders(t, resp, "result")
			assertSelfContained(t, page)
			assert.NotContains(t, page, "<form")
			if decision == "approve" {
				assert.Contains(t, page, "Device connected")
			} else {
				assert.Contains(t, page, "Request denied")
			}

			// A decision is final.
			resp, body = e.submitDevice(b, f, f.text.Get("user_code"), "dana", "approve")
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
			assert.Contains(t, body, "invalid_grant")

			code, body = e.pollDevice(clientID, d.DeviceCode)
			if decision == "deny" {
				assert.Equal(t, http.StatusBadRequest, code)
				assert.Contains(t, body, "access_denied")
				return
			}
			require.Equal(t, http.StatusOK, code, body)
			var tr tokenResponse
			require.NoError(t, json.Unmarshal([]byte(body), &tr))
			who := e.whoami(e.mcpSession(tr.AccessToken), tr.AccessToken, tr.RefreshToken, d.DeviceCode)
			assert.Equal(t, whoamiOutput{UserID: "dana", ClientID: clientID, Scopes: []string{scopeTools}}, who)

			logs := e.logs.String()
			assert.Contains(t, logs, "msg=request method=POST path=/activate status=303")
			for _, secret := range []string{d.DeviceCode, d.UserCode, strings.ReplaceAll(d.UserCode, "-", ""), tr.AccessToken, f.hidden.Get(mcpoauth.FormCSRFToken)} {
				assert.NotContains(t, logs, secret)
			}
		})
	}
}

// TestDeviceTypedCode: the page without a code, the code typed by the user
// (any case, with or without the dash).
func TestDeviceTypedCode(t *testing.T) {
	e := newTestEnv(t, "")
	clientID := e.registerDevice("Printer")
	d := e.startDevice(clientID)
	b := newBrowser(t)
	f, _, _ := e.openForm(b, e.issuer+"/activate")
	resp, body := e.submitDevice(b, f, strings.ToLower(strings.ReplaceAll(d.UserCode, "-", "")), "erin", "approve")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	code, body := e.pollDevice(clientID, d.DeviceCode)
	require.Equal(t, http.StatusOK, code, body)
}

func TestDeviceDecisionRefusals(t *testing.T) {
	e := newTestEnv(t, "")
	clientID := e.registerDevice("Refused TV")
	d := e.startDevice(clientID)
	b := newBrowser(t)
	f, _, _ := e.openForm(b, d.VerificationURIComplete)

	post := func(c *http.Client, contentType string, form url.Values) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPost, e.issuer+"/activate", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		return fetch(t, c, req)
	}
	valid := func() url.Values {
		return url.Values{"csrf_token": f.hidden["csrf_token"], "user_code": {d.UserCode}, "username": {"frank"}, "decision": {"approve"}}
	}
	with := func(k string, v ...string) url.Values {
		form := valid()
		if v == nil {
			form.Del(k)
		} else {
			form[k] = v
		}
		return form
	}
	denyAnonymously := with("username", "")
	denyAnonymously.Set("decision", "deny")
	tests := []struct {
		name        string
		browser     *http.Client
		contentType string
		form        url.Values
		status      int
		contains    string
	}{
		{"another browser (no binding cookie)", newBrowser(t), "application/x-www-form-urlencoded", valid(), http.StatusForbidden, "access_denied"},
		{"no CSRF token", b, "application/x-www-form-urlencoded", with("csrf_token"), http.StatusForbidden, "access_denied"},
		{"wrong CSRF token", b, "application/x-www-form-urlencoded", with("csrf_token", "x"+f.hidden.Get("csrf_token")), http.StatusForbidden, "access_denied"},
		{"not signed in", b, "application/x-www-form-urlencoded", with("username", ""), http.StatusForbidden, "access_denied"},
		{"deny needs a sign-in too", b, "application/x-www-form-urlencoded", denyAnonymously, http.StatusForbidden, "access_denied"},
		{"two codes", b, "application/x-www-form-urlencoded", with("user_code", d.UserCode, d.UserCode), http.StatusBadRequest, "invalid_request"},
		{"no decision", b, "application/x-www-form-urlencoded", with("decision"), http.StatusBadRequest, "Choose Approve or Deny"},
		{"two decisions", b, "application/x-www-form-urlencoded", with("decision", "deny", "approve"), http.StatusBadRequest, "Choose Approve or Deny"},
		{"unknown decision", b, "application/x-www-form-urlencoded", with("decision", "maybe"), http.StatusBadRequest, "Choose Approve or Deny"},
		{"JSON body", b, "application/json", valid(), http.StatusUnsupportedMediaType, "form posts only"},
		{"no code", b, "application/x-www-form-urlencoded", with("user_code", ""), http.StatusBadRequest, "invalid_request"},
		{"wrong code", b, "application/x-www-form-urlencoded", with("user_code", "BCDF-GHJK"), http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(tt.browser, tt.contentType, tt.form)
			assert.Equal(t, tt.status, resp.StatusCode, body)
			assert.Contains(t, body, tt.contains)
			assert.Empty(t, resp.Header.Get("Location"))
			assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		})
	}
	tooBig := valid()
	tooBig.Set("padding", strings.Repeat("x", maxFormBytes))
	resp, body := post(b, "application/x-www-form-urlencoded", tooBig)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)

	// Nothing was decided: the device is still waiting, and the right
	// browser approves.
	code, body := e.pollDevice(clientID, d.DeviceCode)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "authorization_pending")
	resp, body = e.submitDevice(b, f, d.UserCode, "frank", "approve")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	assertPageMethods(t, b, e.issuer+"/activate")
}

// TestDeviceLookupRateLimit: looking codes up is rate limited per client
// IP (RFC 8628 §5.1), with the budget the decisions share.
func TestDeviceLookupRateLimit(t *testing.T) {
	e := newTestEnv(t, "")
	clientID := e.registerDevice("Limited TV")
	d := e.startDevice(clientID)
	b := newBrowser(t)
	f, _, _ := e.openForm(b, e.issuer+"/activate") // no code: free

	const budget = 20 // RateLimits.DeviceVerification's default
	for i := 1; i < budget; i++ {
		resp, _ := e.get(b, e.issuer+"/activate?user_code=BCDF-GHJK")
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "attempt %d", i)
	}
	resp, page := e.get(b, d.VerificationURIComplete)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the last attempt of the budget")
	require.Contains(t, page, "Limited TV")

	resp, page = e.get(b, d.VerificationURIComplete)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assertPageHeaders(t, resp, "429")
	assert.Contains(t, page, "Too many attempts")
	assert.NotContains(t, page, "Limited TV")
	assert.NotContains(t, page, "<form")

	// The decision handlers share the budget.
	resp, body := e.submitDevice(b, f, d.UserCode, "gina", "approve")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)

	// The page without a code still renders.
	resp, _ = e.get(b, e.issuer+"/activate")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestDeviceResultPage(t *testing.T) {
	e := newTestEnv(t, "")
	for result, want := range map[string]string{"approved": "Device connected", "denied": "Request denied"} {
		resp, page := e.get(newBrowser(t), e.issuer+"/activate?result="+result)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assertPageHeaders(t, resp, result)
		assert.Contains(t, page, want)
		assert.NotContains(t, page, "<form")
	}
	// Anything else is the form.
	f, _, page := e.openForm(newBrowser(t), e.issuer+"/activate?result="+url.QueryEscape("<b>approved</b>"))
	assert.Equal(t, []string{"approve", "deny"}, f.decisions)
	assert.NotContains(t, page, "<b>")
}

// TestScriptedBrowserDrivesThePages: the scripted browser that the interop
// tests and the example client's tests use (package interop/browser)
// drives the consent and device pages by the example server's HTTP contract (its package doc).
func TestScriptedBrowserDrivesThePages(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()

	clientID := e.register("Scripted Client")
	_, challenge := pkcePair()
	cb, err := browser.New(10*time.Second).Consent(ctx, e.authorizeURL(clientID, testRedirect, challenge, "s"), "alice", browser.Approve)
	require.NoError(t, err)
	assert.NotEmpty(t, cb.Query().Get("code"))

	deviceClient := e.registerDevice("Scripted TV")
	for _, tc := range []struct {
		name, uri, decision string
	}{
		{"typed code, approve", e.issuer + "/activate", browser.Approve},
		{"verification_uri_complete, deny", "", browser.Deny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.startDevice(deviceClient)
			uri := tc.uri
			if uri == "" {
				uri = d.VerificationURIComplete
			}
			_, err := browser.New(10*time.Second).Device(ctx, uri, strings.ToLower(d.UserCode), "bob", tc.decision)
			require.NoError(t, err)
			code, body := e.pollDevice(deviceClient, d.DeviceCode)
			if tc.decision == browser.Approve {
				assert.Equal(t, http.StatusOK, code, body)
			} else {
				assert.Contains(t, body, "access_denied")
			}
		})
	}
}
