package mcphttp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// challenge stands for bearer auth: it answers every request 401 with a
// challenge, as RequireBearerAuth does without a token.
var challenge = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`)
	w.WriteHeader(http.StatusUnauthorized)
})

func TestCORS(t *testing.T) {
	const inspector = "http://localhost:6274"
	local := OriginOptions{Origins: []string{"https://app.example.com"}, AllowLoopback: true}
	anyOrigin := OriginOptions{AllowAnyOrigin: true}
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version"}
	for _, tt := range []struct {
		name    string
		opts    OriginOptions
		method  string
		origin  string
		headers map[string]string
		// want: status and response headers ("" means absent)
		status                                  int
		allowOrigin, vary, expose, allowHeaders string
	}{
		{
			name: "Fetch §4.8: preflight answered before bearer auth, without challenge",
			opts: local, method: http.MethodOptions, origin: inspector, headers: preflight,
			status: http.StatusNoContent, allowOrigin: inspector, vary: "Origin", allowHeaders: corsAllowHeaders,
		},
		{
			name: "Fetch §3.2.5: allowed origin echoed on the 401, challenge exposed",
			opts: local, method: http.MethodPost, origin: "https://app.example.com",
			status: http.StatusUnauthorized, allowOrigin: "https://app.example.com", vary: "Origin", expose: corsExposeHeaders,
		},
		{
			name: "MCP transport: preflight from a foreign origin is 403",
			opts: local, method: http.MethodOptions, origin: "https://attacker.example", headers: preflight,
			status: http.StatusForbidden,
		},
		{
			name: "MCP transport: request from a foreign origin is 403, not passed to bearer auth",
			opts: local, method: http.MethodPost, origin: "https://attacker.example",
			status: http.StatusForbidden,
		},
		{
			name: "MCP transport: no Origin passes to bearer auth, Vary still set",
			opts: local, method: http.MethodPost,
			status: http.StatusUnauthorized, vary: "Origin",
		},
		{
			name: "Fetch §3.2.5: OPTIONS without Origin is no preflight",
			opts: local, method: http.MethodOptions, headers: preflight,
			status: http.StatusUnauthorized, vary: "Origin",
		},
		{
			name: "Fetch §4.8: OPTIONS without Access-Control-Request-Method is no preflight",
			opts: local, method: http.MethodOptions, origin: inspector,
			status: http.StatusUnauthorized, allowOrigin: inspector, vary: "Origin", expose: corsExposeHeaders,
		},
		{
			name: "bearer tokens, no cookies: any origin answered with *, no Vary",
			opts: anyOrigin, method: http.MethodGet, origin: "https://anything.example",
			status: http.StatusUnauthorized, allowOrigin: "*", expose: corsExposeHeaders,
		},
		{
			name: "bearer tokens, no cookies: any-origin preflight answered with *",
			opts: anyOrigin, method: http.MethodOptions, origin: "https://anything.example", headers: preflight,
			status: http.StatusNoContent, allowOrigin: "*", allowHeaders: corsAllowHeaders,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://localhost:3000/mcp", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			CORS(tt.opts)(challenge).ServeHTTP(w, r)
			h := w.Header()
			require.Equal(t, tt.status, w.Code, w.Body.String())
			require.Equal(t, tt.allowOrigin, h.Get("Access-Control-Allow-Origin"))
			require.Equal(t, tt.vary, h.Get("Vary"))
			require.Equal(t, tt.expose, h.Get("Access-Control-Expose-Headers"))
			require.Equal(t, tt.allowHeaders, h.Get("Access-Control-Allow-Headers"))
			require.Empty(t, h.Get("Access-Control-Allow-Credentials"), "MCP authorization uses no cookies")
			if tt.status == http.StatusNoContent {
				require.Empty(t, h.Get("WWW-Authenticate"), "a preflight is not challenged")
				require.Equal(t, corsAllowMethods, h.Get("Access-Control-Allow-Methods"))
			}
		})
	}
}

// TestCORSHeaderLists: the MCP transport's request headers may be sent
// and its response headers read by a page.
func TestCORSHeaderLists(t *testing.T) {
	for _, tt := range []struct {
		name, list string
		want       []string
	}{
		{"MCP transport: request headers of streamable HTTP and the 2026-07-28 revision", corsAllowHeaders,
			[]string{"Authorization", "Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID", "Mcp-Method", "Mcp-Name"}},
		{"RFC 9728 §5.1: the challenge, session id and protocol version are exposed", corsExposeHeaders,
			[]string{"WWW-Authenticate", "Mcp-Session-Id", "Mcp-Protocol-Version"}},
		{"MCP transport: POST, GET and DELETE", corsAllowMethods, []string{"GET", "POST", "DELETE"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.ElementsMatch(t, tt.want, strings.Split(tt.list, ", "))
		})
	}
}

// TestCORSKeepsVaryOfNext: CORS adds to the Vary of the handler below, it
// does not replace it.
func TestCORSKeepsVaryOfNext(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("Vary", "Accept")
	})
	w := httptest.NewRecorder()
	CORS(OriginOptions{AllowLoopback: true})(next).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/mcp", nil))
	require.Equal(t, []string{"Origin", "Accept"}, w.Header().Values("Vary"))
}
