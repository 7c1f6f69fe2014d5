package redirect

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want error
	}{
		{"https://app.example.com/cb", nil},
		{"https://app.example.com/cb?x=1", nil},
		{"http://127.0.0.1/cb", nil},
		{"http://127.0.0.1:8080/cb", nil},
		{"http://[::1]:8080/cb", nil},
		{"http://localhost:8090/callback", nil},
		{"com.example.app:/oauth2redirect", nil},
		{"vscode://vscode.github-authentication/did-authenticate", nil},
		{"cursor://anysphere.cursor-retrieval/oauth/callback", nil},
		{"http://app.example.com/cb", ErrInsecure},
		{"http://127.0.0.1.evil.com/cb", ErrInsecure},
		{"https://app.example.com/cb#", ErrInvalid},
		{"https://app.example.com/cb#frag", ErrInvalid},
		{"https://user:pw@app.example.com/cb", ErrInvalid},
		{"/cb", ErrInvalid},
		{"", ErrInvalid},
		{"https:///cb", ErrInvalid},
		{"javascript:alert(1)", ErrDangerous},
		{"JavaScript:alert(1)", ErrDangerous},
		{"data:text/html,hi", ErrDangerous},
		{"vbscript:x", ErrDangerous},
		{"file:///etc/passwd", ErrDangerous},
		// A private-use-looking authority does not launder a forbidden scheme.
		{"javascript://anysphere.cursor-mcp/%0Aalert(1)", ErrDangerous},
		{"blob:https://claude.ai/api/mcp/auth_callback", ErrDangerous},
	} {
		require.ErrorIs(t, Validate(tc.uri, false), tc.want, tc.uri)
		if tc.want == nil {
			require.NoError(t, Validate(tc.uri, false), tc.uri)
		}
	}
	require.NoError(t, Validate("http://app.example.com/cb", true))
	require.ErrorIs(t, Validate("javascript:x", true), ErrDangerous)
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		reg, req string
		want     bool
	}{
		{"https://app.example.com/cb", "https://app.example.com/cb", true},
		// fosite CVE-2020-15234: no case folding.
		{"https://app.example.com/callback", "https://app.example.com/CALLBACK", false},
		{"https://app.example.com/cb", "https://APP.example.com/cb", false},
		// go-oauth2 matched a host suffix: no suffix or prefix match.
		{"https://example.com/cb", "https://evilexample.com/cb", false},
		{"https://example.com/cb", "https://example.com/cb/evil", false},
		{"https://example.com/cb", "https://example.com/cb/", false},
		{"https://example.com/cb", "http://example.com/cb", false},
		{"https://example.com/cb", "https://example.com:8443/cb", false},
		{"https://example.com/cb", "https://attacker@example.com/cb", false},
		{"https://example.com/cb", "https://example.com/cb#x", false},
		{"https://example.com/cb", "https://example.com/cb?x=1", false},
		// RFC 8252 §7.3: loopback, any port.
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb", true},
		{"http://127.0.0.1:3000/cb", "http://127.0.0.1:5555/cb", true},
		{"http://[::1]:3000/cb", "http://[::1]:61000/cb", true},
		{"http://localhost:8090/callback", "http://localhost:9999/callback", true},
		// fosite CVE-2020-15233: loopback still compares the query.
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb?x=1", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb#x", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb/", false},
		{"http://127.0.0.1/cb", "http://localhost:5555/cb", false},
		{"http://127.0.0.1/cb", "https://127.0.0.1:5555/cb", false},
		{"http://127.0.0.1/cb", "http://u@127.0.0.1:5555/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:abc/cb", false},
		// Nothing but the port varies: not even the case of the scheme.
		{"http://127.0.0.1/cb", "HTTP://127.0.0.1:5555/cb", false},
		{"HTTP://127.0.0.1/cb", "http://127.0.0.1:5555/cb", false},
		{"https://example.com:8080/cb", "https://example.com:9090/cb", false},
	} {
		require.Equal(t, tc.want, Matches(tc.reg, tc.req), "%s ~ %s", tc.reg, tc.req)
	}
}

func TestResolve(t *testing.T) {
	got, err := Resolve([]string{"https://a/cb"}, "")
	require.NoError(t, err)
	require.Equal(t, "https://a/cb", got)
	_, err = Resolve([]string{"https://a/cb", "https://a/cb2"}, "")
	require.ErrorIs(t, err, ErrAmbiguous)
	_, err = Resolve(nil, "")
	require.ErrorIs(t, err, ErrAmbiguous)
	_, err = Resolve([]string{"https://a/cb"}, "https://evil/cb")
	require.ErrorIs(t, err, ErrUnregistered)
	got, err = Resolve([]string{"http://127.0.0.1/cb"}, "http://127.0.0.1:4000/cb")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:4000/cb", got)
}

func TestWithParamsKeepsQuery(t *testing.T) {
	p := url.Values{"code": {"c"}, "state": {"s t"}}
	require.Equal(t, "https://a/cb?code=c&state=s+t", WithParams("https://a/cb", p))
	require.Equal(t, "https://a/cb?tenant=x&code=c&state=s+t", WithParams("https://a/cb?tenant=x", p))
}

func FuzzMatches(f *testing.F) {
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1:5555/cb")
	f.Add("https://example.com/cb", "https://evilexample.com/cb")
	f.Fuzz(func(t *testing.T, reg, req string) {
		if Matches(reg, req) && reg != req {
			u, err := url.Parse(req)
			require.NoError(t, err)
			require.True(t, IsLoopbackHost(u.Hostname()))
			require.True(t, strings.HasPrefix(req, "http://"))
			require.True(t, strings.HasPrefix(reg, "http://"))
			r, err := url.Parse(reg)
			require.NoError(t, err)
			require.Equal(t, r.Hostname(), u.Hostname())
			require.Equal(t, r.EscapedPath(), u.EscapedPath())
			require.Equal(t, r.RawQuery, u.RawQuery)
			require.Nil(t, u.User)
			require.Empty(t, u.Fragment)
		}
	})
}

// TestRealClients pins the redirect URIs the MCP clients in use register and
// then send, as /work/shared/reference/clients-2026.md ("Clients") records
// them from the clients' issue threads and changelogs: each one registers,
// and each one the client sends at /authorize resolves to itself.
func TestRealClients(t *testing.T) {
	for _, tc := range []struct {
		name       string
		registered []string
		requested  string
	}{
		{
			// RFC 8252 §7.1 asks apps for a reverse-DNS scheme; "cursor" is
			// not one, but its authority is, and Cursor cannot be told
			// otherwise: refusing it fails Cursor's whole registration.
			name: "cursor private-use scheme beside https and localhost, RFC 8252 §7.1",
			registered: []string{
				"cursor://anysphere.cursor-mcp/oauth/callback",
				"https://www.cursor.com/agents/mcp/oauth/callback",
				"http://localhost:8787/callback",
			},
			requested: "cursor://anysphere.cursor-mcp/oauth/callback",
		},
		{
			name: "cursor https callback, exact match",
			registered: []string{
				"cursor://anysphere.cursor-mcp/oauth/callback",
				"https://www.cursor.com/agents/mcp/oauth/callback",
				"http://localhost:8787/callback",
			},
			requested: "https://www.cursor.com/agents/mcp/oauth/callback",
		},
		{
			name: "cursor localhost callback on its registered port, RFC 8252 §7.3",
			registered: []string{
				"cursor://anysphere.cursor-mcp/oauth/callback",
				"https://www.cursor.com/agents/mcp/oauth/callback",
				"http://localhost:8787/callback",
			},
			requested: "http://localhost:8787/callback",
		},
		{
			name:       "vscode portless loopback used with a random port, RFC 8252 §7.3",
			registered: []string{"https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"},
			requested:  "http://127.0.0.1:49152/",
		},
		{
			name:       "vscode loopback on its usual port 33418, RFC 8252 §7.3",
			registered: []string{"https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"},
			requested:  "http://127.0.0.1:33418/",
		},
		{
			name:       "vscode https redirect, RFC 8252 §7.2 claimed https",
			registered: []string{"https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"},
			requested:  "https://vscode.dev/redirect",
		},
		{
			name:       "claude.ai callback, exact match",
			registered: []string{"https://claude.ai/api/mcp/auth_callback"},
			requested:  "https://claude.ai/api/mcp/auth_callback",
		},
		{
			name:       "claude.com callback, exact match",
			registered: []string{"https://claude.com/api/mcp/auth_callback"},
			requested:  "https://claude.com/api/mcp/auth_callback",
		},
		{
			name:       "chatgpt connector callback, exact match",
			registered: []string{"https://chatgpt.com/connector/oauth/g-4f6a2c9e1b"},
			requested:  "https://chatgpt.com/connector/oauth/g-4f6a2c9e1b",
		},
		{
			name:       "chatgpt legacy connector callback, exact match",
			registered: []string{"https://chatgpt.com/connector_platform_oauth_redirect"},
			requested:  "https://chatgpt.com/connector_platform_oauth_redirect",
		},
		{
			name:       "claude code localhost callback on another port, RFC 8252 §7.3",
			registered: []string{"http://localhost:53117/callback"},
			requested:  "http://localhost:60001/callback",
		},
		{
			name:       "mcp inspector localhost callback",
			registered: []string{"http://localhost:6274/oauth/callback"},
			requested:  "http://localhost:6274/oauth/callback",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, u := range tc.registered {
				require.NoError(t, Validate(u, false), u)
			}
			got, err := Resolve(tc.registered, tc.requested)
			require.NoError(t, err)
			require.Equal(t, tc.requested, got)
		})
	}
}

// TestRealClientsNoLooserMatch: what the real clients need stays the one
// exception to exact matching. Neighbours of their URIs do not match.
func TestRealClientsNoLooserMatch(t *testing.T) {
	vscode := []string{"https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"}
	cursor := []string{
		"cursor://anysphere.cursor-mcp/oauth/callback",
		"https://www.cursor.com/agents/mcp/oauth/callback",
		"http://localhost:8787/callback",
	}
	for _, tc := range []struct {
		name       string
		registered []string
		requested  string
	}{
		// RFC 8252 §7.3 frees the port of a loopback URI, nothing else.
		{"vscode loopback path differs", vscode, "http://127.0.0.1:49152/cb"},
		{"vscode loopback host differs: 127.0.0.1 is not localhost", vscode, "http://localhost:49152/"},
		{"vscode loopback over https is not the registered http", vscode, "https://127.0.0.1:49152/"},
		{"vscode loopback with a query", vscode, "http://127.0.0.1:49152/?next=x"},
		{"vscode loopback with userinfo", vscode, "http://evil@127.0.0.1:49152/"},
		{"vscode https port may not vary", vscode, "https://vscode.dev:8443/redirect"},
		{"vscode https trailing slash", vscode, "https://vscode.dev/redirect/"},
		// Private-use and https URIs match exactly (RFC 9700 §2.1).
		{"cursor private-use scheme case", cursor, "Cursor://anysphere.cursor-mcp/oauth/callback"},
		{"cursor private-use authority differs", cursor, "cursor://anysphere.cursor-evil/oauth/callback"},
		{"cursor private-use path differs", cursor, "cursor://anysphere.cursor-mcp/oauth/callback/x"},
		{"cursor https host suffix", cursor, "https://www.cursor.com.evil.example/agents/mcp/oauth/callback"},
		{"chatgpt connector id differs", []string{"https://chatgpt.com/connector/oauth/g-4f6a2c9e1b"}, "https://chatgpt.com/connector/oauth/g-0000000000"},
		{"claude.ai callback is not claude.com's", []string{"https://claude.ai/api/mcp/auth_callback"}, "https://claude.com/api/mcp/auth_callback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.registered, tc.requested)
			require.ErrorIs(t, err, ErrUnregistered)
		})
	}
}

func TestIsNativeOnly(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"https://claude.ai/api/mcp/auth_callback", false},
		{"https://vscode.dev/redirect", false},
		{"http://app.example.com/cb", false}, // only with AllowInsecureRedirectURIs
		{"http://127.0.0.1/", true},
		{"http://localhost:8787/callback", true},
		{"http://[::1]:8080/cb", true},
		{"https://localhost:8443/cb", true},
		{"cursor://anysphere.cursor-mcp/oauth/callback", true},
		{"com.example.app:/cb", true},
	} {
		require.Equal(t, tc.want, IsNativeOnly(tc.uri), tc.uri)
	}
}
