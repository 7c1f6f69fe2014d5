package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/redislimit"
)

// The environment variables that point the tests at a Redis server.
const (
	envAddr    = "MCPOAUTH_REDIS_ADDR"
	envRequire = "MCPOAUTH_REQUIRE_REDIS"
	// defaultAddr is where the tests look for Redis when envAddr is unset.
	defaultAddr = "127.0.0.1:6379"
)

// quietRedis drops go-redis's own log lines (the dial failures
// TestRedisDown provokes on purpose).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

// newRedis returns a client of the test Redis, skipping the test when
// there is none (failing it when MCPOAUTH_REQUIRE_REDIS=1).
func newRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv(envAddr)
	if addr == "" {
		addr = defaultAddr
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv(envRequire) == "1" {
			t.Fatalf("%s=1 but Redis at %s answers: %v", envRequire, addr, err)
		}
		t.Skipf("Redis not reachable at %s (%v): start one or set %s", addr, err, envAddr)
	}
	return rdb
}

// testPrefix is a key prefix of its own for one test, so that runs and
// tests never share a bucket.
func testPrefix(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "mcpoauth-test:" + hex.EncodeToString(b) + ":"
}

// TestBucket: a bucket of three allows three requests, counting down, then
// refuses with the time until the next one.
func TestBucket(t *testing.T) {
	s := redislimit.New(newRedis(t), redislimit.Options{Prefix: testPrefix(t)})
	limit := mcpoauth.RateLimit{Requests: 3, Window: time.Hour}
	ctx := context.Background()
	for i, wantRemaining := range []int{2, 1, 0} {
		d, err := s.TakeRateLimit(ctx, "k", limit, time.Time{})
		require.NoError(t, err)
		assert.True(t, d.Allowed, "request %d", i+1)
		assert.Equal(t, wantRemaining, d.Remaining, "request %d", i+1)
	}
	d, err := s.TakeRateLimit(ctx, "k", limit, time.Time{})
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the fourth is refused")
	assert.InDelta(t, 20*time.Minute, d.RetryAfter, float64(time.Second), "one request comes back every Window/Requests")
	other, err := s.TakeRateLimit(ctx, "other", limit, time.Time{})
	require.NoError(t, err)
	assert.True(t, other.Allowed, "another key has its own bucket")
}

// TestBucketIsAtomic: fifty concurrent requests on a bucket of ten: ten
// are allowed, whichever replica sends them.
func TestBucketIsAtomic(t *testing.T) {
	rdb := newRedis(t)
	prefix := testPrefix(t)
	replicas := []*redislimit.Store{redislimit.New(rdb, redislimit.Options{Prefix: prefix}), redislimit.New(rdb, redislimit.Options{Prefix: prefix})}
	limit := mcpoauth.RateLimit{Requests: 10, Window: time.Hour}
	allowed := 0
	for _, ok := range together.Run(50, func(i int) bool {
		d, err := replicas[i%2].TakeRateLimit(context.Background(), "k", limit, time.Time{})
		return assert.NoError(t, err) && d.Allowed
	}) {
		if ok {
			allowed++
		}
	}
	assert.Equal(t, 10, allowed)
}

// newReplica is an authorization server whose token endpoint allows five
// requests an hour per client, counted in store.
func newReplica(t *testing.T, store mcpoauth.RateLimitStore, failClosed bool) http.Handler {
	t.Helper()
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:           "https://as.example.com",
		AuthorizationURL: "https://as.example.com/consent",
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimits: mcpoauth.RateLimits{
			Token:      mcpoauth.RateLimit{Requests: 5, Window: time.Hour},
			Store:      store,
			FailClosed: failClosed,
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv.Router()
}

// tokenRequest posts an (invalid) token request from one client address:
// it counts against the limit all the same.
func tokenRequest(h http.Handler) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://as.example.com/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "198.51.100.4:4000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestTwoReplicasShareOneBudget: two servers sharing Redis allow the
// configured five requests of a client between them, not five each.
func TestTwoReplicasShareOneBudget(t *testing.T) {
	store := redislimit.New(newRedis(t), redislimit.Options{Prefix: testPrefix(t)})
	replicas := []http.Handler{newReplica(t, store, false), newReplica(t, store, false)}
	served := 0
	for i := range 12 {
		w := tokenRequest(replicas[i%2])
		if w.Code != http.StatusTooManyRequests {
			served++
			continue
		}
		assert.NotEmpty(t, w.Header().Get("Retry-After"))
	}
	assert.Equal(t, 5, served)
}

// TestRedisDown: with Redis unreachable, a server failing open counts per
// replica (its own five, then 429), and one failing closed answers 503
// with Retry-After; neither ever answers 500.
func TestRedisDown(t *testing.T) {
	// Nothing listens on port 1 of loopback: every round trip fails fast.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	store := redislimit.New(down, redislimit.Options{})
	for _, tc := range []struct {
		name       string
		failClosed bool
		want       map[int]int // status → count of 7 requests
	}{
		{"fail open: the local limit", false, map[int]int{http.StatusUnauthorized: 5, http.StatusTooManyRequests: 2}},
		{"fail closed: 503", true, map[int]int{http.StatusServiceUnavailable: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newReplica(t, store, tc.failClosed)
			got := map[int]int{}
			for range 7 {
				w := tokenRequest(h)
				got[w.Code]++
				if w.Code == http.StatusServiceUnavailable {
					assert.Equal(t, "1", w.Header().Get("Retry-After"))
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
