package fetchcache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

var (
	t0      = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	errTest = errors.New("fetch failed")
)

// counter is a Fetch that answers what it is told, counting its calls and
// remembering the asked time it was given.
type counter struct {
	calls   atomic.Int64
	key     string
	value   string
	expires time.Time
	err     error
	asked   time.Time
}

func (c *counter) fetch(_ context.Context, key string, asked time.Time) (string, time.Time, error) {
	c.calls.Add(1)
	c.key, c.asked = key, asked
	return c.value, c.expires, c.err
}

// TestGetCaches: what a fetch returns is cached when, and only when, it
// gives an expiry; an error is passed on and never cached itself, though a
// value returned with it and an expiry is (a negative answer).
func TestGetCaches(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		value          string
		expires        time.Time
		err            error
		cached         bool
		secondValue    string
		secondErr      error
		secondHit      bool
		fetchesForBoth int64
	}{
		{name: "value with expiry", value: "v", expires: t0.Add(time.Minute), cached: true,
			secondValue: "v", secondHit: true, fetchesForBoth: 1},
		{name: "value without expiry", value: "v",
			secondValue: "v", fetchesForBoth: 2},
		{name: "error without expiry", value: "partial", err: errTest,
			secondValue: "partial", secondErr: errTest, fetchesForBoth: 2},
		{name: "error with expiry: the value alone is cached", value: "negative", expires: t0.Add(time.Minute), err: errTest, cached: true,
			secondValue: "negative", secondHit: true, fetchesForBoth: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config[string, string]{Size: 10, Now: testclock.New(t0).Now})
			f := &counter{value: tc.value, expires: tc.expires, err: tc.err}
			v, hit, err := c.Get(ctx, "k", nil, f.fetch)
			require.Equal(t, tc.value, v)
			require.False(t, hit)
			require.Equal(t, tc.err, err)
			if tc.cached {
				require.Equal(t, 1, c.Len())
			} else {
				require.Zero(t, c.Len())
			}
			v, hit, err = c.Get(ctx, "k", nil, f.fetch)
			require.Equal(t, tc.secondValue, v)
			require.Equal(t, tc.secondHit, hit)
			require.Equal(t, tc.secondErr, err)
			require.Equal(t, tc.fetchesForBoth, f.calls.Load())
		})
	}
}

// TestGetExpiry: with an injected clock, an entry answers until the instant
// it expires, not at it; the lookup that finds it expired deletes it and
// fetches, and the fetch is told the key and when that lookup asked.
func TestGetExpiry(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(t0)
	var lookups []bool
	c := New(Config[string, string]{Size: 10, Now: clock.Now, OnLookup: func(_ context.Context, hit bool) {
		lookups = append(lookups, hit)
	}})
	f := &counter{value: "v", expires: t0.Add(time.Minute)}
	for _, step := range []struct {
		advance time.Duration
		hit     bool
		calls   int64
	}{
		{0, false, 1},
		{time.Minute - time.Nanosecond, true, 1},
		{time.Nanosecond, false, 2}, // at the expiry: stale
	} {
		clock.Advance(step.advance)
		_, hit, err := c.Get(ctx, "k", nil, f.fetch)
		require.NoError(t, err)
		require.Equal(t, step.hit, hit, "after %v", step.advance)
		require.Equal(t, step.calls, f.calls.Load())
		if !step.hit {
			require.Equal(t, "k", f.key)
			require.Equal(t, clock.Now(), f.asked, "asked is when the lookup asked")
		}
	}
	require.Equal(t, []bool{false, true, false}, lookups, "OnLookup is told of every lookup")

	// The refetch above cached an entry that has already expired; a
	// lookup that finds it stale deletes it, though its fetch caches
	// nothing.
	f.expires = time.Time{}
	_, _, err := c.Get(ctx, "k", nil, f.fetch)
	require.NoError(t, err)
	require.Zero(t, c.Len())
}

// TestGetAccept: an entry accept refuses is fetched again, but stays cached
// until a fetch replaces it: a failed refetch leaves it to the lookups that
// do not refuse it.
func TestGetAccept(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(t0)
	c := New(Config[string, string]{Size: 10, Now: clock.Now})
	f := &counter{value: "old", expires: t0.Add(time.Hour)}
	_, _, err := c.Get(ctx, "k", nil, f.fetch)
	require.NoError(t, err)

	refuse := func(string, time.Time) bool { return false }
	var sawNow time.Time
	accept := func(_ string, now time.Time) bool { sawNow = now; return true }

	clock.Advance(time.Minute)
	v, hit, err := c.Get(ctx, "k", accept, f.fetch)
	require.True(t, hit)
	require.Equal(t, "old", v)
	require.NoError(t, err)
	require.Equal(t, clock.Now(), sawNow, "accept is given the cache's clock")

	f = &counter{err: errTest}
	_, hit, err = c.Get(ctx, "k", refuse, f.fetch)
	require.False(t, hit)
	require.ErrorIs(t, err, errTest)
	require.EqualValues(t, 1, f.calls.Load())
	v, hit, _ = c.Get(ctx, "k", nil, f.fetch)
	require.True(t, hit, "the refused entry is still cached")
	require.Equal(t, "old", v)

	f = &counter{value: "new", expires: t0.Add(2 * time.Hour)}
	v, hit, err = c.Get(ctx, "k", refuse, f.fetch)
	require.NoError(t, err)
	require.False(t, hit)
	require.Equal(t, "new", v)
	v, _, _ = c.Get(ctx, "k", nil, f.fetch)
	require.Equal(t, "new", v, "a fetch replaced it")
	require.Equal(t, 1, c.Len())
}

// blocker is a Fetch that signals its start and waits to be released; it
// records whether its context was cancelled and a value it carries.
type blocker struct {
	calls    atomic.Int64
	started  chan struct{}
	release  chan struct{}
	ctxErr   error
	ctxValue any
}

type ctxKey struct{}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blocker) fetch(ctx context.Context, _ string, asked time.Time) (string, time.Time, error) {
	b.calls.Add(1)
	b.started <- struct{}{}
	<-b.release
	b.ctxErr, b.ctxValue = ctx.Err(), ctx.Value(ctxKey{})
	return "v", asked.Add(time.Hour), nil
}

// TestGetShares: concurrent lookups of one key share one fetch and all get
// its value; a lookup of another key does not wait for it.
func TestGetShares(t *testing.T) {
	const n = 8
	joined := make(chan struct{}, n)
	c := New(Config[string, string]{Size: 10, Now: testclock.New(t0).Now, OnJoin: func() { joined <- struct{}{} }})
	b := newBlocker()
	type result struct {
		v   string
		hit bool
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			v, hit, err := c.Get(context.Background(), "k", nil, b.fetch)
			results <- result{v, hit, err}
		}()
	}
	<-b.started
	for range n - 1 {
		<-joined
	}

	other := &counter{value: "other"}
	v, _, err := c.Get(context.Background(), "other", nil, other.fetch)
	require.NoError(t, err)
	require.Equal(t, "other", v, "another key is fetched meanwhile")

	close(b.release)
	for range n {
		require.Equal(t, result{v: "v"}, <-results)
	}
	require.EqualValues(t, 1, b.calls.Load())
}

// TestGetDetached: the fetch belongs to every waiter: the lookup that
// started it may give up (its context cancelled) without cancelling it; the
// fetch keeps that context's values, and what it gets is cached and goes to
// the others.
func TestGetDetached(t *testing.T) {
	joined := make(chan struct{}, 1)
	c := New(Config[string, string]{Size: 10, Now: testclock.New(t0).Now, OnJoin: func() { joined <- struct{}{} }})
	b := newBlocker()

	first, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "first's"))
	firstErr := make(chan error, 1)
	go func() {
		_, _, err := c.Get(first, "k", nil, b.fetch)
		firstErr <- err
	}()
	<-b.started
	secondDone := make(chan string, 1)
	go func() {
		v, _, _ := c.Get(context.Background(), "k", nil, b.fetch)
		secondDone <- v
	}()
	<-joined
	cancel()
	require.ErrorIs(t, <-firstErr, context.Canceled)

	close(b.release)
	require.Equal(t, "v", <-secondDone)
	require.NoError(t, b.ctxErr, "the fetch was not cancelled with the first lookup")
	require.Equal(t, "first's", b.ctxValue)
	_, hit, _ := c.Get(context.Background(), "k", nil, b.fetch)
	require.True(t, hit, "and its value was cached")
	require.EqualValues(t, 1, b.calls.Load())
}

// TestGetWaiterGivesUp: a waiter whose context ends stops waiting at once,
// with its context's error or what Abandoned makes of it.
func TestGetWaiterGivesUp(t *testing.T) {
	errAbandoned := errors.New("gave up")
	for _, tc := range []struct {
		name      string
		abandoned func(error) error
		want      []error
	}{
		{"the context's error", nil, []error{context.DeadlineExceeded}},
		{"Abandoned", func(err error) error { return fmt.Errorf("%w: %w", errAbandoned, err) }, []error{errAbandoned, context.DeadlineExceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config[string, string]{Size: 10, Now: testclock.New(t0).Now, Abandoned: tc.abandoned})
			b := newBlocker()
			defer close(b.release)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			v, hit, err := c.Get(ctx, "k", nil, b.fetch)
			require.Empty(t, v)
			require.False(t, hit)
			for _, want := range tc.want {
				require.ErrorIs(t, err, want)
			}
			if tc.abandoned == nil {
				require.Equal(t, context.DeadlineExceeded, err, "unwrapped")
			}
		})
	}
}

// TestGetReleasesOnceCached: a lookup made right after another returned
// from its fetch finds the value cached.
func TestGetReleasesOnceCached(t *testing.T) {
	c := New(Config[string, string]{Size: 1000, Now: testclock.New(t0).Now})
	f := &counter{value: "v", expires: t0.Add(time.Hour)}
	for i := range 200 {
		key := fmt.Sprint(i)
		_, hit, err := c.Get(context.Background(), key, nil, f.fetch)
		require.NoError(t, err)
		require.False(t, hit)
		_, hit, _ = c.Get(context.Background(), key, nil, f.fetch)
		require.True(t, hit, "key %s", key)
	}
}

// TestCacheEvicts: the cache never holds more than Size entries; the
// policy runs only when a new key is stored into a full cache, with the
// cache's clock.
func TestCacheEvicts(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(t0)
	var evictions []time.Time
	c := New(Config[string, string]{Size: 3, Now: clock.Now, Evict: func(entries map[string]Entry[string], now time.Time) {
		evictions = append(evictions, now)
		EvictSoonest(entries, now)
	}})
	f := &counter{value: "v"}
	for i, key := range []string{"a", "b", "c"} {
		f.expires = t0.Add(time.Duration(10-i) * time.Minute)
		_, _, err := c.Get(ctx, key, nil, f.fetch)
		require.NoError(t, err)
	}
	require.Empty(t, evictions)
	clock.Advance(time.Second)
	f.expires = t0.Add(time.Hour)
	_, _, err := c.Get(ctx, "d", nil, f.fetch)
	require.NoError(t, err)
	require.Equal(t, []time.Time{t0.Add(time.Second)}, evictions)
	require.Equal(t, 3, c.Len())
	_, hit, _ := c.Get(ctx, "c", nil, f.fetch)
	require.False(t, hit, "c, the soonest to expire, was evicted")

	// Replacing a key (refused by accept) evicts nothing.
	evictions = nil
	_, hit, err = c.Get(ctx, "d", func(string, time.Time) bool { return false }, f.fetch)
	require.NoError(t, err)
	require.False(t, hit)
	require.Empty(t, evictions)
	require.Equal(t, 3, c.Len())
}

// TestEvictionPolicies: what each policy deletes from a full cache.
func TestEvictionPolicies(t *testing.T) {
	now := t0
	at := func(d time.Duration) Entry[string] { return Entry[string]{Expires: now.Add(d)} }
	for _, tc := range []struct {
		name    string
		evict   Evict[string, string]
		entries map[string]Entry[string]
		// kept are the keys that must remain; deleted the number deleted;
		// oneOf, if set, the keys of which the one deleted must be.
		kept    []string
		deleted int
		oneOf   []string
	}{
		{"soonest: every expired entry", EvictSoonest[string, string],
			map[string]Entry[string]{"a": at(-time.Minute), "b": at(0), "c": at(time.Minute), "d": at(time.Hour)},
			[]string{"c", "d"}, 2, nil},
		{"soonest: else the one closest to expiry", EvictSoonest[string, string],
			map[string]Entry[string]{"a": at(time.Hour), "b": at(time.Second), "c": at(time.Minute), "": at(time.Hour)},
			[]string{"a", "c", ""}, 1, nil},
		{"soonest: the zero key is a key like any other", EvictSoonest[string, string],
			map[string]Entry[string]{"a": at(time.Hour), "": at(time.Second)},
			[]string{"a"}, 1, nil},
		{"scan: an expired entry within reach", EvictScan[string, string](16),
			map[string]Entry[string]{"a": at(time.Hour), "b": at(-time.Second), "c": at(time.Minute)},
			[]string{"a", "c"}, 1, nil},
		{"scan: one entry, expired ones first", EvictScan[string, string](16),
			map[string]Entry[string]{"a": at(-time.Hour), "b": at(-time.Second), "c": at(time.Minute)},
			[]string{"c"}, 1, []string{"a", "b"}},
		{"scan: else an arbitrary one", EvictScan[string, string](16),
			map[string]Entry[string]{"a": at(time.Hour), "b": at(time.Second), "c": at(time.Minute)},
			nil, 1, []string{"a", "b", "c"}},
		{"scan: bounded, one entry all the same", EvictScan[string, string](1),
			map[string]Entry[string]{"a": at(time.Hour), "b": at(-time.Second), "c": at(time.Minute)},
			nil, 1, []string{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := make(map[string]bool, len(tc.entries))
			for k := range tc.entries {
				before[k] = true
			}
			tc.evict(tc.entries, now)
			require.Len(t, tc.entries, len(before)-tc.deleted)
			for _, k := range tc.kept {
				require.Contains(t, tc.entries, k)
			}
			if tc.oneOf != nil {
				var gone []string
				for k := range before {
					if _, ok := tc.entries[k]; !ok {
						gone = append(gone, k)
					}
				}
				require.Len(t, gone, 1)
				require.Contains(t, tc.oneOf, gone[0])
			}
		})
	}
}

// TestPeek: Peek answers a fresh entry, and neither an expired one nor a
// missing key, and fetches nothing.
func TestPeek(t *testing.T) {
	clock := testclock.New(t0)
	c := New(Config[string, string]{Size: 10, Now: clock.Now})
	f := &counter{value: "v", expires: t0.Add(time.Hour)}
	_, ok := c.Peek("k")
	require.False(t, ok, "a missing key")
	_, _, err := c.Get(context.Background(), "k", nil, f.fetch)
	require.NoError(t, err)
	v, ok := c.Peek("k")
	require.True(t, ok, "a fresh entry")
	require.Equal(t, "v", v)
	clock.Advance(time.Hour)
	_, ok = c.Peek("k")
	require.False(t, ok, "an entry at its expiry")
	require.Equal(t, []string{"k"}, c.Keys(), "Peek deletes nothing")
	require.EqualValues(t, 1, f.calls.Load(), "Peek fetches nothing")
}

func TestNewRequiresSize(t *testing.T) {
	require.Panics(t, func() { New(Config[string, string]{}) })
}
