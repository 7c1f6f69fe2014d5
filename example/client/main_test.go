package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/example/internal/cli"
	"github.com/mcpoauth/mcpoauth/interop/browser"
	"github.com/mcpoauth/mcpoauth/interop/output"
)

// testTimeout bounds each test's run of the client.
const testTimeout = 60 * time.Second

// running is a run of the client in a goroutine, its stderr readable line
// by line as it is written (the user's view of the sign-in prompts).
type running struct {
	t      *testing.T
	stderr *output.Lines
	stdout *output.Buffer
	done   chan error
}

// start runs the client with args (plus -no-browser) until it returns or
// the test ends.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	pr, pw := io.Pipe()
	r := &running{t: t, stderr: output.Follow(pr), stdout: &output.Buffer{}, done: make(chan error, 1)}
	go func() {
		err := run(ctx, append([]string{"-no-browser", "-timeout", "45s"}, args...), r.stdout, pw)
		_ = pw.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("the client did not stop after its context was cancelled")
		}
	})
	return r
}

// waitLine returns the first stderr line (trimmed) that starts with prefix.
func (r *running) waitLine(prefix string) string {
	r.t.Helper()
	return r.stderr.WaitLine(r.t, prefix, testTimeout)
}

// consent is the user at the browser: it opens the authorization URL the
// run printed for server s and decides, and returns where the browser was
// sent.
func (r *running) consent(s *testServer, user, decision string) *url.URL {
	r.t.Helper()
	authURL := r.waitLine(s.issuer + "/authorize?")
	resp, err := browser.New(10*time.Second).Consent(testContext(r.t), authURL, user, decision)
	require.NoError(r.t, err)
	return resp
}

// registeredClient returns the client id the run registered.
func (r *running) registeredClient() string {
	r.t.Helper()
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		if id, ok := strings.CutPrefix(line, "registered client "); ok {
			return id
		}
	}
	r.t.Fatalf("no client registered; stderr:\n%s", r.stderr)
	return ""
}

// whoami returns whoami's answer from stdout.
func (r *running) whoami() whoamiOut {
	r.t.Helper()
	for _, line := range strings.Split(r.stdout.String(), "\n") {
		if js, ok := strings.CutPrefix(line, "whoami: "); ok {
			var out whoamiOut
			require.NoError(r.t, json.Unmarshal([]byte(js), &out), line)
			return out
		}
	}
	r.t.Fatalf("no whoami answer; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	return whoamiOut{}
}

// wait returns the run's error.
func (r *running) wait() error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(testTimeout):
		r.t.Fatalf("the client did not finish; stderr:\n%s", r.stderr)
		return nil
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// follow is the browser following the authorization response to the
// client's loopback redirect URI.
func follow(t *testing.T, u *url.URL) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, u.String(), nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	return resp.StatusCode, drain(resp)
}

func TestAuthorizationCode(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL)

	authURL := r.waitLine(s.issuer + "/authorize?")
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "code", q.Get("response_type"))
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Len(t, q.Get("code_challenge"), 43)
	assert.Equal(t, s.mcpURL, q.Get("resource"))
	assert.Equal(t, testScope, q.Get("scope"))
	assert.NotEmpty(t, q.Get("state"))
	redirect, err := url.Parse(q.Get("redirect_uri"))
	require.NoError(t, err)
	assert.Equal(t, "http", redirect.Scheme)
	assert.Equal(t, "127.0.0.1", redirect.Hostname())
	assert.Equal(t, "/callback", redirect.Path)

	// A request to the redirect URI with another state (a stale tab, or a
	// forged request) is refused and the wait goes on.
	forged := *redirect
	forged.RawQuery = url.Values{"code": {"forged"}, "state": {"other"}, "iss": {s.issuer}}.Encode()
	status, _ := follow(t, &forged)
	assert.Equal(t, http.StatusBadRequest, status)

	resp, err := browser.New(10*time.Second).Consent(testContext(t), authURL, "alice", browser.Approve)
	require.NoError(t, err)
	assert.Equal(t, q.Get("state"), resp.Query().Get("state"))
	assert.Equal(t, s.issuer, resp.Query().Get("iss"))
	status, body := follow(t, resp)
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "Signed in")

	require.NoError(t, r.wait(), "stderr:\n%s", r.stderr)
	clientID := r.registeredClient()
	out := r.stdout.String()
	assert.Contains(t, out, "tools:\n")
	assert.Contains(t, out, "  whoami: Who the token stands for\n")
	assert.Contains(t, out, "  echo: Echoes its text\uFFFD[31m\n", "control characters from the server are not printed")
	assert.Equal(t, whoamiOut{UserID: "alice", ClientID: clientID}, r.whoami())
	assert.Contains(t, r.stderr.String(), "ignored a request to the redirect URI with the wrong state")
	assert.Contains(t, r.stderr.String(), `signed in: token type Bearer, scope "mcp:tools"`)
	assert.Contains(t, r.stderr.String(), "refresh token: yes")
}

func TestCallbackHandler(t *testing.T) {
	c := newClient(options{}, io.Discard, io.Discard)
	as := &asMetadata{Issuer: "http://as.test", AuthorizationResponseISSSupported: true}
	results := make(chan callbackResult, 1)
	h := c.callbackHandler("the-state", as, results)
	serve := func(method, target string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		return rec.Code
	}
	assert.Equal(t, http.StatusNotFound, serve(http.MethodGet, "/other?state=the-state&code=c&iss=http://as.test"))
	assert.Equal(t, http.StatusMethodNotAllowed, serve(http.MethodPost, "/callback?state=the-state&code=c&iss=http://as.test"))
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=the-state&state=the-state&code=c&iss=http://as.test"))
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=the-state&code=c&code=d&iss=http://as.test"))
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=wrong&code=c&iss=http://as.test"))
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?code=c&iss=http://as.test"))
	assert.Empty(t, results, "nothing with another state ends the wait")

	assert.Equal(t, http.StatusOK, serve(http.MethodGet, "/callback?state=the-state&code=c&iss=http%3A%2F%2Fas.test"))
	assert.Equal(t, callbackResult{code: "c"}, <-results)
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=the-state&code=c&iss=http%3A%2F%2Fas.test"), "only the first response counts")
	assert.Empty(t, results)

	// Without the metadata's promise, a missing iss is accepted, a wrong
	// one is not.
	as.AuthorizationResponseISSSupported = false
	h = c.callbackHandler("s", as, results)
	assert.Equal(t, http.StatusOK, serve(http.MethodGet, "/callback?state=s&code=c"))
	assert.Equal(t, callbackResult{code: "c"}, <-results)
	h = c.callbackHandler("s", as, results)
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=s&code=c&iss=http://other"))
	assert.ErrorContains(t, (<-results).err, "not \"http://as.test\"")
	h = c.callbackHandler("s", as, results)
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=s"))
	assert.ErrorContains(t, (<-results).err, "without code")
	h = c.callbackHandler("s", as, results)
	assert.Equal(t, http.StatusBadRequest, serve(http.MethodGet, "/callback?state=s&error=invalid_scope&error_description=%1b%5b2J"))
	assert.EqualError(t, (<-results).err, "authorization refused: invalid_scope \"\uFFFD[2J\"")
}

// TestRefresh: x/oauth2 treats a token as expired 10 s before its expiry,
// so with 5 s tokens every MCP request after the sign-in refreshes first
// (a refresh_token grant without resource, on the same MCP session).
func TestRefresh(t *testing.T) {
	s := newTestServer(t, func(c *mcpoauth.Config) { c.AccessTokenLifetime = 5 * time.Second })
	r := start(t, "-url", s.mcpURL)
	resp := r.consent(s, "erin", browser.Approve)
	follow(t, resp)
	require.NoError(t, r.wait(), "stderr:\n%s", r.stderr)
	assert.Equal(t, "erin", r.whoami().UserID)
	grants := s.tokenGrants()
	require.NotEmpty(t, grants)
	assert.Equal(t, "authorization_code", grants[0])
	assert.Greater(t, len(grants), 1, "refreshed")
	for _, g := range grants[1:] {
		assert.Equal(t, "refresh_token", g)
	}
}

func TestAuthorizationCodeDenied(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL)
	resp := r.consent(s, "alice", browser.Deny)
	assert.Equal(t, "access_denied", resp.Query().Get("error"))
	status, _ := follow(t, resp)
	assert.Equal(t, http.StatusBadRequest, status)
	err := r.wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "authorization refused: access_denied")
	assert.Empty(t, r.stdout.String())
}

// TestAuthorizationCodeIssuerMismatch: an authorization response naming
// another issuer (RFC 9207 mix-up) ends the sign-in; the code is not
// redeemed.
func TestAuthorizationCodeIssuerMismatch(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL)
	resp := r.consent(s, "alice", browser.Approve)
	q := resp.Query()
	q.Set("iss", "https://evil.example")
	resp.RawQuery = q.Encode()
	status, _ := follow(t, resp)
	assert.Equal(t, http.StatusBadRequest, status)
	err := r.wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `issuer "https://evil.example"`)
	assert.NotContains(t, r.stderr.String(), "signed in")
}

func TestAuthorizationCodeMissingIssuer(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL)
	resp := r.consent(s, "alice", browser.Approve)
	q := resp.Query()
	q.Del("iss")
	resp.RawQuery = q.Encode()
	follow(t, resp)
	err := r.wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without iss")
}

// TestPreregisteredPublicClient: -client-id alone skips registration; the
// registered loopback redirect URI matches on any port.
func TestPreregisteredPublicClient(t *testing.T) {
	s := newTestServer(t)
	s.registerPublic(t, "cli-app")
	r := start(t, "-url", s.mcpURL, "-client-id", "cli-app")
	resp := r.consent(s, "bob", browser.Approve)
	follow(t, resp)
	require.NoError(t, r.wait(), "stderr:\n%s", r.stderr)
	assert.NotContains(t, r.stderr.String(), "registered client")
	assert.Equal(t, whoamiOut{UserID: "bob", ClientID: "cli-app"}, r.whoami())
}

func TestDeviceFlow(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL, "-device")
	complete := r.waitLine(s.issuer + "/activate?user_code=")
	codeLine := r.waitLine("or go to ")
	assert.Equal(t, "or go to "+s.issuer+"/activate and enter the code ", codeLine[:len(codeLine)-9])
	_, err := browser.New(10*time.Second).Device(testContext(t), complete, "", "carol", browser.Approve)
	require.NoError(t, err)
	require.NoError(t, r.wait(), "stderr:\n%s", r.stderr)
	clientID := r.registeredClient()
	assert.Equal(t, whoamiOut{UserID: "carol", ClientID: clientID}, r.whoami())
	assert.Contains(t, r.stderr.String(), "refresh token: yes")
}

// TestDeviceFlowCodeEntry: the user types the code at the bare
// verification URI.
func TestDeviceFlowCodeEntry(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL, "-device")
	codeLine := r.waitLine("or go to ")
	userCode := codeLine[strings.LastIndexByte(codeLine, ' ')+1:]
	_, err := browser.New(10*time.Second).Device(testContext(t), s.issuer+"/activate", strings.ToLower(userCode), "dave", browser.Approve)
	require.NoError(t, err)
	require.NoError(t, r.wait(), "stderr:\n%s", r.stderr)
	assert.Equal(t, "dave", r.whoami().UserID)
}

func TestDeviceFlowDenied(t *testing.T) {
	s := newTestServer(t)
	r := start(t, "-url", s.mcpURL, "-device")
	complete := r.waitLine(s.issuer + "/activate?user_code=")
	_, err := browser.New(10*time.Second).Device(testContext(t), complete, "", "carol", browser.Deny)
	require.NoError(t, err)
	err = r.wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "access_denied")
}

const testSecret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"

func TestClientCredentials(t *testing.T) {
	s := newTestServer(t)
	s.registerConfidential(t, "svc", testSecret)
	r := start(t, "-url", s.mcpURL, "-client-id", "svc", "-client-secret", testSecret)
	require.NoError(t, r.wait(), "stderr:\n%s", r.stderr)
	assert.Equal(t, whoamiOut{UserID: "", ClientID: "svc"}, r.whoami())
	assert.Contains(t, r.stderr.String(), "refresh token: no")
	assert.NotContains(t, r.stderr.String()+r.stdout.String(), testSecret)
}

func TestClientCredentialsWrongSecret(t *testing.T) {
	s := newTestServer(t)
	s.registerConfidential(t, "svc", testSecret)
	r := start(t, "-url", s.mcpURL, "-client-id", "svc", "-client-secret", testSecret+"x")
	err := r.wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `token request: invalid_client`)
	assert.Contains(t, err.Error(), "401")
}

func TestUsage(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"-url", "-device", "-client-id", "-client-secret", "-scope", "-no-browser", "-callback-port", "-timeout", defaultURL} {
		assert.Contains(t, stderr.String(), f)
	}

	for _, args := range [][]string{
		{"-client-secret", "x"},
		{"-client-id", "a", "-client-secret", "x", "-device"},
		{"-callback-port", "70000"},
		{"-timeout", "0s"},
		{"extra"},
		{"-nope"},
	} {
		stderr.Reset()
		err := run(context.Background(), args, io.Discard, &stderr)
		var uerr cli.UsageError
		assert.True(t, errors.As(err, &uerr), "%v: %v", args, err)
		assert.Contains(t, stderr.String(), "Usage: client", "%v", args)
	}
}

func TestRefusesInsecureURL(t *testing.T) {
	err := run(context.Background(), []string{"-url", "http://mcp.example.com/mcp"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must be https")
}

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://as.example.com/authorize":     true,
		"http://127.0.0.1:3000/authorize":      true,
		"http://localhost:3000/x":              true,
		"http://[::1]:3000/x":                  true,
		"http://127.1.2.3/x":                   true,
		"http://as.example.com/authorize":      false,
		"javascript:alert(1)":                  false,
		"file:///etc/passwd":                   false,
		"https://user:pw@as.example.com/x":     false,
		"https://as.example.com/x#frag":        false,
		"/relative":                            false,
		"http://localhost.evil.example/x":      false,
		"http://[fe80::1%25lo]:3000/authorize": false,
	} {
		_, err := checkURL("u", raw)
		assert.Equal(t, ok, err == nil, "%s: %v", raw, err)
	}
}

func TestParseChallenges(t *testing.T) {
	cs, err := parseChallenges([]string{`Bearer resource_metadata="http://h/.well-known/oauth-protected-resource/mcp", scope="mcp:tools extra"`})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, "bearer", cs[0].scheme)
	assert.Equal(t, map[string]string{"resource_metadata": "http://h/.well-known/oauth-protected-resource/mcp", "scope": "mcp:tools extra"}, cs[0].params)

	cs, err = parseChallenges([]string{`Basic realm="a \"b\"", BEARER Error=invalid_token,error_description="x, y"`, `DPoP algs="ES256"`})
	require.NoError(t, err)
	require.Len(t, cs, 3)
	assert.Equal(t, challenge{"basic", map[string]string{"realm": `a "b"`}}, cs[0])
	assert.Equal(t, challenge{"bearer", map[string]string{"error": "invalid_token", "error_description": "x, y"}}, cs[1])
	assert.Equal(t, "dpop", cs[2].scheme)
	assert.Equal(t, map[string]string{"error": "invalid_token", "error_description": "x, y"}, bearerChallenge(cs))

	cs, err = parseChallenges([]string{"Bearer"})
	require.NoError(t, err)
	assert.Equal(t, []challenge{{"bearer", map[string]string{}}}, cs)

	for _, bad := range []string{
		`Bearer scope="a", scope="b"`,
		`scope="a"`,
		`Bearer scope="unterminated`,
		`Bearer scope=`,
		`Bearer scope="a" junk`,
		`Bearer @`,
		`Bearer scope="a\`,
	} {
		_, err := parseChallenges([]string{bad})
		assert.Error(t, err, bad)
	}
}

func TestClean(t *testing.T) {
	assert.Equal(t, "a\uFFFD[31mb\uFFFDc é", clean("a\x1b[31mb\nc é"))
}

// TestResultText covers the renderings of a tool result.
func TestResultText(t *testing.T) {
	assert.Equal(t, "(no text content)", resultText(&mcp.CallToolResult{}))
	assert.Equal(t, `{"a":1}`, resultText(&mcp.CallToolResult{StructuredContent: map[string]int{"a": 1}}))
	assert.Equal(t, "x \uFFFDy", resultText(&mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "x"}, &mcp.ImageContent{}, &mcp.TextContent{Text: "\ay"}}}))
}
