// Package secret mints credentials and digests them. Every code, token,
// client secret and request id the server issues comes from New: 256 bits from
// crypto/rand, base64url without padding, so the value uses only the RFC 3986
// unreserved alphabet and survives form-urlencoding unchanged (RFC 6749
// §2.3.1 asks clients to encode client_secret_basic credentials; some skip it).
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/mcpoauth/mcpoauth/internal/record"
)

// Bytes is the entropy of a credential: 256 bits, beyond the 2^-160 guessing
// bound OAuth 2.1 §7.x asks for.
const Bytes = 32

// New returns a fresh credential: 43 characters of base64url.
func New() string {
	var b [Bytes]byte
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Digest returns the SHA-256 digest under which a credential is stored.
func Digest(credential string) record.Digest {
	return sha256.Sum256([]byte(credential))
}

// Equal compares two digests in constant time.
func Equal(a, b record.Digest) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
