package ratelimit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

// clockStart is when each test's clock starts; tests advance it instead of
// sleeping.
var clockStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// okHandler counts the requests that reach it.
type okHandler struct{ n atomic.Int64 }

func (h *okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.n.Add(1)
	w.WriteHeader(http.StatusOK)
}

func do(h http.Handler, remote string, xff ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestMiddlewareLimitsAndRefills(t *testing.T) {
	clock := testclock.New(clockStart)
	next := &okHandler{}
	l := New(Limit{Requests: 3, Window: time.Minute}, Options{Now: clock.Now})
	h := l.Middleware(next)
	const client = "192.0.2.1:5000"

	type step struct {
		advance       time.Duration
		remote        string
		wantStatus    int
		wantRemaining string
		wantRetry     string
	}
	steps := []step{
		{remote: client, wantStatus: 200, wantRemaining: "2"},
		{remote: client, wantStatus: 200, wantRemaining: "1"},
		{remote: client, wantStatus: 200, wantRemaining: "0"},
		// N+1th: refused; one token takes Window/Requests = 20 s.
		{remote: client, wantStatus: 429, wantRemaining: "0", wantRetry: "20"},
		// Keys are per client.
		{remote: "192.0.2.2:5000", wantStatus: 200, wantRemaining: "2"},
		{advance: 5 * time.Second, remote: client, wantStatus: 429, wantRetry: "15", wantRemaining: "0"},
		{advance: 15 * time.Second, remote: client, wantStatus: 200, wantRemaining: "0"},
		{remote: client, wantStatus: 429, wantRetry: "20", wantRemaining: "0"},
		// A whole window refills the bucket completely, and no more.
		{advance: 10 * time.Minute, remote: client, wantStatus: 200, wantRemaining: "2"},
		{remote: client, wantStatus: 200, wantRemaining: "1"},
		{remote: client, wantStatus: 200, wantRemaining: "0"},
		{remote: client, wantStatus: 429, wantRetry: "20", wantRemaining: "0"},
	}
	passed := int64(0)
	for i, s := range steps {
		clock.Advance(s.advance)
		rec := do(h, s.remote)
		require.Equal(t, s.wantStatus, rec.Code, "step %d", i)
		require.Equal(t, "3", rec.Header().Get("RateLimit-Limit"), "step %d", i)
		require.Equal(t, "3;w=60", rec.Header().Get("RateLimit-Policy"), "step %d", i)
		require.Equal(t, s.wantRemaining, rec.Header().Get("RateLimit-Remaining"), "step %d", i)
		require.Equal(t, s.wantRetry, rec.Header().Get("Retry-After"), "step %d", i)
		if s.wantStatus == http.StatusTooManyRequests {
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			require.Equal(t, "too_many_requests", body["error"])
			require.NotEmpty(t, body["error_description"])
		} else {
			passed++
		}
		require.Equal(t, passed, next.n.Load(), "step %d: refused requests must not reach next", i)
	}
}

func TestRetryAfterAndReset(t *testing.T) {
	tests := []struct {
		name      string
		limit     Limit
		wantRetry string
		wantReset string
	}{
		{"whole seconds", Limit{Requests: 5, Window: 15 * time.Minute}, "180", "900"},
		{"rounded up", Limit{Requests: 3, Window: 10 * time.Second}, "4", "10"},
		{"at least one second", Limit{Requests: 10, Window: time.Second}, "1", "1"},
		{"one per hour", Limit{Requests: 1, Window: time.Hour}, "3600", "3600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New(clockStart)
			h := New(tt.limit, Options{Now: clock.Now}).Middleware(&okHandler{})
			for i := 0; i < tt.limit.Requests; i++ {
				require.Equal(t, http.StatusOK, do(h, "192.0.2.1:1").Code)
			}
			rec := do(h, "192.0.2.1:1")
			require.Equal(t, http.StatusTooManyRequests, rec.Code)
			require.Equal(t, tt.wantRetry, rec.Header().Get("Retry-After"))
			require.Equal(t, tt.wantReset, rec.Header().Get("RateLimit-Reset"))
		})
	}
}

func TestKeys(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name     string
		trusted  []netip.Prefix
		first    []string // remote, then XFF values
		second   []string
		sameKeys bool
	}{
		{"different IPv4 clients", nil, []string{"192.0.2.1:1"}, []string{"192.0.2.2:1"}, false},
		{"same client, other port", nil, []string{"192.0.2.1:1"}, []string{"192.0.2.1:2"}, true},
		{"IPv4-mapped IPv6 is the IPv4 client", nil, []string{"192.0.2.1:1"}, []string{"[::ffff:192.0.2.1]:1"}, true},
		{"same IPv6 /64", nil, []string{"[2001:db8::1]:1"}, []string{"[2001:db8::ffff:2]:1"}, true},
		{"other IPv6 /64", nil, []string{"[2001:db8::1]:1"}, []string{"[2001:db8:0:1::1]:1"}, false},
		{"spoofed XFF from untrusted peer", proxies, []string{"192.0.2.1:1", "203.0.113.1"}, []string{"192.0.2.1:1", "203.0.113.2"}, true},
		{"spoofed XFF without trusted proxies", nil, []string{"192.0.2.1:1", "203.0.113.1"}, []string{"192.0.2.1:1", "203.0.113.2"}, true},
		{"clients behind trusted proxy", proxies, []string{"10.0.0.1:1", "203.0.113.1"}, []string{"10.0.0.1:1", "203.0.113.2"}, false},
		{"client cannot pick its key through a trusted proxy", proxies, []string{"10.0.0.1:1", "1.1.1.1, 203.0.113.1"}, []string{"10.0.0.2:1", "9.9.9.9, 203.0.113.1"}, true},
		{"unknown peers share one bucket", nil, []string{"@"}, []string{""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New(clockStart)
			h := New(Limit{Requests: 1, Window: time.Hour}, Options{Now: clock.Now, TrustedProxies: tt.trusted}).Middleware(&okHandler{})
			require.Equal(t, http.StatusOK, do(h, tt.first[0], tt.first[1:]...).Code)
			want := http.StatusOK
			if tt.sameKeys {
				want = http.StatusTooManyRequests
			}
			require.Equal(t, want, do(h, tt.second[0], tt.second[1:]...).Code)
		})
	}
}

func TestNilLimiter(t *testing.T) {
	var l *Limiter
	next := &okHandler{}
	require.Same(t, next, l.Middleware(next))
	ok, retry, err := l.Allow(httptest.NewRequest(http.MethodGet, "/", nil))
	require.True(t, ok)
	require.Zero(t, retry)
	require.NoError(t, err)
}

func TestAllow(t *testing.T) {
	clock := testclock.New(clockStart)
	l := New(Limit{Requests: 2, Window: 10 * time.Second}, Options{Now: clock.Now})
	r := httptest.NewRequest(http.MethodPost, "/device", nil)
	r.RemoteAddr = "192.0.2.1:1"
	for i := 0; i < 2; i++ {
		ok, _, err := l.Allow(r)
		require.True(t, ok)
		require.NoError(t, err)
	}
	ok, retry, err := l.Allow(r)
	require.False(t, ok)
	require.Equal(t, 5*time.Second, retry)
	require.NoError(t, err, "a refusal by the limit is not an outage")
}

func TestNewAcceptsSmallestEnforceableLimit(t *testing.T) {
	clock := testclock.New(clockStart)
	h := New(Limit{Requests: 2, Window: 2 * time.Nanosecond}, Options{Now: clock.Now}).Middleware(&okHandler{})
	require.Equal(t, http.StatusOK, do(h, "192.0.2.1:1").Code)
	require.Equal(t, http.StatusOK, do(h, "192.0.2.1:1").Code)
	require.Equal(t, http.StatusTooManyRequests, do(h, "192.0.2.1:1").Code)
	clock.Advance(time.Nanosecond)
	require.Equal(t, http.StatusOK, do(h, "192.0.2.1:1").Code)
}

func TestNewRejectsInvalidLimits(t *testing.T) {
	for _, lim := range []Limit{
		{},
		{Requests: 0, Window: time.Second},
		{Requests: 1},
		{Requests: -1, Window: time.Second},
		{Requests: 1, Window: -time.Second},
		{Requests: 3, Window: 2 * time.Nanosecond}, // unenforceable: more than one per ns
	} {
		t.Run(fmt.Sprintf("%d per %v", lim.Requests, lim.Window), func(t *testing.T) {
			require.Panics(t, func() { New(lim, Options{}) })
		})
	}
}

func TestDefaults(t *testing.T) {
	l := New(Limit{Requests: 1, Window: time.Second}, Options{MaxKeys: -5})
	require.Equal(t, DefaultMaxKeys, l.maxKeys)
	require.NotNil(t, l.now)
}

// checkBounded asserts the map and the LRU list agree and respect MaxKeys.
func checkBounded(t *testing.T, l *Limiter) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.LessOrEqual(t, len(l.buckets), l.maxKeys)
	require.Equal(t, len(l.buckets), l.lru.Len())
	for e := l.lru.Front(); e != nil; e = e.Next() {
		b := e.Value.(*bucket)
		require.Same(t, b, l.buckets[b.key])
	}
}

func TestKeyMapIsBounded(t *testing.T) {
	const maxKeys = 64
	tests := []struct {
		name      string
		advance   time.Duration // between requests
		wantFinal int
	}{
		// No bucket refills: LRU eviction keeps the map exactly full.
		{"frozen clock", 0, maxKeys},
		// A bucket refills its one used token in 15 s, so sweeps of full
		// buckets keep the map below the bound.
		{"moving clock", time.Second, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New(clockStart)
			l := New(Limit{Requests: 2, Window: 30 * time.Second}, Options{Now: clock.Now, MaxKeys: maxKeys})
			h := l.Middleware(&okHandler{})
			for i := 0; i < 10*maxKeys; i++ {
				clock.Advance(tt.advance)
				remote := fmt.Sprintf("[2001:db8:%x::1]:1", i) // distinct /64s
				require.Equal(t, http.StatusOK, do(h, remote).Code)
				checkBounded(t, l)
			}
			if tt.wantFinal >= 0 {
				require.Len(t, l.buckets, tt.wantFinal)
			}
		})
	}
}

func TestEvictionPrefersFullBuckets(t *testing.T) {
	clock := testclock.New(clockStart)
	l := New(Limit{Requests: 2, Window: 20 * time.Second}, Options{Now: clock.Now, MaxKeys: 3})
	h := l.Middleware(&okHandler{})
	const a, b, c, d = "192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1", "192.0.2.4:1"

	// a drains its bucket; b and c take one token each; a is the least
	// recently used.
	require.Equal(t, http.StatusOK, do(h, a).Code)
	require.Equal(t, http.StatusOK, do(h, a).Code)
	require.Equal(t, http.StatusOK, do(h, b).Code)
	require.Equal(t, http.StatusOK, do(h, c).Code)
	// After 10 s b and c are full again, a holds one token.
	clock.Advance(10 * time.Second)
	require.Equal(t, http.StatusOK, do(h, d).Code) // map full: b and c go, not a
	checkBounded(t, l)
	require.Len(t, l.buckets, 2)

	// a kept its state: one token left, then refused.
	require.Equal(t, http.StatusOK, do(h, a).Code)
	require.Equal(t, http.StatusTooManyRequests, do(h, a).Code)
}

func TestEvictionFallsBackToLeastRecentlyUsed(t *testing.T) {
	clock := testclock.New(clockStart)
	l := New(Limit{Requests: 1, Window: time.Hour}, Options{Now: clock.Now, MaxKeys: 2})
	h := l.Middleware(&okHandler{})
	const a, b, c = "192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1"
	require.Equal(t, http.StatusOK, do(h, a).Code)
	require.Equal(t, http.StatusOK, do(h, b).Code)
	require.Equal(t, http.StatusTooManyRequests, do(h, a).Code) // a is now most recent
	require.Equal(t, http.StatusOK, do(h, c).Code)              // nothing full: b (LRU) goes
	checkBounded(t, l)
	require.Equal(t, http.StatusTooManyRequests, do(h, a).Code) // a kept its state
	require.Equal(t, http.StatusOK, do(h, b).Code)              // b starts afresh
}

func TestConcurrentRequests(t *testing.T) {
	const (
		limit      = 50
		goroutines = 32
		perG       = 20
	)
	clock := testclock.New(clockStart)
	next := &okHandler{}
	// Each goroutine alternates shared and churn requests, so at most
	// goroutines churn keys arrive between two uses of the shared key: with
	// room for twice that, the shared key is never the least recently used
	// when eviction strikes, while the 640 churn keys still force eviction.
	l := New(Limit{Requests: limit, Window: time.Hour}, Options{Now: clock.Now, MaxKeys: 2*goroutines + 2})
	h := l.Middleware(next)

	var shared atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				// One shared client, plus churn through many others to
				// exercise eviction concurrently.
				if do(h, "192.0.2.1:1").Code == http.StatusOK {
					shared.Add(1)
				}
				do(h, fmt.Sprintf("198.51.%d.%d:1", g, i))
				clock.Advance(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	checkBounded(t, l)
	// The shared client was never evicted and the clock moved by far less
	// than one token's refill time (72 s): exactly limit requests passed.
	require.Equal(t, int64(limit), shared.Load())
}
