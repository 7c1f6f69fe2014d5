package mcpoauth

import (
	"crypto"
	"fmt"
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/jose"
)

// AccessTokenFormat is the form of the access tokens the server issues
// (Config.AccessTokenFormat).
type AccessTokenFormat string

const (
	// AccessTokenOpaque issues 256-bit random strings that only this
	// server can resolve (its RequireBearerAuth, or /introspect). It is the
	// default.
	AccessTokenOpaque AccessTokenFormat = "opaque"
	// AccessTokenJWT issues RFC 9068 JWTs (typ at+jwt) carrying iss, sub
	// (the user, or the client for client credentials), aud (the
	// resource), client_id, scope, exp, iat and jti, which resource servers
	// verify offline against the server's JWKS (bearer.JWTVerifier).
	AccessTokenJWT AccessTokenFormat = "jwt"
)

// JWKSPath is where Router serves the JSON Web Key Set of SigningKeys,
// under BaseURL's path; the metadata advertises it as jwks_uri.
const JWKSPath = "/jwks"

// jwksMaxAge is the Cache-Control max-age of the JWKS: short, so that a key
// added first for rotation reaches resource servers quickly (a verifier
// also refetches on an unknown kid).
const jwksMaxAge = 300

// SigningKey is a key the server signs JWT access tokens with.
type SigningKey struct {
	// Key is the private key: an *ecdsa.PrivateKey on P-256 (ES256), an
	// *rsa.PrivateKey of at least 2048 bits (RS256, or PS256), an
	// ed25519.PrivateKey (EdDSA), or any crypto.Signer whose public key is
	// one of those (a key in an HSM or a KMS).
	Key crypto.Signer
	// KeyID is the kid in the JWS header and the JWKS; default: the key's
	// RFC 7638 thumbprint.
	KeyID string
	// Algorithm is "" for the key's default (ES256, RS256, EdDSA), or
	// "PS256" for an RSA key.
	Algorithm string
}

// validateAccessTokenFormat settles the access token format and prepares
// the signing keys.
func (s *settings) validateAccessTokenFormat() error {
	switch s.AccessTokenFormat {
	case "", AccessTokenOpaque:
		s.AccessTokenFormat = AccessTokenOpaque
		if len(s.SigningKeys) > 0 {
			return configError("SigningKeys", "sign JWT access tokens: set AccessTokenFormat to AccessTokenJWT, or leave SigningKeys empty")
		}
		return nil
	case AccessTokenJWT:
	default:
		return configError("AccessTokenFormat", fmt.Sprintf("unknown format %q: use AccessTokenOpaque or AccessTokenJWT", s.AccessTokenFormat))
	}
	if s.resource == "" {
		// RFC 9068 §2.2: aud is required, and it is the resource.
		return configError("ResourceServerURL", "required with AccessTokenJWT: it is the aud claim of every token")
	}
	if len(s.SigningKeys) == 0 {
		return configError("SigningKeys", "at least one key is required with AccessTokenJWT")
	}
	keys := make([]jose.Key, len(s.SigningKeys))
	for i, k := range s.SigningKeys {
		keys[i] = jose.Key{Signer: k.Key, KeyID: k.KeyID, Algorithm: k.Algorithm}
	}
	ks, err := jose.NewKeySet(keys, grants.JWTAccessTokenType)
	if err != nil {
		return configError("SigningKeys", err.Error())
	}
	s.signingKeys = ks
	return nil
}

// jwksHandler serves the public keys (RFC 7517 §5).
func jwksHandler(ks *jose.KeySet) http.Handler {
	body := ks.JWKS()
	cacheControl := fmt.Sprintf("public, max-age=%d", jwksMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", cacheControl)
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
