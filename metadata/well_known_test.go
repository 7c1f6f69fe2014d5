package metadata_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

func TestWellKnownURL(t *testing.T) {
	const as, prm = metadata.AuthorizationServerSuffix, metadata.ProtectedResourceSuffix
	tests := []struct {
		name       string
		identifier string
		suffix     string
		wantURL    string
		wantPath   string
	}{
		{"root without slash", "https://h", as, "https://h/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server"},
		{"root with slash", "https://h/", as, "https://h/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server"},
		{"issuer with path", "https://h/tenant", as, "https://h/.well-known/oauth-authorization-server/tenant", "/.well-known/oauth-authorization-server/tenant"},
		{"terminating slash dropped", "https://h/tenant/", as, "https://h/.well-known/oauth-authorization-server/tenant", "/.well-known/oauth-authorization-server/tenant"},
		{"only one terminating slash dropped", "https://h/a//", as, "https://h/.well-known/oauth-authorization-server/a/", "/.well-known/oauth-authorization-server/a/"},
		{"nested path", "https://h/a/b/c", as, "https://h/.well-known/oauth-authorization-server/a/b/c", "/.well-known/oauth-authorization-server/a/b/c"},
		{"port kept", "https://h:8443/mcp", prm, "https://h:8443/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"http loopback", "http://localhost:3000/mcp", prm, "http://localhost:3000/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"ipv6 host", "https://[::1]:9000/mcp", prm, "https://[::1]:9000/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"host case kept", "https://MCP.Example.com/mcp", prm, "https://MCP.Example.com/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
		{"escaped path kept", "https://h/a%2Fb", prm, "https://h/.well-known/oauth-protected-resource/a%2Fb", "/.well-known/oauth-protected-resource/a%2Fb"},
		{"query kept after path (RFC 9728 §3)", "https://h/mcp?tenant=a", prm, "https://h/.well-known/oauth-protected-resource/mcp?tenant=a", "/.well-known/oauth-protected-resource/mcp"},
		{"query on root", "https://h?x=1", prm, "https://h/.well-known/oauth-protected-resource?x=1", "/.well-known/oauth-protected-resource"},
		{"empty query dropped", "https://h/mcp?", prm, "https://h/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/mcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := metadata.WellKnownURL(tt.identifier, tt.suffix)
			require.NoError(t, err)
			require.Equal(t, tt.wantURL, got)
			path, err := metadata.WellKnownPath(tt.identifier, tt.suffix)
			require.NoError(t, err)
			require.Equal(t, tt.wantPath, path)
		})
	}
}

func TestWellKnownURLRejects(t *testing.T) {
	tests := []struct {
		name       string
		identifier string
		suffix     string
	}{
		{"empty", "", metadata.AuthorizationServerSuffix},
		{"relative path", "/tenant", metadata.AuthorizationServerSuffix},
		{"no scheme", "h/tenant", metadata.AuthorizationServerSuffix},
		{"scheme-relative", "//h/tenant", metadata.AuthorizationServerSuffix},
		{"non-http scheme", "ftp://h/x", metadata.AuthorizationServerSuffix},
		{"javascript", "javascript:alert(1)", metadata.AuthorizationServerSuffix},
		{"opaque", "https:h", metadata.AuthorizationServerSuffix},
		{"fragment", "https://h/mcp#x", metadata.ProtectedResourceSuffix},
		{"empty fragment", "https://h/mcp#", metadata.ProtectedResourceSuffix},
		{"userinfo", "https://u@h/mcp", metadata.ProtectedResourceSuffix},
		{"space", "https://h/a b", metadata.ProtectedResourceSuffix},
		{"empty suffix", "https://h", ""},
		{"suffix with slash", "https://h", "a/b"},
		{"suffix with query", "https://h", "a?b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metadata.WellKnownURL(tt.identifier, tt.suffix)
			require.Error(t, err)
			_, err = metadata.WellKnownPath(tt.identifier, tt.suffix)
			require.Error(t, err)
		})
	}
}

func TestProtectedResourceMetadataURL(t *testing.T) {
	tests := []struct {
		resource string
		want     string
	}{
		{"https://example.com/public/mcp", "https://example.com/.well-known/oauth-protected-resource/public/mcp"},
		{"https://example.com", "https://example.com/.well-known/oauth-protected-resource"},
		{"http://localhost:3000/mcp", "http://localhost:3000/.well-known/oauth-protected-resource/mcp"},
		{"not a url", ""},
		{"https://example.com/mcp#frag", ""},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			require.Equal(t, tt.want, metadata.ProtectedResourceMetadataURL(tt.resource))
		})
	}
}
