package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/mcphttp"
)

const (
	// requestTimeout bounds each OAuth and metadata request.
	requestTimeout = 30 * time.Second
	// maxJSON bounds a JSON response read into memory.
	maxJSON = 1 << 20
)

// client is one run: its options, its output, and what discovery found.
type client struct {
	opts   options
	stdout io.Writer
	stderr io.Writer
	// http sends the OAuth and discovery requests: bounded, and it never
	// follows a redirect (a metadata document or token endpoint that
	// redirects is refused rather than chased).
	http *http.Client
	// openBrowser opens a URL in the user's browser, best effort.
	openBrowser func(ctx context.Context, u string) error
}

func newClient(opts options, stdout, stderr io.Writer) *client {
	return &client{
		opts:   opts,
		stdout: stdout,
		stderr: stderr,
		http: &http.Client{
			Timeout:       requestTimeout,
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		openBrowser: openBrowser,
	}
}

func (c *client) logf(format string, args ...any) {
	fmt.Fprintf(c.stderr, format+"\n", args...)
}

// checkURL accepts the URLs the client sends credentials to or opens in a
// browser: https, or http on a loopback host (MCP authorization: every
// authorization server endpoint is https, local development aside). This
// also keeps javascript:, file: and other schemes away from the browser
// opener (mcp-remote CVE-2025-6514).
func checkURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, raw, err)
	}
	switch {
	case u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("%s %q: want an absolute http(s) URL without user info or fragment", what, raw)
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && mcphttp.IsLoopback(u.Hostname()):
		return u, nil
	default:
		return nil, fmt.Errorf("%s %q: must be https (or http on a loopback host)", what, raw)
	}
}

// challenge is one WWW-Authenticate challenge (RFC 9110 §11.6.1).
type challenge struct {
	scheme string            // lower case
	params map[string]string // names in lower case
}

// parseChallenges parses WWW-Authenticate header values into challenges:
// auth-scheme followed by comma-separated auth-params (token68 is not
// supported). A parameter given twice is an error (RFC 6750 §3).
func parseChallenges(values []string) ([]challenge, error) {
	var out []challenge
	for _, s := range values {
		p := &authParser{s: s}
		var cur *challenge
		for {
			p.skip(" \t,")
			if p.eof() {
				break
			}
			name := p.token()
			if name == "" {
				return nil, fmt.Errorf("WWW-Authenticate: unexpected %q at %d", p.s[p.i], p.i)
			}
			p.skip(" \t")
			if p.eof() || p.s[p.i] != '=' {
				out = append(out, challenge{scheme: strings.ToLower(name), params: map[string]string{}})
				cur = &out[len(out)-1]
				continue
			}
			p.i++ // '='
			p.skip(" \t")
			value, err := p.value()
			if err != nil {
				return nil, err
			}
			if cur == nil {
				return nil, errors.New("WWW-Authenticate: parameter before any scheme")
			}
			key := strings.ToLower(name)
			if _, dup := cur.params[key]; dup {
				return nil, fmt.Errorf("WWW-Authenticate: %s given twice", key)
			}
			cur.params[key] = value
			p.skip(" \t")
			if !p.eof() && p.s[p.i] != ',' {
				return nil, fmt.Errorf("WWW-Authenticate: expected ',' at %d", p.i)
			}
		}
	}
	return out, nil
}

type authParser struct {
	s string
	i int
}

func (p *authParser) eof() bool { return p.i >= len(p.s) }

func (p *authParser) skip(chars string) {
	for !p.eof() && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads an RFC 9110 token.
func (p *authParser) token() string {
	start := p.i
	for !p.eof() && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func isTChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// value reads a token or a quoted-string.
func (p *authParser) value() (string, error) {
	if p.eof() || p.s[p.i] != '"' {
		t := p.token()
		if t == "" {
			return "", fmt.Errorf("WWW-Authenticate: missing value at %d", p.i)
		}
		return t, nil
	}
	p.i++
	var b strings.Builder
	for !p.eof() {
		ch := p.s[p.i]
		p.i++
		switch ch {
		case '"':
			return b.String(), nil
		case '\\':
			if p.eof() {
				return "", errors.New("WWW-Authenticate: unterminated quoted string")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(ch)
		}
	}
	return "", errors.New("WWW-Authenticate: unterminated quoted string")
}

// bearerChallenge returns the Bearer challenge's parameters, or nil.
func bearerChallenge(cs []challenge) map[string]string {
	for _, c := range cs {
		if c.scheme == "bearer" {
			return c.params
		}
	}
	return nil
}

// discovery is what the client learnt before signing in.
type discovery struct {
	// resource is the RFC 8707 resource indicator: the protected resource
	// metadata's resource, which equals the MCP URL.
	resource string
	// scopes are the scopes to request.
	scopes []string
	as     *asMetadata
}

// protectedResource is the part of RFC 9728 metadata the client uses.
type protectedResource struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

// asMetadata is the part of RFC 8414 metadata the client uses.
type asMetadata struct {
	Issuer                             string   `json:"issuer"`
	AuthorizationEndpoint              string   `json:"authorization_endpoint"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	RegistrationEndpoint               string   `json:"registration_endpoint"`
	DeviceAuthorizationEndpoint        string   `json:"device_authorization_endpoint"`
	ScopesSupported                    []string `json:"scopes_supported"`
	ResponseTypesSupported             []string `json:"response_types_supported"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported  []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported      []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseISSSupported  bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentsSupported bool     `json:"client_id_metadata_document_supported"`
}

// initializeProbe is the first request: what an MCP client sends first. A
// server that requires authorization answers it 401 with the challenge.
const initializeProbe = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpoauth-example-client","version":"0.1.0"}}}`

// discover finds the authorization server of the MCP server at c.opts.url:
// the 401's Bearer challenge names the protected resource metadata, which
// names the authorization server, whose metadata names the endpoints. It
// returns nil when the server admits the request without a token.
func (c *client) discover(ctx context.Context) (*discovery, error) {
	mcpURL, err := checkURL("MCP server URL", c.opts.url)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodPost, mcpURL.String(), strings.NewReader(initializeProbe), "application/json, text/event-stream", "connect to the MCP server")
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJSON))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil, nil
		}
		return nil, fmt.Errorf("MCP server answered %s, not 401 with a challenge", resp.Status)
	}
	var challenged map[string]string
	if cs, err := parseChallenges(resp.Header.Values("WWW-Authenticate")); err != nil {
		c.logf("ignoring an unparsable challenge (%v); trying the well-known metadata URLs", err)
	} else {
		challenged = bearerChallenge(cs)
	}

	prm, err := c.protectedResourceMetadata(ctx, mcpURL, challenged["resource_metadata"])
	if err != nil {
		return nil, err
	}
	if len(prm.AuthorizationServers) == 0 {
		return nil, errors.New("protected resource metadata names no authorization server")
	}
	as, err := c.authorizationServerMetadata(ctx, prm.AuthorizationServers[0])
	if err != nil {
		return nil, err
	}
	c.logf("authorization server: %s", as.Issuer)

	d := &discovery{resource: prm.Resource, as: as}
	switch {
	case c.opts.scope != "":
		d.scopes = strings.Fields(c.opts.scope)
	case challenged["scope"] != "":
		d.scopes = strings.Fields(challenged["scope"])
	default:
		d.scopes = prm.ScopesSupported
	}
	return d, nil
}

// protectedResourceMetadata fetches RFC 9728 metadata: from the challenge's
// resource_metadata URL, else the well-known URL with the MCP URL's path
// inserted, else the well-known URL at the root. The document's resource
// must equal the MCP URL byte for byte (RFC 9728 §3.3), or the origin for
// the root document.
func (c *client) protectedResourceMetadata(ctx context.Context, mcpURL *url.URL, fromChallenge string) (*protectedResource, error) {
	type candidate struct {
		url       string
		resources []string
	}
	origin := mcpURL.Scheme + "://" + mcpURL.Host
	var candidates []candidate
	if fromChallenge != "" {
		candidates = append(candidates, candidate{fromChallenge, []string{mcpURL.String()}})
	}
	if p := strings.TrimSuffix(mcpURL.EscapedPath(), "/"); p != "" {
		candidates = append(candidates, candidate{origin + "/.well-known/oauth-protected-resource" + p, []string{mcpURL.String()}})
	}
	candidates = append(candidates, candidate{origin + "/.well-known/oauth-protected-resource", []string{mcpURL.String(), origin, origin + "/"}})

	var errs []error
	for _, cand := range candidates {
		var prm protectedResource
		found, err := c.getJSON(ctx, "protected resource metadata", cand.url, &prm)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			continue
		}
		if !slices.Contains(cand.resources, prm.Resource) {
			// A document for another resource is an attack or a
			// misconfiguration: stop, do not try the next URL.
			return nil, fmt.Errorf("protected resource metadata at %s is for resource %q, not %q", cand.url, prm.Resource, mcpURL)
		}
		return &prm, nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("no protected resource metadata found for %s", mcpURL)
}

// authorizationServerMetadata fetches RFC 8414 metadata (or OpenID Connect
// discovery) for issuer, at the well-known URLs the MCP authorization
// specification lists, and checks the issuer it claims (RFC 8414 §3.3).
func (c *client) authorizationServerMetadata(ctx context.Context, issuer string) (*asMetadata, error) {
	iu, err := checkURL("authorization server", issuer)
	if err != nil {
		return nil, err
	}
	if iu.RawQuery != "" {
		return nil, fmt.Errorf("authorization server %q has a query", issuer)
	}
	origin := iu.Scheme + "://" + iu.Host
	p := strings.TrimSuffix(iu.EscapedPath(), "/")
	urls := []string{origin + "/.well-known/oauth-authorization-server" + p, origin + "/.well-known/openid-configuration" + p}
	if p != "" {
		urls = append(urls, origin+p+"/.well-known/openid-configuration")
	}
	for _, u := range urls {
		var m asMetadata
		found, err := c.getJSON(ctx, "authorization server metadata", u, &m)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		if m.Issuer != issuer {
			return nil, fmt.Errorf("authorization server metadata at %s claims issuer %q, not %q", u, m.Issuer, issuer)
		}
		return &m, c.checkEndpoints(&m)
	}
	return nil, fmt.Errorf("no authorization server metadata found for %s", issuer)
}

// checkEndpoints checks the endpoints the chosen grant needs.
func (c *client) checkEndpoints(m *asMetadata) error {
	need := map[string]string{"token_endpoint": m.TokenEndpoint}
	switch c.opts.grant() {
	case grantAuthorizationCode:
		need["authorization_endpoint"] = m.AuthorizationEndpoint
		// MCP authorization: a client must refuse to proceed when the
		// server does not advertise S256.
		if !slices.Contains(m.CodeChallengeMethodsSupported, "S256") {
			return errors.New("the authorization server does not advertise PKCE S256 (code_challenge_methods_supported)")
		}
	case grantDevice:
		need["device_authorization_endpoint"] = m.DeviceAuthorizationEndpoint
	}
	if c.opts.clientID == "" {
		need["registration_endpoint"] = m.RegistrationEndpoint
	}
	for name, v := range need {
		if v == "" {
			return fmt.Errorf("the authorization server metadata has no %s", name)
		}
		if _, err := checkURL(name, v); err != nil {
			return err
		}
	}
	return nil
}

// send makes one request: with a JSON body when body is not nil, accepting
// accept. A transport error is prefixed with what.
func (c *client) send(ctx context.Context, method, u string, body io.Reader, accept, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return resp, nil
}

// getJSON GETs a metadata document into v. A 404 (or 405, 410) is not an
// error but found=false, so the caller can try the next URL.
func (c *client) getJSON(ctx context.Context, what, u string, v any) (found bool, err error) {
	if _, err := checkURL(what, u); err != nil {
		return false, err
	}
	resp, err := c.send(ctx, http.MethodGet, u, nil, "application/json", what)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone:
		return false, nil
	default:
		return false, fmt.Errorf("%s at %s: %s", what, u, resp.Status)
	}
	if err := decodeJSON(resp, v); err != nil {
		return false, fmt.Errorf("%s at %s: %w", what, u, err)
	}
	return true, nil
}

// decodeJSON decodes a bounded JSON object response.
func decodeJSON(resp *http.Response, v any) error {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" {
		return fmt.Errorf("content type %q, not application/json", mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON+1))
	if err != nil {
		return err
	}
	if len(body) > maxJSON {
		return errors.New("response too large")
	}
	return json.Unmarshal(body, v)
}

// loopbackAddr is the listen address of the redirect URI's listener.
func loopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
