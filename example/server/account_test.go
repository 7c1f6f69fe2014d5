package main

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
)

// pageForm is one POST form of a page with several (the account page).
type pageForm struct {
	action string
	hidden url.Values
}

var pageFormRE = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"[^>]*>(.*?)</form>`)

// pageForms returns every POST form of a page with its hidden fields.
func pageForms(page string) []pageForm {
	var out []pageForm
	for _, m := range pageFormRE.FindAllStringSubmatch(page, -1) {
		f := pageForm{action: html.UnescapeString(m[1]), hidden: url.Values{}}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			f.hidden.Add(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		out = append(out, f)
	}
	return out
}

// formWith returns the form of page whose hidden "action" is action, and
// whose grant_id is grantID when given.
func formWith(t *testing.T, page, action string, grantID ...string) pageForm {
	t.Helper()
	for _, f := range pageForms(page) {
		if f.hidden.Get(accountFieldAction) == action && (len(grantID) == 0 || f.hidden.Get(accountFieldGrantID) == grantID[0]) {
			return f
		}
	}
	t.Fatalf("no %s form %v in %s", action, grantID, page)
	return pageForm{}
}

// grantIDs returns the grant ids the page's revoke buttons name.
func grantIDs(page string) []string {
	var ids []string
	for _, f := range pageForms(page) {
		if f.hidden.Get(accountFieldAction) == actionRevoke {
			ids = append(ids, f.hidden.Get(accountFieldGrantID))
		}
	}
	return ids
}

// postAccount submits form f with extra fields, overriding its own.
func (e *testEnv) postAccount(b *http.Client, f pageForm, extra url.Values) (*http.Response, string) {
	e.t.Helper()
	form := url.Values{}
	for k, v := range f.hidden {
		form[k] = v
	}
	for k, v := range extra {
		form[k] = v
	}
	return e.postForm(b, e.issuer+f.action, form)
}

// accountSignIn signs browser b in to the account page's demo sign-in as
// user and returns the page.
func (e *testEnv) accountSignIn(b *http.Client, user string) string {
	e.t.Helper()
	resp, page := e.get(b, e.issuer+"/account")
	require.Equal(e.t, http.StatusOK, resp.StatusCode, page)
	resp, body := e.postAccount(b, formWith(e.t, page, actionSignIn), url.Values{"username": {user}})
	require.Equal(e.t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(e.t, "/account", resp.Header.Get("Location"))
	resp, page = e.get(b, e.issuer+"/account")
	require.Equal(e.t, http.StatusOK, resp.StatusCode, page)
	require.Contains(e.t, page, "Signed in as <strong>"+html.EscapeString(user)+"</strong>")
	return page
}

// userGrantIDs lists the user's grants through the library.
func (e *testEnv) userGrantIDs(user string) []string {
	e.t.Helper()
	grants, err := e.app.oauth.UserGrants(context.Background(), user)
	require.NoError(e.t, err)
	var ids []string
	for _, g := range grants {
		ids = append(ids, g.ID)
	}
	return ids
}

// TestAccountPage: the demo sign-in, the list of the signed-in user's apps
// (and no one else's), revocation, and what the page refuses: a missing
// or foreign CSRF token, another user's grant id.
func TestAccountPage(t *testing.T) {
	e := newTestEnv(t, "")
	_, aliceTokens := e.connect("Alice Notes", "alice")
	_, challenge := pkcePair()
	e.approve(e.register(`<script>alert(1)</script>`), challenge, "alice") // never redeemed
	_, bobTokens := e.connect("Bob's App", "bob")
	aliceGrants, bobGrants := e.userGrantIDs("alice"), e.userGrantIDs("bob")
	require.Len(t, aliceGrants, 2)
	require.Len(t, bobGrants, 1)

	// Nobody signed in: the demo sign-in, and the page headers.
	b := newBrowser(t)
	resp, page := e.get(b, e.issuer+"/account")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assertPageHeaders(t, resp, "account page")
	cookie := resp.Cookies()
	require.Len(t, cookie, 1)
	assert.True(t, cookie[0].HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, cookie[0].SameSite)
	assert.Contains(t, page, "demo")
	assert.Empty(t, grantIDs(page))
	signIn := formWith(t, page, actionSignIn)
	assert.NotEmpty(t, signIn.hidden.Get(accountFieldCSRF))

	// The sign-in needs the CSRF token too (no signing a browser in from
	// another site), and a name.
	for name, extra := range map[string]url.Values{
		"no token":    {"username": {"alice"}, accountFieldCSRF: nil},
		"wrong token": {"username": {"alice"}, accountFieldCSRF: {"x" + signIn.hidden.Get(accountFieldCSRF)}},
		"two tokens":  {"username": {"alice"}, accountFieldCSRF: {signIn.hidden.Get(accountFieldCSRF), signIn.hidden.Get(accountFieldCSRF)}},
	} {
		resp, body := e.postAccount(b, signIn, extra)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s: %s", name, body)
	}
	resp, body := e.postAccount(b, signIn, url.Values{"username": {" "}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)

	// Signed in: alice's two apps, newest first, and not bob's.
	page = e.accountSignIn(b, "alice")
	assert.Equal(t, aliceGrants, grantIDs(page))
	assert.Contains(t, page, "Alice Notes")
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, "Bob&#39;s App")
	assert.Contains(t, page, "self-asserted")
	assert.Contains(t, page, scopeTools)
	assert.Contains(t, page, e.issuer+"/mcp")
	assert.Contains(t, page, "not yet", "the unredeemed grant was never used")
	assert.Regexp(t, `<dt>Last used</dt>\s*<dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>`, page)
	revokeNotes := formWith(t, page, actionRevoke, aliceGrants[1])
	csrf := revokeNotes.hidden.Get(accountFieldCSRF)

	// Refused, changing nothing: no token, another session's token (the
	// same user signed in in another browser), bob's grant id.
	other := newBrowser(t)
	otherCSRF := formWith(t, e.accountSignIn(other, "alice"), actionRevoke, aliceGrants[1]).hidden.Get(accountFieldCSRF)
	require.NotEqual(t, csrf, otherCSRF)
	resp, body = e.postAccount(b, revokeNotes, url.Values{accountFieldCSRF: nil})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = e.postAccount(b, revokeNotes, url.Values{accountFieldCSRF: {otherCSRF}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = e.postAccount(b, revokeNotes, url.Values{accountFieldGrantID: {bobGrants[0]}})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	assert.Empty(t, resp.Header.Get("Location"))
	resp, body = e.postAccount(b, revokeNotes, url.Values{accountFieldGrantID: {aliceGrants[1], bobGrants[0]}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.Equal(t, bobGrants, e.userGrantIDs("bob"))
	assert.Equal(t, aliceGrants, e.userGrantIDs("alice"))
	resp, _ = e.callMCP(bobTokens.AccessToken)
	assert.NotEqual(t, http.StatusUnauthorized, resp.StatusCode, "bob's token still works")

	// Revoke: 303 back to the page, the grant's tokens are dead, the page
	// says so and lists the other app only.
	resp, body = e.postAccount(b, revokeNotes, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, "/account?revoked=1", resp.Header.Get("Location"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	resp, _ = e.callMCP(aliceTokens.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_, page = e.get(b, e.issuer+"/account?revoked=1")
	assert.Contains(t, page, "Access revoked")
	assert.Equal(t, aliceGrants[:1], grantIDs(page))
	assert.NotContains(t, page, "Alice Notes")
	// Revoking it again is no longer possible.
	resp, body = e.postAccount(b, revokeNotes, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, body)

	// Sign out: the old forms stop working, the sign-in is back.
	resp, body = e.postAccount(b, formWith(t, page, actionSignOut), nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	resp, body = e.postAccount(b, formWith(t, page, actionRevoke, aliceGrants[0]), nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	_, page = e.get(b, e.issuer+"/account")
	formWith(t, page, actionSignIn)
	assert.Empty(t, grantIDs(page))
	assert.Equal(t, aliceGrants[:1], e.userGrantIDs("alice"))

	// A browser with no account cookie, or a forged one, cannot post.
	resp, body = e.postAccount(newBrowser(t), revokeNotes, nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	forged := newBrowser(t)
	u, err := url.Parse(e.issuer)
	require.NoError(t, err)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "mcpoauth-account", Value: strings.Replace(cookie[0].Value, ".", ".A", 1), Path: "/"}})
	resp, body = e.postAccount(forged, revokeNotes, nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)

	assertPageMethods(t, b, e.issuer+"/account")

	// The grant ids and CSRF tokens are no credentials, but the page's
	// cookie is: it stays out of the log.
	assert.NotContains(t, e.logs.String(), cookie[0].Value)
}

// TestAccountPageUpstream: with -upstream-issuer, the page asks the
// upstream session who is signed in; a session whose upstream tokens went
// to a grant shows the sign-in link again, back to /account.
func TestAccountPageUpstream(t *testing.T) {
	e, p := newUpstreamEnv(t)
	p.SetUser(upstreamtest.User{Subject: "bob-7", Email: "bob@example.com", EmailVerified: true, Name: "Bob"})
	b := newBrowser(t)

	_, page := e.get(b, e.issuer+"/account")
	link, _ := signInLink(t, page)
	assert.Equal(t, e.issuer+"/login?"+url.Values{"return_to": {"/account"}}.Encode(), link)
	assert.NotContains(t, page, `name="username"`, "no demo sign-in")
	assert.Equal(t, e.issuer+"/account", e.signIn(b, link))
	_, page = e.get(b, e.issuer+"/account")
	assert.Contains(t, page, "Signed in as <strong>bob@example.com</strong>")
	assert.Contains(t, page, "No connected apps")
	assert.Equal(t, "/logout", formWith(t, page, "").action, "sign-out goes to the upstream sign-out")

	// Approve a client on the consent page, signed in there.
	clientID := e.register("Upstream Notes")
	verifier, challenge := pkcePair()
	consentURL := e.authorize(b, clientID, challenge, "st")
	f, _, _ := e.openForm(b, consentURL)
	resp, body := e.submitForm(b, consentURL, f, url.Values{"decision": {"approve"}})
	loc := seeOther(t, resp, body)
	tr := e.redeem(clientID, loc.Query().Get("code"), verifier)

	// The approval ended the session: sign in again to see the app.
	_, page = e.get(b, e.issuer+"/account")
	link, _ = signInLink(t, page)
	e.signIn(b, link)
	_, page = e.get(b, e.issuer+"/account")
	ids := grantIDs(page)
	require.Len(t, ids, 1)
	assert.Contains(t, page, "Upstream Notes")
	assert.Regexp(t, `Approved while signed in upstream as</dt>\s*<dd>bob@example.com</dd>`, page)

	resp, body = e.postAccount(b, formWith(t, page, actionRevoke, ids[0]), nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	resp, _ = e.callMCP(tr.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	grants, err := e.app.oauth.UserGrants(context.Background(), p.URL()+"#bob-7")
	require.NoError(t, err)
	assert.Empty(t, grants)
}

// vaultModel is a MemoryModel that counts the reads of upstream vault
// entries, and fails them while down is set.
type vaultModel struct {
	*mcpoauth.MemoryModel
	reads atomic.Int64
	down  atomic.Bool
}

func (m *vaultModel) GetUpstreamToken(ctx context.Context, id string) (*mcpoauth.UpstreamToken, error) {
	m.reads.Add(1)
	if m.down.Load() {
		return nil, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	return m.MemoryModel.GetUpstreamToken(ctx, id)
}

// TestAccountPageUpstreamSession: with -upstream-issuer, a load of the
// page reads the upstream session (its vault entry) once; a session that
// cannot be read is a 500, not a page signed out.
func TestAccountPageUpstreamSession(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	m := &vaultModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})}
	t.Cleanup(func() { _ = m.Close() })
	e := newTestEnvWith(t, options{upstreamIssuer: p.URL(), upstreamClientID: p.ClientID, upstreamClientSecret: p.ClientSecret, model: m})
	b := newBrowser(t)
	_, page := e.get(b, e.issuer+"/account")
	link, _ := signInLink(t, page)
	e.signIn(b, link)

	before := m.reads.Load()
	resp, page := e.get(b, e.issuer+"/account")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "Signed in as")
	assert.Equal(t, int64(1), m.reads.Load()-before, "one read of the session's vault entry")

	m.down.Store(true)
	resp, page = e.get(b, e.issuer+"/account")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, page)
	assert.NotContains(t, page, "10.0.0.5", "the cause goes to the log only")
}

// TestConsentPageUpstreamSession: with -upstream-issuer, a load of the
// consent page reads the upstream session once, for the remembered consent
// and for the page's sign-in line alike (it read it twice).
func TestConsentPageUpstreamSession(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	m := &vaultModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})}
	t.Cleanup(func() { _ = m.Close() })
	e := newTestEnvWith(t, options{upstreamIssuer: p.URL(), upstreamClientID: p.ClientID, upstreamClientSecret: p.ClientSecret, model: m})
	b, consentURL := e.startConsent("Read Count Client", "st-reads")
	_, page := e.get(b, consentURL)
	link, _ := signInLink(t, page)
	e.signIn(b, link)

	before := m.reads.Load()
	resp, page := e.get(b, consentURL)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "Signed in as")
	assert.Equal(t, int64(1), m.reads.Load()-before, "one read of the session's vault entry")
}
