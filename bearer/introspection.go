package bearer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/fetchcache"
)

// Defaults of IntrospectionOptions.
const (
	// DefaultIntrospectionCacheTTL is how long an active answer is reused:
	// the longest a revoked token is still accepted by the resource server.
	DefaultIntrospectionCacheTTL = 30 * time.Second
	// DefaultIntrospectionNegativeCacheTTL is how long an inactive answer
	// is reused, so that a flood of one bad token costs the authorization
	// server one request per interval.
	DefaultIntrospectionNegativeCacheTTL = 5 * time.Second
	// DefaultIntrospectionMaxEntries bounds the cache.
	DefaultIntrospectionMaxEntries = 10_000
	// DefaultIntrospectionTimeout bounds one introspection request.
	DefaultIntrospectionTimeout = 5 * time.Second
)

// maxIntrospectionResponse bounds the body read from the introspection
// endpoint; an answer is a few hundred bytes.
const maxIntrospectionResponse = 64 << 10

// evictScan bounds how many cache entries one insertion into a full cache
// inspects for an expired one before it evicts an arbitrary entry.
const evictScan = 16

// ErrIntrospectionFailed is wrapped by every IntrospectionVerifier error
// that is not about the token: the endpoint could not be reached, timed
// out, answered other than 200 (a 401 means the resource server's own
// credentials were refused), or answered something that is not an RFC 7662
// response. RequireBearerAuth answers such errors 503 (Retry-After), and they are never
// cached.
var ErrIntrospectionFailed = errors.New("bearer: token introspection failed")

// IntrospectionOptions configures NewIntrospectionVerifier.
type IntrospectionOptions struct {
	// Endpoint is the authorization server's RFC 7662 introspection
	// endpoint (its metadata's introspection_endpoint). Required; https,
	// or http on a loopback host (localhost, 127.0.0.1, [::1]) unless
	// AllowHTTP is set.
	Endpoint string
	// ClientID and ClientSecret are the resource server's own confidential
	// client at the authorization server, sent with HTTP Basic (RFC 6749
	// §2.3.1: form-urlencoded, then base64). Required. With mcpoauth as the
	// authorization server, list ClientID in its Config.IntrospectionClients
	// so that it may see other clients' access tokens.
	ClientID, ClientSecret string
	// HTTPClient sends the requests. Default: http.DefaultClient's
	// transport. Redirects are never followed, whichever client is given:
	// a redirect would carry the token elsewhere.
	HTTPClient *http.Client
	// Timeout bounds one introspection request; default
	// DefaultIntrospectionTimeout.
	Timeout time.Duration
	// CacheTTL is how long an active answer is reused, never past the
	// token's exp. It is the revocation delay: a token revoked at the
	// authorization server is still accepted here until its cached answer
	// expires. Default DefaultIntrospectionCacheTTL; a negative value
	// disables the cache (every request is introspected).
	CacheTTL time.Duration
	// NegativeCacheTTL is how long an inactive answer is reused; default
	// DefaultIntrospectionNegativeCacheTTL, negative disables. (A token
	// never turns from inactive to active, so this only trades memory for
	// authorization server load.) Failures are never cached.
	NegativeCacheTTL time.Duration
	// MaxEntries bounds the number of cached answers; when full, an
	// expired entry, else an arbitrary one, makes room. Default
	// DefaultIntrospectionMaxEntries.
	MaxEntries int
	// Issuer, if set, must equal the iss of every active answer that has
	// one; an answer from another issuer is an invalid token.
	Issuer string
	// AllowHTTP permits an http Endpoint on a non-loopback host: the token
	// and the client secret then cross the network in clear. Only for a
	// network you trust.
	AllowHTTP bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// IntrospectionVerifier is a Verifier that asks the authorization server
// about each token over HTTP (RFC 7662), for a resource server that runs
// apart from its authorization server. It is safe for concurrent use.
//
// Answers are cached under the SHA-256 digest of the token, never the token
// itself: an active answer for CacheTTL (never past the token's exp), an
// inactive one for NegativeCacheTTL, failures not at all. The cache holds at
// most MaxEntries answers. Concurrent verifications of one token share one
// request. A token is accepted only when the answer is active, its
// token_type is Bearer (so a refresh token is never taken for an access
// token), it has an exp in the future, no nbf in the future, and its iss (if
// any) is Issuer (if set). The RFC 8707 audience is the answer's aud when it
// names one resource; with several, Resource is left empty, which
// RequireBearerAuth's Resource check refuses.
type IntrospectionVerifier struct {
	endpoint               string
	clientID, clientSecret string
	client                 *http.Client
	timeout                time.Duration
	ttl, negativeTTL       time.Duration
	issuer                 string
	now                    func() time.Time
	// cache holds the answers (a nil *AuthInfo: inactive) by the token's
	// SHA-256, and fetches those it lacks, one request for concurrent
	// callers. onJoin, a test hook that mu guards, is called when a caller
	// joins a request in flight.
	cache  *fetchcache.Cache[[sha256.Size]byte, *AuthInfo]
	mu     sync.Mutex
	onJoin func()
}

var _ Verifier = (*IntrospectionVerifier)(nil)

// NewIntrospectionVerifier checks opts, applies the defaults and returns the
// verifier.
func NewIntrospectionVerifier(opts IntrospectionOptions) (*IntrospectionVerifier, error) {
	if err := checkFetchURL("IntrospectionOptions.Endpoint", opts.Endpoint, opts.AllowHTTP); err != nil {
		return nil, err
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("bearer: IntrospectionOptions.ClientID and ClientSecret are required")
	}
	v := &IntrospectionVerifier{
		endpoint:     opts.Endpoint,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		timeout:      orDefault(opts.Timeout, DefaultIntrospectionTimeout),
		ttl:          orDefault(opts.CacheTTL, DefaultIntrospectionCacheTTL),
		negativeTTL:  orDefault(opts.NegativeCacheTTL, DefaultIntrospectionNegativeCacheTTL),
		issuer:       opts.Issuer,
		now:          opts.Now,
	}
	if v.timeout < 0 {
		return nil, errors.New("bearer: IntrospectionOptions.Timeout must not be negative")
	}
	size := opts.MaxEntries
	if size <= 0 {
		size = DefaultIntrospectionMaxEntries
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.client = noRedirects(opts.HTTPClient)
	v.cache = fetchcache.New(fetchcache.Config[[sha256.Size]byte, *AuthInfo]{
		Size: size,
		Now:  v.now,
		// On the hot path, with a large cache: a bounded scan.
		Evict: fetchcache.EvictScan[[sha256.Size]byte, *AuthInfo](evictScan),
		Abandoned: func(err error) error {
			return fmt.Errorf("%w: %w", ErrIntrospectionFailed, err)
		},
		OnJoin: func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.onJoin != nil {
				v.onJoin()
			}
		},
	})
	return v, nil
}

// noRedirects returns a copy of hc (nil: a zero http.Client) that follows
// no redirect, so that a request and its credentials go to the configured
// URL only.
func noRedirects(hc *http.Client) *http.Client {
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// VerifyAccessToken implements Verifier: a cached answer if there is a
// fresh one, else an introspection request (shared with concurrent callers
// asking about the same token). An inactive or unacceptable token wraps
// ErrInvalidToken; a failure to get an answer wraps ErrIntrospectionFailed.
// The AuthInfo returned may be shared: treat it as read-only.
func (v *IntrospectionVerifier) VerifyAccessToken(ctx context.Context, token string) (*AuthInfo, error) {
	if token == "" {
		return nil, ErrInvalidToken
	}
	key := sha256.Sum256([]byte(token))
	// The hot path: a fresh cached answer, without the closure a fetch
	// needs.
	info, ok := v.cache.Peek(key)
	if !ok {
		// Ask, or join the request under way (Get looks again: an answer
		// may have landed meanwhile). The request outlives a caller that
		// gives up: the others may still wait for it, and its answer is
		// cached. Timeout bounds it.
		var err error
		info, _, err = v.cache.Get(ctx, key, nil, func(ctx context.Context, _ [sha256.Size]byte, asked time.Time) (*AuthInfo, time.Time, error) {
			return v.resolve(ctx, token, asked)
		})
		if err != nil {
			return nil, err
		}
	}
	if info == nil { // a cached inactive answer
		return nil, ErrInvalidToken
	}
	return info, nil
}

// resolve runs one introspection request for the callers waiting on it, and
// says how long its answer is cached: an active one for ttl, never past the
// token's exp; an inactive one (info nil) for negativeTTL; a failure not
// at all. The lifetime counts from asked, when the question was asked: the
// answer can only be older than that, never fresher. The cache releases
// the waiters once the answer is cached, so a caller that asks again right
// after sees it.
func (v *IntrospectionVerifier) resolve(ctx context.Context, token string, asked time.Time) (*AuthInfo, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	info, err := v.introspect(ctx, token)
	switch {
	case err == nil && v.ttl > 0:
		exp := asked.Add(v.ttl)
		if info.ExpiresAt.Before(exp) {
			exp = info.ExpiresAt
		}
		return info, exp, nil
	case errors.Is(err, ErrInvalidToken) && v.negativeTTL > 0:
		return nil, asked.Add(v.negativeTTL), err
	}
	return info, time.Time{}, err
}

// introspectionAnswer is the part of an RFC 7662 §2.2 response the
// verifier reads.
type introspectionAnswer struct {
	Active    *bool           `json:"active"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	TokenType string          `json:"token_type"`
	Exp       *int64          `json:"exp"`
	Nbf       *int64          `json:"nbf"`
	Sub       string          `json:"sub"`
	Iss       string          `json:"iss"`
	Aud       json.RawMessage `json:"aud"`
	Cnf       confirmation    `json:"cnf"`
}

// introspect asks the endpoint about token and maps the answer.
func (v *IntrospectionVerifier) introspect(ctx context.Context, token string) (*AuthInfo, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionFailed, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		// A *url.Error names the endpoint, never the token: it is in the
		// body.
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionFailed, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the response: %w", ErrIntrospectionFailed, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: the endpoint answered %d", ErrIntrospectionFailed, resp.StatusCode)
	}
	if len(body) > maxIntrospectionResponse {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrIntrospectionFailed, maxIntrospectionResponse)
	}
	var a introspectionAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&a); err != nil || a.Active == nil || dec.More() {
		return nil, fmt.Errorf("%w: not an RFC 7662 response", ErrIntrospectionFailed)
	}
	if !*a.Active {
		return nil, ErrInvalidToken
	}
	now := v.now()
	jkt, ok := a.Cnf.jkt()
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: unsupported cnf", ErrInvalidToken)
	case strings.EqualFold(a.TokenType, "DPoP") && jkt == "":
		return nil, fmt.Errorf("%w: a DPoP token without cnf.jkt", ErrInvalidToken)
	case !strings.EqualFold(a.TokenType, "Bearer") && !strings.EqualFold(a.TokenType, "DPoP"):
		// RFC 9449 §6.2: token_type DPoP with cnf.jkt for a bound token.
		return nil, fmt.Errorf("%w: not a bearer or DPoP access token", ErrInvalidToken)
	case a.Exp == nil:
		return nil, fmt.Errorf("%w: no expiry", ErrInvalidToken)
	case !now.Before(time.Unix(*a.Exp, 0)):
		return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
	case a.Nbf != nil && now.Before(time.Unix(*a.Nbf, 0)):
		return nil, fmt.Errorf("%w: not yet valid", ErrInvalidToken)
	case v.issuer != "" && a.Iss != "" && a.Iss != v.issuer:
		return nil, fmt.Errorf("%w: issued by another authorization server", ErrInvalidToken)
	}
	aud, err := audience(a.Aud)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIntrospectionFailed, err)
	}
	return &AuthInfo{
		ClientID:  a.ClientID,
		UserID:    a.Sub,
		Scopes:    strings.Fields(a.Scope),
		Resource:  aud,
		ExpiresAt: time.Unix(*a.Exp, 0),
		JKT:       jkt,
	}, nil
}

// audience reads aud, a string or an array of strings (RFC 7662 §2.2,
// RFC 7519 §4.1.3): the one resource it names, or "" for none or several.
func audience(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return one, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errors.New("aud is neither a string nor an array of strings")
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return "", nil
}

// isLoopbackHost reports whether host names the local machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkFetchURL checks the URL of an authorization server endpoint a
// verifier fetches (introspection, JWKS): absolute, no userinfo or
// fragment, and https, unless it is on loopback or allowHTTP says
// otherwise (a token or key set over plain http can be read or replaced on
// the way).
func checkFetchURL(field, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("bearer: " + field + " must be an absolute URL without userinfo or fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (allowHTTP || isLoopbackHost(u.Hostname())):
	default:
		return errors.New("bearer: " + field + " must use https (http only on loopback, or with AllowHTTP)")
	}
	return nil
}
