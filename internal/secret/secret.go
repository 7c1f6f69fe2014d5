// Package secret mints credentials and digests them. Every code, token,
// client secret and request id the server issues comes from New: 256 bits from
// crypto/rand, base64url without padding, so the value uses only the RFC 3986
// unreserved alphabet and survives form-urlencoding unchanged (RFC 6749
// §2.3.1 asks clients to encode client_secret_basic credentials; some skip it).
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/mcpoauth/mcpoauth/record"
)

// Bytes is the entropy of a credential: 256 bits, beyond the 2^-160 guessing
// bound OAuth 2.1 §7.x asks for.
const Bytes = 32

// New returns a fresh credential: 43 characters of base64url.
func New() string {
	var b [Bytes]byte
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(b[:])
	return Encode(b[:])
}

// Encode is base64.RawURLEncoding.EncodeToString, as New encodes
// credentials, in one allocation (the string) rather than two for inputs of
// up to 64 bytes: every login mints several credentials.
func Encode(b []byte) string {
	var buf [86]byte // the base64url length of 64 bytes
	if len(b) > 64 {
		return base64.RawURLEncoding.EncodeToString(b)
	}
	n := base64.RawURLEncoding.EncodedLen(len(b))
	base64.RawURLEncoding.Encode(buf[:n], b)
	return string(buf[:n])
}

// NewID returns a fresh identifier that is not a credential (a grant id):
// 128 bits from crypto/rand, 22 characters of base64url. It is as unique as
// a random UUID, in 24 bytes of memory where a UUID string takes 48, which
// matters for a model that keeps one per live token.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return Encode(b[:])
}

// stackInput bounds the inputs that Digest and MAC copy to the stack. A
// credential is 43 bytes; pre-registered client secrets may be longer, and
// an RFC 9068 access token is a JWT of a few hundred bytes.
const stackInput = 1024

// Digest returns the SHA-256 digest under which a credential is stored. It
// is on the path of every protected request, so it does not allocate:
// []byte(credential) would, for anything longer than 32 bytes.
func Digest(credential string) record.Digest {
	if len(credential) <= stackInput {
		var b [stackInput]byte
		n := copy(b[:], credential)
		return sha256.Sum256(b[:n])
	}
	return sha256.Sum256([]byte(credential))
}

// Equal compares two digests in constant time.
func Equal(a, b record.Digest) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// MAC returns HMAC-SHA256(key, msg) (RFC 2104). For keys of at most one
// SHA-256 block (64 bytes) and messages of at most 128 bytes, which covers
// every MAC the server computes (a credential over a credential), it works
// on the stack, where crypto/hmac allocates two hash states and two pads per
// call.
func MAC(key, msg string) [sha256.Size]byte {
	const block = 64
	if len(key) > block || len(msg) > stackInput {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(msg))
		var out [sha256.Size]byte
		m.Sum(out[:0])
		return out
	}
	// inner = H((K ⊕ ipad) ‖ msg); outer = H((K ⊕ opad) ‖ inner), with K
	// zero-padded to the block size.
	var in [block + stackInput]byte
	copy(in[:], key)
	for i := range block {
		in[i] ^= 0x36
	}
	n := copy(in[block:], msg)
	inner := sha256.Sum256(in[:block+n])
	var out [block + sha256.Size]byte
	copy(out[:], key)
	for i := range block {
		out[i] ^= 0x5c
	}
	copy(out[block:], inner[:])
	return sha256.Sum256(out[:])
}
