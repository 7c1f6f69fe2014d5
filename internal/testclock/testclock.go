// Package testclock is the tests' one fake clock: a time that moves only
// when a test advances it, for code that takes a Now func (Config.Now, the
// bearer verifiers, the rate limiter, the client ID metadata resolver, the
// models' sweepers). A test advances it instead of sleeping, so a lifetime
// of days is checked at once and to the second.
//
// Code that reads time.Now or waits on timers itself, without a Now func, is
// tested in a testing/synctest bubble instead.
package testclock

import (
	"sync"
	"time"
)

// Clock is a fake clock, safe for concurrent use: a server under test reads
// it from its handlers' goroutines while the test advances it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time. Its method value is the Now func to inject.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (back, if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
