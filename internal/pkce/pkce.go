// Package pkce checks RFC 7636 proof keys. Only S256 exists here: OAuth 2.1
// §4.1.1 makes it mandatory to implement and MCP clients use nothing else, so
// "plain" is refused (a downgrade: the challenge would be the verifier itself).
package pkce

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// MethodS256 is the only code_challenge_method the server accepts.
const MethodS256 = "S256"

// ValidChallenge reports whether c can be an S256 code_challenge: the
// base64url (no padding) encoding of a SHA-256 digest, so exactly 43
// characters of the base64url alphabet (RFC 7636 §4.2).
func ValidChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isBase64URL(c[i]) {
			return false
		}
	}
	return true
}

// ValidVerifier reports whether v is a code_verifier of RFC 7636 §4.1: 43 to
// 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isBase64URL(c) && c != '.' && c != '~' {
			return false
		}
	}
	return true
}

// Verify reports whether verifier is well formed and its S256 transform equals
// challenge (RFC 7636 §4.6), comparing in constant time.
func Verify(verifier, challenge string) bool {
	if !ValidVerifier(verifier) || !ValidChallenge(challenge) {
		return false
	}
	// A verifier has at most 128 characters: hash a stack copy rather than
	// a heap-allocated []byte.
	var buf [128]byte
	sum := sha256.Sum256(buf[:copy(buf[:], verifier)])
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	return subtle.ConstantTimeCompare(enc[:], []byte(challenge)) == 1
}

// Challenge returns the S256 challenge of a verifier; tests and clients use it.
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
