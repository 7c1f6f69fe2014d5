package cimdtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/cimd/cimdtest"
)

// TestDocument: changes set members over the base, a nil change deletes
// one, and the caller's maps stay as they were (tests build many variants
// of one base).
func TestDocument(t *testing.T) {
	base := map[string]any{"client_id": "https://app.example.com/c.json", "client_name": "App"}
	for _, tc := range []struct {
		name    string
		changes map[string]any
		want    map[string]any
	}{
		{"no changes is the base", nil, map[string]any{"client_id": "https://app.example.com/c.json", "client_name": "App"}},
		{"a change replaces a member", map[string]any{"client_name": "Other"}, map[string]any{"client_id": "https://app.example.com/c.json", "client_name": "Other"}},
		{"a change adds a member", map[string]any{"logo_uri": "https://app.example.com/l.png"}, map[string]any{"client_id": "https://app.example.com/c.json", "client_name": "App", "logo_uri": "https://app.example.com/l.png"}},
		{"nil deletes a member", map[string]any{"client_name": nil}, map[string]any{"client_id": "https://app.example.com/c.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			require.NoError(t, json.Unmarshal(cimdtest.Document(t, base, tc.changes), &got))
			require.Equal(t, tc.want, got)
			require.Equal(t, map[string]any{"client_id": "https://app.example.com/c.json", "client_name": "App"}, base, "the base is unchanged")
		})
	}
}

// TestTransport: any https URL reaches the fixture, whose certificate is
// verified as example.com's.
func TestTransport(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: cimdtest.Transport(srv)}
	for _, u := range []string{"https://app.example.com/client.json", "https://other.example.net:8443/x"} {
		resp, err := c.Get(u)
		require.NoError(t, err, u)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, u)
		want := u[len("https://"):]
		require.Equal(t, want, string(body), "the request kept its URL")
	}
}
