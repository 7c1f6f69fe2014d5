package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/cimd/cimdtest"
)

// cimdClientID is the client ID metadata document URL of the test client;
// the fixture serves it whatever the host.
const cimdClientID = "https://app.example.com/oauth/client.json"

// serveCIMDFixture serves the client's metadata document from a loopback TLS
// server and routes the example's CIMD fetches to it (module-internal test
// hook; production configuration cannot reach it).
func serveCIMDFixture(t *testing.T, doc map[string]any) {
	t.Helper()
	body, err := json.Marshal(doc)
	require.NoError(t, err)
	fixture := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(body)
	}))
	t.Cleanup(fixture.Close)
	t.Cleanup(cimd.SetTestTransport(cimdtest.Transport(fixture)))
}

// TestCIMDEndToEnd: a client whose client_id is the URL of its metadata
// document signs in through the example server's own consent page, which
// shows the document's host, and its token calls /mcp.
func TestCIMDEndToEnd(t *testing.T) {
	serveCIMDFixture(t, map[string]any{
		"client_id":                  cimdClientID,
		"client_name":                "CIMD <b>App</b>",
		"redirect_uris":              []string{testRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	e := newTestEnv(t, "")
	verifier, challenge := pkcePair()
	b := newBrowser(t)
	consentURL := e.authorize(b, cimdClientID, challenge, "st")
	f, _, page := e.openForm(b, consentURL)
	assert.Contains(t, page, "app.example.com", "the consent page shows who publishes the document")
	assert.Contains(t, page, "CIMD &lt;b&gt;App&lt;/b&gt;", "the document's name is escaped")
	assert.NotContains(t, page, "<b>App</b>")
	resp, body := e.decide(b, consentURL, f, "alice", "approve")
	loc := seeOther(t, resp, body)
	tr := e.redeem(cimdClientID, loc.Query().Get("code"), verifier)
	require.NotEmpty(t, tr.RefreshToken)
	resp, body = e.callMCP(tr.AccessToken)
	require.NotEqual(t, http.StatusUnauthorized, resp.StatusCode, body)
	require.NotEqual(t, http.StatusForbidden, resp.StatusCode, body)
}

// TestCIMDRefusesUnsafeDocuments: through the example, a document whose
// client_id differs from its URL, or that asks for a shared secret, is
// refused before any consent page.
func TestCIMDRefusesUnsafeDocuments(t *testing.T) {
	for name, doc := range map[string]map[string]any{
		"client_id mismatch": {"client_id": "https://evil.example.com/oauth/client.json", "client_name": "X", "redirect_uris": []string{testRedirect}},
		"shared secret":      {"client_id": cimdClientID, "client_name": "X", "redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "client_secret_post"},
		"client_secret":      {"client_id": cimdClientID, "client_name": "X", "redirect_uris": []string{testRedirect}, "client_secret": "s"},
		"no redirect_uris":   {"client_id": cimdClientID, "client_name": "X"},
	} {
		t.Run(name, func(t *testing.T) {
			serveCIMDFixture(t, doc)
			e := newTestEnv(t, "")
			_, challenge := pkcePair()
			q := url.Values{"response_type": {"code"}, "client_id": {cimdClientID}, "redirect_uri": {testRedirect},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {e.issuer + "/mcp"}}
			resp, body := e.get(newBrowser(t), e.issuer+"/authorize?"+q.Encode())
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
			require.Contains(t, body, "invalid_client")
			require.Empty(t, resp.Header.Get("Location"))
		})
	}
}
