package cimd

import (
	"net/http"
	"sync/atomic"
)

// testTransport, when set, replaces the guarded transport of every
// Resolver built afterwards with a nil Options.Transport. It exists so that
// tests in this module (the example server's included) can serve documents
// from loopback fixtures; the package is internal, so no code outside the
// module, and no configuration, can reach it.
var testTransport atomic.Pointer[http.RoundTripper]

// SetTestTransport installs rt for Resolvers built until restore is
// called. Tests only.
func SetTestTransport(rt http.RoundTripper) (restore func()) {
	testTransport.Store(&rt)
	return func() { testTransport.Store(nil) }
}

// guarded is the one guarded transport shared by the fetchers that do not
// take their own: its idle connections serve every fetch.
var guarded = NewTransport(nil)

// Transport returns the transport other fetches of client-supplied URLs
// (a client's jwks_uri) go through: the guarded transport (NewTransport),
// or the test override while one is installed.
func Transport() http.RoundTripper {
	if p := testTransport.Load(); p != nil {
		return *p
	}
	return guarded
}
