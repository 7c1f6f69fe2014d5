package cimd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/metadata"
)

const docPath = "/client.json"

// newFixtureResolver is a resolver that fetches from f, with clock c.
func newFixtureResolver(f *fixture, c *testclock.Clock, mutate ...func(*Options)) *Resolver {
	o := Options{Now: c.Now, Transport: f.transport()}
	for _, m := range mutate {
		m(&o)
	}
	return New(o)
}

// TestResolveFetchesAndCaches: the document is fetched once with a plain
// GET asking for JSON, without cookies or credentials, and served from the
// cache until its max-age runs out.
func TestResolveFetchesAndCaches(t *testing.T) {
	f := newFixture(t)
	c := testclock.New(clockStart)
	r := newFixtureResolver(f, c)
	f.doc(docPath, "public, max-age=600", docJSON(t, nil))

	md, err := r.Resolve(context.Background(), testClientID)
	require.NoError(t, err)
	require.Equal(t, "Example App", md.ClientName)
	require.Equal(t, AuthMethodNone, md.TokenEndpointAuthMethod)
	h := f.lastHeader()
	require.Equal(t, "application/json", h.Get("Accept"))
	require.Empty(t, h.Get("Cookie"))
	require.Empty(t, h.Get("Authorization"))

	requireFreshFor(t, r, f, c, 600*time.Second)
}

// requireFreshFor asserts that the document fetched once is served from
// the cache until ttl has passed on c, and fetched again then.
func requireFreshFor(t *testing.T, r *Resolver, f *fixture, c *testclock.Clock, ttl time.Duration) {
	t.Helper()
	c.Advance(ttl - time.Second)
	_, err := r.Resolve(context.Background(), testClientID)
	require.NoError(t, err)
	require.Equal(t, 1, f.hitCount(docPath), "served from the cache")

	c.Advance(time.Second)
	_, err = r.Resolve(context.Background(), testClientID)
	require.NoError(t, err)
	require.Equal(t, 2, f.hitCount(docPath), "refetched once expired")
}

// TestResolveLifetimeCountsFromArrival: a document's max-age counts from
// when the response arrived (RFC 9111 §4.2: freshness is the response's
// age), so a slow server does not shorten the cache lifetime.
func TestResolveLifetimeCountsFromArrival(t *testing.T) {
	f := newFixture(t)
	c := testclock.New(clockStart)
	r := newFixtureResolver(f, c)
	body := docJSON(t, nil)
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	f.handle(docPath, func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = w.Write(body)
	})
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(context.Background(), testClientID)
		done <- err
	}()
	<-arrived
	c.Advance(100 * time.Second) // the server answers late
	close(release)
	require.NoError(t, <-done)
	requireFreshFor(t, r, f, c, 600*time.Second) // from the answer
}

// TestResolveCacheTTL: draft §5.2 and RFC 9111: Cache-Control decides,
// within the bounds; no-store and no-cache are not cached at all.
func TestResolveCacheTTL(t *testing.T) {
	r := New(Options{})
	for header, want := range map[string]time.Duration{
		"":                                DefaultTTL,
		"max-age=600":                     10 * time.Minute,
		"public, max-age=120":             2 * time.Minute,
		"MAX-AGE=120":                     2 * time.Minute,
		`max-age="120"`:                   2 * time.Minute,
		"max-age=0":                       DefaultMinTTL,
		"max-age=10":                      DefaultMinTTL,
		"max-age=999999999999":            DefaultMaxTTL,
		"max-age=99999999999999999999999": DefaultTTL, // unparsable: ignored
		"max-age=-5":                      DefaultTTL,
		"max-age=abc":                     DefaultTTL,
		"no-store":                        0,
		"no-cache":                        0,
		"max-age=600, no-store":           0,
		"private, No-Cache":               0,
	} {
		h := http.Header{}
		if header != "" {
			h.Set("Cache-Control", header)
		}
		require.Equal(t, want, r.ttl(h), header)
	}
	bounded := New(Options{MinTTL: time.Hour, MaxTTL: 2 * time.Hour, DefaultTTL: time.Minute})
	require.Equal(t, time.Hour, bounded.ttl(http.Header{}), "the default is clamped too")
	require.Equal(t, 2*time.Hour, bounded.ttl(http.Header{"Cache-Control": {"max-age=86400"}}))
}

// TestResolveNoStoreIsNotCached: a no-store document is fetched on every
// lookup.
func TestResolveNoStoreIsNotCached(t *testing.T) {
	f := newFixture(t)
	r := newFixtureResolver(f, testclock.New(clockStart))
	f.doc(docPath, "no-store", docJSON(t, nil))
	for i := 1; i <= 3; i++ {
		_, err := r.Resolve(context.Background(), testClientID)
		require.NoError(t, err)
		require.Equal(t, i, f.hitCount(docPath))
	}
	require.Zero(t, r.Len())
}

// TestResolveRefusesRedirects: draft §5: redirects are not followed; the
// target is never fetched.
func TestResolveRefusesRedirects(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t)
			r := newFixtureResolver(f, testclock.New(clockStart))
			f.handle(docPath, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere.json", status)
			})
			f.doc("/elsewhere.json", "", docJSON(t, nil))
			_, err := r.Resolve(context.Background(), testClientID)
			require.ErrorIs(t, err, ErrFetch)
			require.ErrorIs(t, err, errRedirect)
			require.Zero(t, f.hitCount("/elsewhere.json"))
		})
	}
}

// TestResolveRefusesNon200: draft §5: only 200 OK; errors are not cached.
func TestResolveRefusesNon200(t *testing.T) {
	for _, status := range []int{http.StatusCreated, http.StatusNoContent, http.StatusNotModified, http.StatusNotFound, http.StatusInternalServerError} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t)
			r := newFixtureResolver(f, testclock.New(clockStart))
			f.handle(docPath, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "max-age=3600")
				w.WriteHeader(status)
				_, _ = w.Write(docJSON(t, nil))
			})
			_, err := r.Resolve(context.Background(), testClientID)
			require.ErrorIs(t, err, ErrFetch)
			_, err = r.Resolve(context.Background(), testClientID)
			require.ErrorIs(t, err, ErrFetch)
			require.Equal(t, 2, f.hitCount(docPath), "an error is never cached")
		})
	}
}

// TestResolveRequiresJSON: the response must be JSON (draft §4:
// application/json or an application/*+json type).
func TestResolveRequiresJSON(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"application/cimd+json":           true,
		"text/html":                       false,
		"text/plain":                      false,
		"application/octet-stream":        false,
		"":                                false,
		"application/jsonx":               false,
	} {
		t.Run(ct, func(t *testing.T) {
			f := newFixture(t)
			r := newFixtureResolver(f, testclock.New(clockStart))
			body := docJSON(t, nil)
			f.handle(docPath, func(w http.ResponseWriter, _ *http.Request) {
				w.Header()["Content-Type"] = []string{ct}
				_, _ = w.Write(body)
			})
			_, err := r.Resolve(context.Background(), testClientID)
			if ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidDocument)
			}
		})
	}
}

// paddedDoc is a valid document of exactly n bytes.
func paddedDoc(t *testing.T, n int) []byte {
	base := docJSON(t, map[string]any{"padding": ""})
	b := bytes.Replace(base, []byte(`"padding":""`), []byte(`"padding":"`+strings.Repeat("x", n-len(base))+`"`), 1)
	require.Len(t, b, n)
	return b
}

// TestResolveSizeCap: draft §8.7: at most 5 KB is read, whether the size
// is declared or not.
func TestResolveSizeCap(t *testing.T) {
	f := newFixture(t)
	r := newFixtureResolver(f, testclock.New(clockStart))
	f.doc("/exact.json", "", paddedDoc(t, MaxDocumentBytes))
	_, err := r.Resolve(context.Background(), "https://app.example.com/exact.json")
	require.ErrorIs(t, err, ErrInvalidDocument, "the client_id differs, but the size passed")
	require.NotErrorIs(t, err, ErrTooLarge)

	exact := bytes.Replace(paddedDoc(t, MaxDocumentBytes), []byte(testClientID), []byte("https://app.example.com/exact.json"), 1)
	exact = exact[:len(exact)-1]
	exact = append(bytes.Replace(exact, []byte(`"padding":"x`), []byte(`"padding":"xx`), 1), '}')
	require.Len(t, exact, MaxDocumentBytes)
	f.doc("/exact.json", "", exact)
	_, err = r.Resolve(context.Background(), "https://app.example.com/exact.json")
	require.NoError(t, err, "exactly 5 KB is accepted")

	f.doc(docPath, "", paddedDoc(t, MaxDocumentBytes+1))
	_, err = r.Resolve(context.Background(), testClientID)
	require.ErrorIs(t, err, ErrTooLarge, "declared length")

	f.handle(docPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body := paddedDoc(t, 64<<10)
		// Flushing first makes the response chunked: no declared length.
		w.(http.Flusher).Flush()
		_, _ = w.Write(body)
	})
	_, err = r.Resolve(context.Background(), testClientID)
	require.ErrorIs(t, err, ErrTooLarge, "streamed")
}

// TestResolveTimeout: a server that never answers is given up on after the
// timeout, and the failure is not cached.
func TestResolveTimeout(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle(docPath, func(http.ResponseWriter, *http.Request) { <-release })
	r := newFixtureResolver(f, testclock.New(clockStart), func(o *Options) { o.Timeout = 50 * time.Millisecond })
	start := time.Now()
	_, err := r.Resolve(context.Background(), testClientID)
	require.ErrorIs(t, err, ErrFetch)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Zero(t, r.Len())
}

// TestResolveSendsNoCookies: a cookie set by a document server is never
// sent back (no cookie jar).
func TestResolveSendsNoCookies(t *testing.T) {
	f := newFixture(t)
	r := newFixtureResolver(f, testclock.New(clockStart))
	f.handle(docPath, func(w http.ResponseWriter, _ *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "tracking", Path: "/"})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(docJSON(t, nil))
	})
	for range 2 {
		_, err := r.Resolve(context.Background(), testClientID)
		require.NoError(t, err)
		require.Empty(t, f.lastHeader().Values("Cookie"))
	}
	require.Equal(t, 2, f.hitCount(docPath))
}

// TestResolveCoalescesConcurrentLookups: concurrent lookups
// of one URL share one fetch; a waiter whose request is cancelled leaves
// without cancelling the fetch for the others.
func TestResolveCoalescesConcurrentLookups(t *testing.T) {
	f := newFixture(t)
	started, release := make(chan struct{}), make(chan struct{})
	body := docJSON(t, nil)
	f.handle(docPath, func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	const n = 8
	joined := make(chan struct{}, n)
	r := newFixtureResolver(f, testclock.New(clockStart))
	r.onJoin = func() { joined <- struct{}{} }

	type result struct {
		md  metadata.ClientMetadata
		err error
	}
	results := make(chan result, n)
	lookup := func(ctx context.Context) {
		md, err := r.Resolve(ctx, testClientID)
		results <- result{md, err}
	}
	// The first lookup's request is cancelled while the fetch runs.
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	go lookup(firstCtx)
	<-started
	for range n - 1 {
		go lookup(context.Background())
	}
	for range n - 1 {
		<-joined
	}
	cancelFirst()
	require.ErrorIs(t, (<-results).err, context.Canceled)
	close(release)
	for range n - 1 {
		res := <-results
		require.NoError(t, res.err)
		require.Equal(t, "Example App", res.md.ClientName)
	}
	require.Equal(t, 1, f.hitCount(docPath), "one fetch for all")
}

// TestResolveInvalidDocumentsAreNotCached: draft §5.2: an invalid document,
// or one the server's validation refuses, is not cached; once fixed, it is
// used.
func TestResolveInvalidDocumentsAreNotCached(t *testing.T) {
	f := newFixture(t)
	refuse := true
	var mu sync.Mutex
	r := newFixtureResolver(f, testclock.New(clockStart), func(o *Options) {
		o.Validate = func(m metadata.ClientMetadata) (metadata.ClientMetadata, error) {
			mu.Lock()
			defer mu.Unlock()
			if refuse {
				return m, errors.New("redirect URI refused")
			}
			return m, nil
		}
	})
	f.doc(docPath, "max-age=3600", docJSON(t, map[string]any{"client_id": "https://evil.example.com/client.json"}))
	_, err := r.Resolve(context.Background(), testClientID)
	require.ErrorIs(t, err, ErrInvalidDocument)

	f.doc(docPath, "max-age=3600", docJSON(t, nil))
	_, err = r.Resolve(context.Background(), testClientID)
	require.ErrorIs(t, err, ErrInvalidDocument, "refused by Validate")
	require.Zero(t, r.Len())

	mu.Lock()
	refuse = false
	mu.Unlock()
	_, err = r.Resolve(context.Background(), testClientID)
	require.NoError(t, err)
	require.Equal(t, 3, f.hitCount(docPath))
	require.Equal(t, 1, r.Len())
}

// TestResolveCacheIsBounded (an unbounded cache is a DoS):
// the cache never holds more than CacheSize documents; expired ones go
// first, then those closest to expiry.
func TestResolveCacheIsBounded(t *testing.T) {
	f := newFixture(t)
	c := testclock.New(clockStart)
	r := newFixtureResolver(f, c, func(o *Options) { o.CacheSize = 2 })
	ids := map[string]string{}
	for i, ttl := range []int{3600, 7200, 10800, 14400} {
		path := fmt.Sprintf("/c%d.json", i)
		id := "https://app.example.com" + path
		ids[path] = id
		f.doc(path, fmt.Sprintf("max-age=%d", ttl), bytes.Replace(docJSON(t, nil), []byte(testClientID), []byte(id), 1))
	}
	for _, p := range []string{"/c0.json", "/c1.json", "/c2.json"} {
		_, err := r.Resolve(context.Background(), ids[p])
		require.NoError(t, err)
		require.LessOrEqual(t, r.Len(), 2)
	}
	// c0 (closest to expiry) was evicted; c1 and c2 are cached.
	for _, p := range []string{"/c1.json", "/c2.json", "/c0.json"} {
		_, err := r.Resolve(context.Background(), ids[p])
		require.NoError(t, err)
	}
	require.Equal(t, 2, f.hitCount("/c0.json"))
	require.Equal(t, 1, f.hitCount("/c2.json"))
	require.Equal(t, 2, r.Len())
}

// TestResolveAllowHook: draft §8.9: the application's policy is asked
// before any fetch, and again on every lookup, so a domain denied later is
// refused even while cached.
func TestResolveAllowHook(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	denied := map[string]bool{"evil.example.com": true}
	var asked []string
	r := newFixtureResolver(f, testclock.New(clockStart), func(o *Options) {
		o.Allow = func(u *url.URL) error {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, u.String())
			if denied[u.Hostname()] {
				return errors.New("domain not allowed")
			}
			return nil
		}
	})
	f.doc("/evil.json", "", bytes.Replace(docJSON(t, nil), []byte(testClientID), []byte("https://evil.example.com/evil.json"), 1))
	_, err := r.Resolve(context.Background(), "https://evil.example.com/evil.json")
	require.ErrorIs(t, err, ErrNotAllowed)
	require.Zero(t, f.hitCount("/evil.json"), "refused before fetching")

	f.doc(docPath, "max-age=3600", docJSON(t, nil))
	_, err = r.Resolve(context.Background(), testClientID)
	require.NoError(t, err)
	mu.Lock()
	denied["app.example.com"] = true
	mu.Unlock()
	_, err = r.Resolve(context.Background(), testClientID)
	require.ErrorIs(t, err, ErrNotAllowed, "asked again, though cached")
	require.Equal(t, 1, f.hitCount(docPath))

	_, err = r.Resolve(context.Background(), "https://127.0.0.1/client.json")
	require.ErrorIs(t, err, ErrInvalidURL)
	require.Len(t, asked, 3, "an invalid URL never reaches the hook")
}

// TestGuardedTransportRefusesNonPublicAddresses: draft §8.6: the production
// transport checks the address it connects to, after resolution: a name
// that passes every syntactic check but resolves to a loopback, private,
// link-local or mapped address is refused before any connection, though a
// server is listening there (the fixture, on 127.0.0.1).
func TestGuardedTransportRefusesNonPublicAddresses(t *testing.T) {
	f := newFixture(t)
	f.doc(docPath, "", docJSON(t, nil))
	for name, addrs := range map[string][]netip.Addr{
		"loopback":             {netip.MustParseAddr("127.0.0.1")},
		"ipv6 loopback":        {netip.MustParseAddr("::1")},
		"mapped loopback":      {netip.MustParseAddr("::ffff:127.0.0.1")},
		"private":              {netip.MustParseAddr("10.0.0.1")},
		"cloud metadata":       {netip.MustParseAddr("169.254.169.254")},
		"cgnat":                {netip.MustParseAddr("100.64.0.1")},
		"ula":                  {netip.MustParseAddr("fd00::1")},
		"unspecified":          {netip.MustParseAddr("0.0.0.0")},
		"loopback and private": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.168.0.1")},
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			queries := 0
			res := stubResolver(func(_ int, _ string, qtype uint16) []netip.Addr {
				mu.Lock()
				queries++
				mu.Unlock()
				return addrs
			})
			r := New(Options{Transport: NewTransport(res)})
			id := "https://rebind.example.com:" + f.port() + docPath
			_, err := r.Resolve(context.Background(), id)
			require.ErrorIs(t, err, ErrFetch)
			require.ErrorIs(t, err, ErrForbiddenAddress)
			require.Zero(t, f.hitCount(docPath), "no connection was made")
			mu.Lock()
			require.Positive(t, queries, "the name was resolved by the stub")
			mu.Unlock()
		})
	}
}

// TestGuardedTransportRebinding: DNS rebinding: a name whose answer changes
// between lookups (public for a first look, loopback after) gains nothing,
// since every connection checks the address it connects to. Here the first
// fetch is refused for a private address and the next, after the answer
// changed to loopback, is refused as well; neither reaches the listener.
func TestGuardedTransportRebinding(t *testing.T) {
	f := newFixture(t)
	f.doc(docPath, "", docJSON(t, nil))
	res := stubResolver(func(n int, _ string, _ uint16) []netip.Addr {
		if n <= 2 { // the A and AAAA queries of the first lookup
			return []netip.Addr{netip.MustParseAddr("172.16.5.5")}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	})
	r := New(Options{Transport: NewTransport(res)})
	id := "https://rebind.example.com:" + f.port() + docPath
	for range 2 {
		_, err := r.Resolve(context.Background(), id)
		require.ErrorIs(t, err, ErrForbiddenAddress)
	}
	require.Zero(t, f.hitCount(docPath))
}

// TestGuardedTransportIgnoresProxy: a proxy from the environment would
// make the connected address the proxy's, so the transport never uses one.
func TestGuardedTransportIgnoresProxy(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	t.Setenv("https_proxy", "http://127.0.0.1:9")
	tr := NewTransport(nil)
	require.Nil(t, tr.Proxy)
	require.True(t, tr.DisableCompression)
}

// BenchmarkResolveCached: a lookup the cache answers, by one caller and by
// many at once.
func BenchmarkResolveCached(b *testing.B) {
	const id = "https://bench.example.com/client.json"
	doc := []byte(`{"client_id":"` + id + `","client_name":"Bench","redirect_uris":["https://bench.example.com/cb"]}`)
	r := New(Options{Transport: benchTransport(func(req *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=3600"}},
			Body:       io.NopCloser(bytes.NewReader(doc)),
			Request:    req,
		}, nil
	})})
	ctx := context.Background()
	_, err := r.Resolve(ctx, id)
	require.NoError(b, err)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = r.Resolve(ctx, id)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = r.Resolve(ctx, id)
			}
		})
	})
}

// benchTransport answers every request with what its func returns.
type benchTransport func(*http.Request) (*http.Response, error)

func (f benchTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
