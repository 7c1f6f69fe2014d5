package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/postgres"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
)

// upstreamLogin runs a whole login of a new client through the upstream
// provider and returns the client id and its tokens.
func (e *testEnv) upstreamLogin() (string, tokenResponse) {
	e.t.Helper()
	clientID := e.register("Vault Client")
	verifier, challenge := pkcePair()
	b := newBrowser(e.t)
	consentURL := e.authorize(b, clientID, challenge, "st")
	_, _, page := e.openForm(b, consentURL)
	link, _ := signInLink(e.t, page)
	require.Equal(e.t, consentURL, e.signIn(b, link))
	f, _, _ := e.openForm(b, consentURL)
	resp, body := e.submitForm(b, consentURL, f, url.Values{"decision": {"approve"}})
	loc := seeOther(e.t, resp, body)
	return clientID, e.redeem(clientID, loc.Query().Get("code"), verifier)
}

// userInfo calls the upstream_userinfo tool; it returns the claims, or
// the tool's error text.
func (e *testEnv) userInfo(cs *mcp.ClientSession) (map[string]any, string) {
	e.t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "upstream_userinfo"})
	require.NoError(e.t, err)
	raw, err := json.Marshal(res)
	require.NoError(e.t, err)
	for _, secret := range []string{upstreamtest.AccessToken, upstreamtest.RefreshToken} {
		require.NotContains(e.t, string(raw), secret, "no upstream token reaches the MCP client")
	}
	if res.IsError {
		return nil, string(raw)
	}
	var out userInfoOutput
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(e.t, err)
	require.NoError(e.t, json.Unmarshal(b, &out))
	return out.Claims, ""
}

// TestUpstreamUserInfoTool: the upstream_userinfo tool calls the provider
// with the grant's upstream token from the vault, refreshes it upstream
// once it expired, and never shows it to the MCP client.
func TestUpstreamUserInfoTool(t *testing.T) {
	e, p := newUpstreamEnv(t)
	p.SetUser(upstreamtest.User{Subject: "eve-3", Email: "eve@example.com", EmailVerified: true, Name: "Eve"})
	_, tr := e.upstreamLogin()
	cs := e.mcpSession(tr.AccessToken)
	assert.Contains(t, e.toolNames(cs), "upstream_userinfo")

	claims, failure := e.userInfo(cs)
	require.Empty(t, failure)
	assert.Equal(t, "eve-3", claims["sub"])
	assert.Equal(t, "eve@example.com", claims["email"])
	assert.Zero(t, p.Refreshes())

	p.ExpireAccessTokens()
	claims, failure = e.userInfo(cs)
	require.Empty(t, failure)
	assert.Equal(t, "eve-3", claims["sub"])
	assert.Equal(t, 1, p.Refreshes(), "an expired upstream token is refreshed upstream")

	for _, secret := range []string{upstreamtest.AccessToken, upstreamtest.RefreshToken, p.ClientSecret} {
		assert.NotContains(t, e.logs.String(), secret)
	}
}

// TestUpstreamToolsWithoutUpstream: the demo sign-in has no upstream, and
// no upstream_userinfo tool.
func TestUpstreamToolsWithoutUpstream(t *testing.T) {
	e := newTestEnv(t, "")
	clientID := e.register("No Upstream")
	verifier, challenge := pkcePair()
	tr := e.redeem(clientID, e.approve(clientID, challenge, "alice"), verifier)
	assert.NotContains(t, e.toolNames(e.mcpSession(tr.AccessToken)), "upstream_userinfo")
}

// TestUpstreamVaultUnreadableInDatabase: on PostgreSQL, no column of any
// table holds an upstream token in the clear (they are sealed with
// AES-256-GCM before they reach the Model), even after a refresh wrote
// new ones.
func TestUpstreamVaultUnreadableInDatabase(t *testing.T) {
	dbURL := postgresURL(t)
	ctx := context.Background()
	model, err := postgres.Open(ctx, dbURL, postgres.Options{SweepInterval: postgres.NoSweep})
	require.NoError(t, err)
	t.Cleanup(model.Close)
	require.NoError(t, model.Migrate(ctx))
	p := upstreamtest.NewProvider(t)
	e := newTestEnvWith(t, options{model: model, upstreamIssuer: p.URL(), upstreamClientID: p.ClientID, upstreamClientSecret: p.ClientSecret})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	_, tr := e.upstreamLogin()
	cs := e.mcpSession(tr.AccessToken)
	p.ExpireAccessTokens()
	_, failure := e.userInfo(cs)
	require.Empty(t, failure)
	require.Equal(t, 1, p.Refreshes())

	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var schema string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema))
	rows, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "mcpoauth_upstream_tokens")
	vaultRows := 0
	for _, table := range tables {
		// Every row as text (bytea columns in hex) and as raw bytes of
		// its bytea columns' escape form: a token stored in the clear
		// would show in one of them.
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{schema, table}.Sanitize()+" t")
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		if table == "mcpoauth_upstream_tokens" {
			vaultRows = len(texts)
		}
		for _, text := range texts {
			decoded := decodeHexRuns(text)
			if table == "mcpoauth_upstream_tokens" {
				require.NotEmpty(t, decoded, "the sealed column is decoded and searched too: %s", text)
			}
			for _, secret := range []string{upstreamtest.AccessToken, upstreamtest.RefreshToken} {
				assert.NotContains(t, text, secret, "table %s", table)
				assert.NotContains(t, decoded, secret, "table %s (bytea)", table)
			}
		}
	}
	assert.Equal(t, 1, vaultRows, "the grant's vault entry (the session's went to the grant)")
}

// decodeHexRuns decodes the \x... bytea literals in a row's text form, so
// that a token stored in a bytea column would be found too.
func decodeHexRuns(text string) string {
	var out strings.Builder
	for _, part := range strings.Split(text, `\\x`)[1:] {
		end := 0
		for end < len(part) && strings.ContainsRune("0123456789abcdef", rune(part[end])) {
			end++
		}
		for i := 0; i+1 < end; i += 2 {
			var b byte
			for _, c := range part[i : i+2] {
				b <<= 4
				b |= byte(strings.IndexRune("0123456789abcdef", c))
			}
			out.WriteByte(b)
		}
	}
	return out.String()
}
