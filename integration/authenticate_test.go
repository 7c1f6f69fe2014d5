package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// consentForm is the decision a consent page posts back.
func consentForm(p pendingFields, decision string) url.Values {
	return url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {decision}, "username": {"alice"}}
}

type pendingFields struct{ RequestID, CSRFToken string }

// startConsent runs /authorize in a fresh browser and returns it with the
// consent page's hidden fields.
func (h *harness) startConsent(clientID string) (*browser, pendingFields) {
	b := &browser{}
	p := h.pending(b, h.authorize(b, authorizeParams(clientID)))
	return b, pendingFields{p.RequestID, p.CSRFToken}
}

func TestConsentApproveRedirectsWithCodeStateAndIss(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	w := h.decide(b, consentForm(p, "approve"))
	// RFC 9700 §4.12: 303 after a POST, never 307.
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	loc, err := url.Parse(w.Header().Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "https://client.example.com/cb", loc.Scheme+"://"+loc.Host+loc.Path)
	q := loc.Query()
	require.Len(t, q.Get("code"), 43)
	require.Equal(t, "xyz", q.Get("state"))
	require.Equal(t, testIssuer, q.Get("iss"), "RFC 9207 §2")
	for k, v := range q {
		require.Len(t, v, 1, "%s appears once", k)
	}
}

func TestConsentDenyRedirectsAccessDenied(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	w := h.decide(b, consentForm(p, "deny"))
	require.Equal(t, http.StatusSeeOther, w.Code)
	loc, _ := url.Parse(w.Header().Get("Location"))
	require.Equal(t, "access_denied", loc.Query().Get("error"))
	require.Equal(t, "xyz", loc.Query().Get("state"))
	require.Equal(t, testIssuer, loc.Query().Get("iss"))
	require.Empty(t, loc.Query().Get("code"))
	// The request is consumed: approving afterwards fails.
	require.Equal(t, http.StatusBadRequest, h.decide(b, consentForm(p, "approve")).Code)
}

// TestConsentKeepsRegisteredQuery: RFC 6749 §3.1.2: the registered redirect
// URI's query is kept (the TypeScript original replaced it).
func TestConsentKeepsRegisteredQuery(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{"https://client.example.com/cb?tenant=7"}, "token_endpoint_auth_method": "none"})
	params := authorizeParams(out["client_id"].(string))
	params.Set("redirect_uri", "https://client.example.com/cb?tenant=7")
	u := h.approve(params, "alice")
	require.Equal(t, "7", u.Query().Get("tenant"))
	require.NotEmpty(t, u.Query().Get("code"))
}

// TestConsentCSRF: the decision must come from the browser that started the
// request, carrying the CSRF token derived from its cookie (the TypeScript
// original had no CSRF token).
func TestConsentCSRF(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	for name, tc := range map[string]struct {
		// from is the browser that posts, given the one that started the
		// request (nil: that one).
		from func(b *browser) *browser
		// edit alters the genuine approval form (nil: sent as it is).
		edit   func(f url.Values)
		status int
	}{
		"another browser (attacker's request, victim's browser)": {func(*browser) *browser { return &browser{} }, nil, http.StatusForbidden},
		"another browser with its own cookie": {func(*browser) *browser {
			other, _ := h.startConsent(id)
			return other
		}, nil, http.StatusForbidden},
		"wrong csrf token":   {nil, func(f url.Values) { f.Set("csrf_token", strings.Repeat("A", 43)) }, http.StatusForbidden},
		"missing csrf token": {nil, func(f url.Values) { f.Del("csrf_token") }, http.StatusForbidden},
		"unknown request id": {nil, func(f url.Values) { f.Set("request_id", strings.Repeat("B", 43)) }, http.StatusBadRequest},
		"bad decision":       {nil, func(f url.Values) { f.Set("decision", "maybe") }, http.StatusBadRequest},
		"repeated decision":  {nil, func(f url.Values) { f.Add("decision", "deny") }, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			b, p := h.startConsent(id)
			attacker, form := b, consentForm(p, "approve")
			if tc.from != nil {
				attacker = tc.from(b)
			}
			if tc.edit != nil {
				tc.edit(form)
			}
			w := h.decide(attacker, form)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Empty(t, w.Header().Get("Location"), "never redirected")
			// Nothing was burned: the genuine decision still works.
			ok := h.decide(b, consentForm(p, "approve"))
			require.Equal(t, http.StatusSeeOther, ok.Code, ok.Body.String())
			require.Contains(t, ok.Header().Get("Location"), "code=")
		})
	}
}

// TestConsentReadsBodyOnly: a decision in the query string is refused (the
// TypeScript original accepted GET consent, a cross-site hole).
func TestConsentReadsBodyOnly(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	r := newRequest(http.MethodGet, "/consent/decide?"+consentForm(p, "approve").Encode(), "")
	b.send(r)
	require.Equal(t, http.StatusMethodNotAllowed, h.do(r).Code)
	r = newRequest(http.MethodPost, "/consent/decide?"+consentForm(p, "approve").Encode(), "x=1")
	b.send(r)
	require.Equal(t, http.StatusBadRequest, h.do(r).Code)
}

func TestConsentApproveNeedsSignedInUser(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	f := consentForm(p, "approve")
	f.Del("username")
	w := h.decide(b, f)
	// 403, not 401: a 401 must carry a challenge (RFC 9110 §15.5.2), and
	// sign-in belongs to the application.
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Empty(t, w.Header().Get("Location"))
	require.Equal(t, http.StatusSeeOther, h.decide(b, consentForm(p, "approve")).Code, "nothing consumed")
}

func TestConsentIsSingleUse(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	require.Equal(t, http.StatusSeeOther, h.decide(b, consentForm(p, "approve")).Code)
	w := h.decide(b, consentForm(p, "approve"))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, "invalid_request", oauthError(t, w))
}

func TestConsentRequestExpires(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	h.clock.Advance(11 * time.Minute)
	require.Equal(t, http.StatusBadRequest, h.decide(b, consentForm(p, "approve")).Code)
}

// TestPendingAuthorizationNeedsSameBrowser: the consent page lookup refuses
// another browser, so the page of a stolen request_id shows nothing.
func TestPendingAuthorizationNeedsSameBrowser(t *testing.T) {
	h := newHarness(t)
	b := &browser{}
	w := h.authorize(b, authorizeParams(h.publicClient()))
	r := newRequest(http.MethodGet, strings.TrimPrefix(w.Header().Get("Location"), testIssuer), "")
	require.Equal(t, http.StatusBadRequest, h.do(r).Code)
}

func TestBrowserCookieAttributes(t *testing.T) {
	h := newHarness(t)
	w := h.authorize(&browser{}, authorizeParams(h.publicClient()))
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	// MCP Security Best Practices (consent cookies): __Host- prefix, Secure,
	// HttpOnly, SameSite=Lax.
	require.Equal(t, "__Host-mcpoauth-browser", c.Name)
	require.True(t, c.Secure)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.Empty(t, c.Domain)
}

// TestConsentForgeryNeverAsksWhoIsSignedIn: the application's getUser runs
// only once the request, browser and CSRF token are verified, so a forged
// decision cannot probe the sign-in.
func TestConsentForgeryNeverAsksWhoIsSignedIn(t *testing.T) {
	h := newHarness(t)
	var asked int
	decide := h.srv.AuthenticateHandler(func(*http.Request) (string, error) {
		asked++
		return "alice", nil
	})
	b, p := h.startConsent(h.publicClient())
	post := func(br *browser, form url.Values) int {
		r := newRequest(http.MethodPost, "/consent/decide", form.Encode())
		br.send(r)
		w := httptest.NewRecorder()
		decide.ServeHTTP(w, r)
		return w.Code
	}
	forged := consentForm(p, "approve")
	forged.Set("csrf_token", strings.Repeat("A", 43))
	require.Equal(t, http.StatusForbidden, post(b, forged))
	require.Equal(t, http.StatusForbidden, post(&browser{}, consentForm(p, "approve")))
	require.Zero(t, asked, "getUser was asked for a forged decision")
	require.Equal(t, http.StatusSeeOther, post(b, consentForm(p, "approve")))
	require.Equal(t, 1, asked)
}

// TestConsentAfterMiddlewareParsedForm: AuthenticateHandler works when a
// middleware (a CSRF or session library) called r.ParseForm first and so
// consumed the body (audit finding 7).
func TestConsentAfterMiddlewareParsedForm(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	parseFirst := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, r.ParseForm())
			next.ServeHTTP(w, r)
		})
	}
	var user string
	handler := parseFirst(h.srv.AuthenticateHandler(func(r *http.Request) (string, error) {
		user = r.PostFormValue("username")
		return user, nil
	}))
	r := newRequest(http.MethodPost, "/consent/decide", consentForm(p, "approve").Encode())
	b.send(r)
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	require.Contains(t, w.Header().Get("Location"), "code=")
	require.Equal(t, "alice", user, "getUser still reads the form")
}

// TestConsentRefusedUserGoesBackAsAccessDenied: a signed-in user whom the
// application refuses (GetUserFunc returns ErrAccessDenied) sends the
// browser back to the client with error=access_denied, state and iss (RFC
// 6749 §4.1.2.1, RFC 9207), and consumes the request; nobody signed in stays
// a 403 page of the server (audit finding 10).
func TestConsentRefusedUserGoesBackAsAccessDenied(t *testing.T) {
	h := newHarness(t)
	refuse := h.srv.AuthenticateHandler(func(r *http.Request) (string, error) {
		if r.PostFormValue("username") == "" {
			return "", nil
		}
		return "mallory", fmt.Errorf("tenant suspended: %w", mcpoauth.ErrAccessDenied)
	})
	post := func(b *browser, form url.Values) *httptest.ResponseRecorder {
		r := newRequest(http.MethodPost, "/consent/decide", form.Encode())
		b.send(r)
		w := httptest.NewRecorder()
		refuse.ServeHTTP(w, r)
		return w
	}
	b, p := h.startConsent(h.dynamicPublicClient())

	notSignedIn := consentForm(p, "approve")
	notSignedIn.Del("username")
	w := post(b, notSignedIn)
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Empty(t, w.Header().Get("Location"))
	require.Equal(t, "access_denied", oauthError(t, w), "shown on the error page")

	w = post(b, consentForm(p, "approve"))
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	loc, err := url.Parse(w.Header().Get("Location"))
	require.NoError(t, err)
	require.Equal(t, testRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
	require.Equal(t, "access_denied", loc.Query().Get("error"))
	require.Equal(t, "xyz", loc.Query().Get("state"))
	require.Equal(t, testIssuer, loc.Query().Get("iss"))
	require.Empty(t, loc.Query().Get("code"))
	require.Equal(t, http.StatusBadRequest, h.decide(b, consentForm(p, "approve")).Code, "the request is consumed")
}
