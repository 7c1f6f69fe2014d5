package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeStore is a shared store that answers a fixed decision, or fails.
type fakeStore struct {
	mu   sync.Mutex
	keys []string
	d    Decision
	err  error
}

func (s *fakeStore) Take(_ context.Context, key string, _ Limit, _ time.Time) (Decision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, key)
	return s.d, s.err
}

// TestSharedStore: with a Store the store decides, under a key naming the
// limit and the client; while it fails, the limiter counts locally (fail
// open to a per-replica limit) or answers 503 with Retry-After (fail
// closed), never 500.
func TestSharedStore(t *testing.T) {
	errDown := errors.New("connection refused")
	for _, tc := range []struct {
		name       string
		store      *fakeStore
		failClosed bool
		// want are the statuses of three requests against a local limit
		// of two.
		want      []int
		wantRetry string
	}{
		{"the store allows", &fakeStore{d: Decision{Allowed: true, Remaining: 7}}, false, []int{200, 200, 200}, ""},
		{"the store refuses", &fakeStore{d: Decision{RetryAfter: 3 * time.Second}}, false, []int{429, 429, 429}, "3"},
		{"the store fails: fail open to the local limit", &fakeStore{err: errDown}, false, []int{200, 200, 429}, "1800"},
		{"the store fails: fail closed", &fakeStore{err: errDown}, true, []int{503, 503, 503}, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failures, refused int
			l := New(Limit{Requests: 2, Window: time.Hour}, Options{
				Store: tc.store, Name: "token", FailClosed: tc.failClosed,
				OnStoreError: func(context.Context, error) { failures++ },
				OnRefused:    func(*http.Request) { refused++ },
			})
			h := l.Middleware(&okHandler{})
			var got []int
			var w interface{ Header() http.Header }
			for range 3 {
				rec := do(h, "192.0.2.7:1234")
				got = append(got, rec.Code)
				w = rec
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantRetry, w.Header().Get("Retry-After"))
			require.Len(t, tc.store.keys, 3)
			assert.Equal(t, "token|192.0.2.7/32", tc.store.keys[0], "the key names the limit and the client")
			if tc.store.err != nil {
				assert.Equal(t, 3, failures, "every failure is reported")
			}
			// A refusal is reported as one (a rate_limited event) when
			// the limit refused, never for the store's outage, which
			// OnStoreError reports.
			assert.Equal(t, countOf(got, http.StatusTooManyRequests), refused)

			// Allow decides as Middleware does, and reports alike.
			refused = 0
			var allowed []bool
			for range 3 {
				r := httptest.NewRequest(http.MethodPost, "/token", nil)
				r.RemoteAddr = "198.51.100.9:1234"
				ok, _, err := l.Allow(r)
				allowed = append(allowed, ok)
				// A refusal for the store's outage says so.
				assert.Equal(t, tc.failClosed, errors.Is(err, ErrUnavailable))
			}
			var want []bool
			for _, code := range tc.want {
				want = append(want, code == http.StatusOK)
			}
			assert.Equal(t, want, allowed)
			assert.Equal(t, countOf(got, http.StatusTooManyRequests), refused)
		})
	}
}

// countOf counts v in list.
func countOf(list []int, v int) (n int) {
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}
