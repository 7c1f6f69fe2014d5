package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/example/internal/cli"
	"github.com/mcpoauth/mcpoauth/interop/output"
)

func TestHelpMentionsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, &stdout, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	out := stderr.String()
	assert.Contains(t, out, "Usage: server [flags]")
	for _, f := range []string{"-addr", "-issuer", "-clients", "-db", "-access-tokens", "-log-format", "/account", "/metrics", "/healthz", "/readyz"} {
		assert.Contains(t, out, f)
	}
	assert.Contains(t, out, "127.0.0.1:3000", "the default address")
	assert.Contains(t, out, "http://localhost:PORT", "the default issuer")
	assert.Empty(t, stdout.String())
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-addr"}, {"-access-tokens", "paseto"}, {"-log-format", "logfmt"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		var uerr cli.UsageError
		require.ErrorAs(t, err, &uerr, "%v", args)
		assert.Contains(t, stderr.String(), "Usage: server", "%v", args)
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &output.Buffer{}, &output.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-clients", serviceClientsFile(t)}, stdout, stderr)
	}()

	issuerRE := regexp.MustCompile(`issuer (http://localhost:[0-9]+),`)
	var issuer string
	require.Eventually(t, func() bool {
		m := issuerRE.FindStringSubmatch(stdout.String())
		if m != nil {
			issuer = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "stdout: %s\nstderr: %s", stdout, stderr)
	base := strings.Replace(issuer, "localhost", "127.0.0.1", 1)

	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// An MCP client holding its event stream open must not stall the
	// graceful shutdown.
	e := &testEnv{t: t, issuer: base}
	tr := e.token(url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret)
	cs := e.mcpSession(tr.AccessToken)
	req, err := http.NewRequest(http.MethodGet, base+"/mcp", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", cs.ID())
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	stream, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stream.Body)
		close(ended)
	}()

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "shutdown completed within its timeout")
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream outlived the server")
	}
	logs := stderr.String()
	assert.Contains(t, logs, "msg=listening")
	assert.Contains(t, logs, "msg=\"shutting down\"")
	assert.Contains(t, logs, "msg=stopped")
	assert.Contains(t, logs, "msg=request method=GET path=/mcp status=200")
	assert.NotContains(t, logs, tr.AccessToken)
	assert.NotContains(t, logs, serviceSecret)
}

func TestRunRefusesBadConfig(t *testing.T) {
	for name, args := range map[string][]string{
		"http issuer off loopback": {"-addr", "127.0.0.1:0", "-issuer", "http://example.com"},
		"missing clients file":     {"-addr", "127.0.0.1:0", "-clients", filepath.Join(t.TempDir(), "none.json")},
	} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		assert.Error(t, err, name)
	}
}

func TestLoadClientsRefuses(t *testing.T) {
	const redirect = `"redirect_uris": ["http://127.0.0.1:8765/callback"]`
	for name, tc := range map[string]struct{ json, want string }{
		"not an array":              {`{"client_id": "a"}`, "cannot unmarshal"},
		"trailing data":             {`[] []`, "unexpected data"},
		"unknown member":            {`[{"client_id": "a", "scpoe": "x", "token_endpoint_auth_method": "none", ` + redirect + `}]`, `unknown field "scpoe"`},
		"no client_id":              {`[{"token_endpoint_auth_method": "none", ` + redirect + `}]`, "client_id is required"},
		"confidential, no secret":   {`[{"client_id": "a", ` + redirect + `}]`, "client_secret is required"},
		"public with a secret":      {`[{"client_id": "a", "client_secret": "s", "token_endpoint_auth_method": "none", ` + redirect + `}]`, "has no client_secret"},
		"invalid redirect":          {`[{"client_id": "a", "token_endpoint_auth_method": "none", "redirect_uris": ["http://example.com/cb"]}]`, "redirect_uri"},
		"duplicate client_id":       {`[{"client_id": "a", "token_endpoint_auth_method": "none", ` + redirect + `}, {"client_id": "a", "token_endpoint_auth_method": "none", ` + redirect + `}]`, `"a"`},
		"unsupported scope":         {`[{"client_id": "a", "scope": "admin", "token_endpoint_auth_method": "none", ` + redirect + `}]`, "scope"},
		"unsupported grant only":    {`[{"client_id": "a", "grant_types": ["urn:example:unknown"], "client_secret": "s"}]`, "grant_types"},
		"unsupported auth method":   {`[{"client_id": "a", "client_secret": "s", "token_endpoint_auth_method": "client_secret_jwt", ` + redirect + `}]`, "token_endpoint_auth_method"},
		"secret in a typo'd field":  {`[{"client_id": "a", "client_secrt": "s", ` + redirect + `}]`, "unknown field"},
		"private_key_jwt, a secret": {`[{"client_id": "a", "client_secret": "s", "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"], "jwks_uri": "https://client.example/jwks"}]`, "has no client_secret"},
		"private_key_jwt, no keys":  {`[{"client_id": "a", "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"]}]`, "jwks"},
	} {
		path := filepath.Join(t.TempDir(), "clients.json")
		require.NoError(t, os.WriteFile(path, []byte(tc.json), 0o600))
		_, err := newServer(options{addr: "127.0.0.1:3000", issuer: "http://localhost:3000", clientsFile: path})
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), tc.want, name)
			assert.NotContains(t, err.Error(), `"s"`, "%s: the secret is not echoed", name)
		}
	}
}

func TestRedirectSource(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8765/callback":         "http://127.0.0.1:8765",
		"http://localhost/cb":                    "http://localhost",
		"https://Client.Example.com/cb?x=1":      "https://client.example.com",
		"https://client.example.com:8443/cb":     "https://client.example.com:8443",
		"com.example.app:/oauth2redirect":        "com.example.app:",
		"vscode://vscode.github-authentication/": "vscode:",
		"http://[::1]:8765/cb":                   "", // no CSP syntax for IPv6
		"https://evil.example;script-src/cb":     "", // directive injection
		"https://evil.example,x/cb":              "",
		"https://bücher.example/cb":              "",
		"javascript:alert(1)":                    "",
		"%zz":                                    "",
	} {
		got, ok := redirectSource(raw)
		assert.Equal(t, want, got, raw)
		assert.Equal(t, want != "", ok, raw)
	}
}

// TestHostCheckOnlyOnLoopback: the Host check (mcphttp.CheckHost, whose
// rules are tested there) guards a loopback listener, which DNS rebinding
// puts within reach of every web page; a public listener is reached through
// its real host names.
func TestHostCheckOnlyOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"0.0.0.0:3000":   false,
		"[::]:3000":      false,
		"10.0.0.5:3000":  false,
		"127.0.0.1:3000": true,
		"[::1]:3000":     true,
		"localhost:3000": true,
	} {
		check, err := hostCheck("https://as.example.com", addr, slog.New(slog.DiscardHandler))
		require.NoError(t, err, addr)
		assert.Equal(t, want, check != nil, addr)
	}
	_, err := hostCheck("https://as.example.com", "3000", slog.New(slog.DiscardHandler))
	assert.Error(t, err, "an address without port")

	check, err := hostCheck("https://as.example.com", "127.0.0.1:3000", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	h := check(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for host, want := range map[string]int{
		"as.example.com":    http.StatusOK,
		"localhost:3000":    http.StatusOK,
		"evil.example:3000": http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, want, w.Code, host)
	}
}

func TestUsername(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                 "alice",
		"  Jane Doe\t":          "Jane Doe",
		"":                      "",
		" ":                     "",
		"a\x00b":                "",
		"a\u202eb":              "",
		strings.Repeat("é", 64): strings.Repeat("é", 64),
		strings.Repeat("é", 65): "",
	} {
		r, err := http.NewRequest(http.MethodPost, "/", strings.NewReader("username="+url.QueryEscape(in)))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		got, err := username(r)
		assert.Equal(t, want, got, "%q", in)
		assert.Equal(t, want == "", err != nil, "%q", in)
	}
}

// TestLoadClientsPrivateKeyJWT: a static private_key_jwt client with an
// inline jwks (and no secret) is accepted.
func TestLoadClientsPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	require.NoError(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	clients, err := json.Marshal([]map[string]any{{
		"client_id": "svc", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks": map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
			"x": b64(pub[1:33]), "y": b64(pub[33:])}}},
	}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "clients.json")
	require.NoError(t, os.WriteFile(path, clients, 0o600))
	app, err := newServer(options{addr: "127.0.0.1:3000", issuer: "http://localhost:3000", clientsFile: path})
	require.NoError(t, err)
	_ = app.Close()
}
