package bearer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of JWTOptions.
const (
	// DefaultJWTLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultJWTLeeway = 30 * time.Second
	// DefaultJWKSCacheTTL is how long a fetched key set is used before it
	// is fetched again.
	DefaultJWKSCacheTTL = 5 * time.Minute
	// DefaultJWKSRefreshInterval is the least time between two fetches of
	// the key set, so that tokens with made-up kids cost the authorization
	// server at most one request per interval.
	DefaultJWKSRefreshInterval = 30 * time.Second
	// DefaultJWKSTimeout bounds one key set request.
	DefaultJWKSTimeout = 5 * time.Second
)

// maxJWKSResponse bounds the key set read.
const maxJWKSResponse = 256 << 10

// jwtAlgorithms is the RFC 9068 §4 allow-list: asymmetric signatures only,
// never none or an HMAC (whose key would be the public key).
var jwtAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// ErrJWKSFailed is wrapped by every JWTVerifier error that is not about the
// token: the key set could not be fetched or parsed. RequireBearerAuth
// answers it 503 (Retry-After).
var ErrJWKSFailed = errors.New("bearer: fetching the JSON Web Key Set failed")

// JWTOptions configures NewJWTVerifier.
type JWTOptions struct {
	// JWKSURL is the authorization server's jwks_uri (from its metadata;
	// mcpoauth serves it at <BaseURL>/jwks). Required; https, or http on
	// a loopback host unless AllowHTTP is set.
	JWKSURL string
	// Issuer is the iss every token must carry: the authorization server's
	// issuer identifier. Required.
	Issuer string
	// Resource is the aud every token must name: this resource server's
	// canonical RFC 8707 resource. Required.
	Resource string
	// HTTPClient fetches the key set. Default: http.DefaultClient's
	// transport. Redirects are never followed.
	HTTPClient *http.Client
	// Timeout bounds one key set request; default DefaultJWKSTimeout.
	Timeout time.Duration
	// CacheTTL is how long a fetched key set is used; default
	// DefaultJWKSCacheTTL.
	CacheTTL time.Duration
	// RefreshInterval is the least time between two fetches: a token whose
	// kid is unknown triggers one fetch (a key added by rotation), and no
	// other until it has passed. Default DefaultJWKSRefreshInterval.
	RefreshInterval time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default
	// DefaultJWTLeeway, negative for none. (RequireBearerAuth checks the
	// AuthInfo's ExpiresAt, the token's exp, with its own clock and no
	// leeway.)
	Leeway time.Duration
	// AllowHTTP permits an http JWKSURL on a non-loopback host.
	AllowHTTP bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// JWTVerifier is a Verifier of RFC 9068 JWT access tokens, for a resource
// server apart from its authorization server: it checks each token's
// signature against the authorization server's published keys, without a
// request per token. It is safe for concurrent use.
//
// A token is accepted when its header has typ at+jwt (RFC 9068 §2.1), an
// algorithm among ES256, RS256, PS256 and EdDSA (never none or HMAC) and
// the kid of a published key; its signature verifies; iss is Issuer; aud
// names Resource; exp is present and not past, and nbf and iat are not in
// the future (Leeway aside). The AuthInfo carries sub as UserID (empty
// when sub is the client itself, as for client credentials), client_id,
// the scopes, the expiry and Resource.
//
// The trade-off: a JWT is valid until it expires. A token revoked at the
// authorization server (or its whole grant, after a replayed refresh token)
// is still accepted here until its exp. Keep AccessTokenLifetime short
// (minutes), or combine with an IntrospectionVerifier where revocation must
// take effect at once. Keys rotate without an outage: a token with an
// unknown kid makes the verifier fetch the key set again (at most once per
// RefreshInterval), and a key the authorization server no longer publishes
// stops verifying once the cached set is refreshed.
//
// It is the package's one use of github.com/go-jose/go-jose/v4, which
// importers of bearer therefore compile.
type JWTVerifier struct {
	jwksURL          string
	issuer, resource string
	client           *http.Client
	timeout          time.Duration
	ttl, interval    time.Duration
	leeway           time.Duration
	now              func() time.Time

	fetchMu sync.Mutex // one fetch at a time
	mu      sync.RWMutex
	keys    jose.JSONWebKeySet
	fetched time.Time // when keys was last fetched; zero: never
	tried   time.Time // when a fetch was last attempted
}

var _ Verifier = (*JWTVerifier)(nil)

// NewJWTVerifier checks opts, applies the defaults and returns the verifier.
// It fetches nothing until the first token.
func NewJWTVerifier(opts JWTOptions) (*JWTVerifier, error) {
	if err := checkFetchURL("JWTOptions.JWKSURL", opts.JWKSURL, opts.AllowHTTP); err != nil {
		return nil, err
	}
	if opts.Issuer == "" || opts.Resource == "" {
		return nil, errors.New("bearer: JWTOptions.Issuer and Resource are required")
	}
	v := &JWTVerifier{
		jwksURL:  opts.JWKSURL,
		issuer:   opts.Issuer,
		resource: opts.Resource,
		timeout:  orDefault(opts.Timeout, DefaultJWKSTimeout),
		ttl:      orDefault(opts.CacheTTL, DefaultJWKSCacheTTL),
		interval: orDefault(opts.RefreshInterval, DefaultJWKSRefreshInterval),
		leeway:   max(orDefault(opts.Leeway, DefaultJWTLeeway), 0),
		now:      opts.Now,
	}
	if v.timeout < 0 || v.ttl < 0 || v.interval < 0 {
		return nil, errors.New("bearer: JWTOptions durations must not be negative")
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.client = noRedirects(opts.HTTPClient)
	return v, nil
}

// jwtAccessTokenClaims are the RFC 9068 §2.2 claims the verifier reads.
type jwtAccessTokenClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	// Cnf is the DPoP binding (RFC 9449 §6.1).
	Cnf confirmation `json:"cnf"`
}

// confirmation is an RFC 7800 cnf claim; only its DPoP member (jkt, RFC
// 9449 §6.1) is understood.
type confirmation map[string]json.RawMessage

// jkt returns the DPoP key thumbprint of a cnf claim ("" for none, or for
// an empty cnf), and false for a confirmation method this package cannot
// check (x5t#S256 of mTLS, RFC 8705): accepting such a token would drop
// its binding.
func (c confirmation) jkt() (string, bool) {
	var jkt string
	for k, v := range c {
		if k != "jkt" || json.Unmarshal(v, &jkt) != nil || jkt == "" {
			return "", false
		}
	}
	return jkt, true
}

// VerifyAccessToken implements Verifier. A token that fails any check
// wraps ErrInvalidToken; a key set that cannot be fetched wraps
// ErrJWKSFailed.
func (v *JWTVerifier) VerifyAccessToken(ctx context.Context, token string) (*AuthInfo, error) {
	tok, err := jwt.ParseSigned(token, jwtAlgorithms)
	if err != nil {
		// Malformed, or an algorithm outside the allow-list (none, HS256).
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: not one signature", ErrInvalidToken)
	}
	h := tok.Headers[0]
	// RFC 9068 §4: typ is "at+jwt" or "application/at+jwt", compared
	// case-insensitively (RFC 7515 §4.1.9).
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), "at+jwt") {
		return nil, fmt.Errorf("%w: typ is not at+jwt", ErrInvalidToken)
	}
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid", ErrInvalidToken)
	}
	key, err := v.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: alg does not match the key", ErrInvalidToken)
	}
	var c jwtAccessTokenClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	now := v.now()
	if c.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.resource}, Time: now}, v.leeway); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.ClientID == "" || c.Subject == "" {
		return nil, fmt.Errorf("%w: no client_id or sub", ErrInvalidToken)
	}
	jkt, ok := c.Cnf.jkt()
	if !ok {
		return nil, fmt.Errorf("%w: unsupported cnf", ErrInvalidToken)
	}
	user := c.Subject
	if user == c.ClientID {
		// RFC 9068 §2.2: sub is the client when no resource owner is
		// involved (client credentials).
		user = ""
	}
	return &AuthInfo{
		ClientID:  c.ClientID,
		UserID:    user,
		Scopes:    strings.Fields(c.Scope),
		Resource:  v.resource,
		ExpiresAt: c.Expiry.Time(),
		JKT:       jkt,
		Extra:     map[string]any{"jti": c.ID},
	}, nil
}

// key returns the published key named kid, fetching the set when it is
// stale or does not name kid, at most once per RefreshInterval.
func (v *JWTVerifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if k, fresh := v.lookup(kid); k != nil && fresh {
		return k, nil
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	// Another caller may have fetched while this one waited.
	k, fresh := v.lookup(kid)
	if k != nil && fresh {
		return k, nil
	}
	v.mu.RLock()
	tried := v.tried
	v.mu.RUnlock()
	if !tried.IsZero() && v.now().Sub(tried) < v.interval {
		if k != nil {
			return k, nil // stale, but refetching is not yet allowed
		}
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalidToken)
	}
	if err := v.fetch(ctx); err != nil {
		if k != nil {
			return k, nil // keep verifying with the last good set
		}
		return nil, err
	}
	if k, _ = v.lookup(kid); k == nil {
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalidToken)
	}
	return k, nil
}

// lookup finds kid in the cached set and tells whether the set is fresh.
func (v *JWTVerifier) lookup(kid string) (*jose.JSONWebKey, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	fresh := !v.fetched.IsZero() && v.now().Sub(v.fetched) < v.ttl
	for i := range v.keys.Keys {
		k := &v.keys.Keys[i]
		if k.KeyID == kid && k.Use != "enc" && k.IsPublic() {
			return k, fresh
		}
	}
	return nil, fresh
}

// fetch replaces the cached key set with the one at JWKSURL.
func (v *JWTVerifier) fetch(ctx context.Context) error {
	now := v.now()
	v.mu.Lock()
	v.tried = now
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFailed, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFailed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: the endpoint answered %d", ErrJWKSFailed, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSResponse+1))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFailed, err)
	}
	if len(body) > maxJWKSResponse {
		return fmt.Errorf("%w: larger than %d bytes", ErrJWKSFailed, maxJWKSResponse)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFailed, err)
	}
	v.mu.Lock()
	v.keys, v.fetched = set, now
	v.mu.Unlock()
	return nil
}
