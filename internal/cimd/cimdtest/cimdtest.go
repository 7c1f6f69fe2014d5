// Package cimdtest is what the tests of client ID metadata documents share
// (internal/cimd's, integration's and the example server's): a client
// transport that reaches a loopback TLS fixture under public-looking https
// URLs, and a builder of document variants. Only tests import it.
package cimdtest

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Transport is a client transport that reaches srv, a server started with
// httptest.NewTLSServer, for every URL whatever its host and port, and
// verifies srv's certificate (httptest's, valid for example.com) as
// example.com's. A test passes it as cimd.Options.Transport or installs it
// with cimd.SetTestTransport, so that a document URL such as
// https://app.example.com/client.json is fetched from srv.
func Transport(srv *httptest.Server) http.RoundTripper {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	tr.TLSClientConfig.ServerName = "example.com"
	return tr
}

// Document is the JSON of a metadata document: the members of base, with
// the members of changes set over them (a nil value deletes the member).
// Neither map is modified.
func Document(t testing.TB, base, changes map[string]any) []byte {
	t.Helper()
	m := maps.Clone(base)
	for k, v := range changes {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("cimdtest: encoding a document: %v", err)
	}
	return b
}
