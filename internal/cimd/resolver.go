package cimd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/fetchcache"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Defaults of Options.
const (
	DefaultCacheSize  = 1000
	DefaultMinTTL     = time.Minute
	DefaultMaxTTL     = 24 * time.Hour
	DefaultTTL        = 5 * time.Minute
	DefaultTimeout    = 5 * time.Second
	dialTimeout       = 3 * time.Second
	maxResponseHeader = 16 << 10
)

// Errors of Resolve, besides ErrInvalidURL and ErrInvalidDocument.
var (
	// ErrNotAllowed: the application's policy (Options.Allow) refused the
	// client_id.
	ErrNotAllowed = errors.New("cimd: client_id refused by the server's policy")
	// ErrFetch: the document could not be fetched (connection refused or
	// forbidden, timeout, redirect, status other than 200).
	ErrFetch = errors.New("cimd: the client ID metadata document could not be fetched")
	// errRedirect refuses every redirect: a redirect could lead anywhere,
	// and the document must be served at its own URL.
	errRedirect = errors.New("cimd: redirects are not followed")
)

// Options configures a Resolver. Zero values take the defaults.
type Options struct {
	// Now is the clock of the cache. Default time.Now.
	Now func() time.Time
	// CacheSize bounds the number of cached documents. Default
	// DefaultCacheSize.
	CacheSize int
	// MinTTL and MaxTTL clamp the lifetime a response's Cache-Control
	// max-age asks for; DefaultTTL applies when it names none. Defaults
	// DefaultMinTTL, DefaultMaxTTL, DefaultTTL.
	MinTTL, MaxTTL, DefaultTTL time.Duration
	// Timeout bounds a whole fetch. Default DefaultTimeout.
	Timeout time.Duration
	// Allow, if set, is asked about every valid client_id URL before it is
	// resolved (cached or not); an error refuses it.
	Allow func(u *url.URL) error
	// Validate, if set, checks and completes the decoded metadata before it
	// is cached (the server's registration rules); an error makes the
	// document invalid, and it is not cached.
	Validate func(metadata.ClientMetadata) (metadata.ClientMetadata, error)
	// OnLookup, if set, is told of every lookup of a valid, allowed
	// client_id: whether the cache answered it (hit) or it needed a fetch
	// (its own or one under way), for metrics.
	OnLookup func(ctx context.Context, hit bool)
	// Transport replaces the guarded transport (NewTransport). Only tests
	// set it, to reach loopback fixtures; no configuration reaches it.
	Transport http.RoundTripper
}

// Resolver fetches, validates and caches client ID metadata documents. It is
// safe for concurrent use.
type Resolver struct {
	opts   Options
	client *http.Client
	// cache holds pointers, copied in and out of the cache cheaply; a
	// lookup returns a copy of the document. loadFunc is r.load, made
	// once: a method value made for each lookup would be allocated.
	cache    *fetchcache.Cache[string, *metadata.ClientMetadata]
	loadFunc fetchcache.Fetch[string, *metadata.ClientMetadata]

	// onJoin, set only by this package's tests, is called, with the cache
	// locked, when a lookup joins a fetch already in progress.
	onJoin func()
}

// New returns a Resolver with opts, defaults applied.
func New(opts Options) *Resolver {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.MinTTL <= 0 {
		opts.MinTTL = DefaultMinTTL
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	opts.MaxTTL = max(opts.MaxTTL, opts.MinTTL)
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	rt := opts.Transport
	if p := testTransport.Load(); rt == nil && p != nil {
		rt = *p
	}
	if rt == nil {
		rt = NewTransport(nil)
	}
	r := &Resolver{
		opts: opts,
		client: &http.Client{
			Transport:     rt,
			Timeout:       opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
			// No Jar: no cookie is ever stored or sent.
		},
	}
	r.loadFunc = r.load
	r.cache = fetchcache.New(fetchcache.Config[string, *metadata.ClientMetadata]{
		Size:     opts.CacheSize,
		Now:      opts.Now,
		Evict:    fetchcache.EvictSoonest[string, *metadata.ClientMetadata],
		OnLookup: opts.OnLookup,
		OnJoin: func() {
			if r.onJoin != nil {
				r.onJoin()
			}
		},
	})
	return r
}

// NewTransport returns the transport documents are fetched with: it connects
// only to public addresses (checked by the dialer on the connected address,
// which defeats DNS rebinding), ignores proxy settings (a proxy would make
// that check moot), speaks TLS 1.2 or later, has short timeouts and a small
// header limit, and does not ask for compression (so the size cap holds on
// the wire too). resolver may be nil for the default resolver.
func NewTransport(resolver *net.Resolver) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, Resolver: resolver, Control: controlDial}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    dialTimeout,
		ResponseHeaderTimeout:  dialTimeout,
		MaxResponseHeaderBytes: maxResponseHeader,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
	}
}

// Resolve returns the validated metadata of the document a client_id URL
// names: from the cache while fresh, else fetched (concurrent lookups of one
// URL share one fetch). Errors wrap ErrInvalidURL, ErrNotAllowed, ErrFetch
// (ErrForbiddenAddress among them) or ErrInvalidDocument, or are ctx's
// error. The returned metadata is shared: treat it as read-only.
func (r *Resolver) Resolve(ctx context.Context, clientID string) (metadata.ClientMetadata, error) {
	u, err := ValidateClientIDURL(clientID)
	if err != nil {
		return metadata.ClientMetadata{}, err
	}
	if r.opts.Allow != nil {
		// Asked on every lookup, so a domain denied later is refused even
		// while its document is cached.
		if err := r.opts.Allow(u); err != nil {
			return metadata.ClientMetadata{}, fmt.Errorf("%w: %w", ErrNotAllowed, err)
		}
	}
	// The fetch belongs to every waiter, not to the first one's request:
	// it runs detached from its cancellation, bounded by the timeout.
	md, _, err := r.cache.Get(ctx, clientID, nil, r.loadFunc)
	if md == nil { // the lookup gave up
		return metadata.ClientMetadata{}, err
	}
	return *md, err
}

// load fetches and validates a document for the lookups waiting on it, and
// says until when it is cached: the zero Time, not at all (draft §5.2:
// errors and invalid documents never are; nor is a document its response
// says not to store).
func (r *Resolver) load(ctx context.Context, clientID string, _ time.Time) (*metadata.ClientMetadata, time.Time, error) {
	md, ttl, err := r.fetch(ctx, clientID)
	if err == nil && r.opts.Validate != nil {
		if md, err = r.opts.Validate(md); err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalidDocument, err)
		}
	}
	if err != nil || ttl <= 0 {
		return &md, time.Time{}, err
	}
	// The lifetime counts from when the document arrived.
	return &md, r.opts.Now().Add(ttl), nil
}

// Len returns the number of cached documents, fresh or not.
func (r *Resolver) Len() int {
	return r.cache.Len()
}

// fetch GETs the document and decodes it; ttl is how long it may be cached
// (0: not at all).
func (r *Resolver) fetch(ctx context.Context, clientID string) (metadata.ClientMetadata, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil || req.URL.Scheme != "https" {
		return metadata.ClientMetadata{}, 0, fmt.Errorf("%w: bad request URL", ErrFetch)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mcpoauth (client ID metadata document fetcher)")
	resp, err := r.client.Do(req)
	if err != nil {
		return metadata.ClientMetadata{}, 0, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metadata.ClientMetadata{}, 0, fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return metadata.ClientMetadata{}, 0, invalidDocument("the response is not application/json")
	}
	if resp.ContentLength > MaxDocumentBytes {
		return metadata.ClientMetadata{}, 0, fmt.Errorf("%w: %w", ErrInvalidDocument, ErrTooLarge)
	}
	// One byte more than allowed tells an oversized body from a full one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return metadata.ClientMetadata{}, 0, fmt.Errorf("%w: reading the body: %w", ErrFetch, err)
	}
	md, err := DecodeDocument(body, clientID)
	if err != nil {
		return metadata.ClientMetadata{}, 0, err
	}
	return md, r.ttl(resp.Header), nil
}

// isJSON reports whether a Content-Type is application/json or a +json type.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// ttl is how long a response may be cached (RFC 9111 §5.2.2): not at all
// under no-store or no-cache, else its max-age (DefaultTTL if it names
// none), clamped to [MinTTL, MaxTTL] so that a document is neither fetched
// on every request nor trusted for ever.
func (r *Resolver) ttl(h http.Header) time.Duration {
	ttl := r.opts.DefaultTTL
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && n >= 0 {
					ttl = time.Duration(min(n, int64(r.opts.MaxTTL/time.Second)+1)) * time.Second
				}
			}
		}
	}
	return min(max(ttl, r.opts.MinTTL), r.opts.MaxTTL)
}
