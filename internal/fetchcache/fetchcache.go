// Package fetchcache caches values that are slow to get (a client ID
// metadata document, a jwks_uri key set, a token introspection answer):
// each is fetched once for all the concurrent lookups of its key, and kept
// until the expiry its fetch chose.
//
// A lookup the cache cannot answer joins the fetch of its key under way, or
// starts one. The fetch belongs to every waiter, not to the lookup that
// started it: it runs detached from that lookup's cancellation
// (context.WithoutCancel; its owner bounds it in time), and each waiter
// stops waiting when its own context ends. What the fetch returns is
// cached, when the fetch gives it an expiry, before the waiters are
// released, so that a lookup made right after one returns sees it. Nothing
// runs in the background: an expired entry is deleted by the lookup that
// finds it, or by the eviction policy when a full cache makes room for a
// new key: EvictSoonest, or EvictScan for a large cache on a hot path.
//
// Only the standard library is used: golang.org/x/sync/singleflight shares
// a call but neither caches its result nor detaches it from the first
// caller.
package fetchcache

import (
	"context"
	"sync"
	"time"
)

// Entry is a cached value and the instant it stops being fresh.
type Entry[V any] struct {
	Value   V
	Expires time.Time
}

// Fetch gets key's value for every lookup waiting on it. ctx carries the
// values of the lookup that started it, without its cancellation. asked is
// when that lookup asked (by the cache's clock), for a lifetime that counts
// from the question. value and err go to every waiter. expires is when value
// stops being fresh: the zero Time caches nothing; any other time caches
// value, even with an error (a negative answer), though err itself is never
// cached: a later hit gets value alone.
//
// Get keeps fetch for its goroutine, so a func made for each lookup (a
// closure, a method value) is allocated even when the cache answers; an
// owner on a hot path makes it once, or Peeks before it makes one.
type Fetch[K comparable, V any] func(ctx context.Context, key K, asked time.Time) (value V, expires time.Time, err error)

// Evict is an eviction policy: it makes room in entries, a full cache, by
// deleting at least one entry. now is the cache's clock. It is called with
// the cache locked.
type Evict[K comparable, V any] func(entries map[K]Entry[V], now time.Time)

// Config configures New. Size is required; the rest may be left zero.
type Config[K comparable, V any] struct {
	// Size bounds the number of entries. It must be positive.
	Size int
	// Now is the clock entries expire by. Default time.Now.
	Now func() time.Time
	// Evict is the eviction policy. Default EvictSoonest.
	Evict Evict[K, V]
	// OnLookup, if set, is told of every lookup Get makes, before it waits:
	// whether the cache answered it (hit) or it needed a fetch (its own or
	// one under way).
	OnLookup func(ctx context.Context, hit bool)
	// Abandoned, if set, turns the error of a lookup whose context ended
	// before the fetch it waited for into the one Get returns. Default: the
	// context's error itself.
	Abandoned func(ctxErr error) error
	// OnJoin, a test hook, is called with the cache locked when a lookup
	// joins a fetch under way.
	OnJoin func()
}

// Cache caches the values of keys of type K, fetching each once for all the
// lookups that want it meanwhile. It is made by New, and safe for
// concurrent use.
type Cache[K comparable, V any] struct {
	size      int
	now       func() time.Time
	evict     Evict[K, V]
	onLookup  func(ctx context.Context, hit bool)
	abandoned func(error) error
	onJoin    func()

	mu      sync.Mutex
	entries map[K]Entry[V]
	flights map[K]*flight[K, V]
}

// flight is a fetch under way, which every lookup of its key waits for:
// value and err are set before done is closed.
type flight[K comparable, V any] struct {
	key   K
	asked time.Time
	fetch Fetch[K, V]
	done  chan struct{}
	value V
	err   error
}

// New returns an empty cache configured by cfg. It panics if cfg.Size is not
// positive.
func New[K comparable, V any](cfg Config[K, V]) *Cache[K, V] {
	if cfg.Size <= 0 {
		panic("fetchcache: Config.Size must be positive")
	}
	c := &Cache[K, V]{
		size:      cfg.Size,
		now:       cfg.Now,
		evict:     cfg.Evict,
		onLookup:  cfg.OnLookup,
		abandoned: cfg.Abandoned,
		onJoin:    cfg.OnJoin,
		entries:   make(map[K]Entry[V]),
		flights:   make(map[K]*flight[K, V]),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.evict == nil {
		c.evict = EvictSoonest[K, V]
	}
	return c
}

// Peek returns key's cached value if it is fresh, and whether it is; it
// fetches nothing and changes nothing. A hot path whose fetch is a closure
// made for each lookup (see Fetch) peeks first, so that a hit allocates
// nothing, and calls Get only on a miss.
func (c *Cache[K, V]) Peek(key K) (value V, ok bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	ok = ok && c.now().Before(e.Expires)
	c.mu.Unlock()
	if !ok {
		var zero V
		return zero, false
	}
	return e.Value, true
}

// Get returns key's value: the cached one while it is fresh (hit), else
// that of the fetch of key under way, or of fetch, started now. An expired
// entry is deleted on the way. accept, if not nil, may refuse a fresh
// entry, which the lookup then treats as a miss; the refused entry stays
// cached until a fetch replaces it. accept is called with the cache locked;
// now is the cache's clock.
//
// If ctx ends before the fetch, Get returns at once with ctx's error (see
// Config.Abandoned); the fetch goes on for the other waiters and the cache.
func (c *Cache[K, V]) Get(ctx context.Context, key K, accept func(value V, now time.Time) bool, fetch Fetch[K, V]) (value V, hit bool, err error) {
	c.mu.Lock()
	now := c.now()
	if e, ok := c.entries[key]; ok {
		if !now.Before(e.Expires) {
			delete(c.entries, key)
		} else if accept == nil || accept(e.Value, now) {
			c.mu.Unlock()
			if c.onLookup != nil {
				c.onLookup(ctx, true)
			}
			return e.Value, true, nil
		}
	}
	f, joined := c.flights[key]
	if joined {
		if c.onJoin != nil {
			c.onJoin()
		}
	} else {
		f = &flight[K, V]{key: key, asked: now, fetch: fetch, done: make(chan struct{})}
		c.flights[key] = f
		go c.run(context.WithoutCancel(ctx), f)
	}
	c.mu.Unlock()
	if c.onLookup != nil {
		c.onLookup(ctx, false)
	}
	select {
	case <-f.done:
		return f.value, false, f.err
	case <-ctx.Done():
		err := ctx.Err()
		if c.abandoned != nil {
			err = c.abandoned(err)
		}
		var zero V
		return zero, false, err
	}
}

// run runs f's fetch for its waiters, caches what it got if it gave an
// expiry, and then releases the waiters.
func (c *Cache[K, V]) run(ctx context.Context, f *flight[K, V]) {
	value, expires, err := f.fetch(ctx, f.key, f.asked)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, f.key)
	if !expires.IsZero() {
		if _, ok := c.entries[f.key]; !ok && len(c.entries) >= c.size {
			c.evict(c.entries, c.now())
		}
		c.entries[f.key] = Entry[V]{Value: value, Expires: expires}
	}
	f.value, f.err = value, err
	close(f.done)
}

// Len returns the number of entries, fresh or not.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Keys returns the keys of the entries, fresh or not, in no order.
func (c *Cache[K, V]) Keys() []K {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]K, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	return keys
}

// EvictSoonest is the policy that deletes every expired entry, then, if
// none was, the one closest to expiry. It looks at every entry: O(Size) per
// insertion into a full cache.
func EvictSoonest[K comparable, V any](entries map[K]Entry[V], now time.Time) {
	n := len(entries)
	for k, e := range entries {
		if !now.Before(e.Expires) {
			delete(entries, k)
		}
	}
	if len(entries) < n {
		return
	}
	var victim K
	var soonest time.Time
	first := true
	for k, e := range entries {
		if first || e.Expires.Before(soonest) {
			victim, soonest, first = k, e.Expires, false
		}
	}
	delete(entries, victim)
}

// EvictScan returns the policy that looks at no more than n entries and
// deletes the first expired one among them, else the first it looked at,
// an arbitrary entry (Go's map iteration order is randomised): O(n),
// however large the cache.
func EvictScan[K comparable, V any](n int) Evict[K, V] {
	return func(entries map[K]Entry[V], now time.Time) {
		var victim K
		i := 0
		for k, e := range entries {
			expired := !now.Before(e.Expires)
			if i == 0 || expired {
				victim = k
			}
			if i++; expired || i >= n {
				break
			}
		}
		delete(entries, victim)
	}
}
