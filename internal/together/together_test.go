package together

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestRun: every call runs once, all of them at the same time (each waits
// until all n are running, which calls made one after another never
// reach), and each result lands at its index.
func TestRun(t *testing.T) {
	const n = 16
	var running atomic.Int32
	all := make(chan struct{})
	got := Run(n, func(i int) int {
		if running.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
			return i * i
		case <-time.After(10 * time.Second): // failure path only
			return -1
		}
	})
	if len(got) != n {
		t.Fatalf("got %d results, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i*i {
			t.Fatalf("result %d = %d, want %d (-1: the calls did not run together)", i, v, i*i)
		}
	}
}
