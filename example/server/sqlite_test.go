package main

import (
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// freeLoopbackPort returns a port of 127.0.0.1 that nothing listens on
// now, for runs that must come back on the same address (the issuer, and
// so the resource tokens are bound to, names it).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	return port
}

// TestRunOnSQLite: -db sqlite:PATH keeps state in a SQLite file across a
// restart: a client registered at /register before it still exists after
// it, its access token issued before still calls /mcp, and its refresh
// token still refreshes.
func TestRunOnSQLite(t *testing.T) {
	port := freeLoopbackPort(t)
	base := "http://127.0.0.1:" + port
	args := []string{"-addr", "127.0.0.1:" + port, "-issuer", base,
		"-db", "sqlite:" + filepath.Join(t.TempDir(), "oauth.db")}

	first := launch(t, args...)
	e := &testEnv{t: t, issuer: first.listening()}
	clientID := e.register("Durable Client")
	before := e.userToken(clientID, "alice")
	first.stop()

	second := launch(t, args...)
	e = &testEnv{t: t, issuer: second.listening()}
	defer second.stop()
	cs := e.mcpSession(before.AccessToken)
	out := e.whoami(cs, before.AccessToken, before.RefreshToken)
	require.NoError(t, cs.Close())
	require.Equal(t, "alice", out.UserID)
	require.Equal(t, clientID, out.ClientID)

	refreshed := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {before.RefreshToken}})
	requireMCPAccepts(t, e.issuer, refreshed.AccessToken)
	// The client registered before the restart logs in again.
	requireMCPAccepts(t, e.issuer, e.userToken(clientID, "bob").AccessToken)
}

// TestDBFlag: -db sqlite: without a path is a usage error.
func TestDBFlag(t *testing.T) {
	for _, tc := range []struct {
		db      string
		wantErr bool
	}{
		{"sqlite:", true},
		{"sqlite:oauth.db", false},
		{"postgres://mcp@db.example.com/mcp", false},
	} {
		_, err := parseFlags([]string{"-db", tc.db}, io.Discard)
		if tc.wantErr {
			require.Error(t, err, tc.db)
		} else {
			require.NoError(t, err, tc.db)
		}
	}
}
