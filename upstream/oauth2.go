package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/mcpoauth/mcpoauth"
	"golang.org/x/oauth2"
)

// Bounds of the user-info request of NewOAuth2.
const (
	userInfoTimeout  = 10 * time.Second
	userInfoMaxBytes = 1 << 20
)

// OAuth2Options configure a plain OAuth 2 provider without OpenID Connect
// (GitHub-style) as the sign-in step: there is no ID token, so who signed
// in is read from the provider's user-info endpoint with the access token.
type OAuth2Options struct {
	// Issuer names the provider in user ids (Identity.Issuer, the part of
	// Identity.UserID before "#"), such as "https://github.com". It
	// must not contain "#". Choose it once: changing it changes every
	// user's id.
	Issuer string
	// AuthURL, TokenURL and UserInfoURL are the provider's authorization,
	// token and user-info endpoints (GitHub:
	// https://github.com/login/oauth/authorize,
	// https://github.com/login/oauth/access_token, https://api.github.com/user).
	AuthURL     string
	TokenURL    string
	UserInfoURL string
	// ClientID and ClientSecret are this server's registration at the
	// provider.
	ClientID     string
	ClientSecret string
	// Scopes asked of the provider; none by default.
	Scopes []string
	// RedirectURL, CookieKey, SessionLifetime, Allow, HTTPClient, Logger,
	// Claims (members of the user-info answer), TokenStore and TokenKeys
	// are as in Options.
	RedirectURL     string
	CookieKey       []byte
	SessionLifetime time.Duration
	Allow           func(ctx context.Context, id Identity) error
	HTTPClient      *http.Client
	Logger          *slog.Logger
	Claims          []string
	TokenStore      mcpoauth.UpstreamTokenStore
	TokenKeys       []TokenKey

	// Subject maps the user-info JSON object to the user's stable,
	// unique id at the provider (numbers arrive as json.Number). Default
	// DefaultSubject: the "id" member. Never map a member the user can
	// change, such as a login name or an email address.
	Subject func(info map[string]any) (string, error)
	// EmailMember and NameMember name the user-info members read as
	// Identity.Email and Identity.Name, when they are strings. Default
	// "email" and "name". Identity.EmailVerified is always false: a
	// user-info answer does not say; an Allow hook that trusts an email
	// must know that the provider verifies it.
	EmailMember string
	NameMember  string
}

// DefaultSubject is the default OAuth2Options.Subject: the "id" member, a
// non-empty string or an integer (GitHub's numeric user id).
func DefaultSubject(info map[string]any) (string, error) {
	switch v := info["id"].(type) {
	case string:
		if v != "" {
			return v, nil
		}
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return v.String(), nil
		}
	}
	return "", errors.New(`no "id" member that is a non-empty string or an integer`)
}

// NewOAuth2 returns the sign-in step through a plain OAuth 2 provider. Its
// Login and Callback handle state and PKCE as NewOIDC's do (no nonce:
// there is no ID token); Callback exchanges the code, asks UserInfoURL
// with the access token and maps the answer to an Identity. The tokens
// are never logged, and kept only in the token vault, if one is
// configured.
func NewOAuth2(ctx context.Context, opts OAuth2Options) (*SignIn, error) {
	if opts.Issuer == "" || opts.ClientID == "" || opts.RedirectURL == "" {
		return nil, errors.New("upstream: Issuer, ClientID and RedirectURL are required")
	}
	if strings.Contains(opts.Issuer, "#") {
		return nil, fmt.Errorf("upstream: Issuer %q contains \"#\", which would make user ids ambiguous", opts.Issuer)
	}
	for name, u := range map[string]string{"AuthURL": opts.AuthURL, "TokenURL": opts.TokenURL, "UserInfoURL": opts.UserInfoURL} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("upstream: %s %q is not an absolute http(s) URL", name, u)
		}
	}
	s, err := newBase(opts.options())
	if err != nil {
		return nil, err
	}
	s.oauth.Endpoint = oauth2.Endpoint{AuthURL: opts.AuthURL, TokenURL: opts.TokenURL}
	s.oauth.Scopes = dedupe(opts.Scopes)
	m := claimMapping{issuer: opts.Issuer, subject: opts.Subject, email: opts.EmailMember, name: opts.NameMember}
	if m.subject == nil {
		m.subject = DefaultSubject
	}
	if m.email == "" {
		m.email = "email"
	}
	if m.name == "" {
		m.name = "name"
	}
	userInfoURL, client := opts.UserInfoURL, s.client
	s.identify = func(ctx context.Context, token *oauth2.Token, _ string) (Identity, *failure) {
		info, err := fetchUserInfo(ctx, client, userInfoURL, token)
		if err != nil {
			return Identity{}, &failure{http.StatusBadGateway, "user-info request", err}
		}
		return m.identity(info)
	}
	s.userInfo = func(ctx context.Context, token *oauth2.Token) (map[string]any, string, error) {
		info, err := fetchUserInfo(ctx, client, userInfoURL, token)
		if err != nil {
			return nil, "", err
		}
		sub, err := m.subject(info)
		if err != nil {
			return nil, "", errors.New("no subject in the user-info answer")
		}
		return info, sub, nil
	}
	return s, nil
}

// options are the members of o that Options has too.
func (o OAuth2Options) options() Options {
	return Options{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
		RedirectURL: o.RedirectURL, CookieKey: o.CookieKey, SessionLifetime: o.SessionLifetime,
		Allow: o.Allow, HTTPClient: o.HTTPClient, Logger: o.Logger,
		Claims: o.Claims, TokenStore: o.TokenStore, TokenKeys: o.TokenKeys,
	}
}

// claimMapping maps a user-info object to an Identity.
type claimMapping struct {
	issuer      string
	subject     func(map[string]any) (string, error)
	email, name string
}

func (m claimMapping) identity(info map[string]any) (Identity, *failure) {
	sub, err := m.subject(info)
	if err == nil && sub == "" {
		err = errors.New("empty subject")
	}
	if err != nil {
		return Identity{}, &failure{http.StatusBadGateway, "no subject in the user-info answer", err}
	}
	id := Identity{Issuer: m.issuer, Subject: sub, Claims: info}
	id.Email, _ = info[m.email].(string)
	id.Name, _ = info[m.name].(string)
	return id, nil
}

// fetchUserInfo asks the user-info endpoint with the access token, within
// userInfoTimeout, and decodes a JSON object of at most userInfoMaxBytes.
// Its errors carry neither the token nor the answer's body.
func fetchUserInfo(ctx context.Context, client *http.Client, endpoint string, token *oauth2.Token) (map[string]any, error) {
	if token.AccessToken == "" {
		return nil, errors.New("no access token in the token response")
	}
	ctx, cancel := context.WithTimeout(ctx, userInfoTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL, not the request's headers, but keep it short
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, userInfoStatusError(resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, userInfoMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the user-info answer: %w", err)
	}
	if len(body) > userInfoMaxBytes {
		return nil, fmt.Errorf("user-info answer larger than %d bytes", userInfoMaxBytes)
	}
	return decodeUserInfo(body)
}

// decodeUserInfo decodes a user-info answer, a JSON object, with its
// numbers as json.Number.
func decodeUserInfo(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var info map[string]any
	if err := dec.Decode(&info); err != nil || info == nil {
		return nil, errors.New("user-info answer is not a JSON object")
	}
	return info, nil
}

// errTokenRefused is a user-info answer of 401: the provider no longer
// takes the access token (revoked, or expired before its expires_in).
var errTokenRefused = errors.New("the provider refused the access token")

// userInfoStatusError is the error of a user-info answer that is not 200;
// a 401 wraps errTokenRefused (RFC 6750 §3.1: invalid_token).
func userInfoStatusError(status int) error {
	if status == http.StatusUnauthorized {
		return fmt.Errorf("user-info endpoint answered HTTP %d: %w", status, errTokenRefused)
	}
	return fmt.Errorf("user-info endpoint answered HTTP %d", status)
}

// oidcUserInfo asks the OpenID provider's user-info endpoint with the
// token through go-oidc, within the bounds of fetchUserInfo, and returns
// the answer (numbers as json.Number) and its sub. Its errors carry
// neither the token nor the answer's body (go-oidc's may).
func oidcUserInfo(ctx context.Context, client *http.Client, provider *oidc.Provider, token *oauth2.Token) (map[string]any, string, error) {
	if provider.UserInfoEndpoint() == "" {
		return nil, "", errors.New("the provider publishes no userinfo_endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, userInfoTimeout)
	defer cancel()
	bounded := *client
	t := &boundedTransport{base: client.Transport, max: userInfoMaxBytes}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	bounded.Transport = t
	ui, err := provider.UserInfo(oidc.ClientContext(ctx, &bounded), oauth2.StaticTokenSource(token))
	if err != nil {
		var ue *url.Error
		switch status := t.status.Load(); {
		case errors.Is(err, errTooLarge):
			return nil, "", fmt.Errorf("user-info answer larger than %d bytes", userInfoMaxBytes)
		case status != 0 && status != http.StatusOK:
			return nil, "", userInfoStatusError(int(status))
		case errors.As(err, &ue):
			return nil, "", ue.Err
		default:
			return nil, "", errors.New("user-info answer is not a JSON object")
		}
	}
	var raw json.RawMessage
	if err := ui.Claims(&raw); err != nil {
		return nil, "", errors.New("user-info answer is not a JSON object")
	}
	info, err := decodeUserInfo(raw)
	if err != nil {
		return nil, "", err
	}
	if ui.Subject == "" {
		return nil, "", errors.New("no sub in the user-info answer")
	}
	return info, ui.Subject, nil
}

var errTooLarge = errors.New("upstream: response too large")

// boundedTransport fails the reading of a response body past max bytes,
// and records the last response's status.
type boundedTransport struct {
	base   http.RoundTripper
	max    int64
	status atomic.Int32
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.status.Store(int32(resp.StatusCode))
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errTooLarge
	}
	return n, err
}
