package main

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/example/internal/cli"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
)

// newUpstreamEnv serves the example with -upstream-issuer and its client
// pointing at a fake OpenID provider.
func newUpstreamEnv(t *testing.T) (*testEnv, *upstreamtest.Provider) {
	t.Helper()
	p := upstreamtest.NewProvider(t)
	e := newTestEnvWith(t, options{upstreamIssuer: p.URL(), upstreamClientID: p.ClientID, upstreamClientSecret: p.ClientSecret})
	return e, p
}

var signInLinkRE = regexp.MustCompile(`<a href="([^"]*)">Sign in with ([^<]*)</a>`)

// signInLink returns the "Sign in with <host>" link of a page and the host.
func signInLink(t *testing.T, page string) (href, host string) {
	t.Helper()
	m := signInLinkRE.FindStringSubmatch(page)
	require.NotNil(t, m, "no sign-in link in %s", page)
	return html.UnescapeString(m[1]), html.UnescapeString(m[2])
}

// signIn follows a sign-in link through the provider in browser b, which
// auto-approves, and returns where the example sends the browser back to.
func (e *testEnv) signIn(b *http.Client, link string) string {
	e.t.Helper()
	resp, body := e.get(b, link)
	require.Equal(e.t, http.StatusFound, resp.StatusCode, body)
	authorize := resp.Header.Get("Location")
	resp, body = e.get(b, authorize)
	require.Equal(e.t, http.StatusFound, resp.StatusCode, body)
	callback := resp.Header.Get("Location")
	require.Regexp(e.t, "^"+regexp.QuoteMeta(e.issuer+"/login/callback?"), callback, "the redirect URI at the upstream")
	resp, body = e.get(b, callback)
	require.Equal(e.t, http.StatusSeeOther, resp.StatusCode, body)
	back, err := url.Parse(e.issuer)
	require.NoError(e.t, err)
	back, err = back.Parse(resp.Header.Get("Location"))
	require.NoError(e.t, err)
	return back.String()
}

// TestUpstreamSignInFlow: with -upstream-*, the consent page links to the
// provider instead of asking a name; after signing in there, the user
// approves, and the grant's user is the upstream identity (issuer#subject).
func TestUpstreamSignInFlow(t *testing.T) {
	e, p := newUpstreamEnv(t)
	p.SetUser(upstreamtest.User{Subject: "bob-7", Email: "bob@example.com", EmailVerified: true, Name: "Bob"})

	clientID := e.register("Upstream Client")
	verifier, challenge := pkcePair()
	b := newBrowser(t)
	consentURL := e.authorize(b, clientID, challenge, "st-up")
	f, _, page := e.openForm(b, consentURL)
	assert.Empty(t, f.textNames, "no username field")
	assert.Equal(t, []string{"approve", "deny"}, f.decisions)
	link, host := signInLink(t, page)
	pu, err := url.Parse(p.URL())
	require.NoError(t, err)
	assert.Equal(t, pu.Host, host)
	cu, err := url.Parse(consentURL)
	require.NoError(t, err)
	assert.Equal(t, e.issuer+"/login?"+url.Values{"return_to": {cu.RequestURI()}}.Encode(), link)

	// Nobody signed in: the decision is refused, the request stays pending.
	resp, body := e.submitForm(b, consentURL, f, url.Values{"decision": {"approve"}, "username": {"mallory"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)

	back := e.signIn(b, link)
	assert.Equal(t, consentURL, back, "back to the consent page")
	f, _, page = e.openForm(b, consentURL)
	assert.Contains(t, page, "Signed in as <strong>bob@example.com</strong>")
	assert.NotRegexp(t, signInLinkRE, page)
	assert.Equal(t, []string{"approve", "deny"}, f.decisions)

	resp, body = e.submitForm(b, consentURL, f, url.Values{"decision": {"approve"}})
	loc := seeOther(t, resp, body)
	code := loc.Query().Get("code")
	require.NotEmpty(t, code, loc.String())
	assert.Equal(t, "st-up", loc.Query().Get("state"))

	tr := e.redeem(clientID, code, verifier)
	who := e.whoami(e.mcpSession(tr.AccessToken), tr.AccessToken, tr.RefreshToken, upstreamtest.AccessToken, p.ClientSecret)
	assert.Equal(t, whoamiOutput{UserID: p.URL() + "#bob-7", ClientID: clientID, Scopes: []string{scopeTools},
		Upstream: &upstreamIdentity{Issuer: p.URL(), Subject: "bob-7", Email: "bob@example.com", Name: "Bob"}}, who)

	// Remembered consent (RFC 8252 §8.6): not for this public client, whose
	// redirect is loopback (any local program could claim it): its page is
	// shown again. A public client with an https redirect, approved once,
	// goes straight back with a code once the user is signed in (a session
	// whose upstream tokens went to a grant signs in again first).
	consentURL = e.authorize(b, clientID, challenge, "st-again")
	resp, body = e.get(b, consentURL)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a loopback public client is asked again: %s", body)
	const webRedirect = "https://app.example.com/callback"
	web := e.registerRedirect("Web Client", webRedirect)
	for i, state := range []string{"st-web-1", "st-web-2"} {
		resp, body = e.get(b, e.authorizeURL(web, webRedirect, challenge, state))
		require.Equal(t, http.StatusFound, resp.StatusCode, body)
		consentURL = resp.Header.Get("Location")
		resp, body = e.get(b, consentURL)
		if resp.StatusCode == http.StatusOK && signInLinkRE.MatchString(body) {
			link, _ = signInLink(t, body)
			assert.Equal(t, consentURL, e.signIn(b, link))
			resp, body = e.get(b, consentURL)
		}
		if i == 0 {
			require.Equal(t, http.StatusOK, resp.StatusCode, "the first time, the page: %s", body)
			f, _, _ := e.openForm(b, consentURL)
			resp, body = e.submitForm(b, consentURL, f, url.Values{"decision": {"approve"}})
		}
		loc = seeOther(t, resp, body)
		assert.True(t, strings.HasPrefix(loc.String(), webRedirect), loc.String())
		assert.NotEmpty(t, loc.Query().Get("code"), loc.String())
		assert.Equal(t, state, loc.Query().Get("state"))
	}

	// The approval took the session's upstream tokens into the grant, so
	// the session is over: another client's consent page (consent is per
	// client) asks to sign in again, and each grant gets upstream tokens
	// of its own.
	consentURL = e.authorize(b, e.register("Another Client"), challenge, "st-2")
	_, _, page = e.openForm(b, consentURL)
	link, _ = signInLink(t, page)
	assert.Equal(t, consentURL, e.signIn(b, link))

	// Sign out (POST /logout): the page asks to sign in again.
	_, _, page = e.openForm(b, consentURL)
	cu, err = url.Parse(consentURL)
	require.NoError(t, err)
	resp, body = e.postForm(b, e.issuer+"/logout", url.Values{"return_to": {cu.RequestURI()}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, cu.RequestURI(), resp.Header.Get("Location"))
	assert.Contains(t, page, `formaction="/logout"`)
	_, _, page = e.openForm(b, consentURL)
	signInLink(t, page)

	// No secret of the upstream in the logs.
	for _, secret := range []string{p.ClientSecret, upstreamtest.AccessToken} {
		assert.NotContains(t, e.logs.String(), secret)
	}
}

// TestUpstreamDevicePageLinksToSignIn: the device page, too, links to the
// provider with its own URL (and the user code) as return_to.
func TestUpstreamDevicePageLinksToSignIn(t *testing.T) {
	e, _ := newUpstreamEnv(t)
	b := newBrowser(t)
	pageURL := e.issuer + "/activate?user_code=ABCD-EFGH"
	resp, page := e.get(b, pageURL)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "an unknown code: %s", page)
	f := parseHTMLForm(t, page)
	assert.Equal(t, []string{"user_code"}, f.textNames, "no username field")
	assert.Equal(t, []string{"approve", "deny"}, f.decisions)
	link, _ := signInLink(t, page)
	assert.Equal(t, e.issuer+"/login?"+url.Values{"return_to": {"/activate?user_code=ABCD-EFGH"}}.Encode(), link)
	assert.Equal(t, e.issuer+"/activate?user_code=ABCD-EFGH", e.signIn(b, link))
}

// TestUpstreamFlagsGoTogether: the three -upstream-* flags are all or none.
func TestUpstreamFlagsGoTogether(t *testing.T) {
	for _, args := range [][]string{
		{"-upstream-issuer", "https://idp.example"},
		{"-upstream-issuer", "https://idp.example", "-upstream-client-id", "x"},
		{"-upstream-client-secret", "s"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		var uerr cli.UsageError
		require.ErrorAs(t, err, &uerr, "%v", args)
		assert.Contains(t, stderr.String(), "all three or none", "%v", args)
	}
	var stdout, stderr bytes.Buffer
	_ = run(context.Background(), []string{"-h"}, &stdout, &stderr)
	for _, f := range []string{"-upstream-issuer", "-upstream-client-id", "-upstream-client-secret", "/login/callback", "generated at start, so they end"} {
		assert.Contains(t, stderr.String(), f)
	}
}
