package integration_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRealClientRedirectURIs registers each client at /register exactly as
// that client does, then sends /authorize with the redirect URI it uses and
// expects the browser to reach the consent page. The payloads are from
// /work/shared/reference/clients-2026.md ("Clients"), which collects them
// from the clients' public issue threads and changelogs.
func TestRealClientRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		// register is the JSON body the client posts to /register.
		register string
		// use is the redirect_uri of its authorization request.
		use string
	}{
		{
			// Cursor: one DCR request with a private-use scheme (RFC 8252
			// §7.1), an https and a loopback URI; refusing any one of them
			// fails the whole registration.
			name: "cursor registers private-use, https and loopback at once (RFC 8252 §7.1, §7.3)",
			register: `{"client_name":"Cursor","redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback",` +
				`"https://www.cursor.com/agents/mcp/oauth/callback","http://localhost:8787/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "cursor://anysphere.cursor-mcp/oauth/callback",
		},
		{
			name: "cursor uses its https callback",
			register: `{"client_name":"Cursor","redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback",` +
				`"https://www.cursor.com/agents/mcp/oauth/callback","http://localhost:8787/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "https://www.cursor.com/agents/mcp/oauth/callback",
		},
		{
			name: "cursor uses its loopback callback",
			register: `{"client_name":"Cursor","redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback",` +
				`"https://www.cursor.com/agents/mcp/oauth/callback","http://localhost:8787/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "http://localhost:8787/callback",
		},
		{
			// VS Code: registers http://127.0.0.1/ without a port and then
			// listens on a random one when 33418 is busy.
			name: "vscode portless loopback used with a random port (RFC 8252 §7.3)",
			register: `{"client_name":"Visual Studio Code","application_type":"native","redirect_uris":["https://vscode.dev/redirect",` +
				`"http://127.0.0.1/","http://127.0.0.1:33418/"],"grant_types":["authorization_code","refresh_token"],` +
				`"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "http://127.0.0.1:51234/",
		},
		{
			name: "vscode fixed loopback port",
			register: `{"client_name":"Visual Studio Code","application_type":"native","redirect_uris":["https://vscode.dev/redirect",` +
				`"http://127.0.0.1/","http://127.0.0.1:33418/"],"grant_types":["authorization_code","refresh_token"],` +
				`"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "http://127.0.0.1:33418/",
		},
		{
			// A native client may use a claimed https redirect beside its
			// loopback ones (RFC 8252 §7.2).
			name: "vscode native client uses its https redirect (RFC 8252 §7.2)",
			register: `{"client_name":"Visual Studio Code","application_type":"native","redirect_uris":["https://vscode.dev/redirect",` +
				`"http://127.0.0.1/","http://127.0.0.1:33418/"],"grant_types":["authorization_code","refresh_token"],` +
				`"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "https://vscode.dev/redirect",
		},
		{
			name: "claude.ai web callback",
			register: `{"client_name":"Claude","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "https://claude.ai/api/mcp/auth_callback",
		},
		{
			name: "claude.com web callback",
			register: `{"client_name":"Claude","redirect_uris":["https://claude.com/api/mcp/auth_callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "https://claude.com/api/mcp/auth_callback",
		},
		{
			// ChatGPT registers a confidential client with
			// client_secret_post and one connector callback per connector.
			name: "chatgpt connector callback with client_secret_post",
			register: `{"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector/oauth/g-4f6a2c9e1b"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"client_secret_post"}`,
			use: "https://chatgpt.com/connector/oauth/g-4f6a2c9e1b",
		},
		{
			name: "chatgpt legacy connector callback",
			register: `{"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"client_secret_post"}`,
			use: "https://chatgpt.com/connector_platform_oauth_redirect",
		},
		{
			// Claude Code listens on a loopback port of its choosing.
			name: "claude code localhost callback on its port (RFC 8252 §7.3)",
			register: `{"client_name":"Claude Code","redirect_uris":["http://localhost:53117/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "http://localhost:53117/callback",
		},
		{
			name: "mcp inspector browser callback",
			register: `{"client_name":"MCP Inspector","redirect_uris":["http://localhost:6274/oauth/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "http://localhost:6274/oauth/callback",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			w := h.register(tc.register)
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
			var out map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
			var sent map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.register), &sent))
			require.Equal(t, sent["redirect_uris"], out["redirect_uris"], "every redirect URI is registered as sent")
			if at, ok := sent["application_type"]; ok {
				require.Equal(t, at, out["application_type"], "application_type is echoed")
			}
			clientID, _ := out["client_id"].(string)
			require.NotEmpty(t, clientID)

			params := authorizeParams(clientID)
			params.Set("redirect_uri", tc.use)
			aw := h.authorize(&browser{}, params)
			require.Equal(t, http.StatusFound, aw.Code, aw.Body.String())
			require.True(t, strings.HasPrefix(aw.Header().Get("Location"), testConsentURL+"?"), aw.Header().Get("Location"))
		})
	}
}

// TestWebClientsGetNoNativeRedirects: an application_type "web" client may
// not register a loopback or private-use redirect URI (OIDC Registration
// §2, MCP 2026-07-28: apps on the user's device register as "native"); a
// "native" one may register https beside them (RFC 8252 §7.2, VS Code); no
// application_type means no check (older clients send none).
func TestWebClientsGetNoNativeRedirects(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, appType string
		uris          []string
		want          int
	}{
		{"web with a loopback URI", "web", []string{"https://app.example.com/cb", "http://127.0.0.1/cb"}, http.StatusBadRequest},
		{"web with a private-use scheme", "web", []string{"cursor://anysphere.cursor-mcp/oauth/callback"}, http.StatusBadRequest},
		{"web with https only", "web", []string{"https://app.example.com/cb"}, http.StatusCreated},
		{"native with https beside loopback (VS Code)", "native", []string{"https://vscode.dev/redirect", "http://127.0.0.1/"}, http.StatusCreated},
		{"no application_type, loopback", "", []string{"http://localhost:8787/callback"}, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]any{"redirect_uris": tc.uris, "token_endpoint_auth_method": "none"}
			if tc.appType != "" {
				meta["application_type"] = tc.appType
			}
			w := h.register(regJSON(t, meta))
			require.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want == http.StatusBadRequest {
				require.Equal(t, "invalid_redirect_uri", oauthError(t, w))
			}
		})
	}
}
