package cimd

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidateClientIDURLAccepts: draft §3: https, a host, a path; a port
// is allowed.
func TestValidateClientIDURLAccepts(t *testing.T) {
	for _, raw := range []string{
		"https://app.example.com/client.json",
		"https://example.com/c",
		"https://example.com:8443/oauth/client-metadata.json",
		"https://example.com:443/client",
		"https://a-b.example.co.uk/x/y/z",
		"https://example.com/%7Euser/client",
		"https://example.com/client/",
		"https://example.com/.well-known/client",
		"https://example.com/a..b",
		"https://social.example.com/@alice/client.json",
	} {
		t.Run(raw, func(t *testing.T) {
			u, err := ValidateClientIDURL(raw)
			require.NoError(t, err)
			require.Equal(t, "https", u.Scheme)
			require.True(t, IsURLClientID(raw))
		})
	}
}

// TestValidateClientIDURLRefuses: every unsafe or ambiguous form is refused
// before anything is fetched (draft §3).
func TestValidateClientIDURLRefuses(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":                   "",
		"http":                    "http://example.com/client",
		"uppercase scheme":        "HTTPS://example.com/client",
		"mixed case scheme":       "Https://example.com/client",
		"no path":                 "https://example.com",
		"root path":               "https://example.com/",
		"dot segment":             "https://example.com/./client",
		"dot-dot segment":         "https://example.com/a/../client",
		"trailing dot segment":    "https://example.com/client/.",
		"trailing dot-dot":        "https://example.com/client/..",
		"encoded dot":             "https://example.com/%2e/client",
		"encoded dot-dot":         "https://example.com/%2e%2E/client",
		"half encoded dot-dot":    "https://example.com/.%2e/client",
		"encoded slash":           "https://example.com/a%2Fb",
		"encoded backslash":       "https://example.com/a%5Cb",
		"fragment":                "https://example.com/client#x",
		"empty fragment":          "https://example.com/client#",
		"query":                   "https://example.com/client?x=1",
		"empty query":             "https://example.com/client?",
		"userinfo":                "https://user@example.com/client",
		"userinfo with password":  "https://user:pw@example.com/client",
		"empty userinfo":          "https://@example.com/client",
		"ipv4 literal":            "https://127.0.0.1/client",
		"public ipv4 literal":     "https://93.184.216.34/client",
		"ipv6 literal":            "https://[::1]/client",
		"mapped ipv6 literal":     "https://[::ffff:127.0.0.1]/client",
		"numeric host":            "https://2130706433/client",
		"numeric tld":             "https://0x7f.1/client",
		"localhost":               "https://localhost/client",
		"localhost subdomain":     "https://app.localhost/client",
		"mdns":                    "https://printer.local/client",
		"internal":                "https://metadata.internal/client",
		"home.arpa":               "https://nas.home.arpa/client",
		"single label":            "https://intranet/client",
		"uppercase host":          "https://Example.com/client",
		"trailing dot host":       "https://example.com./client",
		"empty label":             "https://a..example.com/client",
		"underscore host":         "https://a_b.example.com/client",
		"leading hyphen label":    "https://-a.example.com/client",
		"idn host":                "https://exämple.com/client",
		"percent-encoded host":    "https://ex%61mple.com/client",
		"empty port":              "https://example.com:/client",
		"port zero":               "https://example.com:0/client",
		"port leading zero":       "https://example.com:0443/client",
		"port too large":          "https://example.com:65536/client",
		"space":                   "https://example.com/a b",
		"tab":                     "https://example.com/a\tb",
		"newline":                 "https://example.com/a\nb",
		"nul":                     "https://example.com/a\x00b",
		"backslash":               "https://example.com\\@evil.com/client",
		"non-ascii path":          "https://example.com/clïent",
		"bad percent-encoding":    "https://example.com/%zz",
		"no host":                 "https:///client",
		"opaque":                  "https:example.com/client",
		"too long":                "https://example.com/" + strings.Repeat("a", MaxURLLength),
		"javascript":              "javascript://example.com/%0aalert(1)",
		"scheme-relative":         "//example.com/client",
		"host confusion with @":   "https://example.com@evil.com/client",
		"bracket garbage":         "https://[example.com]/client",
		"quote":                   "https://example.com/\"client",
		"angle bracket":           "https://example.com/<client>",
		"whitespace before":       " https://example.com/client",
		"uppercase escaped host":  "https://EXAMPLE.COM/client",
		"host with port and user": "https://u@example.com:443/client",
	} {
		t.Run(name, func(t *testing.T) {
			u, err := ValidateClientIDURL(raw)
			require.ErrorIs(t, err, ErrInvalidURL)
			require.Nil(t, u)
			if raw != "" {
				require.NotContains(t, err.Error(), raw, "errors never echo the URL")
			}
			require.Empty(t, ClientIDHost(raw))
		})
	}
}

// TestIsURLClientID: any casing of https:// routes a client_id to the
// document resolver (where a miscased one is then refused); nothing else
// does.
func TestIsURLClientID(t *testing.T) {
	for id, want := range map[string]bool{
		"https://example.com/c": true,
		"HTTPS://example.com/c": true,
		"https:":                false,
		"http://example.com/c":  false,
		"b9d4a0e2-uuid":         false,
		"":                      false,
	} {
		require.Equal(t, want, IsURLClientID(id), id)
	}
}

// TestClientIDHost: the host a consent page shows, port included.
func TestClientIDHost(t *testing.T) {
	require.Equal(t, "app.example.com", ClientIDHost("https://app.example.com/client.json"))
	require.Equal(t, "example.com:8443", ClientIDHost("https://example.com:8443/c"))
	require.Empty(t, ClientIDHost("b9d4a0e2"))
}

// FuzzValidateClientIDURL checks that whatever ValidateClientIDURL accepts
// is an https URL with a lowercase DNS host and a path, and no userinfo,
// query, fragment or dot segment, whose parsed form agrees with the string.
func FuzzValidateClientIDURL(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com/client.json",
		"https://example.com:8443/c",
		"https://example.com/%2e%2e/c",
		"https://user@example.com/c",
		"https://127.0.0.1/c",
		"https://example.com/c?x#y",
		"HTTPS://example.com/c",
		"https://example.com\\@evil.com/c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ValidateClientIDURL(raw)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidURL)
			return
		}
		require.True(t, strings.HasPrefix(raw, "https://"))
		require.Equal(t, "https", u.Scheme)
		require.Nil(t, u.User)
		require.Empty(t, u.RawQuery)
		require.Empty(t, u.Fragment)
		require.NotContains(t, raw, "?")
		require.NotContains(t, raw, "#")
		authority, _, _ := strings.Cut(strings.TrimPrefix(raw, "https://"), "/")
		require.NotContains(t, authority, "@", "no userinfo (an @ in the path is fine)")
		require.NotEmpty(t, u.Hostname())
		require.Equal(t, strings.ToLower(u.Host), u.Host)
		require.NotEqual(t, "/", u.EscapedPath())
		for _, seg := range strings.Split(u.Path, "/") {
			require.NotEqual(t, ".", seg)
			require.NotEqual(t, "..", seg)
		}
		// The URL fetched is the URL validated: re-parsing the string
		// gives the same host and path.
		again, err := url.Parse(raw)
		require.NoError(t, err)
		require.Equal(t, u.Host, again.Host)
		require.Equal(t, u.EscapedPath(), again.EscapedPath())
		require.Equal(t, u.Host, ClientIDHost(raw))
	})
}
