package clientjwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/fetchcache"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
)

// Bounds of the jwks_uri cache and fetches.
const (
	// MaxJWKSBytes caps a fetched key set.
	MaxJWKSBytes = 64 << 10
	// DefaultKeyCacheSize bounds the number of cached key sets.
	DefaultKeyCacheSize = 1000
	// DefaultKeyTTL is how long a fetched key set is used.
	DefaultKeyTTL = 5 * time.Minute
	// MinRefetchInterval is the least time between two fetches of one
	// jwks_uri: an assertion with an unknown kid refetches at most this
	// often, so that a stream of bad kids cannot make the server a fetcher.
	MinRefetchInterval = 30 * time.Second
	fetchTimeout       = 5 * time.Second
)

// ErrFetch is wrapped by the error of a jwks_uri that could not be fetched
// (a non-public address among the reasons: cimd.ErrForbiddenAddress) or
// did not hold a key set.
var ErrFetch = errors.New("clientjwt: the client's jwks_uri could not be fetched")

// KeySets fetches and caches clients' jwks_uri key sets through the guarded
// transport metadata documents are fetched with. It is safe for concurrent
// use.
type KeySets struct {
	// Now is the clock of the cache; nil means time.Now.
	Now func() time.Time
	// Size bounds the cache; 0 means DefaultKeyCacheSize.
	Size int
	// TTL is how long a key set is used; 0 means DefaultKeyTTL.
	TTL time.Duration
	// Transport replaces cimd.Transport(); tests only.
	Transport http.RoundTripper
	// OperatorURLs says the URLs fetched are the operator's configuration
	// (a trusted identity provider's jwks_uri), not a client's: they are
	// fetched through an ordinary transport, so that an identity provider
	// on the company's private network can be reached, and http is
	// allowed on a loopback host (development and tests). Redirects,
	// cookies, size and time stay bounded.
	OperatorURLs bool

	once  sync.Once
	cache *fetchcache.Cache[string, keyEntry] // made on first use: see sets
}

// keyEntry is a cached key set and when it was asked for.
type keyEntry struct {
	set       jose.JSONWebKeySet
	fetchedAt time.Time
}

func (k *KeySets) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// sets returns the cache, made on first use, as a KeySets has no
// constructor. Concurrent lookups of one jwks_uri (a burst of assertions
// with an unknown kid) share one fetch; a full cache drops the expired
// sets, else the oldest one (every set lives TTL, so the one closest to
// expiry is the oldest).
func (k *KeySets) sets() *fetchcache.Cache[string, keyEntry] {
	k.once.Do(func() {
		size := k.Size
		if size <= 0 {
			size = DefaultKeyCacheSize
		}
		k.cache = fetchcache.New(fetchcache.Config[string, keyEntry]{
			Size:  size,
			Now:   k.now,
			Evict: fetchcache.EvictSoonest[string, keyEntry],
		})
	})
	return k.cache
}

// Get returns the key set at uri: cached while fresh, else fetched. With
// refresh, a cached set is fetched again unless it was fetched less than
// MinRefetchInterval ago (key rotation: an assertion names a kid the cached
// set lacks); fresh reports whether the returned set was just fetched.
func (k *KeySets) Get(ctx context.Context, uri string, refresh bool) (set jose.JSONWebKeySet, fresh bool, err error) {
	var accept func(keyEntry, time.Time) bool
	if refresh {
		accept = func(e keyEntry, now time.Time) bool { return now.Sub(e.fetchedAt) < MinRefetchInterval }
	}
	// The fetch belongs to every waiter: detached from the first one's
	// cancellation, bounded by fetchTimeout. A failed fetch leaves the set
	// a refresh refused in the cache, to be used until its TTL runs out.
	e, hit, err := k.sets().Get(ctx, uri, accept, k.load)
	return e.set, !hit && err == nil, err
}

// load fetches the key set at uri for the lookups waiting on it: a set it
// got is cached for TTL from when it was asked for, a failure not at all.
func (k *KeySets) load(ctx context.Context, uri string, asked time.Time) (keyEntry, time.Time, error) {
	set, err := k.fetch(ctx, uri)
	if err != nil {
		return keyEntry{set: set}, time.Time{}, err
	}
	ttl := k.TTL
	if ttl <= 0 {
		ttl = DefaultKeyTTL
	}
	return keyEntry{set: set, fetchedAt: asked}, asked.Add(ttl), nil
}

// VerifyClaims decodes into claims the claims of tok, a JWS of one
// signature, with the key that verifies it: a key of set, or, when set has
// none and uri is not "", of the key set at uri (Get). A kid in the header
// selects the keys that carry it, and a kid the fetched set lacks fetches
// it once more (the signer rotated its keys), at most every
// MinRefetchInterval. The error wraps ErrNoKeys when no key may have
// signed tok (a failed fetch among the reasons), and is ErrSignature when
// none of those that may verifies it. k is used only to fetch: it may be
// nil when uri is "".
func (k *KeySets) VerifyClaims(ctx context.Context, tok *jwt.JSONWebToken, set jose.JSONWebKeySet, uri string, claims any) error {
	hdr := tok.Headers[0]
	fromURI := len(set.Keys) == 0 && uri != ""
	if fromURI {
		var err error
		if set, _, err = k.Get(ctx, uri, false); err != nil {
			return fmt.Errorf("%w: %w", ErrNoKeys, err)
		}
	}
	keys := candidates(set, hdr)
	if len(keys) == 0 && hdr.KeyID != "" && fromURI {
		fresh, fetched, err := k.Get(ctx, uri, true)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNoKeys, err)
		}
		if fetched {
			keys = candidates(fresh, hdr)
		}
	}
	if len(keys) == 0 {
		return ErrNoKeys
	}
	for _, key := range keys {
		if err := tok.Claims(key.Key, claims); err == nil {
			return nil
		}
	}
	return ErrSignature
}

// fetch GETs a key set: https only, no redirect, no cookie, bounded in time
// and size, through the guarded transport.
func (k *KeySets) fetch(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	u, err := url.Parse(uri)
	if err != nil || !(u.Scheme == "https" || k.OperatorURLs && u.Scheme == "http" && redirect.IsLoopbackHost(u.Hostname())) || u.Host == "" || u.User != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: not an https URL", ErrFetch)
	}
	rt := k.Transport
	switch {
	case rt != nil:
	case k.OperatorURLs:
		rt = operatorTransport
	default:
		rt = cimd.Transport()
	}
	c := &http.Client{
		Transport:     rt,
		Timeout:       fetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", "mcpoauth (client jwks_uri fetcher)")
	resp, err := c.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: reading the body: %w", ErrFetch, err)
	}
	if len(body) > MaxJWKSBytes {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: key set larger than %d bytes", ErrFetch, MaxJWKSBytes)
	}
	return ParseKeySet(body)
}

// operatorTransport fetches the key sets of URLs the operator configured:
// the default transport's settings (proxy from the environment, timeouts),
// without the guard against private addresses that client-supplied URLs
// need.
var operatorTransport = http.DefaultTransport.(*http.Transport).Clone()

// ParseKeySet decodes a JWK Set (RFC 7517 §5), keeping only public
// signature keys: a private or symmetric key is dropped, so that no
// assertion is ever checked with a shared secret.
func ParseKeySet(b []byte) (jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Keys == nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: not a JWK Set", ErrFetch)
	}
	var set jose.JSONWebKeySet
	for _, r := range raw.Keys {
		var key jose.JSONWebKey
		// A key of a type go-jose does not know is skipped, not fatal: a
		// set may hold keys for other uses.
		if key.UnmarshalJSON(r) != nil || !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		set.Keys = append(set.Keys, key)
	}
	return set, nil
}
