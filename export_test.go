package mcpoauth

import "net/http"

// SetCIMDTestTransport makes a server built from c fetch client ID metadata
// documents through rt instead of the guarded transport, so that tests can
// serve documents from loopback fixtures. It exists only in this package's
// test binary: production configuration cannot reach it.
func SetCIMDTestTransport(c *CIMDConfig, rt http.RoundTripper) { c.testTransport = rt }
