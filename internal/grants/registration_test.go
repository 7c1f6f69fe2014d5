package grants

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// registrationService enables the grants the MCP clients register for.
func registrationService() *Service {
	return &Service{Policy: Policy{GrantTypes: []string{AuthorizationCode, RefreshToken}}}
}

// decodeRegistration decodes a /register body as the handler does.
func decodeRegistration(t *testing.T, body string) metadata.ClientMetadata {
	t.Helper()
	m, err := metadata.DecodeClientMetadata(strings.NewReader(body), 1<<16)
	require.NoError(t, err)
	return m
}

// TestValidateClientMetadataRealClients registers the payloads of the MCP
// clients in use, as /work/shared/reference/clients-2026.md ("Clients")
// records them: every redirect URI is kept as sent and application_type is
// kept for the response to echo.
func TestValidateClientMetadataRealClients(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{
			// One request, three kinds of redirect URI; refusing any one
			// fails the whole registration. No application_type: Cursor
			// predates the MCP 2026-07-28 requirement, so nothing is checked.
			name: "cursor private-use, https and localhost without application_type, RFC 8252 §7.1 §7.3",
			body: `{"client_name":"Cursor","redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback",` +
				`"https://www.cursor.com/agents/mcp/oauth/callback","http://localhost:8787/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		},
		{
			// A native client may have a claimed https redirect beside its
			// loopback ones (RFC 8252 §7.2), although OIDC Registration §2
			// predates that and lists only custom schemes and localhost.
			name: "vscode native with https beside portless and fixed loopback, RFC 8252 §7.2 §7.3",
			body: `{"client_name":"Visual Studio Code","application_type":"native","redirect_uris":["https://vscode.dev/redirect",` +
				`"http://127.0.0.1/","http://127.0.0.1:33418/"],"grant_types":["authorization_code","refresh_token"],` +
				`"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		},
		{
			name: "claude web callbacks, OIDC Registration §2 web",
			body: `{"client_name":"Claude","application_type":"web","redirect_uris":["https://claude.ai/api/mcp/auth_callback",` +
				`"https://claude.com/api/mcp/auth_callback"],"grant_types":["authorization_code","refresh_token"],` +
				`"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		},
		{
			name: "claude without application_type",
			body: `{"client_name":"Claude","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		},
		{
			name: "chatgpt connector callback with client_secret_post",
			body: `{"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector/oauth/g-4f6a2c9e1b"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"client_secret_post"}`,
		},
		{
			name: "claude code native localhost callback, RFC 8252 §7.3",
			body: `{"client_name":"Claude Code","application_type":"native","redirect_uris":["http://localhost:53117/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		},
		{
			// The MCP authorization spec (2026-07-28, Application Type and
			// Redirect URI Constraints) counts a web app served on
			// localhost as native.
			name: "mcp inspector native localhost callback",
			body: `{"client_name":"MCP Inspector","application_type":"native","redirect_uris":["http://localhost:6274/oauth/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := decodeRegistration(t, tc.body)
			out, oerr := registrationService().ValidateClientMetadata(in)
			require.Nil(t, oerr)
			require.Equal(t, in.RedirectURIs, out.RedirectURIs)
			require.Equal(t, in.ApplicationType, out.ApplicationType)
			require.Equal(t, in.TokenEndpointAuthMethod, out.TokenEndpointAuthMethod)
		})
	}
}

// TestValidateClientMetadataRefusesRedirectURIs: the real clients' URIs get
// no rule loosened. One bad URI among good ones refuses the registration
// with invalid_redirect_uri (RFC 7591 §3.2.2).
func TestValidateClientMetadataRefusesRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		uris []string
	}{
		{"javascript scheme beside cursor's URIs, mcp-remote CVE-2025-6514", []string{"cursor://anysphere.cursor-mcp/oauth/callback", "javascript:alert(1)"}},
		{"data scheme", []string{"https://claude.ai/api/mcp/auth_callback", "data:text/html,x"}},
		{"file scheme", []string{"file:///tmp/cb"}},
		{"plain http off loopback, OAuth 2.1 §2.3.1", []string{"https://vscode.dev/redirect", "http://vscode.dev/redirect"}},
		{"loopback lookalike host, RFC 8252 §8.3", []string{"http://127.0.0.1.evil.example/"}},
		{"fragment, RFC 6749 §3.1.2", []string{"https://chatgpt.com/connector/oauth/g-1#x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metadata.ClientMetadata{RedirectURIs: tc.uris, TokenEndpointAuthMethod: AuthMethodNone, ApplicationType: "native"}
			_, oerr := registrationService().ValidateClientMetadata(m)
			require.NotNil(t, oerr)
			require.Equal(t, oautherr.CodeInvalidRedirectURI, oerr.Code)
			require.Equal(t, http.StatusBadRequest, oerr.Status)
		})
	}
}

// TestValidateClientMetadataApplicationType: a web client gets no URI that
// only reaches the user's device; a native one may mix in https; no
// application_type means no check.
func TestValidateClientMetadataApplicationType(t *testing.T) {
	vscode := []string{"https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"}
	cursor := []string{"cursor://anysphere.cursor-mcp/oauth/callback", "https://www.cursor.com/agents/mcp/oauth/callback", "http://localhost:8787/callback"}
	for _, tc := range []struct {
		name    string
		appType string
		uris    []string
		refused bool
	}{
		{"vscode native mixes https and loopback, RFC 8252 §7.2", ApplicationTypeNative, vscode, false},
		{"cursor native mixes private-use, https and localhost", ApplicationTypeNative, cursor, false},
		{"cursor without application_type is not checked, pre-2026-07-28 client", "", cursor, false},
		{"vscode without application_type is not checked", "", vscode, false},
		{"claude web https callbacks, OIDC Registration §2", ApplicationTypeWeb, []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"}, false},
		{"chatgpt web connector callback", ApplicationTypeWeb, []string{"https://chatgpt.com/connector/oauth/g-4f6a2c9e1b"}, false},
		{"web with loopback http refused, OIDC Registration §2", ApplicationTypeWeb, []string{"https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1/"}, true},
		{"web with localhost http refused, MCP 2026-07-28 localhost apps are native", ApplicationTypeWeb, []string{"http://localhost:6274/oauth/callback"}, true},
		{"web with https on localhost refused, OIDC Registration §2 no localhost", ApplicationTypeWeb, []string{"https://localhost:8443/cb"}, true},
		{"web with ipv6 loopback refused", ApplicationTypeWeb, []string{"http://[::1]:8080/cb"}, true},
		{"web with private-use scheme refused, RFC 8252 §7.1 is for native apps", ApplicationTypeWeb, cursor, true},
		{"unknown application_type is not checked", "browser", cursor, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metadata.ClientMetadata{RedirectURIs: tc.uris, TokenEndpointAuthMethod: AuthMethodNone, ApplicationType: tc.appType}
			out, oerr := registrationService().ValidateClientMetadata(m)
			if !tc.refused {
				require.Nil(t, oerr)
				require.Equal(t, tc.appType, out.ApplicationType)
				return
			}
			require.NotNil(t, oerr)
			require.Equal(t, oautherr.CodeInvalidRedirectURI, oerr.Code)
			require.Equal(t, http.StatusBadRequest, oerr.Status)
		})
	}
}
