package ratelimit

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// discard is an allocation-free ResponseWriter.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkMiddleware is the limiter in front of every unauthenticated
// endpoint, for 1,024 clients taking turns, from GOMAXPROCS goroutines. Run
// it with -cpu 1,2: the limiter's one mutex is held for a map lookup and a
// token bucket update, so ns/op should halve with two cores.
func BenchmarkMiddleware(b *testing.B) {
	l := New(Limit{Requests: 1 << 30, Window: 2 * time.Second << 30}, Options{})
	h := l.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	reqs := make([]*http.Request, 1024)
	for i := range reqs {
		reqs[i] = &http.Request{Method: http.MethodPost, RemoteAddr: "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":4000", Header: http.Header{}}
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		i := int(seed.Add(7919))
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, reqs[i&1023])
			i++
		}
	})
}
