package resource

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp"},
		{"HTTPS://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"},
		{"https://mcp.example.com:443/mcp/", "https://mcp.example.com/mcp"},
		{"http://localhost:3000/mcp", "http://localhost:3000/mcp"},
		{"http://localhost:80", "http://localhost"},
		{"https://mcp.example.com/", "https://mcp.example.com"},
		{"https://[::1]:8443/x", "https://[::1]:8443/x"},
		{"https://h/a?b=c", "https://h/a?b=c"},
	} {
		got, err := Canonical(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestCanonicalRejects(t *testing.T) {
	for _, in := range []string{"", "/mcp", "mcp", "https://h/mcp#frag", "https://h/mcp#", "ftp://h/x", "urn:x:y", "https://user@h/x", "https://h/ x", "https:///x"} {
		_, err := Canonical(in)
		require.ErrorIs(t, err, ErrInvalid, in)
	}
}

func TestEqual(t *testing.T) {
	require.True(t, Equal("https://h/mcp", "https://H/mcp/"))
	require.False(t, Equal("https://h/mcp", "https://h/mcpx"))
	require.False(t, Equal("https://h/mcp", "https://h/mcp/x"), "no prefix matching (the TypeScript original matched prefixes)")
	require.False(t, Equal("https://h/mcp", "http://h/mcp"))
	require.False(t, Equal("", ""))
	require.False(t, Equal("https://h/#", "https://h/#"))
}
