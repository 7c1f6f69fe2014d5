package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"unsafe"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/benchapp"
)

// liveTokens is a MemoryModel filled with n live access tokens issued by the
// token endpoint (client_credentials, each a grant of its own, as machine
// clients get them), and what holding them costs.
type liveTokens struct {
	d *benchDriver
	// arena holds the token values back to back (tokenLen bytes each), so
	// that keeping them costs one allocation made before the heap baseline.
	arena         []byte
	n             int
	bytesPerToken float64
}

// tokenLen is the length of an issued token: 32 random bytes, base64url.
const tokenLen = 43

func (l *liveTokens) token(i int) string { return unsafe.String(&l.arena[i*tokenLen], tokenLen) }

var (
	liveTokensMu    sync.Mutex
	liveTokensCache = map[int]*liveTokens{}
)

// fillLiveTokens returns the model with n tokens, filling it on first use:
// the sub-benchmarks of one size share one fill.
func fillLiveTokens(b *testing.B, n int) *liveTokens {
	liveTokensMu.Lock()
	defer liveTokensMu.Unlock()
	if l := liveTokensCache[n]; l != nil {
		return l
	}
	// Drop a model of another size: the 1k figures must not be taken
	// with a million tokens still on the heap (with -count, the 1k runs
	// follow the 1M ones), whose marking the 1k run would pay for.
	for size, l := range liveTokensCache {
		if err := l.d.app.Close(); err != nil {
			b.Fatal(err)
		}
		delete(liveTokensCache, size)
	}
	// A driver outliving the sub-benchmark: the cache keeps the model.
	app, err := benchapp.New(benchBase, mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep}))
	if err != nil {
		b.Fatal(err)
	}
	d := &benchDriver{tb: b, app: app, w: newBenchWriter()}
	header := basicHeader(d.register(benchapp.ConfidentialClientJSON))
	l := &liveTokens{d: d, arena: make([]byte, n*tokenLen), n: n}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Two issuers, each with its own writer, fill half each.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newBenchWriter()
			for i := g; i < n; i += 2 {
				w.reset()
				app.Handler.ServeHTTP(w, benchRequest(http.MethodPost, "/token", header, benchapp.ClientCredentialsForm))
				const prefix = `{"access_token":"`
				if w.code != http.StatusOK || len(w.body) < len(prefix)+tokenLen {
					errs <- fmt.Errorf("token %d: status %d: %s", i, w.code, w.body)
					return
				}
				copy(l.arena[i*tokenLen:], w.body[len(prefix):len(prefix)+tokenLen])
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	l.bytesPerToken = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	if st := app.Server.Model().(*mcpoauth.MemoryModel).Stats(); st.Tokens != n {
		b.Fatalf("model holds %d tokens, want %d", st.Tokens, n)
	}
	liveTokensCache[n] = l
	return l
}

// BenchmarkMemoryModelLiveTokens measures what a MemoryModel holding 1,000
// and 1,000,000 live access tokens costs: heap bytes per token (the heap
// growth from an empty server to the filled one, after GC, divided by the
// number of tokens; target: 1M tokens in ≤ 300 MB, 300 bytes/token), and the
// time of a verification (OAuthServer.VerifyAccessToken) at that size
// (target: unchanged from 1k to 1M), in two access patterns:
//
//   - hot: 1,000 tokens spread evenly over the model, verified round robin,
//     as clients that call repeatedly do: the cost of the data structure;
//   - all: every token in turn, in a scattered order, so that at 1M each
//     verification misses the CPU caches and the TLB: the memory's cost.
//
// At 1k both patterns visit the same tokens.
//
//	go test -run '^$' -bench MemoryModelLiveTokens -benchmem ./integration
func BenchmarkMemoryModelLiveTokens(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		for _, pattern := range []string{"hot", "all"} {
			b.Run(fmt.Sprintf("tokens=%d/%s", n, pattern), func(b *testing.B) {
				l := fillLiveTokens(b, n)
				srv := l.d.app.Server
				ctx := context.Background()
				// Visit k tokens with a stride coprime with n (every
				// token, far apart), or 1,000 evenly spread ones.
				k, stride := n, 7_919*13
				if pattern == "hot" {
					k, stride = 1_000, n/1_000
				}
				token := l.token
				if pattern == "hot" {
					// The hot tokens' values side by side, as a server
					// finds them: in the request it just read, not
					// scattered over the fill's 43 MB.
					hot := make([]byte, 0, k*tokenLen)
					for j := range k {
						hot = append(hot, l.token(j*stride)...)
					}
					token = func(i int) string { return unsafe.String(&hot[i/stride*tokenLen], tokenLen) }
				}
				b.ReportAllocs()
				b.ResetTimer()
				gc0 := gcCPUSeconds()
				i, j := 0, 0
				for b.Loop() {
					if _, err := srv.VerifyAccessToken(ctx, token(i)); err != nil {
						b.Fatal(err)
					}
					if j++; j == k {
						i, j = 0, 0
					} else {
						i = (i + stride) % n
					}
				}
				// The garbage collector's CPU time (both cores) per
				// verification: what marking a heap of n tokens costs
				// the bytes each verification allocates (its AuthInfo,
				// and the record the MemoryModel builds from its slot).
				b.ReportMetric((gcCPUSeconds()-gc0)*1e9/float64(b.N), "gc-ns/op")
				b.ReportMetric(l.bytesPerToken, "bytes/token")
				b.ReportMetric(l.bytesPerToken*float64(n)/1e6, "heap-MB")
			})
		}
	}
}

// gcCPUSeconds is the CPU time the garbage collector has used so far, as
// the runtime estimates it (mark workers and assists, all cores).
func gcCPUSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}
