// Package redislimit keeps mcpoauth's rate limits in Redis (or Valkey), so
// that every replica of an authorization server draws on one budget per
// client instead of one each:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	cfg.RateLimits.Store = redislimit.New(rdb, redislimit.Options{})
//
// Each bucket is one Redis key updated by one Lua script, so a request
// costs one round trip and concurrent replicas never lose an update. The
// algorithm is GCRA (the generic cell rate algorithm): the key holds the
// bucket's theoretical arrival time, which is the token bucket of the
// in-process limiter expressed as a single number, and it expires as soon
// as the bucket would be full again, so idle clients cost no memory.
//
// Time is the Redis server's (the TIME command), not the replicas': their
// clocks may differ, the server's is one.
package redislimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpoauth/mcpoauth"
)

// DefaultPrefix is the key prefix of Options.Prefix.
const DefaultPrefix = "mcpoauth:ratelimit:"

// DefaultTimeout is the default of Options.Timeout.
const DefaultTimeout = 100 * time.Millisecond

// Options configure a Store; the zero value is the default.
type Options struct {
	// Prefix starts every key, so that several servers (or other
	// applications) can share one Redis. Default DefaultPrefix.
	Prefix string
	// Timeout bounds each round trip, so that a slow Redis costs a
	// request at most this much before the server's RateLimits.FailClosed
	// choice applies. Default DefaultTimeout.
	Timeout time.Duration
}

// Store is an mcpoauth.RateLimitStore on Redis.
type Store struct {
	rdb     redis.Scripter
	prefix  string
	timeout time.Duration
}

var _ mcpoauth.RateLimitStore = (*Store)(nil)

// New returns a Store on rdb (a *redis.Client, *redis.ClusterClient or any
// redis.UniversalClient).
func New(rdb redis.Scripter, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, timeout: opts.Timeout}
}

//go:embed gcra.lua
var gcraSource string

var gcra = redis.NewScript(gcraSource)

// ErrUnexpectedReply means the script answered something other than its
// four integers: a Redis that is not one, or a key of the prefix written
// by someone else.
var ErrUnexpectedReply = errors.New("redislimit: unexpected reply from Redis")

// TakeRateLimit takes one request from the bucket key (under the prefix) in
// one round trip. now is ignored: the Redis server's clock is shared by all
// replicas.
func (s *Store) TakeRateLimit(ctx context.Context, key string, limit mcpoauth.RateLimit, _ time.Time) (mcpoauth.RateLimitDecision, error) {
	if limit.Requests <= 0 || limit.Window <= 0 {
		return mcpoauth.RateLimitDecision{}, fmt.Errorf("redislimit: invalid limit %d per %v", limit.Requests, limit.Window)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// The emission interval: the time one request's token takes to come
	// back, in microseconds (the script's unit).
	interval := max(limit.Window.Microseconds()/int64(limit.Requests), 1)
	res, err := gcra.Run(ctx, s.rdb, []string{s.prefix + key}, interval, limit.Requests).Int64Slice()
	if err != nil {
		return mcpoauth.RateLimitDecision{}, fmt.Errorf("redislimit: %w", err)
	}
	if len(res) != 4 {
		return mcpoauth.RateLimitDecision{}, ErrUnexpectedReply
	}
	return mcpoauth.RateLimitDecision{
		Allowed:    res[0] == 1,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		Reset:      time.Duration(res[3]) * time.Microsecond,
	}, nil
}
