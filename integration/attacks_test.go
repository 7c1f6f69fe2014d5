package integration_test

// The attack suite: one test per attack, named after it. Each tries the
// attack through the real router (and the library's consent and device
// handlers, mounted as an application mounts them), asserts that it fails,
// and asserts that it changed nothing: no record was added or consumed
// (MemoryModel.Stats), and the legitimate flow it targeted still works.
// Several attacks have narrower tests elsewhere; these are the named,
// end-to-end proofs.

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
)

// requireUnchanged asserts the model holds what it held before the attack.
func requireUnchanged(t *testing.T, h *harness, before mcpoauth.MemoryStats, msg ...any) {
	t.Helper()
	require.Equal(t, before, h.model.Stats(), msg...)
}

// requireShown asserts an error is shown to the user agent, never
// redirected anywhere.
func requireShown(t *testing.T, w *httptest.ResponseRecorder, status int, what ...string) {
	t.Helper()
	require.Equal(t, status, w.Code, "%v: %s", what, w.Body.String())
	require.Empty(t, w.Header().Get("Location"), "%v: never redirected", what)
}

// redeem posts a code redemption and returns the response.
func (h *harness) redeem(form url.Values) *httptest.ResponseRecorder {
	return h.postForm("/token", form)
}

// TestAttackCodeReplay: an authorization code presented a second time
// (stolen from a log, or raced with the client) yields nothing, and the
// grant the first redemption started is revoked (OAuth 2.1 §4.1.3, RFC
// 9700 §4.5): the replayer gains no token, and other grants are untouched.
func TestAttackCodeReplay(t *testing.T) {
	h := newHarness(t)
	bystander := h.tokens(h.publicClient())
	id := h.publicClient()
	code := h.code(id)
	first := h.redeem(exchangeForm(id, code))
	require.Equal(t, http.StatusOK, first.Code)
	victim := decodeTokens(t, first)

	before := h.model.Stats()
	for range 3 {
		w := h.redeem(exchangeForm(id, code))
		require.Equal(t, "invalid_grant", oauthError(t, w))
		require.NotContains(t, w.Body.String(), "access_token")
	}
	after := h.model.Stats()
	require.LessOrEqual(t, after.Tokens, before.Tokens, "the replay issued nothing")
	require.Equal(t, http.StatusUnauthorized, h.callMCP(victim.AccessToken).Code, "the replayed grant is revoked")
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, victim.RefreshToken))))
	require.Equal(t, http.StatusOK, h.callMCP(bystander.AccessToken).Code, "other grants are untouched")
}

// TestAttackCodeInjection: an attacker who obtained a victim's code injects
// it into their own session (RFC 9700 §4.5): redeeming it as another
// client, with their own PKCE verifier, without a verifier, or with another
// redirect URI fails, burns nothing and revokes nothing: the victim's
// client redeems the code afterwards.
func TestAttackCodeInjection(t *testing.T) {
	h := newHarness(t)
	victim := h.publicClient()
	attacker := h.publicClient()
	confidential, secret := h.confidentialClient()
	code := h.code(victim)
	attackerVerifier := strings.Repeat("a", 43)
	for name, tc := range map[string]struct {
		form  url.Values
		basic []string
		want  string
	}{
		"as another public client":       {form: exchangeForm(attacker, code), want: "invalid_grant"},
		"as a confidential client":       {form: withParam(exchangeForm("", code), "client_id", ""), basic: []string{confidential, secret}, want: "invalid_grant"},
		"with the attacker's verifier":   {form: withParam(exchangeForm(victim, code), "code_verifier", attackerVerifier), want: "invalid_grant"},
		"without a verifier":             {form: withParam(exchangeForm(victim, code), "code_verifier", ""), want: "invalid_request"},
		"with the challenge as verifier": {form: withParam(exchangeForm(victim, code), "code_verifier", pkce.Challenge(testVerifier)), want: "invalid_grant"},
		"to the attacker's redirect URI": {form: withParam(exchangeForm(victim, code), "redirect_uri", "https://evil.example.com/cb"), want: "invalid_grant"},
		"for another resource":           {form: withParam(exchangeForm(victim, code), "resource", "https://evil.example.com/mcp"), want: "invalid_target"},
	} {
		t.Run(name, func(t *testing.T) {
			before := h.model.Stats()
			w := h.postForm("/token", tc.form, tc.basic...)
			require.Equal(t, tc.want, oauthError(t, w))
			requireUnchanged(t, h, before)
		})
	}
	w := h.redeem(exchangeForm(victim, code))
	require.Equal(t, http.StatusOK, w.Code, "the victim's code was not burned: %s", w.Body.String())
}

// TestAttackPKCEDowngrade: PKCE cannot be switched off or weakened (RFC
// 9700 §4.8, OAuth 2.1 §4.1.1): an authorization request
// without a challenge, with plain, with no method (which means plain) or a
// malformed challenge is refused and stores nothing; at the token
// endpoint a missing or wrong verifier is refused without burning the
// code, and a code stored without a challenge cannot be redeemed with any
// verifier.
func TestAttackPKCEDowngrade(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	for name, params := range map[string]url.Values{
		"challenge dropped":   withParam(withParam(authorizeParams(id), "code_challenge", ""), "code_challenge_method", ""),
		"plain":               withParam(withParam(authorizeParams(id), "code_challenge_method", "plain"), "code_challenge", testVerifier),
		"method dropped":      withParam(authorizeParams(id), "code_challenge_method", ""),
		"method lowercase":    withParam(authorizeParams(id), "code_challenge_method", "s256"),
		"challenge too short": withParam(authorizeParams(id), "code_challenge", "abc"),
		"challenge bad chars": withParam(authorizeParams(id), "code_challenge", strings.Repeat("+", 43)),
		"method repeated":     addParam(authorizeParams(id), "code_challenge_method", "plain"),
		"challenge repeated":  addParam(authorizeParams(id), "code_challenge", pkce.Challenge(strings.Repeat("b", 43))),
	} {
		t.Run("authorize: "+name, func(t *testing.T) {
			before := h.model.Stats()
			w := h.authorize(&browser{}, params)
			require.Equal(t, http.StatusFound, w.Code)
			loc, err := url.Parse(w.Header().Get("Location"))
			require.NoError(t, err)
			require.Equal(t, "client.example.com", loc.Host, "an error redirect to the verified redirect URI")
			require.Equal(t, "invalid_request", loc.Query().Get("error"))
			require.Empty(t, loc.Query().Get("code"))
			requireUnchanged(t, h, before, "no pending request")
		})
	}

	code := h.code(id)
	for name, verifier := range map[string]string{
		"verifier dropped":       "",
		"wrong verifier":         strings.Repeat("z", 43),
		"challenge as verifier":  pkce.Challenge(testVerifier),
		"verifier too short":     testVerifier[:42],
		"verifier bad character": testVerifier[:42] + "+",
	} {
		t.Run("token: "+name, func(t *testing.T) {
			before := h.model.Stats()
			w := h.redeem(withParam(exchangeForm(id, code), "code_verifier", verifier))
			require.Contains(t, []string{"invalid_request", "invalid_grant"}, oauthError(t, w))
			requireUnchanged(t, h, before)
		})
	}
	require.Equal(t, http.StatusOK, h.redeem(exchangeForm(id, code)).Code, "the code survived every attempt")

	// A verifier without a challenge: a code stored with none (by an older
	// server, or a Model bug) is never redeemable.
	bare := "bare-code-without-challenge-0123456789abcdef"
	require.NoError(t, h.model.SaveAuthorizationCode(context.Background(), &mcpoauth.AuthorizationCode{
		Digest: sha256.Sum256([]byte(bare)), ClientID: id, UserID: "alice", GrantID: "g-bare",
		RedirectURI: testRedirect, Scopes: []string{testScope}, Resource: testResource,
		ExpiresAt: h.clock.Now().Add(time.Minute), GrantExpiresAt: h.clock.Now().Add(time.Hour),
	}))
	before := h.model.Stats()
	for _, v := range []string{testVerifier, "", strings.Repeat("a", 128)} {
		w := h.redeem(withParam(exchangeForm(id, bare), "code_verifier", v))
		require.Contains(t, []string{"invalid_request", "invalid_grant"}, oauthError(t, w), v)
	}
	requireUnchanged(t, h, before)
}

// redirectVariants are the redirect URIs an attacker tries against a
// client registered with testRedirect (https://client.example.com/cb) and
// http://127.0.0.1/cb, grouped by the bug in another OAuth server that each
// group repeats.
var redirectVariants = []string{
	// fosite CVE-2020-15234: no case folding.
	"https://client.example.com/CB",
	"https://CLIENT.EXAMPLE.COM/cb",
	"HTTPS://client.example.com/cb",
	// go-oauth2 matched a host suffix: host suffix and prefix, path, scheme,
	// userinfo, fragment.
	"https://evilclient.example.com/cb",
	"https://client.example.com.evil.com/cb",
	"https://evil.com/client.example.com/cb",
	"https://client.example.com/cb/evil",
	"https://client.example.com/cb/../evil",
	"https://client.example.com/cb2",
	"https://client.example.com/c",
	"https://client.example.com/cb/",
	"https://client.example.com/%63b",
	"https://client.example.com//cb",
	"http://client.example.com/cb",
	"https://client.example.com:443/cb",
	"https://client.example.com:8443/cb",
	"https://user@client.example.com/cb",
	"https://client.example.com@evil.com/cb",
	"https://client.example.com:443@evil.com/cb",
	"https://client.example.com\\@evil.com/cb",
	"https://client.example.com/cb#frag",
	"https://client.example.com/cb?x=1",
	"https://client.example.com/cb?",
	"//client.example.com/cb",
	"client.example.com/cb",
	"javascript://client.example.com/cb%0aalert(1)",
	// node-oidc-provider once accepted an empty fragment.
	"https://client.example.com/cb#",
	// fosite CVE-2020-15233: loopback: only the port may vary, not the
	// query, path, host or scheme.
	"http://127.0.0.1:5555/cb?x=1",
	"http://127.0.0.1:5555/cb#",
	"http://127.0.0.1:5555/cb/",
	"http://127.0.0.1:5555/CB",
	"http://localhost:5555/cb",
	"http://[::1]:5555/cb",
	"https://127.0.0.1:5555/cb",
	"HTTP://127.0.0.1:5555/cb",
	"http://127.0.0.1.evil.com:5555/cb",
	"http://u@127.0.0.1:5555/cb",
	"http://127.0.0.1:5555@evil.com/cb",
	"http://127.0.0.1:5555\\@evil.com/cb",
}

// TestAttackRedirectURIVariants: every near-miss of a registered redirect
// URI is refused at /authorize, shown and never followed, and nothing is
// stored; at registration, a redirect URI with a fragment (even empty) is
// refused.
func TestAttackRedirectURIVariants(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{
		"redirect_uris":              []string{testRedirect, "http://127.0.0.1/cb"},
		"token_endpoint_auth_method": "none",
	})
	id := out["client_id"].(string)
	for _, v := range redirectVariants {
		t.Run(v, func(t *testing.T) {
			before := h.model.Stats()
			w := h.authorize(&browser{}, withParam(authorizeParams(id), "redirect_uri", v))
			requireShown(t, w, http.StatusBadRequest, v)
			require.Equal(t, "invalid_request", oauthError(t, w))
			requireUnchanged(t, h, before)
		})
	}
	// The genuine URIs, and the loopback one on any port, still work.
	for _, ok := range []string{testRedirect, "http://127.0.0.1/cb", "http://127.0.0.1:5555/cb"} {
		require.Equal(t, http.StatusFound, h.authorize(&browser{}, withParam(authorizeParams(id), "redirect_uri", ok)).Code, ok)
	}

	before := h.model.Stats()
	for _, bad := range []string{"https://client.example.com/cb#", "https://client.example.com/cb#x", "https://user@client.example.com/cb", "client.example.com/cb", "//client.example.com/cb"} {
		w := h.register(regJSON(t, map[string]any{"redirect_uris": []string{bad}, "token_endpoint_auth_method": "none"}))
		require.Equal(t, http.StatusBadRequest, w.Code, bad)
		require.Equal(t, "invalid_redirect_uri", oauthError(t, w), bad)
	}
	requireUnchanged(t, h, before)
}

// TestAttackOpenRedirect: until client_id and redirect_uri are verified,
// no error is redirected (OAuth 2.1 §4.1.2.1, RFC 9700 §4.11, zitadel
// #640): an attacker cannot bounce a user through the authorization server to
// a URL of their choice with a broken request.
func TestAttackOpenRedirect(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	evil := "https://evil.example.com/phish"
	for name, params := range map[string]url.Values{
		"unknown client":                 withParam(authorizeParams("no-such-client"), "redirect_uri", evil),
		"no client":                      withParam(withParam(authorizeParams(id), "client_id", ""), "redirect_uri", evil),
		"unregistered redirect":          withParam(authorizeParams(id), "redirect_uri", evil),
		"unregistered, bad request":      withParam(withParam(authorizeParams(id), "redirect_uri", evil), "response_type", "token"),
		"unregistered, no challenge":     withParam(withParam(authorizeParams(id), "redirect_uri", evil), "code_challenge", ""),
		"repeated redirect":              addParam(authorizeParams(id), "redirect_uri", evil),
		"repeated client":                addParam(withParam(authorizeParams(id), "redirect_uri", evil), "client_id", id),
		"client as a URL":                withParam(authorizeParams(evil), "redirect_uri", evil),
		"javascript redirect":            withParam(authorizeParams(id), "redirect_uri", "javascript:alert(document.domain)"),
		"data redirect":                  withParam(authorizeParams(id), "redirect_uri", "data:text/html,<script>alert(1)</script>"),
		"registered URI plus evil query": withParam(authorizeParams(id), "redirect_uri", testRedirect+"?next="+url.QueryEscape(evil)),
	} {
		t.Run(name, func(t *testing.T) {
			before := h.model.Stats()
			w := h.authorize(&browser{}, params)
			requireShown(t, w, http.StatusBadRequest, name)
			require.NotContains(t, w.Body.String(), "evil.example.com", "nothing of the request is echoed")
			requireUnchanged(t, h, before)
		})
	}
	// A forged decision is not redirected either.
	w := h.decide(&browser{}, url.Values{"request_id": {strings.Repeat("A", 43)}, "csrf_token": {"x"}, "decision": {"deny"}})
	requireShown(t, w, http.StatusBadRequest)
}

// TestAttackMixUp: a client talking to several authorization servers can
// tell which one answered (RFC 9207): every authorization response, success
// or error, carries iss equal to the metadata's issuer, exactly once, and
// no request parameter can add another.
func TestAttackMixUp(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	meta := rtDoc(t, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", ""))
	require.Equal(t, testIssuer, meta["issuer"])
	require.Equal(t, true, meta["authorization_response_iss_parameter_supported"])

	requireIss := func(t *testing.T, location string) url.Values {
		t.Helper()
		u, err := url.Parse(location)
		require.NoError(t, err)
		q := u.Query()
		require.Equal(t, []string{testIssuer}, q["iss"], location)
		return q
	}
	// An injected iss (as a parameter, or smuggled inside state) stays
	// inside its own parameter.
	params := withParam(authorizeParams(id), "state", "s&iss=https://evil.example.com")
	params.Set("iss", "https://evil.example.com")
	success := requireIss(t, h.approve(params, "alice").String())
	require.Equal(t, "s&iss=https://evil.example.com", success.Get("state"))
	require.NotEmpty(t, success.Get("code"))

	b, p := h.startConsent(id)
	requireIss(t, h.decide(b, consentForm(p, "deny")).Header().Get("Location"))
	requireIss(t, h.authorize(&browser{}, withParam(authorizeParams(id), "response_type", "token")).Header().Get("Location"))
	requireIss(t, h.authorize(&browser{}, withParam(authorizeParams(id), "scope", "not-a-scope")).Header().Get("Location"))
}

// TestAttackRefreshTokenReplay: a rotated refresh token presented again
// (stolen before rotation) fails and revokes the whole grant, current
// tokens included (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2); presented by
// another client it fails and changes nothing, so a stranger cannot
// revoke someone else's grant.
func TestAttackRefreshTokenReplay(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	stolen := h.tokens(id)

	// Another client replaying the victim's live refresh token: refused,
	// nothing changes.
	before := h.model.Stats()
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(h.publicClient(), stolen.RefreshToken))))
	after := h.model.Stats()
	require.Equal(t, before.Tokens, after.Tokens)
	require.Equal(t, before.RevokedGrants, after.RevokedGrants)

	// The legitimate client rotates; the stolen (now rotated) token is
	// replayed.
	w := h.postForm("/token", refreshForm(id, stolen.RefreshToken))
	require.Equal(t, http.StatusOK, w.Code)
	current := decodeTokens(t, w)
	require.Equal(t, http.StatusOK, h.callMCP(current.AccessToken).Code)
	before = h.model.Stats()
	// After the reuse interval, which forgives only a concurrent refresh.
	h.clock.Advance(mcpoauth.DefaultRefreshTokenReuseInterval + time.Second)
	replay := h.postForm("/token", refreshForm(id, stolen.RefreshToken))
	require.Equal(t, "invalid_grant", oauthError(t, replay))
	require.NotContains(t, replay.Body.String(), "access_token")
	require.Less(t, h.model.Stats().Tokens, before.Tokens, "the grant's tokens are gone")
	require.Equal(t, http.StatusUnauthorized, h.callMCP(current.AccessToken).Code)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, current.RefreshToken))))
}

// TestAttackConsentCSRF: a consent decision forged by another site, or
// posted from another browser, fails (MCP Security Best Practices, consent
// page; the TypeScript original had no CSRF token): the decision needs the
// browser-binding cookie (SameSite=Lax, so a cross-site POST lacks it) and
// the CSRF token derived from it for this request. The pending request
// survives every attempt.
func TestAttackConsentCSRF(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	victim, p := h.startConsent(id)
	attacker, ap := h.startConsent(id)
	for name, tc := range map[string]struct {
		b    *browser
		form url.Values
	}{
		"cross-site post, no cookie":          {&browser{}, consentForm(p, "approve")},
		"attacker's browser, victim's token":  {attacker, consentForm(p, "approve")},
		"victim's browser, no token":          {victim, withParam(consentForm(p, "approve"), "csrf_token", "")},
		"victim's browser, guessed token":     {victim, withParam(consentForm(p, "approve"), "csrf_token", strings.Repeat("A", 43))},
		"victim's browser, attacker's token":  {victim, withParam(consentForm(p, "approve"), "csrf_token", ap.CSRFToken)},
		"token of another request":            {victim, withParam(consentForm(ap, "approve"), "request_id", p.RequestID)},
		"attacker's request, victim's cookie": {victim, consentForm(ap, "approve")},
		"forged denial":                       {&browser{}, consentForm(p, "deny")},
	} {
		t.Run(name, func(t *testing.T) {
			before := h.model.Stats()
			w := h.decide(tc.b, tc.form)
			requireShown(t, w, http.StatusForbidden, name)
			require.Equal(t, "access_denied", oauthError(t, w))
			requireUnchanged(t, h, before)
		})
	}
	// A decision in the query string (a GET from a link or an image) does
	// nothing either.
	r := newRequest(http.MethodGet, "/consent/decide?"+consentForm(p, "approve").Encode(), "")
	victim.send(r)
	require.Equal(t, http.StatusMethodNotAllowed, h.do(r).Code)

	w := h.decide(victim, consentForm(p, "approve"))
	require.Equal(t, http.StatusSeeOther, w.Code, "the genuine decision still works: %s", w.Body.String())
	require.Contains(t, w.Header().Get("Location"), "code=")
}

// TestAttackDeviceApprovalCSRF: a device approval (or denial) forged by
// another site, or with another browser's token, fails with 403 and leaves
// the device authorization pending: the form needs the browser-binding
// cookie and the token derived from it (RFC 8628 §5.4's phishing risk made
// worse by CSRF).
func TestAttackDeviceApprovalCSRF(t *testing.T) {
	h := newDeviceHarness(t)
	id := h.deviceClient()
	da := h.startDevice(id)
	victim := &browser{}
	vp := h.openDevicePage(victim, da.UserCode)
	attacker := &browser{}
	ap := h.openDevicePage(attacker, "")
	form := func(token string) url.Values {
		return url.Values{"user_code": {da.UserCode}, "csrf_token": {token}, "username": {"alice"}}
	}
	for name, tc := range map[string]struct {
		b    *browser
		form url.Values
	}{
		"cross-site post, no cookie":         {&browser{}, form(vp.CSRFToken)},
		"victim's browser, no token":         {victim, form("")},
		"victim's browser, attacker's token": {victim, form(ap.CSRFToken)},
		"victim's browser, guessed token":    {victim, form(strings.Repeat("A", 43))},
		"attacker's browser, victim's token": {attacker, form(vp.CSRFToken)},
	} {
		for _, action := range []string{"approve", "deny", "decide"} {
			t.Run(name+" "+action, func(t *testing.T) {
				f := tc.form
				if action == "decide" {
					f = withParam(f, "decision", "approve")
				}
				before := h.model.Stats()
				w := h.postDecision(tc.b, action, f)
				requireShown(t, w, http.StatusForbidden, name)
				requireUnchanged(t, h, before)
				require.Equal(t, mcpoauth.DevicePending, storedDevice(t, h.model, da.DeviceCode).Status)
			})
		}
	}
	// The user code in the query string is never read.
	r := httptest.NewRequest(http.MethodPost, testDevicePage+"/approve?"+url.Values{"user_code": {da.UserCode}}.Encode(), strings.NewReader(url.Values{"csrf_token": {vp.CSRFToken}, "username": {"alice"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	victim.send(r)
	require.Equal(t, http.StatusBadRequest, h.do(r).Code)
	require.Equal(t, mcpoauth.DevicePending, storedDevice(t, h.model, da.DeviceCode).Status)

	require.Equal(t, http.StatusSeeOther, h.postDecision(victim, "approve", form(vp.CSRFToken)).Code)
	require.Equal(t, mcpoauth.DeviceApproved, storedDevice(t, h.model, da.DeviceCode).Status)
}

// libraryResponses exercises every endpoint and handler of the library,
// on success and failure, and returns the responses.
func libraryResponses(t *testing.T) map[string]*httptest.ResponseRecorder {
	h := newDeviceHarness(t)
	id := h.publicClient()
	out := map[string]*httptest.ResponseRecorder{}
	add := func(name string, w *httptest.ResponseRecorder) { out[name] = w }
	get := func(target string) *httptest.ResponseRecorder {
		return h.do(httptest.NewRequest(http.MethodGet, target, nil))
	}
	add("AS metadata", get(testIssuer+"/.well-known/oauth-authorization-server"))
	add("PRM", get(testIssuer+"/.well-known/oauth-protected-resource/mcp"))
	add("404", get(testIssuer+"/nope"))
	add("405", get(testIssuer+"/token"))
	add("authorize redirect to consent", h.authorize(&browser{}, authorizeParams(id)))
	add("authorize POST redirect", h.do(newRequest(http.MethodPost, "/authorize", authorizeParams(id).Encode())))
	add("authorize error redirect", h.authorize(&browser{}, withParam(authorizeParams(id), "response_type", "token")))
	add("authorize shown error", h.authorize(&browser{}, authorizeParams("nope")))
	add("authorize HEAD", h.do(httptest.NewRequest(http.MethodHead, testIssuer+"/authorize?"+authorizeParams(id).Encode(), nil)))
	b, p := h.startConsent(id)
	add("consent forged (shown)", h.decide(&browser{}, consentForm(p, "approve")))
	add("consent approve", h.decide(b, consentForm(p, "approve")))
	b, p = h.startConsent(id)
	add("consent deny", h.decide(b, consentForm(p, "deny")))
	add("token", h.postForm("/token", exchangeForm(id, h.code(id))))
	add("token error", h.postForm("/token", exchangeForm(id, "nope")))
	add("register", h.register(`{"redirect_uris":["https://client.example.com/cb"],"client_name":"<script>alert(1)</script>"}`))
	add("register error", h.register(`{"redirect_uris":["javascript:alert(1)"]}`))
	add("revoke", rvRevoke(h, id, "nope"))
	add("device authorization", h.postForm("/device", deviceForm(h.deviceClient())))
	da := h.startDevice(h.deviceClient())
	add("device approve", h.decideDevice(da.UserCode, "approve", "alice"))
	add("device deny error (shown)", h.decideDevice(da.UserCode, "deny", "alice"))
	add("bearer 401", h.callMCP("nope"))
	r := httptest.NewRequest(http.MethodGet, testResource, nil)
	add("bearer no token", h.do(r))
	return out
}

// TestAttackClickjacking: clickjacking needs a page to frame, and the one
// page the library serves, the error page of the browser-facing steps, may
// not be framed (frame-ancestors 'none', X-Frame-Options: DENY) and has no
// link or form to click. No other response is HTML (redirects have no body
// at all, unlike http.Redirect's HTML note), and JSON is marked nosniff, so
// a client-chosen client_name echoed by registration is never rendered. The
// consent and device pages are the application's; they must send the same
// headers (the example does, and its tests assert it).
func TestAttackClickjacking(t *testing.T) {
	for name, w := range libraryResponses(t) {
		t.Run(name, func(t *testing.T) {
			ct := w.Header().Get("Content-Type")
			if strings.Contains(ct, "html") {
				require.Contains(t, name, "shown", "only the error page is HTML")
				require.Contains(t, w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'", name)
				require.Equal(t, "DENY", w.Header().Get("X-Frame-Options"), name)
				require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"), name)
				require.Equal(t, "no-store", w.Header().Get("Cache-Control"), name)
				require.NotContains(t, strings.ToLower(w.Body.String()), "<form", name)
			}
			require.NotContains(t, strings.ToLower(w.Body.String()), "<a href", name)
			if w.Code >= 300 && w.Code < 400 {
				require.Empty(t, w.Body.String(), "a redirect has no body")
			}
			// The resource server's error bodies are fixed strings; every
			// authorization server response that can echo input is nosniff.
			if strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(name, "bearer") {
				require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"), name)
			}
		})
	}
}

// TestAttackRefererLeakage: RFC 9700 §4.2.4: every redirect the library
// answers carries Referrer-Policy: no-referrer, which the browser applies
// to the redirected request, so neither the consent page's URL nor the
// authorization request reaches the client's redirect URI, or the next
// page, as Referer. What the URLs carry is minimal anyway: the consent URL
// holds only an opaque request id (bound to the browser, single use), and
// the client's redirect only code, state and iss.
func TestAttackRefererLeakage(t *testing.T) {
	for name, w := range libraryResponses(t) {
		if w.Code < 300 || w.Code >= 400 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			require.Equal(t, "no-referrer", w.Header().Get("Referrer-Policy"), name)
		})
	}

	h := newHarness(t)
	id := h.publicClient()
	b := &browser{}
	w := h.authorize(b, authorizeParams(id))
	consent, err := url.Parse(w.Header().Get("Location"))
	require.NoError(t, err)
	require.Equal(t, []string{"request_id"}, mapKeys(consent.Query()), "no state, challenge or client in the consent URL")
	p := h.pending(b, w)

	// The consent URL leaked (Referer, history, logs) is useless elsewhere.
	before := h.model.Stats()
	other := &browser{}
	r := httptest.NewRequest(http.MethodGet, consent.String(), nil)
	other.send(r)
	require.Equal(t, http.StatusBadRequest, h.do(r).Code, "another browser cannot open it")
	requireShown(t, h.decide(other, consentForm(pendingFields{p.RequestID, p.CSRFToken}, "approve")), http.StatusForbidden)
	requireUnchanged(t, h, before)

	d := h.decide(b, consentForm(pendingFields{p.RequestID, p.CSRFToken}, "approve"))
	require.Equal(t, "no-referrer", d.Header().Get("Referrer-Policy"))
	back, err := url.Parse(d.Header().Get("Location"))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"code", "iss", "state"}, mapKeys(back.Query()))
	// And once decided, the request id is spent.
	r = httptest.NewRequest(http.MethodGet, consent.String(), nil)
	b.send(r)
	require.Equal(t, http.StatusBadRequest, h.do(r).Code)
}

// TestAttackTokenInQueryString: credentials in a URL leak through logs,
// history and Referer (RFC 6750 §2.3, RFC 9700 §4.3.2): an access token in
// the query is refused by the resource server; the token and revocation
// endpoints read only the POST body, so a code, refresh token or token
// sent in their query string does nothing; the consent and device
// decisions ignore the query as well.
func TestAttackTokenInQueryString(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	tr := h.tokens(id)

	for _, target := range []string{
		testResource + "?access_token=" + url.QueryEscape(tr.AccessToken),
		testResource + "?access_token=" + url.QueryEscape(tr.AccessToken) + "&x=1",
	} {
		w := h.do(httptest.NewRequest(http.MethodGet, target, nil))
		require.Equal(t, http.StatusBadRequest, w.Code, target)
		require.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_request"`)
	}
	r := httptest.NewRequest(http.MethodGet, testResource+"?access_token="+url.QueryEscape(tr.AccessToken), nil)
	r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	require.Equal(t, http.StatusBadRequest, h.do(r).Code, "not even alongside the header")

	code := h.code(id)
	before := h.model.Stats()
	onlyClient := url.Values{"client_id": {id}}.Encode()
	w := h.do(newRequest(http.MethodPost, "/token?"+exchangeForm(id, code).Encode(), onlyClient))
	require.Equal(t, "invalid_request", oauthError(t, w), "grant_type is missing: the query was not read")
	w = h.do(newRequest(http.MethodPost, "/token?"+refreshForm(id, tr.RefreshToken).Encode(), onlyClient))
	require.Equal(t, "invalid_request", oauthError(t, w))
	w = h.do(newRequest(http.MethodPost, "/revoke?"+url.Values{"token": {tr.AccessToken}, "client_id": {id}}.Encode(), url.Values{"client_id": {id}}.Encode()))
	require.Equal(t, "invalid_request", oauthError(t, w))
	requireUnchanged(t, h, before)
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code, "not revoked")
	require.Equal(t, http.StatusOK, h.redeem(exchangeForm(id, code)).Code, "the code was not consumed")
}

// TestAttackTemporaryRedirectAfterPost: RFC 9700 §4.12: after a POST the
// library answers 303, never 307 or 308, which would make the browser
// repost the form (with the user's credentials) to the client; GET
// redirects are 302.
func TestAttackTemporaryRedirectAfterPost(t *testing.T) {
	responses := libraryResponses(t)
	for name, want := range map[string]int{
		"authorize redirect to consent": http.StatusFound,
		"authorize error redirect":      http.StatusFound,
		"authorize POST redirect":       http.StatusSeeOther,
		"consent approve":               http.StatusSeeOther,
		"consent deny":                  http.StatusSeeOther,
		"device approve":                http.StatusSeeOther,
	} {
		require.Equal(t, want, responses[name].Code, name)
	}
	for name, w := range responses {
		require.NotContains(t, []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect}, w.Code, name)
	}
	h := newHarness(t)
	id := h.publicClient()
	w := h.do(newRequest(http.MethodPost, "/authorize", withParam(authorizeParams(id), "response_type", "token").Encode()))
	require.Equal(t, http.StatusSeeOther, w.Code, "an error redirect after POST too")
	require.Contains(t, w.Header().Get("Location"), "error=unsupported_response_type")
}

// TestAttackDangerousSchemesInDCR (MCP TypeScript SDK #877,
// CVE-2025-6514): registration refuses URIs that run code or read local
// data in a browser or a client, in redirect_uris and in every URI member,
// whatever their case; nothing is registered.
func TestAttackDangerousSchemesInDCR(t *testing.T) {
	h := newHarness(t)
	dangerous := []string{
		"javascript:alert(1)",
		"JavaScript:alert(1)",
		"javascript://client.example.com/%0aalert(1)",
		"data:text/html,<script>alert(1)</script>",
		"DATA:text/html;base64,PHNjcmlwdD4=",
		"vbscript:msgbox(1)",
		"file:///etc/passwd",
		"file://client.example.com/c$/x",
		"blob:https://client.example.com/uuid",
		"about:blank",
		"filesystem:https://client.example.com/temporary/x",
	}
	before := h.model.Stats()
	for _, u := range dangerous {
		w := h.register(regJSON(t, map[string]any{"redirect_uris": []string{testRedirect, u}, "token_endpoint_auth_method": "none"}))
		require.Equal(t, http.StatusBadRequest, w.Code, u)
		require.Equal(t, "invalid_redirect_uri", oauthError(t, w), u)
		for _, field := range []string{"client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri"} {
			w := h.register(regJSON(t, map[string]any{"redirect_uris": []string{testRedirect}, field: u}))
			require.Equal(t, http.StatusBadRequest, w.Code, "%s %s", field, u)
			require.Equal(t, "invalid_client_metadata", oauthError(t, w), "%s %s", field, u)
		}
	}
	for _, field := range []string{"client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri"} {
		for _, u := range []string{"ftp://client.example.com/x", "//client.example.com/x", " https://client.example.com/x", "https://client.example.com/x#frag", "https://user@client.example.com/x"} {
			w := h.register(regJSON(t, map[string]any{"redirect_uris": []string{testRedirect}, field: u}))
			require.Equal(t, http.StatusBadRequest, w.Code, "%s %q", field, u)
		}
	}
	requireUnchanged(t, h, before, "nothing registered")
}

// TestAttackJSONKeySmuggling (go-sdk CVE-2026-27896,
// GHSA-q382-vc8q-7jhj): registration JSON is decoded strictly: a case
// variant of a member is an unknown member and sets nothing; duplicate
// members, NUL, unpaired surrogates, invalid UTF-8 and trailing data are
// refused; nothing is registered by a refused body.
func TestAttackJSONKeySmuggling(t *testing.T) {
	h := newHarness(t)
	legit := `"redirect_uris":["https://client.example.com/cb"]`
	before := h.model.Stats()
	for name, body := range map[string]string{
		"duplicate redirect_uris":           `{` + legit + `,"redirect_uris":["https://evil.example.com/cb"]}`,
		"duplicate auth method":             `{` + legit + `,"token_endpoint_auth_method":"client_secret_basic","token_endpoint_auth_method":"none"}`,
		"duplicate nested key":              `{` + legit + `,"jwks":{"keys":[],"keys":[{"kty":"RSA"}]}}`,
		"NUL escape in client_name":         `{` + legit + `,"client_name":"a\u0000b"}`,
		"NUL escape in redirect URI":        `{"redirect_uris":["https://client.example.com/cb\u0000.evil.com"]}`,
		"raw NUL byte":                      "{" + legit + ",\"client_name\":\"a\x00b\"}",
		"unpaired surrogate":                `{` + legit + `,"client_name":"\ud800"}`,
		"invalid UTF-8":                     "{" + legit + ",\"client_name\":\"\xff\xfe\"}",
		"trailing data":                     `{` + legit + `} {"redirect_uris":["https://evil.example.com/cb"]}`,
		"case variant instead of the field": `{"Redirect_Uris":["https://evil.example.com/cb"]}`,
		"upper case instead of the field":   `{"REDIRECT_URIS":["https://evil.example.com/cb"]}`,
		"control character":                 `{` + legit + `,"client_name":"a\nb"}`,
		"not an object":                     `[` + legit[16:] + `]`,
	} {
		t.Run(name, func(t *testing.T) {
			w := h.register(body)
			require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			require.Contains(t, []string{"invalid_client_metadata", "invalid_redirect_uri"}, oauthError(t, w))
			requireUnchanged(t, h, before)
		})
	}

	// Alongside the real member, a case variant changes nothing.
	w := h.register(`{` + legit + `,"Redirect_Uris":["https://evil.example.com/cb"],"Token_Endpoint_Auth_Method":"none","GRANT_TYPES":["client_credentials"]}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	out := regDecode(t, w)
	require.Equal(t, []any{"https://client.example.com/cb"}, out["redirect_uris"])
	require.Equal(t, "client_secret_basic", out["token_endpoint_auth_method"], "the variant did not make it public")
	require.Equal(t, []any{"authorization_code"}, out["grant_types"])
	require.NotContains(t, w.Body.String(), "evil.example.com")
	require.Equal(t, http.StatusBadRequest, h.authorize(&browser{}, withParam(authorizeParams(out["client_id"].(string)), "redirect_uri", "https://evil.example.com/cb")).Code)
}

// TestAttackOversizedBodies: every endpoint bounds what it reads: a body
// over the limit is 413, read no further, and changes nothing.
func TestAttackOversizedBodies(t *testing.T) {
	h := newDeviceHarness(t)
	id := h.publicClient()
	b, p := h.startConsent(id)
	huge := "x=" + strings.Repeat("a", 64<<10)
	before := h.model.Stats()
	for _, path := range []string{"/token", "/revoke", "/device", "/authorize", "/consent/decide", "/activate/approve", "/activate/deny"} {
		t.Run(path, func(t *testing.T) {
			r := newRequest(http.MethodPost, path, huge)
			b.send(r)
			w := h.do(r)
			require.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
			require.Empty(t, w.Header().Get("Location"))
		})
	}
	// Registration: JSON, its own limit.
	w := h.register(`{"redirect_uris":["https://client.example.com/cb"],"client_name":"` + strings.Repeat("a", 64<<10) + `"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	requireUnchanged(t, h, before)
	require.Equal(t, http.StatusSeeOther, h.decide(b, consentForm(p, "approve")).Code, "the pending request survived")
}

// TestAttackOversizedHeaders (x/oauth2 CVE-2025-22868): an
// Authorization header over 8 KB is refused before parsing by the resource
// server; an enormous Basic header at the token endpoint is just a failed
// authentication; and a server with net/http's defaults refuses headers
// over its MaxHeaderBytes before the library runs.
func TestAttackOversizedHeaders(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	tr := h.tokens(id)
	r := httptest.NewRequest(http.MethodGet, testResource, nil)
	r.Header.Set("Authorization", "Bearer "+tr.AccessToken+strings.Repeat("A", 8<<10))
	w := h.do(r)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_request"`)

	before := h.model.Stats()
	w = h.postForm("/token", exchangeForm("", "x"), strings.Repeat("i", 32<<10), strings.Repeat("s", 32<<10))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, "invalid_client", oauthError(t, w))
	requireUnchanged(t, h, before)

	ls := newLiveServer(t)
	req, err := http.NewRequest(http.MethodPost, ls.issuer+"/token", strings.NewReader("grant_type=refresh_token"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Just over net/http's limit, so the request is written whole before
	// the server answers and closes.
	req.Header.Set("X-Padding", strings.Repeat("p", http.DefaultMaxHeaderBytes+16<<10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// TestAttackUserCodeGuessing: RFC 8628 §5.1: user codes carry about 34.6
// bits (eight letters from twenty) and every entry, by lookup, approval or
// denial, spends one attempt of the client IP's budget; once it is spent
// even the right code is refused, a spoofed X-Forwarded-For does not
// refill it, and the guessed-at authorization stays pending for its user.
func TestAttackUserCodeGuessing(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{DeviceVerification: mcpoauth.RateLimit{Requests: 5, Window: 15 * time.Minute}}
	})
	id := h.deviceClient()
	da := h.startDevice(id)
	require.Regexp(t, regexp.MustCompile(`^[`+grantsAlphabet+`]{4}-[`+grantsAlphabet+`]{4}$`), da.UserCode)

	attacker := &browser{}
	page := h.openDevicePage(attacker, "") // no code: free
	post := func(b *browser, remote, xff, code string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, testDevicePage+"/approve", strings.NewReader(url.Values{"user_code": {code}, "csrf_token": {page.CSRFToken}, "username": {"mallory"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		b.send(r)
		return h.do(r)
	}
	before := h.model.Stats()
	guess := otherUserCode(da.UserCode)
	for range 5 {
		require.Equal(t, http.StatusBadRequest, post(attacker, "198.51.100.7:1000", "", guess).Code)
	}
	for _, xff := range []string{"", "203.0.113.1", "203.0.113.2, 203.0.113.3"} {
		w := post(attacker, "198.51.100.7:1000", xff, da.UserCode)
		require.Equal(t, http.StatusTooManyRequests, w.Code, "even the right code, whatever X-Forwarded-For says")
	}
	requireUnchanged(t, h, before)
	require.Equal(t, mcpoauth.DevicePending, storedDevice(t, h.model, da.DeviceCode).Status)

	// The user, from their own address, approves as usual.
	user := &browser{}
	up := h.openDevicePage(user, da.UserCode)
	require.NotNil(t, up.Pending)
	require.Equal(t, http.StatusSeeOther, h.postDecision(user, "approve", url.Values{"user_code": {da.UserCode}, "csrf_token": {up.CSRFToken}, "username": {"alice"}}).Code)
}

// grantsAlphabet is the user code alphabet (RFC 8628 §6.1: no vowels, no
// digits).
const grantsAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// TestAttackRateLimitSpoofedXForwardedFor (chi RealIP
// advisories): a client cannot dodge the per-IP limits by inventing
// X-Forwarded-For, X-Real-IP, True-Client-IP or Forwarded values: without
// trusted proxies every request from one peer spends one budget, on every
// endpoint.
func TestAttackRateLimitSpoofedXForwardedFor(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		limit := mcpoauth.RateLimit{Requests: 2, Window: time.Hour}
		c.RateLimits = mcpoauth.RateLimits{Authorize: limit, Token: limit, Register: limit, Revoke: limit}
	})
	spoof := []func(r *http.Request, i int){
		func(r *http.Request, i int) { r.Header.Set("X-Forwarded-For", "203.0.113."+string(rune('1'+i))) },
		func(r *http.Request, i int) { r.Header.Set("X-Real-IP", "203.0.113."+string(rune('1'+i))) },
		func(r *http.Request, i int) { r.Header.Set("True-Client-IP", "203.0.113."+string(rune('1'+i))) },
		func(r *http.Request, i int) { r.Header.Set("Forwarded", "for=203.0.113."+string(rune('1'+i))) },
		func(r *http.Request, i int) {
			r.Header.Add("X-Forwarded-For", "203.0.113."+string(rune('1'+i)))
			r.Header.Add("X-Forwarded-For", "10.0.0."+string(rune('1'+i)))
		},
	}
	for _, ep := range []struct {
		method, path, contentType, body string
	}{
		{http.MethodGet, "/authorize?client_id=x", "", ""},
		{http.MethodPost, "/token", "application/x-www-form-urlencoded", "grant_type=refresh_token"},
		{http.MethodPost, "/register", "application/json", "{}"},
		{http.MethodPost, "/revoke", "application/x-www-form-urlencoded", "token=x"},
	} {
		t.Run(ep.path, func(t *testing.T) {
			send := func(i int) *httptest.ResponseRecorder {
				r := httptest.NewRequest(ep.method, testIssuer+ep.path, strings.NewReader(ep.body))
				if ep.contentType != "" {
					r.Header.Set("Content-Type", ep.contentType)
				}
				r.RemoteAddr = "198.51.100.9:4000"
				spoof[i%len(spoof)](r, i)
				return h.do(r)
			}
			require.NotEqual(t, http.StatusTooManyRequests, send(0).Code)
			require.NotEqual(t, http.StatusTooManyRequests, send(1).Code)
			for i := 2; i < 2+len(spoof); i++ {
				rtRequireLimited(t, send(i))
			}
		})
	}
}

// TestAttackCIMDServerSideRequestForgery: with client ID metadata
// documents on, a client_id aimed at the server's own network is refused
// before any fetch (IP literals, special-use names, userinfo tricks), and
// a document server cannot redirect the fetch elsewhere; the fetcher's
// connect-time address check (DNS rebinding, private and mapped addresses)
// is proved in internal/cimd (TestGuardedTransport*). Nothing is stored.
func TestAttackCIMDServerSideRequestForgery(t *testing.T) {
	f := newCIMDFixture(t)
	h := newHarness(t, withCIMD(t, f))
	f.serve("/redirect.json", cimdResponse{status: http.StatusFound, location: "https://169.254.169.254/latest/meta-data/"})
	before := h.model.Stats()
	for _, id := range []string{
		"https://169.254.169.254/latest/meta-data/",
		"https://[fd00:ec2::254]/latest/meta-data/",
		"https://127.0.0.1:8080/admin",
		"https://localhost:6379/x",
		"https://metadata.google.internal/computeMetadata/v1/",
		"https://app.example.com@127.0.0.1/x",
		"https://0x7f000001/x",
		"https://2130706433/x",
		"https://app.example.com/redirect.json",
	} {
		w := h.authorize(&browser{}, authorizeParams(id))
		requireShown(t, w, http.StatusBadRequest, id)
		require.Equal(t, "invalid_client", oauthError(t, w), id)
	}
	requireUnchanged(t, h, before)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, map[string]int{"/redirect.json": 1}, f.hits, "only the valid-looking URL was fetched, and its redirect was not followed")
}
