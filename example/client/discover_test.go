package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRS is a resource server and authorization server whose documents a
// test can spoil one member at a time.
type fakeRS struct {
	base      string
	challenge string // WWW-Authenticate of the 401; "-" for none
	mcpStatus int
	prm       map[string]any
	as        map[string]any
	hits      []string
}

func newFakeRS(t *testing.T) *fakeRS {
	f := &fakeRS{mcpStatus: http.StatusUnauthorized}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits = append(f.hits, r.URL.Path)
		writeJSON := func(v any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		switch r.URL.Path {
		case "/mcp":
			if f.challenge != "-" {
				w.Header().Set("WWW-Authenticate", f.challenge)
			}
			w.WriteHeader(f.mcpStatus)
		case "/.well-known/oauth-protected-resource/mcp":
			writeJSON(f.prm)
		case "/.well-known/oauth-authorization-server":
			writeJSON(f.as)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	f.base = ts.URL
	f.challenge = `Bearer resource_metadata="` + ts.URL + `/.well-known/oauth-protected-resource/mcp", scope="from:challenge"`
	f.prm = map[string]any{"resource": ts.URL + "/mcp", "authorization_servers": []string{ts.URL}, "scopes_supported": []string{"from:prm"}}
	f.as = map[string]any{
		"issuer":                           ts.URL,
		"authorization_endpoint":           ts.URL + "/authorize",
		"token_endpoint":                   ts.URL + "/token",
		"registration_endpoint":            ts.URL + "/register",
		"code_challenge_methods_supported": []string{"S256"},
	}
	return f
}

func (f *fakeRS) discover(t *testing.T, opts options) (*discovery, error) {
	opts.url = f.base + "/mcp"
	return newClient(opts, io.Discard, io.Discard).discover(testContext(t))
}

func TestDiscovery(t *testing.T) {
	f := newFakeRS(t)
	d, err := f.discover(t, options{})
	require.NoError(t, err)
	assert.Equal(t, f.base+"/mcp", d.resource)
	assert.Equal(t, []string{"from:challenge"}, d.scopes)
	assert.Equal(t, f.base+"/token", d.as.TokenEndpoint)

	d, err = f.discover(t, options{scope: "a b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, d.scopes, "-scope wins")

	f.challenge = "Bearer"
	f.hits = nil
	d, err = f.discover(t, options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"from:prm"}, d.scopes)
	assert.Contains(t, f.hits, "/.well-known/oauth-protected-resource/mcp", "the path-inserted well-known URL is the fallback")

	f.challenge = "-"
	_, err = f.discover(t, options{})
	require.NoError(t, err, "no challenge at all: the well-known URLs still work")

	f.challenge = `Bearer scope="a", scope="b"`
	_, err = f.discover(t, options{})
	require.NoError(t, err, "an unparsable challenge falls back to the well-known URLs")

	// A resource_metadata URL that is neither https nor loopback is not
	// fetched; the well-known URL is.
	f.challenge = `Bearer resource_metadata="http://rs.example.com/prm"`
	_, err = f.discover(t, options{})
	require.NoError(t, err)
}

func TestDiscoveryRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		spoil func(f *fakeRS)
		opts  options
		want  string
	}{
		"PRM for another resource": {func(f *fakeRS) { f.prm["resource"] = "https://other.example/mcp" }, options{}, "is for resource"},
		"PRM without AS":           {func(f *fakeRS) { delete(f.prm, "authorization_servers") }, options{}, "names no authorization server"},
		"AS claims another issuer": {func(f *fakeRS) { f.as["issuer"] = f.base + "/" }, options{}, "claims issuer"},
		"AS without S256": {func(f *fakeRS) { f.as["code_challenge_methods_supported"] = []string{"plain"} },
			options{}, "S256"},
		"AS token endpoint off loopback": {func(f *fakeRS) { f.as["token_endpoint"] = "http://as.example.com/token" },
			options{}, "must be https"},
		"AS authorization endpoint javascript:": {func(f *fakeRS) { f.as["authorization_endpoint"] = "javascript:alert(1)" },
			options{}, "authorization_endpoint"},
		"no registration endpoint": {func(f *fakeRS) { delete(f.as, "registration_endpoint") }, options{}, "registration_endpoint"},
		"no device endpoint":       {func(*fakeRS) {}, options{device: true}, "device_authorization_endpoint"},
		"MCP answers 500":          {func(f *fakeRS) { f.mcpStatus = http.StatusInternalServerError }, options{}, "not 401"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeRS(t)
			tc.spoil(f)
			_, err := f.discover(t, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	// The pre-registered client needs no registration endpoint.
	f := newFakeRS(t)
	delete(f.as, "registration_endpoint")
	_, err := f.discover(t, options{clientID: "x"})
	assert.NoError(t, err)
}

// TestNoAuthorization: a server that admits the first request needs no
// sign-in.
func TestNoAuthorization(t *testing.T) {
	f := newFakeRS(t)
	f.mcpStatus = http.StatusOK
	d, err := f.discover(t, options{})
	require.NoError(t, err)
	assert.Nil(t, d)
}
