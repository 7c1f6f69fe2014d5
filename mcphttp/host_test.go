package mcphttp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckHost(t *testing.T) {
	public := HostOptions{URLs: []string{"https://as.example.com"}, LoopbackPort: "3000"}
	local := HostOptions{URLs: []string{"http://localhost:3000/base"}, LoopbackPort: "3000"}
	for _, tt := range []struct {
		name string
		opts HostOptions
		host string
		want int
	}{
		{"RFC 9110 §7.2: the server's own host", public, "as.example.com", http.StatusOK},
		{"RFC 9110 §7.2: own host with the default port", public, "as.example.com:443", http.StatusOK},
		{"RFC 9110 §7.2: host names compare case-insensitively", public, "AS.example.com", http.StatusOK},
		{"RFC 9110 §4.2.2: 80 is not the default port of https", public, "as.example.com:80", http.StatusMisdirectedRequest},
		{"DNS rebinding: localhost on the listening port", public, "localhost:3000", http.StatusOK},
		{"DNS rebinding: LOCALHOST on the listening port", public, "LOCALHOST:3000", http.StatusOK},
		{"DNS rebinding: 127.0.0.1 on the listening port", public, "127.0.0.1:3000", http.StatusOK},
		{"DNS rebinding: all of 127/8 is loopback", public, "127.0.0.2:3000", http.StatusOK},
		{"DNS rebinding: [::1] on the listening port", public, "[::1]:3000", http.StatusOK},
		{"DNS rebinding: loopback on another port", public, "127.0.0.1:443", http.StatusMisdirectedRequest},
		{"DNS rebinding: localhost without port", public, "localhost", http.StatusMisdirectedRequest},
		{"DNS rebinding: the attacker's name on the listening port", public, "evil.example:3000", http.StatusMisdirectedRequest},
		{"DNS rebinding: the attacker's name without port", public, "attacker.example", http.StatusMisdirectedRequest},
		{"DNS rebinding: a name that resolves to loopback is no loopback literal", public, "127.0.0.1.nip.io:3000", http.StatusMisdirectedRequest},
		{"DNS rebinding: a zoned address is refused", public, "[fe80::1%lo]:3000", http.StatusMisdirectedRequest},
		{"RFC 9112 §3.2: an empty Host is refused", public, "", http.StatusMisdirectedRequest},
		{"RFC 9110 §7.2: own URL with its explicit port, path ignored", local, "localhost:3000", http.StatusOK},
		{"RFC 9110 §7.2: an explicit non-default port must be sent", local, "localhost", http.StatusMisdirectedRequest},
		{"loopback names only when LoopbackPort is set", HostOptions{URLs: []string{"https://as.example.com"}}, "127.0.0.1:3000", http.StatusMisdirectedRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log errorLog
			tt.opts.ErrorHandler = log.handler
			r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
			r.Host = tt.host
			r.Header.Set("Authorization", "Bearer secret-token")
			w := httptest.NewRecorder()
			CheckHost(tt.opts)(okHandler).ServeHTTP(w, r)
			require.Equal(t, tt.want, w.Code, w.Body.String())
			if tt.want == http.StatusOK {
				require.Empty(t, log.errs)
				return
			}
			require.Equal(t, []error{ErrHostNotAllowed}, log.errs)
			require.Equal(t, []string{""}, log.auths, "the ErrorHandler sees no credential")
		})
	}
}

func TestCheckHostDefaultPortForms(t *testing.T) {
	for _, tt := range []struct {
		name, url string
		hosts     []string
	}{
		{"RFC 9110 §4.2.1: http default port 80", "http://as.example.com", []string{"as.example.com", "as.example.com:80"}},
		{"RFC 9110 §4.2.2: explicit default port, both forms", "https://as.example.com:443/", []string{"as.example.com", "as.example.com:443"}},
		{"RFC 3986 §3.2.2: IPv6 literal keeps its brackets", "https://[2001:db8::1]", []string{"[2001:db8::1]", "[2001:db8::1]:443"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newHostCheck(HostOptions{URLs: []string{tt.url}})
			for _, h := range tt.hosts {
				require.True(t, c.allowed(h), h)
			}
			require.Len(t, c.hosts, len(tt.hosts))
		})
	}
}

func TestCheckHostPanicsOnBadOptions(t *testing.T) {
	for name, opts := range map[string]HostOptions{
		"relative URL":    {URLs: []string{"/mcp"}},
		"no host":         {URLs: []string{"https://"}},
		"other scheme":    {URLs: []string{"ftp://as.example.com"}},
		"bare host":       {URLs: []string{"as.example.com"}},
		"port zero":       {LoopbackPort: "0"},
		"port not number": {LoopbackPort: "http"},
		"port too large":  {LoopbackPort: "70000"},
	} {
		require.Panics(t, func() { CheckHost(opts) }, name)
	}
	require.Panics(t, func() { CheckHost(HostOptions{})(nil) })
}
