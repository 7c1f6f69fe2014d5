package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	// mcpRequestTimeout bounds each MCP HTTP request.
	mcpRequestTimeout = time.Minute
	// callbackShutdownTimeout bounds the loopback listener's shutdown.
	callbackShutdownTimeout = 5 * time.Second
	// grantDeviceCode is RFC 8628's grant type.
	grantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// signIn discovers the authorization server, obtains a token with the
// chosen grant and returns an HTTP client that sends it (and refreshes it
// when it expires) on every MCP request.
func (c *client) signIn(ctx context.Context) (*http.Client, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d == nil {
		c.logf("the MCP server did not ask for authorization; connecting without a token")
		return &http.Client{Timeout: mcpRequestTimeout}, nil
	}
	// The x/oauth2 calls (and the token source's refreshes) use c.http.
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.http)
	var src oauth2.TokenSource
	switch c.opts.grant() {
	case grantClientCredentials:
		src, err = c.clientCredentials(octx, d)
	case grantDevice:
		src, err = c.deviceFlow(octx, d)
	default:
		src, err = c.authorizationCode(octx, d)
	}
	if err != nil {
		return nil, err
	}
	hc := oauth2.NewClient(octx, src)
	hc.Timeout = mcpRequestTimeout
	return hc, nil
}

// describeToken reports a token without its value.
func (c *client) describeToken(tok *oauth2.Token) {
	scope, _ := tok.Extra("scope").(string)
	refresh := "no"
	if tok.RefreshToken != "" {
		refresh = "yes"
	}
	expires := "never stated"
	if !tok.Expiry.IsZero() {
		expires = time.Until(tok.Expiry).Round(time.Second).String()
	}
	c.logf("signed in: token type %s, scope %q, expires in %s, refresh token: %s", tok.Type(), clean(scope), expires, refresh)
}

// authStyle picks how a confidential client authenticates at the token
// endpoint: client_secret_basic (RFC 7591's default) unless the server
// supports only client_secret_post. A public client sends its client_id in
// the body.
func authStyle(secret string, supported []string) oauth2.AuthStyle {
	if secret == "" {
		return oauth2.AuthStyleInParams
	}
	if len(supported) > 0 && !slices.Contains(supported, "client_secret_basic") && slices.Contains(supported, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// registeredClient is a client's credentials at the authorization server.
type registeredClient struct {
	id, secret string
	style      oauth2.AuthStyle
}

// config is the x/oauth2 configuration of the client at the discovered
// authorization server, with redirectURI ("" for the device flow).
func (rc *registeredClient) config(d *discovery, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     rc.id,
		ClientSecret: rc.secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:       d.as.AuthorizationEndpoint,
			DeviceAuthURL: d.as.DeviceAuthorizationEndpoint,
			TokenURL:      d.as.TokenEndpoint,
			AuthStyle:     rc.style,
		},
		RedirectURL: redirectURI,
		Scopes:      d.scopes,
	}
}

// clientFor returns the pre-registered client of -client-id, or registers a
// public native client (RFC 7591) for the given grant types and redirect URI.
func (c *client) clientFor(ctx context.Context, d *discovery, redirectURI string, grantTypes []string) (*registeredClient, error) {
	if c.opts.clientID != "" {
		return &registeredClient{id: c.opts.clientID, secret: c.opts.clientSecret,
			style: authStyle(c.opts.clientSecret, d.as.TokenEndpointAuthMethodsSupported)}, nil
	}
	reg := map[string]any{
		"client_name":                "mcpoauth example client",
		"grant_types":                grantTypes,
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
	}
	if redirectURI != "" {
		reg["redirect_uris"] = []string{redirectURI}
		reg["response_types"] = []string{"code"}
	}
	if len(d.scopes) > 0 {
		reg["scope"] = strings.Join(d.scopes, " ")
	}
	body, err := json.Marshal(reg)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodPost, d.as.RegistrationEndpoint, bytes.NewReader(body), "application/json", "client registration")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var oe oauthErrorBody
		_ = decodeJSON(resp, &oe)
		return nil, fmt.Errorf("client registration: %s%s", resp.Status, oe)
	}
	var info struct {
		ClientID                string `json:"client_id"`
		ClientSecret            string `json:"client_secret"`
		TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	}
	if err := decodeJSON(resp, &info); err != nil {
		return nil, fmt.Errorf("client registration: %w", err)
	}
	if info.ClientID == "" {
		return nil, errors.New("client registration: the response has no client_id")
	}
	rc := &registeredClient{id: info.ClientID, secret: info.ClientSecret, style: oauth2.AuthStyleInParams}
	if info.ClientSecret != "" {
		// We asked for "none"; a server that insists on a secret says how
		// to present it.
		rc.style = oauth2.AuthStyleInHeader
		if info.TokenEndpointAuthMethod == "client_secret_post" {
			rc.style = oauth2.AuthStyleInParams
		}
	}
	c.logf("registered client %s", clean(info.ClientID))
	return rc, nil
}

// oauthErrorBody is an OAuth error response (RFC 6749 §5.2, RFC 7591 §3.2.2).
type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (e oauthErrorBody) String() string {
	if e.Error == "" {
		return ""
	}
	return fmt.Sprintf(": %s %q", clean(e.Error), clean(e.Description))
}

// tokenError makes an x/oauth2 error readable without echoing a raw body.
func tokenError(step string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := ""
		if re.Response != nil {
			status = " (" + re.Response.Status + ")"
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("%s: %s %q%s", step, clean(re.ErrorCode), clean(re.ErrorDescription), status)
		}
		return fmt.Errorf("%s: unexpected response%s", step, status)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// callbackResult is the authorization response the loopback listener got.
type callbackResult struct {
	code string
	err  error
}

// authorizationCode runs the authorization code grant with PKCE S256 and a
// loopback redirect URI (RFC 8252 §7.3).
func (c *client) authorizationCode(ctx context.Context, d *discovery) (oauth2.TokenSource, error) {
	ln, err := net.Listen("tcp", loopbackAddr(c.opts.callbackPort))
	if err != nil {
		return nil, fmt.Errorf("loopback listener: %w", err)
	}
	redirectURI := "http://" + ln.Addr().String() + "/callback"
	results := make(chan callbackResult, 1)
	state := rand.Text()
	srv := &http.Server{
		Handler:           c.callbackHandler(state, d.as, results),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callbackShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	rc, err := c.clientFor(ctx, d, redirectURI, []string{"authorization_code", "refresh_token"})
	if err != nil {
		return nil, err
	}
	cfg := rc.config(d, redirectURI)
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state,
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("resource", d.resource))
	if _, err := checkURL("authorization URL", authURL); err != nil {
		return nil, err
	}

	c.logf("Open this URL in your browser to sign in:\n\n  %s\n", authURL)
	c.offerBrowser(ctx, authURL)
	c.logf("waiting for the browser to come back to %s ...", redirectURI)
	var res callbackResult
	select {
	case res = <-results:
	case <-ctx.Done():
		return nil, fmt.Errorf("no authorization response: %w", context.Cause(ctx))
	}
	if res.err != nil {
		return nil, res.err
	}
	tok, err := cfg.Exchange(ctx, res.code,
		oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("resource", d.resource))
	if err != nil {
		return nil, tokenError("token request", err)
	}
	c.describeToken(tok)
	return cfg.TokenSource(ctx, tok), nil
}

// callbackHandler receives the authorization response at /callback. A
// response with another state is refused and the wait goes on (it is not
// ours: a stale tab, or a forged request); the first response with our
// state ends the wait, as a code or as an error: error from the server, or
// an iss that is not our authorization server's (RFC 9207 mix-up defence).
func (c *client) callbackHandler(state string, as *asMetadata, results chan<- callbackResult) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		for _, p := range []string{"code", "state", "iss", "error"} {
			if len(q[p]) > 1 {
				http.Error(w, "malformed authorization response", http.StatusBadRequest)
				return
			}
		}
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			c.logf("ignored a request to the redirect URI with the wrong state")
			http.Error(w, "This response does not belong to the sign-in in progress.", http.StatusBadRequest)
			return
		}
		res := callbackResult{code: q.Get("code")}
		iss, hasIss := q.Get("iss"), q.Has("iss")
		switch {
		case as.AuthorizationResponseISSSupported && !hasIss:
			res.err = errors.New("authorization response without iss, which the authorization server promises (RFC 9207)")
		case hasIss && iss != as.Issuer:
			res.err = fmt.Errorf("authorization response from issuer %q, not %q: refused (RFC 9207)", clean(iss), as.Issuer)
		case q.Get("error") != "":
			res.err = fmt.Errorf("authorization refused: %s %q", clean(q.Get("error")), clean(q.Get("error_description")))
		case res.code == "":
			res.err = errors.New("authorization response without code")
		}
		delivered := false
		once.Do(func() {
			results <- res
			delivered = true
		})
		switch {
		case !delivered:
			http.Error(w, "This sign-in is already complete.", http.StatusBadRequest)
		case res.err != nil:
			http.Error(w, "Sign-in failed; see the terminal.", http.StatusBadRequest)
		default:
			_, _ = fmt.Fprintln(w, "Signed in. You can close this window and return to the terminal.")
		}
	})
}

// deviceFlow runs the device authorization grant (RFC 8628).
func (c *client) deviceFlow(ctx context.Context, d *discovery) (oauth2.TokenSource, error) {
	rc, err := c.clientFor(ctx, d, "", []string{grantTypeDeviceCode, "refresh_token"})
	if err != nil {
		return nil, err
	}
	cfg := rc.config(d, "")
	da, err := cfg.DeviceAuth(ctx, oauth2.SetAuthURLParam("resource", d.resource))
	if err != nil {
		return nil, tokenError("device authorization request", err)
	}
	if _, err := checkURL("verification_uri", da.VerificationURI); err != nil {
		return nil, err
	}
	if da.VerificationURIComplete != "" {
		if _, err := checkURL("verification_uri_complete", da.VerificationURIComplete); err != nil {
			return nil, err
		}
		c.logf("To sign in, open this URL on any device:\n\n  %s\n\nor go to %s and enter the code %s\n",
			da.VerificationURIComplete, da.VerificationURI, clean(da.UserCode))
		c.offerBrowser(ctx, da.VerificationURIComplete)
	} else {
		c.logf("To sign in, go to this URL on any device:\n\n  %s\n\nand enter the code %s\n", da.VerificationURI, clean(da.UserCode))
	}
	interval := da.Interval
	if interval <= 0 {
		interval = 5 // RFC 8628 §3.2's default, which x/oauth2 applies
	}
	c.logf("waiting for the sign-in (polling every %ds) ...", interval)
	tok, err := cfg.DeviceAccessToken(ctx, da, oauth2.SetAuthURLParam("resource", d.resource))
	if err != nil {
		return nil, tokenError("device access token", err)
	}
	c.describeToken(tok)
	return cfg.TokenSource(ctx, tok), nil
}

// clientCredentials runs the client credentials grant for the
// pre-registered confidential client of -client-id and -client-secret.
func (c *client) clientCredentials(ctx context.Context, d *discovery) (oauth2.TokenSource, error) {
	cfg := &clientcredentials.Config{
		ClientID:       c.opts.clientID,
		ClientSecret:   c.opts.clientSecret,
		TokenURL:       d.as.TokenEndpoint,
		Scopes:         d.scopes,
		EndpointParams: url.Values{"resource": {d.resource}},
		AuthStyle:      authStyle(c.opts.clientSecret, d.as.TokenEndpointAuthMethodsSupported),
	}
	src := cfg.TokenSource(ctx)
	tok, err := src.Token()
	if err != nil {
		return nil, tokenError("token request", err)
	}
	c.describeToken(tok)
	return oauth2.ReuseTokenSource(tok, src), nil
}

// offerBrowser opens u, a URL printed for the user, in their browser unless
// -no-browser says not to; a failure is only mentioned.
func (c *client) offerBrowser(ctx context.Context, u string) {
	if c.opts.noBrowser {
		return
	}
	if err := c.openBrowser(ctx, u); err != nil {
		c.logf("(could not open a browser: %v)", err)
	}
}

// openBrowser opens u in the user's browser, best effort: the URL has been
// printed already. u is passed as one argument, never through a shell, and
// checkURL has limited it to http(s).
func openBrowser(ctx context.Context, u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", u)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// The opener hands the URL to the browser and exits; it is killed if
	// the run ends first.
	go func() { _ = cmd.Wait() }()
	return nil
}

// clean makes a string that came from the network safe to print on a
// terminal: control and other unprintable characters become U+FFFD.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return unicode.ReplacementChar
	}, s)
}
