package mcpoauth

import (
	"context"
	"log/slog"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/ratelimit"
)

// RateLimitStore keeps the rate limits' token buckets where every replica
// sees them, so that N replicas enforce the configured budget once rather
// than N times (RateLimits.Store). Package redislimit is one, on Redis.
type RateLimitStore interface {
	// TakeRateLimit takes one request from the bucket named key, which
	// holds limit.Requests requests and refills completely in
	// limit.Window, in one atomic step shared by all replicas, and
	// reports the outcome. now is the server's clock; a store may use a
	// clock of its own that every replica shares instead.
	TakeRateLimit(ctx context.Context, key string, limit RateLimit, now time.Time) (RateLimitDecision, error)
}

// RateLimitDecision is the outcome of taking a request from a bucket.
type RateLimitDecision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Remaining is the number of whole requests left after this one.
	Remaining int
	// RetryAfter is how long a refused client should wait.
	RetryAfter time.Duration
	// Reset is the time until the bucket is full again.
	Reset time.Duration
}

// rateLimitStore adapts a RateLimitStore to the limiter's interface.
type rateLimitStore struct{ s RateLimitStore }

func (a rateLimitStore) Take(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Decision, error) {
	d, err := a.s.TakeRateLimit(ctx, key, RateLimit(l), now)
	return ratelimit.Decision(d), err
}

// newLimiter returns the limiter of one endpoint: its buckets in
// RateLimits.Store when set, else in this process.
func (s *OAuthServer) newLimiter(name string, l RateLimit) *ratelimit.Limiter {
	rl := s.cfg.RateLimits
	opts := ratelimit.Options{Now: s.cfg.Now, TrustedProxies: rl.TrustedProxies, Name: name, FailClosed: rl.FailClosed, OnRefused: s.refusedHook(name)}
	if rl.Store != nil {
		opts.Store = rateLimitStore{rl.Store}
		logger := s.cfg.Logger
		opts.OnStoreError = func(ctx context.Context, err error) {
			logger.LogAttrs(ctx, slog.LevelWarn, "mcpoauth: rate limit store failed", slog.String("limit", name), slog.Bool("fail_closed", rl.FailClosed), slog.Any("error", err))
		}
	}
	return ratelimit.New(ratelimit.Limit(l), opts)
}
