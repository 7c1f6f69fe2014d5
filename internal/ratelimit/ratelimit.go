// Package ratelimit limits requests per client IP address with token
// buckets, for the authorization server endpoints that an attacker can call
// without credentials (registration, token, consent, device code entry;
// RFC 7591 §5 and RFC 8628 §5.1 ask for this).
//
// The set of tracked clients is bounded (Options.MaxKeys), so a flood of
// distinct addresses cannot grow memory without limit, and the client
// address is taken from X-Forwarded-For only behind configured trusted
// proxies (see ClientIP), so a client cannot pick its own key.
package ratelimit

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is the number of client keys a Limiter tracks when
// Options.MaxKeys is not positive.
const DefaultMaxKeys = 100_000

// ipv6KeyBits is the prefix length that identifies one IPv6 client: a
// subscriber is normally given a whole /64, so keying on full addresses
// would let one client rotate through 2^64 keys.
const ipv6KeyBits = 64

// Limit is a rate of "Requests per Window". It is enforced as a token bucket
// holding Requests tokens and refilled at Requests/Window, so a client may
// burst Requests requests and then continues at the average rate.
type Limit struct {
	// Requests is the bucket size: the number of requests allowed in a
	// burst and per Window on average. It must be positive.
	Requests int
	// Window is the time in which a drained bucket refills completely. It
	// must be positive.
	Window time.Duration
}

// Options tune a Limiter. The zero value is usable.
type Options struct {
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// MaxKeys bounds the number of clients tracked at once; 0 or less
	// means DefaultMaxKeys.
	MaxKeys int
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For entries are believed (see ClientIP). Empty means the
	// TCP peer address is the client.
	TrustedProxies []netip.Prefix
	// Store, if set, holds the buckets instead of this process, so that
	// replicas sharing it enforce one budget. Name keeps the buckets of
	// different limits apart in it.
	Store Store
	Name  string
	// FailClosed refuses requests (503 with Retry-After) while Store
	// fails; otherwise the limiter counts in this process meanwhile, so a
	// store outage degrades the limit to one per replica rather than
	// failing requests or dropping the limit.
	FailClosed bool
	// OnStoreError receives each failure of Store; nil ignores them.
	OnStoreError func(ctx context.Context, err error)
	// OnRefused, if set, is called with each request the limit refuses
	// (Middleware's 429, Allow's false), for metrics and audit events; not
	// for a request refused because the Store failed (FailClosed), which
	// OnStoreError reports.
	OnRefused func(r *http.Request)
}

// Store keeps token buckets where every replica sees them (Redis). Take
// takes one request from the bucket named key, which holds limit.Requests
// and refills completely in limit.Window, in one atomic step, and reports
// the outcome; now is the caller's clock, which a store may ignore for a
// clock of its own shared by all replicas.
type Store interface {
	Take(ctx context.Context, key string, limit Limit, now time.Time) (Decision, error)
}

// Decision is the outcome of taking a request from a bucket.
type Decision struct {
	Allowed bool
	// Remaining is the whole requests left after this one.
	Remaining int
	// RetryAfter is the wait until a request is allowed, when refused.
	RetryAfter time.Duration
	// Reset is the time until the bucket is full again.
	Reset time.Duration
}

// Limiter limits requests per client address. A nil *Limiter allows every
// request, so rate limiting can be switched off by not constructing one. It
// is safe for concurrent use.
type Limiter struct {
	limit   Limit
	rate    rate.Limit
	now     func() time.Time
	maxKeys int
	trusted []netip.Prefix
	policy  string
	limitN  string // limit.Requests, formatted once
	refused func(r *http.Request)

	store        Store
	name         string
	failClosed   bool
	onStoreError func(context.Context, error)

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
	lru     list.List // of *bucket; front is the most recently used
	// insertsSinceSweep counts keys added since the last sweep for full
	// buckets; a sweep costs O(MaxKeys), so it runs at most once every
	// MaxKeys/4 insertions.
	insertsSinceSweep int
}

// bucket is the token bucket of one client key.
type bucket struct {
	key  netip.Prefix
	lim  *rate.Limiter
	elem *list.Element
}

// New returns a Limiter enforcing limit per client. It panics if
// limit.Requests or limit.Window is not positive, or if the limit exceeds
// one request per nanosecond: a configuration that means "no limit" must be
// expressed by not creating a Limiter (nil), never by a value that silently
// disables it.
func New(limit Limit, opts Options) *Limiter {
	if limit.Requests <= 0 || limit.Window <= 0 {
		panic(fmt.Sprintf("ratelimit: invalid limit %d per %v", limit.Requests, limit.Window))
	}
	if limit.Window < time.Duration(limit.Requests) {
		// x/time/rate rounds waits down to whole nanoseconds, so a rate
		// above one token per nanosecond would never refuse anything.
		panic(fmt.Sprintf("ratelimit: limit %d per %v exceeds one request per nanosecond", limit.Requests, limit.Window))
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Limiter{
		limit: limit,
		// Requests/Window tokens per second, computed in floating point
		// rather than as rate.Every(Window/Requests), which truncates the
		// interval to whole nanoseconds.
		rate:    rate.Limit(float64(limit.Requests) / limit.Window.Seconds()),
		now:     now,
		maxKeys: maxKeys,
		trusted: append([]netip.Prefix(nil), opts.TrustedProxies...),
		policy:  strconv.Itoa(limit.Requests) + ";w=" + strconv.Itoa(ceilSeconds(limit.Window)),
		limitN:  strconv.Itoa(limit.Requests),
		refused: opts.OnRefused,
		buckets: make(map[netip.Prefix]*bucket),

		store:        opts.Store,
		name:         opts.Name,
		failClosed:   opts.FailClosed,
		onStoreError: opts.OnStoreError,
	}
}

// decision is the outcome of taking a token.
type decision struct {
	allowed    bool
	remaining  int           // whole tokens left after this request
	retryAfter time.Duration // until a token is available, when refused
	reset      time.Duration // until the bucket is full again
	// unavailable: the shared store failed and the limiter fails closed.
	unavailable bool
}

// storeRetryAfter is the Retry-After of a request refused because the
// shared store failed (FailClosed).
const storeRetryAfter = time.Second

// unavailableBody is the fixed 503 body of a limiter failing closed.
var unavailableBody = []byte(`{"error":"temporarily_unavailable","error_description":"The service is temporarily unavailable, please try again later"}`)

// tooManyRequestsBody is the fixed 429 body, an OAuth-style error.
var tooManyRequestsBody = []byte(`{"error":"too_many_requests","error_description":"Too many requests, please try again later"}`)

// Middleware wraps next so that each request first takes a token from the
// bucket of its client (ClientIP with the configured trusted proxies). A
// request without a token is answered 429 with Retry-After (RFC 6585 §4),
// a JSON error body and Cache-Control: no-store, and never reaches next.
// Every response carries the RateLimit-Limit, RateLimit-Remaining,
// RateLimit-Reset and RateLimit-Policy fields of the IETF RateLimit header
// draft (the form express-rate-limit sends). On a nil Limiter it returns
// next unchanged.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := l.take(r.Context(), ClientIP(r, l.trusted))
		h := w.Header()
		if d.unavailable {
			h.Set("Retry-After", strconv.Itoa(ceilSeconds(storeRetryAfter)))
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(unavailableBody)
			return
		}
		// One allocation for the four fields where Header.Set makes one
		// each; the keys are in the canonical form Set would store them in.
		v := make([]string, 4)
		v[0], v[1], v[2], v[3] = l.policy, l.limitN, strconv.Itoa(d.remaining), strconv.Itoa(ceilSeconds(d.reset))
		h["Ratelimit-Policy"] = v[0:1:1]
		h["Ratelimit-Limit"] = v[1:2:2]
		h["Ratelimit-Remaining"] = v[2:3:3]
		h["Ratelimit-Reset"] = v[3:4:4]
		if !d.allowed {
			if l.refused != nil {
				l.refused(r)
			}
			h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(d.retryAfter))))
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write(tooManyRequestsBody)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ErrUnavailable is Allow's error when the shared Store failed and the
// limiter fails closed: the request is refused, but not by the limit, so
// the caller answers as for a storage failure, not with a 429.
var ErrUnavailable = errors.New("ratelimit: the shared rate-limit store is unavailable")

// Allow takes a token for the client of r and reports whether the request
// may proceed and, if not, how long the client should wait; err is
// ErrUnavailable when the refusal is a store outage (FailClosed). It
// serves handlers that count only some events (for example failed user
// code entries) instead of every request. A nil Limiter allows everything.
func (l *Limiter) Allow(r *http.Request) (allowed bool, retryAfter time.Duration, err error) {
	if l == nil {
		return true, 0, nil
	}
	d := l.take(r.Context(), ClientIP(r, l.trusted))
	if d.unavailable {
		// Not a refusal by the limit: OnStoreError reported the outage,
		// as for Middleware's 503.
		return false, d.retryAfter, ErrUnavailable
	}
	if !d.allowed && l.refused != nil {
		l.refused(r)
	}
	return d.allowed, d.retryAfter, nil
}

// keyOf maps a client address to its bucket key: the address itself for
// IPv4, its /64 for IPv6. Requests whose address is unknown (invalid) share
// the zero key, so they are limited together rather than not at all.
func keyOf(a netip.Addr) netip.Prefix {
	switch {
	case !a.IsValid():
		return netip.Prefix{}
	case a.Is4():
		return netip.PrefixFrom(a, 32)
	default:
		p, err := a.WithZone("").Prefix(ipv6KeyBits)
		if err != nil {
			return netip.Prefix{}
		}
		return p
	}
}

// take consumes one token from the bucket of client a at the current time:
// in the shared store when there is one, else (or while it fails, unless
// the limiter fails closed) in this process.
func (l *Limiter) take(ctx context.Context, a netip.Addr) decision {
	key := keyOf(a)
	now := l.now()
	if l.store != nil {
		d, err := l.store.Take(ctx, l.name+"|"+key.String(), l.limit, now)
		if err == nil {
			return decision{allowed: d.Allowed, remaining: d.Remaining, retryAfter: d.RetryAfter, reset: d.Reset}
		}
		if l.onStoreError != nil {
			l.onStoreError(ctx, err)
		}
		if l.failClosed {
			return decision{retryAfter: storeRetryAfter, unavailable: true}
		}
	}
	return l.takeLocal(key, now)
}

// takeLocal consumes one token from the bucket of key in this process.
func (l *Limiter) takeLocal(key netip.Prefix, now time.Time) decision {

	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		// A new bucket starts full.
		b = &bucket{key: key, lim: rate.NewLimiter(l.rate, l.limit.Requests)}
		b.elem = l.lru.PushFront(b)
		l.buckets[key] = b
		l.insertsSinceSweep++
	} else {
		l.lru.MoveToFront(b.elem)
	}

	d := decision{allowed: b.lim.AllowN(now, 1)}
	tokens := b.lim.TokensAt(now)
	if tokens > 0 {
		d.remaining = int(math.Floor(tokens))
	}
	if !d.allowed {
		d.retryAfter = l.durationFor(1 - tokens)
	}
	d.reset = l.durationFor(float64(l.limit.Requests) - tokens)
	return d
}

// durationFor returns the time the bucket needs to gain n tokens.
func (l *Limiter) durationFor(n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(n / float64(l.rate) * float64(time.Second))
}

// evict makes room for one key. Buckets that have refilled completely carry
// no state (a new bucket starts full), so they go first: a sweep removes
// them all. If none is full, the least recently used key is dropped; that
// client merely starts again with a full bucket. Called with l.mu held.
func (l *Limiter) evict(now time.Time) {
	if l.insertsSinceSweep >= max(1, l.maxKeys/4) {
		l.insertsSinceSweep = 0
		burst := float64(l.limit.Requests)
		for e := l.lru.Back(); e != nil; {
			prev := e.Prev()
			if b := e.Value.(*bucket); b.lim.TokensAt(now) >= burst {
				l.remove(b)
			}
			e = prev
		}
	}
	for len(l.buckets) >= l.maxKeys {
		l.remove(l.lru.Back().Value.(*bucket))
	}
}

// remove forgets a bucket. Called with l.mu held.
func (l *Limiter) remove(b *bucket) {
	l.lru.Remove(b.elem)
	delete(l.buckets, b.key)
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
