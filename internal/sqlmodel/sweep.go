package sqlmodel

import (
	"cmp"
	"context"
	"log/slog"
	"time"
)

// SweepTarget is a table the sweeper deletes from, with its primary key
// and the column that says when a row may go.
type SweepTarget struct{ Table, Key, Until string }

// SweepTargets are the tables of the schema that expire. Clients are not
// swept here: the server deletes idle ones (DeleteIdleClients) with the
// idle period of its Config.
var SweepTargets = []SweepTarget{
	{"mcpoauth_authorization_requests", "id", "expires_at"},
	{"mcpoauth_authorization_codes", "digest", "expires_at"},
	{"mcpoauth_tokens", "digest", "expires_at"},
	{"mcpoauth_device_authorizations", "device_code_digest", "expires_at"},
	{"mcpoauth_revoked_grants", "grant_id", "forget_after"},
	{"mcpoauth_assertion_ids", "digest", "expires_at"},
	{"mcpoauth_grants", "id", "expires_at"},
	{"mcpoauth_upstream_tokens", "id", "expires_at"},
}

// Sweeper is a Model's sweep options with the defaults applied, and runs
// its sweeps.
type Sweeper struct {
	Interval time.Duration    // <= 0: no background sweeper
	Batch    int              // the most rows one statement deletes
	Clock    func() time.Time // the time the background sweeps use
	OnError  func(error)      // the background sweeper's failures
}

// NewSweeper applies the defaults to the sweep options of the Model of
// package name: interval 0 is defaultInterval, a batch not above zero
// defaultBatch, a nil clock time.Now, and a nil onError a warning on
// slog.Default().
func NewSweeper(name string, interval, defaultInterval time.Duration, batch, defaultBatch int, clock func() time.Time, onError func(error)) Sweeper {
	s := Sweeper{Interval: cmp.Or(interval, defaultInterval), Batch: defaultBatch, Clock: clock, OnError: onError}
	if batch > 0 {
		s.Batch = batch
	}
	if s.Clock == nil {
		s.Clock = time.Now
	}
	if s.OnError == nil {
		s.OnError = func(err error) {
			slog.Default().Warn("mcpoauth "+name+": sweep failed", "err", err)
		}
	}
	return s
}

// Sweep runs del on each target, again while it deletes a whole batch,
// until none is left or ctx is done, and returns how many rows del
// deleted in all.
func (s Sweeper) Sweep(ctx context.Context, del func(SweepTarget) (int64, error)) (int64, error) {
	var total int64
	for _, target := range SweepTargets {
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			n, err := del(target)
			if err != nil {
				return total, err
			}
			total += n
			if n < int64(s.Batch) {
				break
			}
		}
	}
	return total, nil
}

// Start starts the background sweeper, which runs sweep with the clock's
// time every interval, and reports its failures to OnError, until stop is
// called; done is closed once it has exited (at once if there is none).
func (s Sweeper) Start(sweep func(ctx context.Context, now time.Time) (int64, error)) (stop context.CancelFunc, done chan struct{}) {
	ctx, stop := context.WithCancel(context.Background())
	done = make(chan struct{})
	if s.Interval <= 0 {
		close(done)
		return stop, done
	}
	go func() {
		defer close(done)
		ticker := time.NewTicker(s.Interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				if _, err := sweep(ctx, s.Clock()); err != nil && ctx.Err() == nil {
					s.OnError(err)
				}
			}
		}
	}()
	return stop, done
}
