package mcpoauth

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
)

// GrantJWTBearer is the RFC 7523 §2.1 JWT bearer grant, named by its URN,
// as MCP enterprise-managed authorization uses it
// (io.modelcontextprotocol/enterprise-managed-authorization, SEP-990): a
// company's identity provider issues an Identity Assertion JWT
// Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant)
// for one of its users, one client and this server, and the client redeems
// it here without a consent page. It needs TrustedIdentityProviders and a
// Model that implements AssertionReplayStore.
const GrantJWTBearer = grants.JWTBearer

// DefaultIDJAGMaxLifetime is IdentityProvider.MaxAssertionLifetime's
// default: ID-JAGs are short-lived (identity providers issue them for five
// minutes), and the replay store keeps each one's id until it expires.
const DefaultIDJAGMaxLifetime = 10 * time.Minute

// IdentityProvider is an enterprise identity provider the server trusts to
// issue ID-JAGs: the jwt-bearer grant accepts an assertion whose iss is
// Issuer, signed by one of its keys (RS256, PS256, ES256 or EdDSA; never
// none or HMAC), with typ oauth-id-jag+jwt, aud this server's issuer
// alone, client_id the client that authenticated (a confidential one), a
// sub, a jti never used before (on any replica sharing the Model), iat,
// and exp not passed and at most MaxAssertionLifetime after iat; its
// resource claim, if any, must name this server's ResourceServerURL.
//
// The user of the grant it makes is Issuer + "#" + sub (as package
// upstream names users), its identity (bearer.AuthInfo.Identity) the iss,
// sub and email claims. User ids share one space: an application that
// also signs users in itself must never give one of its users an id of
// the form "<issuer>#<anything>", or that user would see, revoke and be
// remembered for the enterprise user's grants. Its scopes are the assertion's scope claim
// narrowed to ScopesSupported and the client's registered scope (or, if
// the claim is absent, the client's default, as for any grant).
type IdentityProvider struct {
	// Issuer is the provider's issuer identifier (its metadata's issuer),
	// compared byte for byte with the iss claim: an absolute https URL (http
	// only on localhost, 127.0.0.1 or [::1]).
	Issuer string
	// JWKSURL is where the provider publishes its signing keys (its
	// metadata's jwks_uri): https, or http on a loopback host for
	// development. It is fetched when first needed, through an ordinary
	// transport (a provider on the company's network is reachable; the
	// URL is the operator's, not a client's), without redirects, at most
	// 64 KB; a key set is used for five minutes, and an assertion whose
	// kid it lacks fetches it again at most every 30 seconds (key
	// rotation). One of JWKSURL and JWKS is required.
	JWKSURL string
	// JWKS is the provider's JWK Set document (RFC 7517 §5) itself,
	// instead of JWKSURL; only its public signature keys are used.
	JWKS []byte
	// MaxAssertionLifetime bounds an assertion's exp - iat. Default:
	// DefaultIDJAGMaxLifetime.
	MaxAssertionLifetime time.Duration
	// RefreshTokens lets the grants of this provider's assertions carry a
	// refresh token (when the refresh grant is on and the client registered
	// it, or asked for offline_access), refreshable up to GrantLifetime.
	// Default false, as the ID-JAG draft (§4.4.3) recommends: the client
	// asks the provider for a new ID-JAG when its access token expires, so
	// the company's policy (a user who left, a client withdrawn) applies to
	// every new token.
	RefreshTokens bool
}

// validateIdentityProviders checks TrustedIdentityProviders against the
// jwt-bearer grant: each needs the other, and the Model must record
// assertion ids.
func (s *settings) validateIdentityProviders() error {
	on := contains(s.GrantTypes, GrantJWTBearer)
	switch {
	case on && len(s.TrustedIdentityProviders) == 0:
		return configError("TrustedIdentityProviders", "required with the jwt-bearer grant")
	case !on && len(s.TrustedIdentityProviders) > 0:
		return configError("TrustedIdentityProviders", "set, but GrantTypes does not enable GrantJWTBearer")
	case !on:
		return nil
	}
	if _, ok := s.Model.(AssertionReplayStore); !ok {
		return configError("GrantTypes", "the jwt-bearer grant needs a Model that implements AssertionReplayStore (each identity assertion is used once); "+missingMethods(s.Model, reflect.TypeFor[AssertionReplayStore]()))
	}
	s.idJAG = &grants.IDJAGVerifier{
		Issuers:  make(map[string]*grants.TrustedIssuer, len(s.TrustedIdentityProviders)),
		Audience: s.issuer,
		Replay:   s.Model.(AssertionReplayStore),
		Keys:     &clientjwt.KeySets{Now: s.Now, OperatorURLs: true},
	}
	for i, p := range s.TrustedIdentityProviders {
		field := fmt.Sprintf("TrustedIdentityProviders[%d]", i)
		t, err := p.validate(field, s.issuer)
		if err != nil {
			return err
		}
		if s.idJAG.Issuers[t.Issuer] != nil {
			return configError(field+".Issuer", fmt.Sprintf("%q is listed twice", t.Issuer))
		}
		s.idJAG.Issuers[t.Issuer] = t
	}
	return nil
}

// validate checks one provider and returns what the grant uses.
func (p IdentityProvider) validate(field, ownIssuer string) (*grants.TrustedIssuer, error) {
	if err := operatorURL(p.Issuer); err != nil {
		return nil, configError(field+".Issuer", err.Error())
	}
	if p.Issuer == ownIssuer {
		// ID-JAG draft §8.3: the grant crosses trust domains; a server
		// trusting itself would turn any assertion it signs into tokens.
		return nil, configError(field+".Issuer", "must not be this server's own issuer")
	}
	t := &grants.TrustedIssuer{Issuer: p.Issuer, MaxLifetime: p.MaxAssertionLifetime, RefreshTokens: p.RefreshTokens}
	switch {
	case (p.JWKSURL == "") == (len(p.JWKS) == 0):
		return nil, configError(field, "exactly one of JWKSURL and JWKS is required")
	case p.JWKSURL != "":
		if err := operatorURL(p.JWKSURL); err != nil {
			return nil, configError(field+".JWKSURL", err.Error())
		}
		t.JWKSURL = p.JWKSURL
	default:
		set, err := clientjwt.ParseKeySet(p.JWKS)
		if err != nil || len(set.Keys) == 0 {
			return nil, configError(field+".JWKS", "must be a JWK Set with at least one public signature key")
		}
		t.Keys = set
	}
	switch {
	case t.MaxLifetime == 0:
		t.MaxLifetime = DefaultIDJAGMaxLifetime
	case t.MaxLifetime < time.Second:
		return nil, configError(field+".MaxAssertionLifetime", "must be at least one second")
	}
	return t, nil
}

// operatorURL checks a URL of the operator's configuration the server
// fetches or compares: absolute, without userinfo or fragment, https, or
// http on a loopback host (development).
func operatorURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("must be an absolute URL without userinfo or fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && redirect.IsLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("must use https (http only for localhost, 127.0.0.1 or [::1])")
}
