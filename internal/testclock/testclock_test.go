package testclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := testclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want the start %v", got, start)
	}
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v after no Advance, want %v: the clock moved by itself", got, start)
	}
	c.Advance(90 * 24 * time.Hour)
	c.Advance(-time.Second)
	if got, want := c.Now(), start.Add(90*24*time.Hour-time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

// TestClockConcurrentUse reads and advances the clock from many goroutines,
// as a server under test does while the test advances it; run with -race.
func TestClockConcurrentUse(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testclock.New(start)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				before := c.Now()
				c.Advance(time.Millisecond)
				if !c.Now().After(before) {
					t.Error("the clock went back")
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(800*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now() = %v after 800 advances of 1ms, want %v", got, want)
	}
}
