package integration_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Token endpoint client authentication (OAuth 2.1 §2.4, RFC 6749 §2.3.1,
// §5.2). The probe is a refresh_token request with a refresh token that does
// not exist: client authentication runs first, so a client that
// authenticates gets invalid_grant and one that does not gets
// invalid_client (or invalid_request for a malformed attempt).

const caBogusRefreshToken = "no-such-refresh-token-no-such-refresh-token"

// mcpoauthClientInfo is static client information for RegisterClient,
// registered for the code and refresh grants at redirect.
func mcpoauthClientInfo(id, redirect string) metadata.ClientInformation {
	return metadata.ClientInformation{
		ClientID: id,
		ClientMetadata: metadata.ClientMetadata{
			RedirectURIs: []string{redirect},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
		},
	}
}

// caTokenRequest builds a POST /token with the form and raw Authorization
// header values (none, one, or several).
func caTokenRequest(form url.Values, authorization ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, a := range authorization {
		r.Header.Add("Authorization", a)
	}
	return r
}

// caBasic is an Authorization header value of client_secret_basic with the
// RFC 6749 §2.3.1 form-urlencoding applied.
func caBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// caRawBasic is a Basic header without the form-urlencoding.
func caRawBasic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

// caProbeForm is the refresh request the probe sends, plus extra fields.
func caProbeForm(extra ...string) url.Values {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {caBogusRefreshToken}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Add(extra[i], extra[i+1])
	}
	return v
}

// caClients registers one client of each authentication method.
type caClients struct {
	basicID, basicSecret     string // client_secret_basic, named at registration
	postID, postSecret       string // client_secret_post
	defaultID, defaultSecret string // no method named: either secret method
	publicID                 string // none
}

func newCAClients(h *harness) caClients {
	var c caClients
	secretClient := func(method string) (string, string) {
		out := h.registerClient(map[string]any{
			"redirect_uris":              []string{testRedirect},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"token_endpoint_auth_method": method,
		})
		return out["client_id"].(string), out["client_secret"].(string)
	}
	c.basicID, c.basicSecret = secretClient("client_secret_basic")
	c.postID, c.postSecret = secretClient("client_secret_post")
	out := h.registerClient(map[string]any{
		"redirect_uris": []string{testRedirect},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	})
	c.defaultID, c.defaultSecret = out["client_id"].(string), out["client_secret"].(string)
	c.publicID = h.publicClient()
	return c
}

// caRequireAuthenticated asserts the client authenticated: the request got
// as far as the grant.
func caRequireAuthenticated(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Equal(t, "invalid_grant", oauthError(t, w))
	require.Empty(t, w.Header().Get("WWW-Authenticate"))
}

// caRequireInvalidClient asserts invalid_client: 401 with a Basic challenge
// however the client tried (RFC 6749 §5.2 allows it for every failure and
// requires it after HTTP Basic; claude.ai re-registers only after a 401).
func caRequireInvalidClient(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, "invalid_client", oauthError(t, w))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
	ch := w.Header().Get("WWW-Authenticate")
	require.True(t, strings.HasPrefix(ch, "Basic "), "challenge %q", ch)
	require.Contains(t, ch, `realm="`)
}

func TestClientAuthMethods(t *testing.T) {
	h := newHarness(t)
	c := newCAClients(h)
	for name, tc := range map[string]struct {
		form url.Values
		auth []string // Authorization headers
		want string   // authenticated, invalid_client, invalid_request
	}{
		"basic":                              {caProbeForm(), []string{caBasic(c.basicID, c.basicSecret)}, "authenticated"},
		"basic with matching body client_id": {caProbeForm("client_id", c.basicID), []string{caBasic(c.basicID, c.basicSecret)}, "authenticated"},
		"basic scheme case-insensitive":      {caProbeForm(), []string{"basic " + strings.TrimPrefix(caBasic(c.basicID, c.basicSecret), "Basic ")}, "authenticated"},
		// The secret is from the unreserved alphabet and the id a UUID, so a
		// client that skips the form-urlencoding still works.
		"basic without form-urlencoding": {caProbeForm(), []string{caRawBasic(c.basicID + ":" + c.basicSecret)}, "authenticated"},
		"post":                           {caProbeForm("client_id", c.postID, "client_secret", c.postSecret), nil, "authenticated"},
		"none":                           {caProbeForm("client_id", c.publicID), nil, "authenticated"},

		// RFC 7591 §2: a client uses the token_endpoint_auth_method it
		// registered; one that named none may use either secret method.
		"RFC 7591 §2: client_secret_basic client sending its secret in the body": {caProbeForm("client_id", c.basicID, "client_secret", c.basicSecret), nil, "invalid_client"},
		"RFC 7591 §2: client_secret_post client using HTTP Basic":                {caProbeForm(), []string{caBasic(c.postID, c.postSecret)}, "invalid_client"},
		"RFC 7591 §2: no method registered, HTTP Basic":                          {caProbeForm(), []string{caBasic(c.defaultID, c.defaultSecret)}, "authenticated"},
		"RFC 7591 §2: no method registered, secret in the body":                  {caProbeForm("client_id", c.defaultID, "client_secret", c.defaultSecret), nil, "authenticated"},

		"basic wrong secret":              {caProbeForm(), []string{caBasic(c.basicID, c.basicSecret+"x")}, "invalid_client"},
		"basic secret of another client":  {caProbeForm(), []string{caBasic(c.basicID, c.postSecret)}, "invalid_client"},
		"basic unknown client":            {caProbeForm(), []string{caBasic("unknown-client", c.basicSecret)}, "invalid_client"},
		"basic empty secret":              {caProbeForm(), []string{caBasic(c.basicID, "")}, "invalid_client"},
		"basic empty id":                  {caProbeForm(), []string{caBasic("", c.basicSecret)}, "invalid_client"},
		"basic public client with secret": {caProbeForm(), []string{caBasic(c.publicID, "anything")}, "invalid_client"},
		"basic secret case-variant":       {caProbeForm(), []string{caBasic(c.basicID, strings.ToUpper(c.basicSecret))}, "invalid_client"},

		"post wrong secret":              {caProbeForm("client_id", c.postID, "client_secret", c.postSecret+"x"), nil, "invalid_client"},
		"post unknown client":            {caProbeForm("client_id", "unknown-client", "client_secret", c.postSecret), nil, "invalid_client"},
		"confidential without secret":    {caProbeForm("client_id", c.basicID), nil, "invalid_client"},
		"post client without secret":     {caProbeForm("client_id", c.postID), nil, "invalid_client"},
		"no client at all":               {caProbeForm(), nil, "invalid_client"},
		"secret without client_id":       {caProbeForm("client_secret", c.postSecret), nil, "invalid_client"},
		"public client sending a secret": {caProbeForm("client_id", c.publicID, "client_secret", "anything"), nil, "invalid_client"},

		// RFC 6749 §2.3: a client MUST NOT use more than one method.
		"basic and client_secret in body": {caProbeForm("client_secret", c.basicSecret), []string{caBasic(c.basicID, c.basicSecret)}, "invalid_request"},
		"basic and body client_id differ": {caProbeForm("client_id", c.postID), []string{caBasic(c.basicID, c.basicSecret)}, "invalid_request"},
		"two Authorization headers":       {caProbeForm(), []string{caBasic(c.basicID, c.basicSecret), caBasic(c.basicID, c.basicSecret)}, "invalid_request"},
		"repeated client_id":              {caProbeForm("client_id", c.publicID, "client_id", c.publicID), nil, "invalid_request"},
		"repeated client_secret":          {caProbeForm("client_id", c.postID, "client_secret", c.postSecret, "client_secret", c.postSecret), nil, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.do(caTokenRequest(tc.form, tc.auth...))
			switch tc.want {
			case "authenticated":
				caRequireAuthenticated(t, w)
			case "invalid_client":
				caRequireInvalidClient(t, w)
			case "invalid_client_basic":
				caRequireInvalidClient(t, w)
			case "invalid_request":
				require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
				require.Equal(t, "invalid_request", oauthError(t, w))
			default:
				t.Fatalf("bad case %q", tc.want)
			}
		})
	}
}

// TestClientAuthMalformedBasic: a Basic header that cannot be decoded is a
// failed Basic authentication: 401 invalid_client with the challenge.
func TestClientAuthMalformedBasic(t *testing.T) {
	h := newHarness(t)
	id, sec := h.confidentialClient()
	for name, header := range map[string]string{
		"bad base64":           "Basic !!!not-base64!!!",
		"no colon":             caRawBasic(id + sec),
		"bad escape in id":     caRawBasic("%zz:" + sec),
		"bad escape in secret": caRawBasic(id + ":%zz"),
		"scheme only":          "Basic",
		"empty credentials":    "Basic ",
		"url-safe base64":      "Basic " + base64.URLEncoding.EncodeToString([]byte("\xfb\xff:"+sec)),
		"other scheme":         "Bearer " + sec,
		"digest":               `Digest username="` + id + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			caRequireInvalidClient(t, h.do(caTokenRequest(caProbeForm(), header)))
		})
	}
}

// TestClientAuthBasicFormURLEncoding: RFC 6749 §2.3.1: id and secret are
// form-urlencoded before base64; a static client whose id and secret need
// the encoding runs the whole flow with client_secret_basic.
func TestClientAuthBasicFormURLEncoding(t *testing.T) {
	h := newHarness(t)
	const id, sec = "a:b c", "p@ss:w/rd_0123456789abcdefghijklmnop"
	info := mcpoauthClientInfo(id, testRedirect)
	info.ClientSecret = sec
	out, err := h.srv.RegisterClient(context.Background(), info)
	require.NoError(t, err)
	require.Equal(t, id, out.ClientID)
	require.Equal(t, sec, out.ClientSecret)
	require.Equal(t, "client_secret_basic", out.TokenEndpointAuthMethod)

	tr := h.basicTokens(id, sec) // url.QueryEscape'd, then Basic
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)

	// The same credentials in the body (client_secret_post) work too.
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm("client_id", id, "client_secret", sec))))
	// Unencoded, "a:b c:p@ss:w/rd" splits at the first colon: client "a".
	caRequireInvalidClient(t, h.do(caTokenRequest(caProbeForm(), caRawBasic(id+":"+sec))))
	// "+" decodes to a space, as form-urlencoding says.
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm(), caRawBasic("a%3Ab+c:p%40ss%3Aw%2Frd_0123456789abcdefghijklmnop"))))
}

// TestClientAuthFullFlows: both secret methods redeem a code and refresh.
func TestClientAuthFullFlows(t *testing.T) {
	h := newHarness(t)
	c := newCAClients(h)

	tr := h.basicTokens(c.basicID, c.basicSecret)
	w := h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.basicID, c.basicSecret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	form := exchangeForm(c.postID, h.code(c.postID))
	form.Set("client_secret", c.postSecret)
	w = h.postForm("/token", form)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	tr = decodeTokens(t, w)
	w = h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {c.postID}, "client_secret": {c.postSecret}})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// TestClientAuthFailureBurnsNothing: a code exchange refused for client
// authentication leaves the code redeemable (docs/security.md,
// atomic consumption: a request that fails validation burns nothing).
func TestClientAuthFailureBurnsNothing(t *testing.T) {
	h := newHarness(t)
	id, sec := h.confidentialClient()
	form := basicExchangeForm(id, h.code(id))
	caRequireInvalidClient(t, h.postForm("/token", form, id, "wrong"))
	w := h.postForm("/token", form)
	require.Equal(t, "invalid_client", oauthError(t, w))
	w = h.postForm("/token", form, id, sec)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// TestClientAuthExpiredSecret: client_secret_expires_at is enforced (the
// TypeScript original's check, kept), at the exact instant it names.
func TestClientAuthExpiredSecret(t *testing.T) {
	h := newHarness(t)
	c := newCAClients(h)
	h.clock.Advance(90*24*time.Hour - time.Second)
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm(), caBasic(c.basicID, c.basicSecret))))
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm("client_id", c.postID, "client_secret", c.postSecret))))
	h.clock.Advance(time.Second)
	caRequireInvalidClient(t, h.do(caTokenRequest(caProbeForm(), caBasic(c.basicID, c.basicSecret))))
	caRequireInvalidClient(t, h.do(caTokenRequest(caProbeForm("client_id", c.postID, "client_secret", c.postSecret))))
	// Public clients have no secret to expire.
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm("client_id", c.publicID))))
}

// TestClientAuthNoExpirySecret: with NoExpiry, secrets never expire.
func TestClientAuthNoExpirySecret(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.ClientSecretLifetime = mcpoauth.NoExpiry })
	id, sec := h.confidentialClient()
	h.clock.Advance(10 * 365 * 24 * time.Hour)
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm(), caBasic(id, sec))))
}

// TestClientAuthStaticClientSecretExpiry: a pre-registered client's
// information states client_secret_expires_at (0 = never, RFC 7591
// §3.2.1); RegisterClient must honour it rather than impose the dynamic
// registration lifetime, or a static client from a configuration file stops
// working 90 days after start-up.
func TestClientAuthStaticClientSecretExpiry(t *testing.T) {
	h := newHarness(t)
	never := int64(0)
	info := mcpoauthClientInfo("static-forever", testRedirect)
	info.ClientSecret = "static-secret-static-secret-static-secret-1"
	info.ClientSecretExpiresAt = &never
	out, err := h.srv.RegisterClient(context.Background(), info)
	require.NoError(t, err)
	require.NotNil(t, out.ClientSecretExpiresAt)
	require.Zero(t, *out.ClientSecretExpiresAt, "the registered expiry is reported back")
	h.clock.Advance(91 * 24 * time.Hour)
	caRequireAuthenticated(t, h.do(caTokenRequest(caProbeForm(), caBasic(info.ClientID, info.ClientSecret))))
}

// TestClientAuthFailuresLookAlike: unknown client, wrong secret and missing
// secret produce byte-identical responses, so the endpoint does not reveal
// which client ids exist.
func TestClientAuthFailuresLookAlike(t *testing.T) {
	h := newHarness(t)
	c := newCAClients(h)
	type resp struct {
		status int
		header http.Header
		body   string
	}
	capture := func(r *http.Request) resp {
		w := h.do(r)
		hdr := w.Header().Clone()
		return resp{w.Code, hdr, w.Body.String()}
	}
	basic := []resp{
		capture(caTokenRequest(caProbeForm(), caBasic("unknown-client", c.basicSecret))),
		capture(caTokenRequest(caProbeForm(), caBasic(c.basicID, "wrong-secret"))),
		capture(caTokenRequest(caProbeForm(), caBasic(c.basicID, ""))),
	}
	post := []resp{
		capture(caTokenRequest(caProbeForm("client_id", "unknown-client", "client_secret", c.postSecret))),
		capture(caTokenRequest(caProbeForm("client_id", c.postID, "client_secret", "wrong-secret"))),
		capture(caTokenRequest(caProbeForm("client_id", c.postID))),
		capture(caTokenRequest(caProbeForm("client_id", "unknown-client"))),
	}
	for _, group := range [][]resp{basic, post} {
		for i := 1; i < len(group); i++ {
			require.Equal(t, group[0].status, group[i].status, i)
			require.Equal(t, group[0].body, group[i].body, i)
			require.Equal(t, group[0].header, group[i].header, i)
		}
	}
	require.Equal(t, http.StatusUnauthorized, basic[0].status)
	require.Equal(t, basic[0].status, post[0].status, "invalid_client is 401 however the client tried")
	require.Equal(t, basic[0].header, post[0].header)
	require.Equal(t, basic[0].body, post[0].body)
	require.NotContains(t, basic[0].body, "unknown")
	// No presented or registered secret reaches the logs or ErrorHandler.
	for _, sec := range []string{c.basicSecret, c.postSecret, "wrong-secret"} {
		require.NotContains(t, h.logs.String(), sec)
		for _, err := range h.errsSnapshot() {
			require.NotContains(t, err.Error(), sec)
		}
	}
}

// TestClientAuthAtRevocation: the revocation endpoint authenticates the
// same way (RFC 7009 §2.1).
func TestClientAuthAtRevocation(t *testing.T) {
	h := newHarness(t)
	c := newCAClients(h)
	r := caTokenRequest(url.Values{"token": {"whatever"}}, caBasic(c.basicID, "wrong"))
	r.URL.Path = "/revoke"
	caRequireInvalidClient(t, h.do(r))
	w := h.postForm("/revoke", url.Values{"token": {"whatever"}, "client_id": {c.postID}, "client_secret": {"wrong"}})
	caRequireInvalidClient(t, w)
	w = h.postForm("/revoke", url.Values{"token": {"whatever"}}, c.basicID, c.basicSecret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}
