package integration_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Helpers of the RFC 7591 tests; the reg prefix keeps them apart from the
// helpers of other test files.

var (
	regUUID   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	regSecret = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

// regPost posts a registration body with the given Content-Type.
func regPost(h *harness, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/register", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return h.do(r)
}

// regJSON marshals metadata for a registration body.
func regJSON(t *testing.T, meta map[string]any) string {
	t.Helper()
	b, err := json.Marshal(meta)
	require.NoError(t, err)
	return string(b)
}

// regDecode decodes a JSON object response.
func regDecode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), w.Body.String())
	return out
}

// regNormalize round-trips v through JSON, so that it compares equal to a
// decoded response member.
func regNormalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// regRequireError asserts a registration error response (RFC 7591 §3.2.2).
func regRequireError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	require.Equal(t, code, oauthError(t, w), w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
}

// TestRegisterEchoesEveryRegisteredField: RFC 7591 §3.2.1: 201 with all
// registered metadata (the TS SDK requires redirect_uris back), client_id,
// client_id_issued_at, and with a secret its client_secret_expires_at.
func TestRegisterEchoesEveryRegisteredField(t *testing.T) {
	for name, meta := range map[string]map[string]any{
		"every uri member": {
			"redirect_uris":              []string{testRedirect, "http://127.0.0.1/callback", "com.example.app:/cb"},
			"token_endpoint_auth_method": "client_secret_post",
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"client_name":                "Echo Client ✓",
			"client_uri":                 "https://client.example.com",
			"logo_uri":                   "https://client.example.com/logo.png",
			"scope":                      "mcp:tools mcp:admin",
			"contacts":                   []string{"ops@client.example.com", "dev@client.example.com"},
			"tos_uri":                    "https://client.example.com/tos",
			"policy_uri":                 "https://client.example.com/policy",
			"jwks_uri":                   "https://client.example.com/jwks.json",
			"software_id":                "4NRB1-0XZABZI9E6-5SM3R",
			"software_version":           "2.1.0",
			"application_type":           "native", // loopback and private-use URIs above: a web client may not have them
		},
		"inline jwks": {
			"redirect_uris":              []string{testRedirect},
			"token_endpoint_auth_method": "client_secret_basic",
			"jwks":                       map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRjmC8tqRNxoBuNt1F7a5kNcOA-JqTTUVGDvFwk"}}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			w := h.register(regJSON(t, meta))
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			out := regDecode(t, w)
			for k, v := range meta {
				require.Contains(t, out, k, "registered member %s must be echoed", k)
				require.Equal(t, regNormalize(t, v), out[k], k)
			}
			id, _ := out["client_id"].(string)
			require.Regexp(t, regUUID, id)
			issued := h.clock.Now().Unix()
			require.Equal(t, float64(issued), out["client_id_issued_at"])
			sec, _ := out["client_secret"].(string)
			require.Regexp(t, regSecret, sec)
			require.Equal(t, float64(issued+int64((90*24*time.Hour)/time.Second)), out["client_secret_expires_at"])
		})
	}
}

// TestRegisterEchoesEmptyRedirectURIs: a client that registers no redirect
// URI (it has no use for the code grant) sent "redirect_uris": []; that is
// registered metadata, and clients whose response schema requires the member
// (the TS SDK) fail when it is missing (RFC 7591 §3.2.1).
func TestRegisterEchoesEmptyRedirectURIs(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{
		"redirect_uris":              []string{},
		"grant_types":                []string{"refresh_token"},
		"response_types":             []string{},
		"token_endpoint_auth_method": "none",
	})
	require.Contains(t, out, "redirect_uris")
	require.Equal(t, []any{}, out["redirect_uris"])
}

func TestRegisterSecretLifetime(t *testing.T) {
	for name, tc := range map[string]struct {
		lifetime time.Duration
		expires  func(issued int64) int64
	}{
		"default 90 days": {0, func(issued int64) int64 { return issued + 90*24*3600 }},
		"configured":      {time.Hour, func(issued int64) int64 { return issued + 3600 }},
		// RFC 7591 §3.2.1: 0 means the secret never expires (in the TypeScript
		// original 0 fell back to the default lifetime).
		"NoExpiry": {mcpoauth.NoExpiry, func(int64) int64 { return 0 }},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(c *mcpoauth.Config) { c.ClientSecretLifetime = tc.lifetime })
			w := h.register(`{"redirect_uris":["` + testRedirect + `"]}`)
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
			out := regDecode(t, w)
			require.Contains(t, out, "client_secret_expires_at", "REQUIRED when a secret is issued")
			require.Equal(t, float64(tc.expires(h.clock.Now().Unix())), out["client_secret_expires_at"])
			rec, err := h.model.GetClient(context.Background(), out["client_id"].(string))
			require.NoError(t, err)
			if tc.lifetime == mcpoauth.NoExpiry {
				require.True(t, rec.SecretExpiresAt.IsZero())
			} else {
				require.Equal(t, tc.expires(h.clock.Now().Unix()), rec.SecretExpiresAt.Unix())
			}
		})
	}
}

// TestRegisterPublicClientHasNoSecret: token_endpoint_auth_method none gets
// neither secret member (MCP SDK clients expect none).
func TestRegisterPublicClientHasNoSecret(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none"})
	require.Equal(t, "none", out["token_endpoint_auth_method"])
	require.NotContains(t, out, "client_secret")
	require.NotContains(t, out, "client_secret_expires_at")
	require.Regexp(t, regUUID, out["client_id"])
	require.Contains(t, out, "client_id_issued_at")
	rec, err := h.model.GetClient(context.Background(), out["client_id"].(string))
	require.NoError(t, err)
	require.True(t, rec.IsPublic())
	require.True(t, rec.SecretDigest.IsZero())
}

// TestRegisterDefaults: RFC 7591 §2: token_endpoint_auth_method defaults to
// client_secret_basic (echoed, with a secret), grant_types to
// [authorization_code] and response_types to [code].
func TestRegisterDefaults(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}})
	require.Equal(t, "client_secret_basic", out["token_endpoint_auth_method"])
	require.Regexp(t, regSecret, out["client_secret"])
	require.Contains(t, out, "client_secret_expires_at")
	require.Equal(t, []any{"authorization_code"}, out["grant_types"])
	require.Equal(t, []any{"code"}, out["response_types"])
	rec, err := h.model.GetClient(context.Background(), out["client_id"].(string))
	require.NoError(t, err)
	require.Equal(t, "client_secret_basic", rec.Metadata.TokenEndpointAuthMethod)
	require.Equal(t, []string{"authorization_code"}, rec.Metadata.GrantTypes)
	require.Equal(t, []string{"code"}, rec.Metadata.ResponseTypes)
}

// TestRegisterIgnoresUnknownMembers: RFC 7591 §2: metadata the server does
// not understand is ignored; MCP clients send application_type (go-sdk) and
// resource (mcp-go).
func TestRegisterIgnoresUnknownMembers(t *testing.T) {
	h := newHarness(t)
	w := h.register(`{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none",` +
		`"application_type":"native","resource":"` + testResource + `","foo":{"bar":[1,2,{"baz":null}]},"software_statement":"eyJhbGciOiJub25lIn0.e30."}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	out := regDecode(t, w)
	require.Equal(t, "native", out["application_type"])
	require.Equal(t, []any{"http://127.0.0.1/callback"}, out["redirect_uris"])
}

// TestRegisterIgnoresClientChosenCredentials: the server issues client_id
// and client_secret; values the client sends are not registered (RFC 7591
// §3.2.1: client_id must not be currently valid for another client).
func TestRegisterIgnoresClientChosenCredentials(t *testing.T) {
	h := newHarness(t)
	victim := h.publicClient()
	for name, body := range map[string]string{
		"fresh id":   `{"client_id":"chosen-id","client_secret":"chosen-secret-chosen-secret-chosen-secret-x","client_secret_expires_at":0,"redirect_uris":["` + testRedirect + `"]}`,
		"taken id":   `{"client_id":"` + victim + `","redirect_uris":["` + testRedirect + `"]}`,
		"issued_at":  `{"client_id_issued_at":1,"redirect_uris":["` + testRedirect + `"]}`,
		"null value": `{"client_id":null,"redirect_uris":["` + testRedirect + `"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			w := h.register(body)
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
			out := regDecode(t, w)
			require.Regexp(t, regUUID, out["client_id"])
			require.NotEqual(t, "chosen-id", out["client_id"])
			require.NotEqual(t, victim, out["client_id"])
			require.NotEqual(t, "chosen-secret-chosen-secret-chosen-secret-x", out["client_secret"])
			require.NotEqual(t, float64(0), out["client_secret_expires_at"])
			require.Equal(t, float64(h.clock.Now().Unix()), out["client_id_issued_at"])
		})
	}
	_, err := h.model.GetClient(context.Background(), "chosen-id")
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	rec, err := h.model.GetClient(context.Background(), victim)
	require.NoError(t, err)
	require.True(t, rec.IsPublic(), "the victim's registration is untouched")
}

// TestRegisterStrictJSON (go-sdk CVE-2026-27896,
// GHSA-q382-vc8q-7jhj): no case-insensitive key matching, no duplicate keys,
// no NUL or unpaired surrogates, no trailing data, one JSON object.
func TestRegisterStrictJSON(t *testing.T) {
	h := newHarness(t)
	for name, tc := range map[string]struct {
		body string
		code string
	}{
		// The case variant does not populate redirect_uris, so the code
		// grant has none.
		"Redirect_Uris case variant":  {`{"Redirect_Uris":["` + testRedirect + `"]}`, "invalid_redirect_uri"},
		"REDIRECT_URIS case variant":  {`{"REDIRECT_URIS":["` + testRedirect + `"],"token_endpoint_auth_method":"none"}`, "invalid_redirect_uri"},
		"duplicate redirect_uris":     {`{"redirect_uris":["` + testRedirect + `"],"redirect_uris":["https://evil.example.com/cb"]}`, "invalid_client_metadata"},
		"duplicate auth method":       {`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","token_endpoint_auth_method":"client_secret_basic"}`, "invalid_client_metadata"},
		"duplicate unknown member":    {`{"redirect_uris":["` + testRedirect + `"],"foo":1,"foo":2}`, "invalid_client_metadata"},
		"duplicate key inside jwks":   {`{"redirect_uris":["` + testRedirect + `"],"jwks":{"keys":[],"keys":[{}]}}`, "invalid_client_metadata"},
		"NUL in client_name":          {`{"redirect_uris":["` + testRedirect + `"],"client_name":"Good\u0000Evil"}`, "invalid_client_metadata"},
		"control char in client_name": {`{"redirect_uris":["` + testRedirect + `"],"client_name":"a\u001b[31mred"}`, "invalid_client_metadata"},
		"unpaired surrogate":          {`{"redirect_uris":["` + testRedirect + `"],"client_name":"\ud800"}`, "invalid_client_metadata"},
		"NUL in redirect uri":         {`{"redirect_uris":["https://client.example.com/cb\u0000.evil.com"]}`, "invalid_client_metadata"},
		"invalid UTF-8":               {"{\"redirect_uris\":[\"" + testRedirect + "\"],\"client_name\":\"\xff\xfe\"}", "invalid_client_metadata"},
		"trailing object":             {`{"redirect_uris":["` + testRedirect + `"]} {}`, "invalid_client_metadata"},
		"trailing garbage":            {`{"redirect_uris":["` + testRedirect + `"]}x`, "invalid_client_metadata"},
		"two objects no space":        {`{"redirect_uris":["` + testRedirect + `"]}{"redirect_uris":["https://evil.example.com/cb"]}`, "invalid_client_metadata"},
		"empty body":                  {``, "invalid_client_metadata"},
		"null":                        {`null`, "invalid_client_metadata"},
		"array":                       {`[{"redirect_uris":["` + testRedirect + `"]}]`, "invalid_client_metadata"},
		"truncated":                   {`{"redirect_uris":["` + testRedirect + `"]`, "invalid_client_metadata"},
		"redirect_uris is a string":   {`{"redirect_uris":"` + testRedirect + `"}`, "invalid_client_metadata"},
		"null inside redirect_uris":   {`{"redirect_uris":["` + testRedirect + `",null]}`, "invalid_client_metadata"},
		"client_name is a number":     {`{"redirect_uris":["` + testRedirect + `"],"client_name":42}`, "invalid_client_metadata"},
		"grant_types is an object":    {`{"redirect_uris":["` + testRedirect + `"],"grant_types":{"0":"authorization_code"}}`, "invalid_client_metadata"},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(h.errsSnapshot())
			regRequireError(t, h.register(tc.body), http.StatusBadRequest, tc.code)
			require.Greater(t, len(h.errsSnapshot()), before, "ErrorHandler sees the refusal")
		})
	}
}

// errsSnapshot copies the errors ErrorHandler received so far.
func (h *harness) errsSnapshot() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// TestRegisterCaseVariantDoesNotOverride: a case-variant key next to the
// real one changes nothing (go-sdk CVE-2026-27896).
func TestRegisterCaseVariantDoesNotOverride(t *testing.T) {
	h := newHarness(t)
	w := h.register(`{"redirect_uris":["` + testRedirect + `"],"Redirect_Uris":["https://evil.example.com/cb"],"Token_Endpoint_Auth_Method":"none"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	out := regDecode(t, w)
	require.Equal(t, []any{testRedirect}, out["redirect_uris"])
	require.Equal(t, "client_secret_basic", out["token_endpoint_auth_method"])
	rec, err := h.model.GetClient(context.Background(), out["client_id"].(string))
	require.NoError(t, err)
	require.Equal(t, []string{testRedirect}, rec.Metadata.RedirectURIs)
}

func TestRegisterBodySizeLimit(t *testing.T) {
	const limit = 64 << 10
	body := func(size int) string {
		head := `{"redirect_uris":["` + testRedirect + `"],"pad":"`
		tail := `"}`
		return head + strings.Repeat("a", size-len(head)-len(tail)) + tail
	}
	h := newHarness(t)
	require.Len(t, body(limit), limit)
	w := h.register(body(limit))
	require.Equal(t, http.StatusCreated, w.Code, "a body of exactly 64 KiB is accepted")
	w = h.register(body(limit + 1))
	regRequireError(t, w, http.StatusRequestEntityTooLarge, "invalid_client_metadata")
	w = h.register(body(10 * limit))
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
}

// TestRegisterRequiresJSON: /register accepts only application/json, so a
// cross-site form post cannot register a client (go-sdk CVE-2026-33252).
func TestRegisterRequiresJSON(t *testing.T) {
	valid := `{"redirect_uris":["` + testRedirect + `"]}`
	for name, tc := range map[string]struct {
		contentType string
		body        string
		status      int
	}{
		"form":                  {"application/x-www-form-urlencoded", "redirect_uris=" + testRedirect, http.StatusBadRequest},
		"form carrying json":    {"application/x-www-form-urlencoded", valid, http.StatusBadRequest},
		"text/plain json":       {"text/plain", valid, http.StatusBadRequest},
		"multipart":             {"multipart/form-data; boundary=x", valid, http.StatusBadRequest},
		"missing content type":  {"", valid, http.StatusBadRequest},
		"malformed media type":  {"application/json;;", valid, http.StatusBadRequest},
		"json suffix type":      {"application/jsonx", valid, http.StatusBadRequest},
		"json with charset":     {"application/json; charset=utf-8", valid, http.StatusCreated},
		"json uppercase":        {"Application/JSON", valid, http.StatusCreated},
		"json with extra param": {"application/json; foo=bar", valid, http.StatusCreated},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			w := regPost(h, tc.contentType, tc.body)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			if tc.status != http.StatusCreated {
				require.Equal(t, "invalid_client_metadata", oauthError(t, w))
				require.Zero(t, h.model.Stats().Clients, "nothing registered")
			}
		})
	}
}

// TestRegisterRedirectURIRules: OAuth 2.1 §2.3.1, RFC 8252 §7, RFC 9700
// §2.6: https, loopback http, or a private-use scheme; no fragment (not even
// empty), no dangerous scheme (MCP TypeScript SDK #877).
func TestRegisterRedirectURIRules(t *testing.T) {
	for _, tc := range []struct {
		uris []string
		ok   bool
	}{
		{[]string{testRedirect}, true},
		{[]string{"https://client.example.com/cb?tenant=a"}, true},
		{[]string{"http://127.0.0.1:9/cb"}, true},
		{[]string{"http://127.0.0.1/cb"}, true},
		{[]string{"http://[::1]/cb"}, true},
		{[]string{"http://[::1]:8080/cb"}, true},
		{[]string{"http://localhost:8090/callback"}, true},
		{[]string{"com.example.app:/cb"}, true},
		{[]string{"com.example.app://oauth/cb"}, true},
		{[]string{testRedirect, "http://127.0.0.1/cb", "com.example.app:/cb"}, true},

		{[]string{"http://client.example.com/cb"}, false},
		{[]string{"http://localhost.example.com/cb"}, false},
		{[]string{"http://127.0.0.1.nip.io/cb"}, false},
		{[]string{"http://10.0.0.1/cb"}, false},
		{[]string{"https://client.example.com/cb#frag"}, false},
		{[]string{"https://client.example.com/cb#"}, false},
		{[]string{"http://127.0.0.1/cb#"}, false},
		{[]string{"javascript:alert(1)"}, false},
		{[]string{"JavaScript:alert(document.cookie)"}, false},
		{[]string{"javascript://client.example.com/%0aalert(1)"}, false},
		{[]string{"data:text/html,<script>alert(1)</script>"}, false},
		{[]string{"vbscript:msgbox(1)"}, false},
		{[]string{"file:///etc/passwd"}, false},
		{[]string{"/cb"}, false},
		{[]string{"client.example.com/cb"}, false},
		{[]string{""}, false},
		{[]string{"https://user:pass@client.example.com/cb"}, false},
		{[]string{"https:///cb"}, false},
		{[]string{"https://client.example.com/cb", "javascript:alert(1)"}, false},
		{[]string{"https://client.example.com/cb", "http://client.example.com/cb"}, false},
	} {
		t.Run(strings.Join(tc.uris, " "), func(t *testing.T) {
			h := newHarness(t)
			w := h.register(regJSON(t, map[string]any{"redirect_uris": tc.uris, "token_endpoint_auth_method": "none"}))
			if tc.ok {
				require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
				require.Equal(t, regNormalize(t, tc.uris), regDecode(t, w)["redirect_uris"])
				return
			}
			regRequireError(t, w, http.StatusBadRequest, "invalid_redirect_uri")
			require.Zero(t, h.model.Stats().Clients)
		})
	}
}

// TestRegisterAllowInsecureRedirectURIs: the development switch admits
// plain http, never a dangerous scheme or a fragment.
func TestRegisterAllowInsecureRedirectURIs(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.AllowInsecureRedirectURIs = true })
	out := h.registerClient(map[string]any{"redirect_uris": []string{"http://client.example.com/cb"}, "token_endpoint_auth_method": "none"})
	require.Equal(t, []any{"http://client.example.com/cb"}, out["redirect_uris"])
	for _, u := range []string{"javascript:alert(1)", "data:text/html,x", "http://client.example.com/cb#", "file:///etc/passwd"} {
		w := h.register(regJSON(t, map[string]any{"redirect_uris": []string{u}, "token_endpoint_auth_method": "none"}))
		regRequireError(t, w, http.StatusBadRequest, "invalid_redirect_uri")
	}
	// Without the switch the same URI is refused.
	w := newHarness(t).register(regJSON(t, map[string]any{"redirect_uris": []string{"http://client.example.com/cb"}, "token_endpoint_auth_method": "none"}))
	regRequireError(t, w, http.StatusBadRequest, "invalid_redirect_uri")
}

// TestRegisterRefusesDangerousURIMetadata: URI members end up in links and
// images on consent pages and in clients; only http(s) is allowed (MCP
// TypeScript SDK #877; the TypeScript original once accepted a javascript:
// policy_uri).
func TestRegisterRefusesDangerousURIMetadata(t *testing.T) {
	h := newHarness(t)
	for _, field := range []string{"client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri"} {
		for _, v := range []string{
			"javascript:alert(1)",
			"JAVASCRIPT:alert(1)",
			" javascript:alert(1)",
			"data:image/svg+xml,<svg onload=alert(1)>",
			"vbscript:msgbox(1)",
			"file:///etc/passwd",
			"https://client.example.com/x#frag",
			"//client.example.com/x",
			"not a url",
		} {
			t.Run(field+" "+v, func(t *testing.T) {
				w := h.register(regJSON(t, map[string]any{"redirect_uris": []string{testRedirect}, field: v}))
				regRequireError(t, w, http.StatusBadRequest, "invalid_client_metadata")
			})
		}
	}
	require.Zero(t, h.model.Stats().Clients)
}

func TestRegisterMetadataRules(t *testing.T) {
	for name, tc := range map[string]struct {
		meta map[string]any
		code string
	}{
		// OpenID Connect Dynamic Client Registration §2: private_key_jwt
		// needs keys, and this server fetches them over https only.
		"private_key_jwt no keys":   {map[string]any{"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		"private_key_jwt http keys": {map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://client.example.com/jwks"}, "invalid_client_metadata"},
		"private_key_jwt hmac key":  {map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": map[string]any{"keys": []any{map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}}}, "invalid_client_metadata"},
		"client_secret_jwt":         {map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"},
		"tls_client_auth":           {map[string]any{"token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"},
		"auth method case":          {map[string]any{"token_endpoint_auth_method": "None"}, "invalid_client_metadata"},
		"only unsupported":          {map[string]any{"grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
		"implicit and pw":           {map[string]any{"grant_types": []string{"implicit", "password"}}, "invalid_client_metadata"},
		"response_type token":       {map[string]any{"response_types": []string{"token"}}, "invalid_client_metadata"},
		"code and token":            {map[string]any{"response_types": []string{"code", "token"}}, "invalid_client_metadata"},
		// RFC 7591 §2.1: grant_types and response_types must agree.
		"code without grant":  {map[string]any{"grant_types": []string{"refresh_token"}, "response_types": []string{"code"}}, "invalid_client_metadata"},
		"jwks and jwks_uri":   {map[string]any{"jwks_uri": "https://client.example.com/jwks", "jwks": map[string]any{"keys": []any{}}}, "invalid_client_metadata"},
		"jwks not an object":  {map[string]any{"jwks": []any{}}, "invalid_client_metadata"},
		"unsupported scope":   {map[string]any{"scope": "mcp:tools mcp:root"}, "invalid_client_metadata"},
		"malformed scope":     {map[string]any{"scope": "mcp:tools  mcp:admin"}, "invalid_client_metadata"},
		"quote in scope":      {map[string]any{"scope": `mcp:"tools"`}, "invalid_client_metadata"},
		"code grant no uris":  {map[string]any{"redirect_uris": []string{}}, "invalid_redirect_uri"},
		"code grant null uri": {map[string]any{"redirect_uris": nil}, "invalid_redirect_uri"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			meta := map[string]any{"redirect_uris": []string{testRedirect}}
			for k, v := range tc.meta {
				meta[k] = v
			}
			regRequireError(t, h.register(regJSON(t, meta)), http.StatusBadRequest, tc.code)
			require.Zero(t, h.model.Stats().Clients)
		})
	}
}

// TestRegisterDropsUnsupportedGrantTypes: RFC 7591 §3.2.1 lets the server
// replace requested values; the response shows what was registered.
func TestRegisterDropsUnsupportedGrantTypes(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{
		"redirect_uris":              []string{testRedirect},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit", "refresh_token", "authorization_code"},
	})
	require.Equal(t, []any{"authorization_code", "refresh_token"}, out["grant_types"])
	rec, err := h.model.GetClient(context.Background(), out["client_id"].(string))
	require.NoError(t, err)
	require.Equal(t, []string{"authorization_code", "refresh_token"}, rec.Metadata.GrantTypes)
	require.False(t, rec.HasGrantType("implicit"))
}

// TestRegisterGrantDisabledOnServer: a grant the server does not enable is
// not registered, even if the client asks for it.
func TestRegisterGrantDisabledOnServer(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode} })
	out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}, "grant_types": []string{"authorization_code", "refresh_token"}})
	require.Equal(t, []any{"authorization_code"}, out["grant_types"])
	w := h.register(regJSON(t, map[string]any{"grant_types": []string{"refresh_token"}, "response_types": []string{}}))
	regRequireError(t, w, http.StatusBadRequest, "invalid_client_metadata")
}

// TestRegisterDisabled: DynamicClientRegistration off: no endpoint and no
// registration_endpoint in metadata.
func TestRegisterDisabled(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.DisableDynamicClientRegistration = true })
	w := h.register(`{"redirect_uris":["` + testRedirect + `"]}`)
	require.Equal(t, http.StatusNotFound, w.Code, w.Body.String())
	require.Zero(t, h.model.Stats().Clients)
	w = h.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", nil))
	require.Equal(t, http.StatusOK, w.Code)
	doc := regDecode(t, w)
	require.NotContains(t, doc, "registration_endpoint")
	require.Empty(t, h.srv.Metadata().RegistrationEndpoint)
	// Static registration still works.
	_, err := h.srv.RegisterClient(context.Background(), mcpoauthClientInfo("static", testRedirect))
	require.NoError(t, err)
}

// TestRegisterStoresOnlyTheSecretDigest: digests at rest (docs/security.md): the record holds
// SHA-256(secret) and never the secret (the TypeScript original stored it
// in plaintext).
func TestRegisterStoresOnlyTheSecretDigest(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}, "client_name": "Digest Client", "scope": testScope})
	id, sec := out["client_id"].(string), out["client_secret"].(string)
	rec, err := h.model.GetClient(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, id, rec.ID)
	require.Equal(t, mcpoauth.Digest(sha256.Sum256([]byte(sec))), rec.SecretDigest)
	require.Equal(t, h.clock.Now().Unix(), rec.IssuedAt.Unix())
	require.Equal(t, "Digest Client", rec.Metadata.ClientName)
	require.Equal(t, []string{testRedirect}, rec.Metadata.RedirectURIs)
	require.Equal(t, testScope, rec.Metadata.Scope)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		require.NotContains(t, fmt.Sprintf(format, *rec), sec, format)
	}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NotContains(t, string(b), sec)
	require.NotContains(t, h.logs.String(), sec, "the secret is never logged")
}

// TestRegisterCORS: RFC 9700 §2.6 allows CORS on the registration endpoint;
// browser-based MCP clients need it (the TypeScript original had no CORS).
func TestRegisterCORS(t *testing.T) {
	h := newHarness(t)
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/register", strings.NewReader(`{"redirect_uris":["`+testRedirect+`"]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "https://app.example.org")
	w := h.do(r)
	require.Equal(t, http.StatusCreated, w.Code)
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))

	// An error response carries it too, so the browser can read the error.
	w = regPost(h, "text/plain", "x")
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))

	r = httptest.NewRequest(http.MethodOptions, testIssuer+"/register", nil)
	r.Header.Set("Origin", "https://app.example.org")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "content-type")
	w = h.do(r)
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")), "content-type")
	require.Empty(t, w.Body.String())
	require.Equal(t, 1, h.model.Stats().Clients, "the preflight registered nothing")
}

func TestRegisterMethodGuard(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		w := h.do(httptest.NewRequest(m, testIssuer+"/register", nil))
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		require.Equal(t, "POST", w.Header().Get("Allow"), m)
	}
}

// TestRegisteredClientCanAuthorize: what /register stores is what the
// other endpoints use.
func TestRegisteredClientCanAuthorize(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	rec, err := h.model.GetClient(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "Test Client", rec.Metadata.ClientName)
	tr := h.tokens(id)
	require.NotEmpty(t, tr.AccessToken)
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
}

// TestRegisterRefusesClientCredentials: a client that registers itself may
// not have the client_credentials grant (audit finding 1): with it, anyone
// could mint tokens with no user and no consent. Machine clients are
// pre-registered; nothing is stored, and no token can be had.
func TestRegisterRefusesClientCredentials(t *testing.T) {
	h := newHarness(t, withAllGrants)
	for name, grants := range map[string][]string{
		"client_credentials only":      {"client_credentials"},
		"client_credentials in a list": {"authorization_code", "client_credentials"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.register(regJSON(t, map[string]any{"grant_types": grants, "client_name": "x", "redirect_uris": []string{testRedirect}}))
			regRequireError(t, w, http.StatusBadRequest, "invalid_client_metadata")
			require.NotContains(t, w.Body.String(), "client_secret")
		})
	}
	require.Zero(t, h.model.Stats().Clients, "a refused registration stores nothing")
	// A pre-registered machine client keeps the grant.
	id, sec := h.ccClient(nil)
	w := h.postForm("/token", ccForm(), id, sec)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// TestRegistrationPolicy: Config.RegistrationPolicy sees the validated
// metadata and the request; it may refuse (an OAuthError as it is, any other
// error as invalid_client_metadata whose text stays out of the response),
// narrow the metadata (validated again), or opt in to client_credentials.
func TestRegistrationPolicy(t *testing.T) {
	const allowedHost = "client.example.com"
	policy := func(reg *mcpoauth.Registration) error {
		if reg.Request.Header.Get("X-Deny") != "" {
			return errors.New("secret policy reason")
		}
		if reg.Request.Header.Get("X-Need-Token") != "" {
			return &mcpoauth.OAuthError{Code: "invalid_token", Description: "an initial access token is required", Status: http.StatusUnauthorized}
		}
		// Narrow: keep only redirect URIs on the allowed host.
		var kept []string
		for _, u := range reg.Metadata.RedirectURIs {
			if pu, err := url.Parse(u); err == nil && pu.Host == allowedHost {
				kept = append(kept, u)
			}
		}
		reg.Metadata.RedirectURIs = kept
		reg.AllowClientCredentials = reg.Request.Header.Get("X-Machine") != ""
		return nil
	}
	h := newHarness(t, withAllGrants, func(c *mcpoauth.Config) { c.RegistrationPolicy = policy })
	post := func(header string, meta map[string]any) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, testIssuer+"/register", strings.NewReader(regJSON(t, meta)))
		r.Header.Set("Content-Type", "application/json")
		if header != "" {
			r.Header.Set(header, "1")
		}
		return h.do(r)
	}
	web := map[string]any{"redirect_uris": []string{testRedirect, "https://phish.example.net/cb"}, "token_endpoint_auth_method": "none"}

	t.Run("narrowed: only the allowed redirect host is registered", func(t *testing.T) {
		w := post("", web)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		require.Equal(t, []any{testRedirect}, regDecode(t, w)["redirect_uris"])
	})
	t.Run("narrowed to nothing: validated again", func(t *testing.T) {
		regRequireError(t, post("", map[string]any{"redirect_uris": []string{"https://phish.example.net/cb"}, "token_endpoint_auth_method": "none"}),
			http.StatusBadRequest, "invalid_redirect_uri")
	})
	t.Run("refused with a plain error", func(t *testing.T) {
		w := post("X-Deny", web)
		regRequireError(t, w, http.StatusBadRequest, "invalid_client_metadata")
		require.NotContains(t, w.Body.String(), "secret policy reason")
		errs := h.errsSnapshot()
		require.EqualError(t, errors.Unwrap(errs[len(errs)-1]), "secret policy reason", "the cause reaches ErrorHandler")
	})
	t.Run("refused with an OAuthError", func(t *testing.T) {
		regRequireError(t, post("X-Need-Token", web), http.StatusUnauthorized, "invalid_token")
	})
	machine := map[string]any{"grant_types": []string{"client_credentials"}, "client_name": "batch"}
	t.Run("client_credentials without the policy's opt-in", func(t *testing.T) {
		regRequireError(t, post("", machine), http.StatusBadRequest, "invalid_client_metadata")
	})
	t.Run("client_credentials with the policy's opt-in", func(t *testing.T) {
		w := post("X-Machine", machine)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		out := regDecode(t, w)
		tw := h.postForm("/token", ccForm(), out["client_id"].(string), out["client_secret"].(string))
		require.Equal(t, http.StatusOK, tw.Code, tw.Body.String())
	})
}

// TestRegisterDisplaySpoofing: Unicode TR 36: the strings a client registers
// are shown on the consent and device pages, so /register refuses C1
// controls and bidirectional formatting characters in them with 400
// invalid_client_metadata (RFC 7591 §3.2.2), as it refuses C0 controls,
// and registers nothing.
func TestRegisterDisplaySpoofing(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name, member, value string
	}{
		{"TR36 bidi override U+202E in client_name", "client_name", `\u202EtnuoccA elgooG`},
		{"TR36 bidi isolate U+2067 in client_name", "client_name", `Acme\u2067`},
		{"TR36 bidi mark U+200F (RLM) in client_name", "client_name", `Acme\u200F`},
		{"TR36 C1 control U+009B (CSI) in client_name", "client_name", `\u009b31mAcme`},
		{"TR36 bidi override U+202E in client_uri", "client_uri", `https://acme.example/\u202E`},
		{"TR36 bidi override U+202E in logo_uri", "logo_uri", `https://acme.example/\u202Egnp.png`},
		{"TR36 bidi override U+202E in tos_uri", "tos_uri", `https://acme.example/\u202Etos`},
		{"TR36 bidi override U+202E in policy_uri", "policy_uri", `https://acme.example/\u202Epolicy`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.errsSnapshot())
			body := `{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","` + tt.member + `":"` + tt.value + `"}`
			w := h.register(body)
			regRequireError(t, w, http.StatusBadRequest, "invalid_client_metadata")
			errs := h.errsSnapshot()
			require.Greater(t, len(errs), before, "ErrorHandler sees the refusal")
			require.ErrorIs(t, errs[len(errs)-1], metadata.ErrInvalidClientMetadata, "refused by the decoder")
		})
	}
	// The same name without the control registers: the refusal is about
	// the character, not the text.
	w := h.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","client_name":"Acme \u05D0\u05D1 \u00e9"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
}

// TestRegisterClientDisplaySpoofing: a client registered from Go (a static
// client file, an application's own registration page) is shown on the
// same pages, so RegisterClient applies the same rule (Unicode TR 36).
func TestRegisterClientDisplaySpoofing(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name, clientName string
		ok               bool
	}{
		{"TR36 bidi override U+202E in client_name", "\u202eemcA", false},
		{"TR36 C1 control U+009B in client_name", "\u009b31mAcme", false},
		{"TR36 bidi mark U+200E (LRM) in client_name", "Acme\u200e", false},
		{"TR36 right-to-left client_name without controls", "מחשבון", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := mcpoauthClientInfo("static-"+tt.name, testRedirect)
			info.ClientName = tt.clientName
			_, err := h.srv.RegisterClient(context.Background(), info)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.ErrorContains(t, err, "client_name contains a control or bidirectional formatting character")
		})
	}
}
