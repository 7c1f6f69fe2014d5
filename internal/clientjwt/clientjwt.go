// Package clientjwt verifies private_key_jwt client assertions (RFC 7523
// §2.2 and §3, OpenID Connect Core §9): JWTs a client signs with a key of
// its registered jwks or jwks_uri to authenticate at the token, revocation,
// introspection and device endpoints.
package clientjwt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AuthMethod is the token_endpoint_auth_method of a client that
// authenticates with assertions (OpenID Connect Core §9).
const AuthMethod = "private_key_jwt"

// Algorithms are the signature algorithms an assertion may use, as
// advertised in token_endpoint_auth_signing_alg_values_supported. Only
// public-key ones: never none, never HMAC (which a forger would key with
// the client's public key).
var Algorithms = []string{string(jose.RS256), string(jose.PS256), string(jose.ES256), string(jose.EdDSA)}

var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// SignatureAlgorithms is Algorithms for jwt.ParseSigned: every JWT the
// server verifies (client assertions, ID-JAGs) is held to it.
func SignatureAlgorithms() []jose.SignatureAlgorithm { return slices.Clone(algorithms) }

// Bounds of an assertion's lifetime.
const (
	// MaxLifetime is how far ahead of now an assertion's exp may be: the
	// replay store keeps each jti until exp, so exp bounds that too.
	MaxLifetime = 5 * time.Minute
	// Leeway tolerates clocks that differ a little for nbf and iat (not
	// for exp: an expired assertion is refused).
	Leeway = 30 * time.Second
)

// ReplayStore records assertion ids (jti) until they expire; a second use of
// one before then fails with an error wrapping record.ErrAlreadyUsed. The server's
// Model provides it (mcpoauth.AssertionReplayStore).
type ReplayStore interface {
	UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error
}

// Errors of Verify. Every one is an authentication failure: the handler
// answers invalid_client and tells the client no more.
var (
	ErrMalformed   = errors.New("clientjwt: malformed assertion, or an algorithm outside the allow-list")
	ErrNoKeys      = errors.New("clientjwt: the client has no usable key")
	ErrSignature   = errors.New("clientjwt: no key of the client verifies the signature")
	ErrClaims      = errors.New("clientjwt: the assertion's claims are not acceptable")
	ErrReplayed    = errors.New("clientjwt: the assertion was used before")
	errReplayStore = errors.New("clientjwt: the replay store failed")
)

// IsStoreError reports whether err is the replay store failing (a server
// error), not the assertion.
func IsStoreError(err error) bool { return errors.Is(err, errReplayStore) }

// Verifier checks client assertions. Its fields are set once, before use.
type Verifier struct {
	// Audiences are the values one of which aud must hold: the issuer and
	// the token endpoint URL (RFC 7523 §3 item 3).
	Audiences []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replay records each jti until exp; required.
	Replay ReplayStore
	// Keys fetches jwks_uri key sets.
	Keys *KeySets
}

// Verify checks that assertion authenticates the client clientID whose
// metadata is md: signed by one of its keys with an allowed algorithm, iss
// and sub equal to clientID, aud naming this server, exp present, not
// passed and at most MaxLifetime ahead, and its jti never used before (it
// is recorded as used). The error wraps one of the Err values above.
func (v *Verifier) Verify(ctx context.Context, clientID string, md metadata.ClientMetadata, assertion string) error {
	tok, err := jwt.ParseSigned(assertion, algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var claims jwt.Claims
	if err := v.verifySignature(ctx, tok, md, &claims); err != nil {
		return err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if err := checkClaims(claims, clientID, v.Audiences, now); err != nil {
		return err
	}
	if err := v.Replay.UseAssertionID(ctx, clientID, claims.ID, claims.Expiry.Time()); err != nil {
		if errors.Is(err, record.ErrAlreadyUsed) {
			return ErrReplayed
		}
		return fmt.Errorf("%w: %w", errReplayStore, err)
	}
	return nil
}

// checkClaims applies RFC 7523 §3 to verified claims.
func checkClaims(c jwt.Claims, clientID string, audiences []string, now time.Time) error {
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return fmt.Errorf("%w: iss and sub must equal client_id", ErrClaims)
	case !slices.ContainsFunc(audiences, c.Audience.Contains):
		return fmt.Errorf("%w: aud names another server", ErrClaims)
	case c.Expiry == nil:
		return fmt.Errorf("%w: exp is required", ErrClaims)
	case !now.Before(c.Expiry.Time()):
		return fmt.Errorf("%w: expired", ErrClaims)
	case c.Expiry.Time().After(now.Add(MaxLifetime)):
		return fmt.Errorf("%w: exp is too far ahead", ErrClaims)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(Leeway)):
		return fmt.Errorf("%w: not valid yet", ErrClaims)
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(Leeway)):
		return fmt.Errorf("%w: issued in the future", ErrClaims)
	case c.ID == "":
		return fmt.Errorf("%w: jti is required", ErrClaims)
	}
	return nil
}

// verifySignature finds the client's key that verifies tok and decodes the
// claims with it (KeySets.VerifyClaims). Keys come from md.JWKS, else
// md.JWKSURI.
func (v *Verifier) verifySignature(ctx context.Context, tok *jwt.JSONWebToken, md metadata.ClientMetadata, claims *jwt.Claims) error {
	var set jose.JSONWebKeySet
	uri := ""
	switch {
	case len(md.JWKS) > 0:
		var err error
		if set, err = ParseKeySet(md.JWKS); err != nil {
			return fmt.Errorf("%w: %w", ErrNoKeys, err)
		}
	case md.JWKSURI != "" && v.Keys != nil:
		uri = md.JWKSURI
	default:
		return ErrNoKeys
	}
	return v.Keys.VerifyClaims(ctx, tok, set, uri, claims)
}

// candidates are the keys of set that may have signed a token with hdr:
// those with its kid when it names one, and whose alg, when they name
// one, is the header's.
func candidates(set jose.JSONWebKeySet, hdr jose.Header) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		out = append(out, k)
	}
	return out
}

// Subject returns the sub claim of an assertion, unverified: the client_id
// to look the client up by, whose keys then verify the assertion. It
// refuses, as Verify would, a token that is not a compact JWS with one
// signature of an allowed algorithm.
func Subject(assertion string) (string, error) {
	tok, err := jwt.ParseSigned(assertion, algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil || c.Subject == "" {
		return "", fmt.Errorf("%w: no sub", ErrMalformed)
	}
	return c.Subject, nil
}
