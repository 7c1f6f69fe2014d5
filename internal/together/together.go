// Package together starts test callers at the same instant, as racing
// requests arrive: every goroutine waits at one gate, opened once all of
// them are started. The tests of atomic operations (a code redeemed once,
// a migration applied once, a budget shared by replicas) race through it.
package together

import "sync"

// Run calls f(i) for each i in [0, n), each on a goroutine of its own,
// released at once, and returns what they returned, in order of i.
func Run[T any](n int, f func(i int) T) []T {
	out := make([]T, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			out[i] = f(i)
		})
	}
	close(gate)
	wg.Wait()
	return out
}
