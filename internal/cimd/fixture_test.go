package cimd

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/cimd/cimdtest"
)

// fixture is a loopback TLS server that serves documents by path, counting
// requests and keeping their headers. Its certificate is httptest's, valid
// for example.com: fixture transports connect to it whatever the URL's
// host, and verify it as example.com.
type fixture struct {
	*httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	hits     map[string]int
	headers  []http.Header
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fixture) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits[r.URL.Path]++
	f.headers = append(f.headers, r.Header.Clone())
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// handle serves path with h.
func (f *fixture) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[path] = h
}

// doc serves body as JSON at path, with the given Cache-Control.
func (f *fixture) doc(path, cacheControl string, body []byte) {
	f.handle(path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		_, _ = w.Write(body)
	})
}

func (f *fixture) hitCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

func (f *fixture) lastHeader() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers[len(f.headers)-1]
}

// transport reaches the fixture for any URL, as SetTestTransport's
// callers (integration/, example/server) install it.
func (f *fixture) transport() http.RoundTripper { return cimdtest.Transport(f.Server) }

// port is the fixture's port, for URLs that the guarded transport resolves
// through a stub resolver to the fixture's loopback address.
func (f *fixture) port() string {
	_, p, _ := net.SplitHostPort(f.Listener.Addr().String())
	return p
}

// clockStart is when each test's clock starts; tests advance it instead of
// sleeping.
var clockStart = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// stubResolver is a DNS resolver whose answers the test chooses: answer
// gets the n-th query (counting from 1) for a name and type (1 for A, 28
// for AAAA) and returns the addresses to answer. It speaks DNS over an
// in-memory pipe, so no packet leaves the process.
func stubResolver(answer func(n int, name string, qtype uint16) []netip.Addr) *net.Resolver {
	var mu sync.Mutex
	n := 0
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				for {
					// A stream connection: each message has a two-byte length.
					var l [2]byte
					if _, err := io.ReadFull(server, l[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(server, q); err != nil {
						return
					}
					name, qtype, qend, ok := parseQuestion(q)
					if !ok {
						return
					}
					mu.Lock()
					n++
					i := n
					mu.Unlock()
					resp := dnsAnswer(q[:qend], qtype, answer(i, name, qtype))
					binary.BigEndian.PutUint16(l[:], uint16(len(resp)))
					if _, err := server.Write(append(l[:], resp...)); err != nil {
						return
					}
				}
			}()
			return client, nil
		},
	}
}

// parseQuestion reads the first question of a DNS query: its name, type,
// and where the question ends.
func parseQuestion(q []byte) (name string, qtype uint16, end int, ok bool) {
	if len(q) < 12 {
		return "", 0, 0, false
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return "", 0, 0, false
		}
		name += string(q[i+1:i+1+l]) + "."
		i += 1 + l
	}
	i++ // the root label
	if i+4 > len(q) {
		return "", 0, 0, false
	}
	return name, binary.BigEndian.Uint16(q[i:]), i + 4, true
}

// dnsAnswer builds the response to a query (header and question in q) with
// one record per address of the asked type.
func dnsAnswer(q []byte, qtype uint16, addrs []netip.Addr) []byte {
	var records [][]byte
	for _, a := range addrs {
		var rdata []byte
		switch {
		case qtype == 1 && a.Is4():
			v := a.As4()
			rdata = v[:]
		case qtype == 28 && a.Is6():
			v := a.As16()
			rdata = v[:]
		default:
			continue
		}
		rr := []byte{0xc0, 12} // a pointer to the question's name
		rr = binary.BigEndian.AppendUint16(rr, qtype)
		rr = binary.BigEndian.AppendUint16(rr, 1)  // class IN
		rr = binary.BigEndian.AppendUint32(rr, 60) // TTL
		rr = binary.BigEndian.AppendUint16(rr, uint16(len(rdata)))
		records = append(records, append(rr, rdata...))
	}
	resp := append([]byte(nil), q...)
	resp[2], resp[3] = 0x81, 0x80 // response, recursion desired and available, NOERROR
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], uint16(len(records)))
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	for _, r := range records {
		resp = append(resp, r...)
	}
	return resp
}
