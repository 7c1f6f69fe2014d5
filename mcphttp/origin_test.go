package mcphttp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// okHandler answers 200 "ok", so a test can tell that a request got through.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok"))
})

// errorLog collects what an ErrorHandler receives.
type errorLog struct {
	errs  []error
	auths []string // the Authorization and Cookie headers it saw
}

func (l *errorLog) handler(r *http.Request, err error) {
	l.errs = append(l.errs, err)
	l.auths = append(l.auths, r.Header.Get("Authorization")+r.Header.Get("Cookie"))
}

func TestCanonicalOrigin(t *testing.T) {
	for _, tt := range []struct {
		name, in, canon, host string
	}{
		{"RFC 6454 §6.2: serialized origin unchanged", "https://app.example.com", "https://app.example.com", "app.example.com"},
		{"RFC 6454 §4: scheme and host compare case-insensitively", "HTTPS://App.Example.COM", "https://app.example.com", "app.example.com"},
		{"RFC 6454 §4: default https port is no port", "https://app.example.com:443", "https://app.example.com", "app.example.com"},
		{"RFC 6454 §4: default http port is no port", "http://localhost:80", "http://localhost", "localhost"},
		{"RFC 6454 §4: other port kept", "http://localhost:6274", "http://localhost:6274", "localhost"},
		{"RFC 6454 §4: 443 is not the default of http", "http://a.example:443", "http://a.example:443", "a.example"},
		{"RFC 3986 §3.2.2: IPv6 literal", "http://[::1]:6274", "http://[::1]:6274", "::1"},
		{"RFC 3986 §3.2.2: IPv6 literal lowercased", "http://[FE80::1]", "http://[fe80::1]", "fe80::1"},
		{"RFC 6454 §4: non-http scheme", "chrome-extension://abcdefgh", "chrome-extension://abcdefgh", "abcdefgh"},
		{"RFC 6454 §6.2: null is opaque", "null", "", ""},
		{"RFC 6454 §6.2: no path", "https://app.example.com/", "", ""},
		{"RFC 6454 §6.2: no query", "https://app.example.com?x", "", ""},
		{"RFC 6454 §6.2: no fragment", "https://app.example.com#x", "", ""},
		{"RFC 6454 §6.2: no userinfo", "https://user@app.example.com", "", ""},
		{"RFC 6454 §6.2: no percent-escape", "https://app%2eexample.com", "", ""},
		{"RFC 6454 §6.2: an empty port is not written", "https://app.example.com:", "", ""},
		{"RFC 6454 §6.2: port without leading zero", "http://localhost:06274", "", ""},
		{"port out of range", "http://localhost:65536", "", ""},
		{"port zero", "http://localhost:0", "", ""},
		{"no scheme", "//app.example.com", "", ""},
		{"no host", "https://", "", ""},
		{"empty", "", "", ""},
		{"IPv6 without brackets", "http://::1", "", ""},
		{"IPv6 zone", "http://[fe80::1%25lo]", "", ""},
		{"IPv4 in brackets", "http://[127.0.0.1]", "", ""},
		{"white space", "https://app.example.com ", "", ""},
		{"comma-joined list", "https://a.example, https://b.example", "", ""},
		{"non-ASCII host (browsers send punycode)", "https://bücher.example", "", ""},
		{"two ports", "http://localhost:1:2", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			canon, host, ok := canonicalOrigin(tt.in)
			require.Equal(t, tt.canon != "", ok)
			require.Equal(t, tt.canon, canon)
			require.Equal(t, tt.host, host)
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":         true,
		"LocalHost":         true,
		"127.0.0.1":         true,
		"127.1.2.3":         true,
		"::1":               true,
		"::ffff:127.0.0.1":  true,
		"fe80::1%lo":        false,
		"0.0.0.0":           false,
		"localhost.":        false,
		"foo.localhost":     false,
		"127.0.0.1.nip.io":  false,
		"10.0.0.1":          false,
		"[::1]":             false,
		"":                  false,
		"localhost.example": false,
	} {
		require.Equal(t, want, IsLoopback(host), host)
	}
}

func TestCheckOrigin(t *testing.T) {
	allowList := OriginOptions{Origins: []string{"https://app.example.com", "http://dev.example:8080"}}
	loopback := OriginOptions{AllowLoopback: true}
	for _, tt := range []struct {
		name    string
		opts    OriginOptions
		origins []string // the Origin header values; nil sends none
		want    int
	}{
		{"MCP transport: no Origin (non-browser client) passes", OriginOptions{}, nil, http.StatusOK},
		{"MCP transport: any present Origin refused by the empty allow-list", OriginOptions{}, []string{"https://app.example.com"}, http.StatusForbidden},
		{"MCP transport: allowed origin passes", allowList, []string{"https://app.example.com"}, http.StatusOK},
		{"MCP transport: invalid Origin is 403 (DNS rebinding page)", allowList, []string{"http://attacker.example:3000"}, http.StatusForbidden},
		{"RFC 6454 §4: allowed origin with default port passes", allowList, []string{"https://app.example.com:443"}, http.StatusOK},
		{"RFC 6454 §4: allowed origin in another case passes", allowList, []string{"HTTPS://APP.example.com"}, http.StatusOK},
		{"RFC 6454 §4: scheme is part of the origin", allowList, []string{"http://app.example.com"}, http.StatusForbidden},
		{"RFC 6454 §4: port is part of the origin", allowList, []string{"http://dev.example:8081"}, http.StatusForbidden},
		{"RFC 6454 §4: a suffix is another origin", allowList, []string{"https://app.example.com.attacker.example"}, http.StatusForbidden},
		{"RFC 6454 §6.2: null is refused", allowList, []string{"null"}, http.StatusForbidden},
		{"RFC 6454 §6.2: null is refused with any origin allowed", OriginOptions{AllowAnyOrigin: true}, []string{"null"}, http.StatusForbidden},
		{"RFC 6454 §6.2: empty Origin is refused", allowList, []string{""}, http.StatusForbidden},
		{"RFC 6454 §7.3: two Origin headers are refused", allowList, []string{"https://app.example.com", "https://app.example.com"}, http.StatusForbidden},
		{"loopback: MCP Inspector origin passes", loopback, []string{"http://localhost:6274"}, http.StatusOK},
		{"loopback: 127.0.0.1 on any port passes", loopback, []string{"http://127.0.0.1:5173"}, http.StatusOK},
		{"loopback: [::1] passes", loopback, []string{"http://[::1]:6274"}, http.StatusOK},
		{"loopback: https passes", loopback, []string{"https://localhost"}, http.StatusOK},
		{"loopback: only http and https schemes", loopback, []string{"ftp://localhost"}, http.StatusForbidden},
		{"loopback: a rebinding name is not loopback", loopback, []string{"http://127.0.0.1.nip.io:6274"}, http.StatusForbidden},
		{"loopback: off unless asked", allowList, []string{"http://localhost:6274"}, http.StatusForbidden},
		{"any origin: every serialized origin passes", OriginOptions{AllowAnyOrigin: true}, []string{"https://anything.example"}, http.StatusOK},
		{"any origin: garbage is still not an origin", OriginOptions{AllowAnyOrigin: true}, []string{"not an origin"}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log errorLog
			tt.opts.ErrorHandler = log.handler
			r := httptest.NewRequest(http.MethodPost, "http://localhost:3000/mcp", nil)
			r.Header.Set("Authorization", "Bearer secret-token")
			r.Header.Set("Cookie", "session=secret")
			for _, o := range tt.origins {
				r.Header.Add("Origin", o)
			}
			w := httptest.NewRecorder()
			CheckOrigin(tt.opts)(okHandler).ServeHTTP(w, r)
			require.Equal(t, tt.want, w.Code, w.Body.String())
			if tt.want == http.StatusForbidden {
				require.Equal(t, []error{ErrOriginNotAllowed}, log.errs)
				require.Equal(t, []string{""}, log.auths, "the ErrorHandler sees no credential")
				require.Equal(t, "Bearer secret-token", r.Header.Get("Authorization"), "the request itself is untouched")
			} else {
				require.Empty(t, log.errs)
			}
		})
	}
}

func TestCheckOriginPanicsOnBadAllowList(t *testing.T) {
	for _, bad := range []string{"null", "https://app.example.com/", "app.example.com", "*", "https://app.example.com/mcp"} {
		require.Panics(t, func() { CheckOrigin(OriginOptions{Origins: []string{bad}}) }, bad)
		require.Panics(t, func() { CORS(OriginOptions{Origins: []string{bad}}) }, bad)
	}
	require.Panics(t, func() { CheckOrigin(OriginOptions{})(nil) })
}
