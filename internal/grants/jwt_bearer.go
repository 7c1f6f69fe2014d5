package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// JWTBearer is the RFC 7523 §2.1 grant type: a JWT as an authorization
// grant. This server accepts one kind of JWT with it, the Identity
// Assertion JWT Authorization Grant (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant) of the MCP extension
// io.modelcontextprotocol/enterprise-managed-authorization (SEP-990).
const JWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// IDJAGProfile is the authorization grant profile the server metadata
// lists in authorization_grant_profiles_supported (ID-JAG draft §7.2).
const IDJAGProfile = "urn:ietf:params:oauth:grant-profile:id-jag"

// IDJAGType is the typ header of an ID-JAG (ID-JAG draft §3; RFC 8725
// §3.11: explicit typing, so that no other JWT of the IdP, such as an ID
// token, passes for one).
const IDJAGType = "oauth-id-jag+jwt"

// IDJAGLeeway tolerates clocks that differ a little for iat and nbf (not
// for exp: an expired assertion is refused).
const IDJAGLeeway = 30 * time.Second

// TrustedIssuer is an identity provider whose ID-JAGs the server accepts.
type TrustedIssuer struct {
	// Issuer is compared byte for byte with the iss claim.
	Issuer string
	// JWKSURL is fetched (and cached) for the keys when Keys is empty.
	JWKSURL string
	// Keys are the provider's public keys, when configured in place.
	Keys jose.JSONWebKeySet
	// MaxLifetime bounds exp - iat.
	MaxLifetime time.Duration
	// RefreshTokens lets grants of this provider carry refresh tokens.
	RefreshTokens bool
}

// IDJAGVerifier checks ID-JAGs against the trusted identity providers.
// Its fields are set once, before use.
type IDJAGVerifier struct {
	// Issuers are the trusted providers by issuer identifier.
	Issuers map[string]*TrustedIssuer
	// Audience is this server's issuer identifier, the one aud accepted.
	Audience string
	// Replay records each (issuer, jti) until exp, on every replica.
	Replay clientjwt.ReplayStore
	// Keys fetches the providers' JWKS URLs.
	Keys *clientjwt.KeySets
}

// idJAGClaims are the claims of an ID-JAG this server reads (ID-JAG draft
// §3).
type idJAGClaims struct {
	jwt.Claims
	ClientID string          `json:"client_id"`
	Resource json.RawMessage `json:"resource"`
	// Scope is nil when the claim is absent, which differs from an empty
	// one.
	Scope *string         `json:"scope"`
	Email string          `json:"email"`
	Cnf   json.RawMessage `json:"cnf"`
	// boundJKT is cnf.jkt of a key-bound assertion; "" for a bearer one.
	boundJKT string
}

// idJAGInvalid answers every refused assertion: RFC 7521 §5.2 and RFC 7523
// §3.1 name invalid_grant. The description says which rule failed; none
// depends on a secret.
func idJAGInvalid(format string, a ...any) *oautherr.Error {
	return oautherr.InvalidGrant("the identity assertion is not acceptable: " + fmt.Sprintf(format, a...))
}

// verify checks everything about an ID-JAG but its jti's novelty, which
// is recorded only once the whole request is found valid (a bad request
// burns nothing): typ, an allowed algorithm, a trusted issuer whose key
// verifies the signature, aud this server alone, client_id the
// authenticated client, sub, jti, iat and exp present, exp not passed and
// at most MaxLifetime after iat, iat and nbf not in the future.
func (v *IDJAGVerifier) verify(ctx context.Context, assertion, clientID string, now time.Time) (*TrustedIssuer, *idJAGClaims, *oautherr.Error) {
	tok, err := jwt.ParseSigned(assertion, clientjwt.SignatureAlgorithms())
	if err != nil || len(tok.Headers) != 1 {
		// Not a compact JWS, or alg none, HS256 or another outside the
		// allow-list.
		return nil, nil, idJAGInvalid("not a JWT signed with an allowed algorithm (%s)", strings.Join(clientjwt.Algorithms, ", ")).WithCause(err)
	}
	hdr := tok.Headers[0]
	if !isIDJAGType(hdr.ExtraHeaders[jose.HeaderType]) {
		return nil, nil, idJAGInvalid("typ must be %s", IDJAGType)
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, nil, idJAGInvalid("malformed claims").WithCause(err)
	}
	idp := v.Issuers[unverified.Issuer]
	if idp == nil {
		return nil, nil, idJAGInvalid("its issuer is not a trusted identity provider")
	}
	var c idJAGClaims
	if err := v.Keys.VerifyClaims(ctx, tok, idp.Keys, idp.JWKSURL, &c); err != nil {
		return nil, nil, idJAGInvalid("no key of the identity provider verifies its signature").WithCause(err)
	}
	switch {
	case c.Issuer != idp.Issuer:
		return nil, nil, idJAGInvalid("its issuer is not a trusted identity provider")
	case len(c.Audience) != 1 || c.Audience[0] != v.Audience:
		// ID-JAG draft §4.4.1: aud is this server's issuer identifier, a
		// string or an array of exactly that one element.
		return nil, nil, idJAGInvalid("aud must be this authorization server's issuer, alone")
	case c.ClientID != clientID:
		// ID-JAG draft §4.4.1: the client it was issued to is the one
		// that authenticated.
		return nil, nil, idJAGInvalid("client_id is not the authenticated client")
	case c.Subject == "":
		return nil, nil, idJAGInvalid("sub is required")
	case c.ID == "":
		return nil, nil, idJAGInvalid("jti is required")
	case c.Expiry == nil || c.IssuedAt == nil:
		return nil, nil, idJAGInvalid("exp and iat are required")
	case !now.Before(c.Expiry.Time()):
		return nil, nil, idJAGInvalid("expired")
	case c.IssuedAt.Time().After(now.Add(IDJAGLeeway)):
		return nil, nil, idJAGInvalid("issued in the future")
	case c.Expiry.Time().Sub(c.IssuedAt.Time()) > idp.MaxLifetime:
		// The replay store keeps every jti until its exp: a bounded
		// lifetime bounds the store, and a stolen assertion's use.
		return nil, nil, idJAGInvalid("it lives longer than this server accepts (%s)", idp.MaxLifetime)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(IDJAGLeeway)):
		return nil, nil, idJAGInvalid("not valid yet")
	}
	if len(c.Cnf) > 0 && string(c.Cnf) != "null" {
		// ID-JAG draft §8.5: a key-bound assertion. Only a DPoP key
		// (cnf.jkt, RFC 9449 §6) can be proven here; any other
		// confirmation method (x5t#S256 of mTLS) is refused rather than
		// dropped, which would turn a bound grant into a bearer one.
		var cnf map[string]json.RawMessage
		if err := json.Unmarshal(c.Cnf, &cnf); err != nil || len(cnf) != 1 || cnf["jkt"] == nil ||
			json.Unmarshal(cnf["jkt"], &c.boundJKT) != nil || c.boundJKT == "" {
			return nil, nil, idJAGInvalid("its cnf names a confirmation method other than a DPoP key (jkt)")
		}
	}
	return idp, &c, nil
}

// isIDJAGType reports whether a typ header names an ID-JAG: media types
// compare case-insensitively, and RFC 7515 §4.1.9 lets "application/" be
// omitted (or not).
func isIDJAGType(typ any) bool {
	s, ok := typ.(string)
	if !ok {
		return false
	}
	if len(s) > len("application/") && strings.EqualFold(s[:len("application/")], "application/") {
		s = s[len("application/"):]
	}
	return strings.EqualFold(s, IDJAGType)
}

// useID records the assertion's jti as used, per issuer: an ID-JAG is
// redeemed once, on whichever replica. The replay store's client-ID
// argument is the issuer behind a NUL byte, which no client ID holds, so
// that an identity provider's jti never collides with a client
// assertion's.
func (v *IDJAGVerifier) useID(ctx context.Context, idp *TrustedIssuer, c *idJAGClaims) error {
	return v.Replay.UseAssertionID(ctx, "\x00id-jag:"+idp.Issuer, c.ID, c.Expiry.Time())
}

// JWTBearerRequest is a token request with the jwt-bearer grant type from
// an authenticated client.
type JWTBearerRequest struct {
	Client    *record.Client
	Assertion string
	Scope     string
	Resource  string
	// JKT is the thumbprint of the key of the request's DPoP proof (RFC
	// 9449 §5); "" for none.
	JKT string
}

// errIDJAGReplayed answers an ID-JAG presented a second time.
var errIDJAGReplayed = oautherr.InvalidGrant("the identity assertion was used before")

// JWTBearer redeems an ID-JAG (RFC 7523 §2.1, ID-JAG draft §4.3 and
// §4.4): a company's identity provider vouches that its user may use this
// client with this server, so no consent page is shown. The client must be
// confidential (ID-JAG draft §8.1) and authenticated; the assertion must
// pass verify; its resource must be this server's; the scopes are those it
// names (or, if it names none, the client's default), narrowed to what the
// client and the server allow, and a scope parameter may narrow them
// further. Each redemption makes a grant of its own, for the user
// issuer#sub, recorded with the user's identity at the provider, so it is
// listed and revoked as any other. A refresh token goes with it only when
// the provider's RefreshTokens allows (the draft says SHOULD NOT: a client
// asks the provider for a new ID-JAG instead, and the provider's policy
// applies again).
func (s *Service) JWTBearer(ctx context.Context, x JWTBearerRequest) (*TokenResponse, *oautherr.Error) {
	if !s.Enabled(JWTBearer) || s.IDJAG == nil || !x.Client.HasGrantType(JWTBearer) {
		return nil, oautherr.UnauthorizedClient("client is not allowed the jwt-bearer grant")
	}
	if x.Client.IsPublic() {
		// ID-JAG draft §8.1: for confidential clients only; a public
		// client proves nothing by its client_id, and anyone holding the
		// assertion could redeem it.
		return nil, oautherr.UnauthorizedClient("the jwt-bearer grant requires a confidential client")
	}
	if x.Assertion == "" {
		return nil, oautherr.InvalidRequest("assertion is required")
	}
	now := s.Now()
	idp, c, oerr := s.IDJAG.verify(ctx, x.Assertion, x.Client.ID, now)
	if oerr != nil {
		return nil, oerr
	}
	if c.boundJKT != "" && c.boundJKT != x.JKT {
		// ID-JAG draft §8.5: the client proves the key the identity
		// provider bound the assertion to, with a DPoP proof of this
		// request; the tokens are then bound to it.
		return nil, idJAGInvalid("it is bound to a key (cnf.jkt) the request's DPoP proof does not prove")
	}
	res, oerr := s.idJAGResource(c.Resource, x.Resource)
	if oerr != nil {
		return nil, oerr
	}
	scopes, oerr := s.idJAGScopes(x.Client, c.Scope, x.Scope, idp.RefreshTokens)
	if oerr != nil {
		return nil, oerr
	}
	if err := s.IDJAG.useID(ctx, idp, c); err != nil {
		if errors.Is(err, record.ErrAlreadyUsed) {
			s.Telemetry.Replayed(ctx, JWTBearer)
			s.Telemetry.Emit(ctx, audit.Event{Type: audit.ReplayDetected, ClientID: x.Client.ID, UserID: idJAGUserID(idp, c), GrantType: JWTBearer, Outcome: audit.Failure, Reason: oautherr.CodeInvalidGrant})
			return nil, errIDJAGReplayed
		}
		return nil, storeError(err)
	}
	refresh := idp.RefreshTokens && s.issuesRefresh(x.Client, scopes)
	grant := &record.Grant{
		ID: newGrantID(), ClientID: x.Client.ID, UserID: idJAGUserID(idp, c), Scopes: scopes, Resource: res,
		CreatedAt: now, ExpiresAt: now.Add(s.AccessTokenLifetime),
		Identity: &record.Identity{Issuer: c.Issuer, Subject: c.Subject, Email: c.Email},
	}
	if refresh {
		grant.ExpiresAt = now.Add(s.GrantLifetime)
	}
	if oerr := s.saveGrant(ctx, grant); oerr != nil {
		return nil, oerr
	}
	resp, toSave, oerr := s.mintTokens(x.Client, grant.UserID, grant.ID, scopes, res, x.JKT, now, grant.ExpiresAt, refresh)
	if oerr != nil {
		s.discardGrant(ctx, grant.ID) // no token: no grant to list
		return nil, oerr
	}
	// As for client credentials: the client may have been deleted since it
	// authenticated, and then no token is handed out.
	if oerr := s.saveUnconsumed(ctx, x.Client, grant.ID, true, now, toSave); oerr != nil {
		return nil, oerr
	}
	s.issued(ctx, audit.TokenIssued, JWTBearer, x.Client.ID, grant.UserID, grant.ID, resp)
	return resp, nil
}

// idJAGUserID is the user an ID-JAG names: issuer#sub, as package
// upstream names a signed-in user (Identity.UserID), since sub is unique
// only within its issuer (ID-JAG draft §3).
func idJAGUserID(idp *TrustedIssuer, c *idJAGClaims) string { return idp.Issuer + "#" + c.Subject }

// idJAGResource decides the resource of an ID-JAG's tokens: the resource
// claim (a string, or an array naming this server among others: the draft
// lets the server grant a subset) must be this server's; absent, the
// configured resource applies. A resource parameter of the request must
// name the same one.
func (s *Service) idJAGResource(claim json.RawMessage, requested string) (string, *oautherr.Error) {
	var named []string
	if len(claim) > 0 && string(claim) != "null" {
		var one string
		if err := json.Unmarshal(claim, &one); err == nil {
			named = []string{one}
		} else if err := json.Unmarshal(claim, &named); err != nil || len(named) == 0 {
			return "", idJAGInvalid("resource must be a URI or an array of URIs")
		}
	}
	if len(named) == 0 {
		res, oerr := s.ResolveResource(requested, false)
		if oerr != nil {
			return "", oerr
		}
		return res, nil
	}
	for _, n := range named {
		res, oerr := s.ResolveResource(n, false)
		if oerr != nil || res == "" {
			continue
		}
		if oerr := checkBoundResource(requested, res); oerr != nil {
			return "", oerr
		}
		return res, nil
	}
	return "", oautherr.InvalidTarget("the identity assertion's resource is not served by this authorization server")
}

// idJAGScopes decides the scopes of an ID-JAG's tokens. The identity
// provider's scope claim is what its policy grants; the server grants the
// part of it that it supports and the client is registered for (ID-JAG
// draft §4.4.1: the granted scopes may be a subset), and invalid_scope if
// nothing is left. Without the claim, the client's default applies as for
// any grant (ResolveScopes). A scope parameter narrows further, and must
// stay within the claim. offline_access counts only where refresh tokens
// may be issued.
func (s *Service) idJAGScopes(c *record.Client, claim *string, requested string, refresh bool) ([]string, *oautherr.Error) {
	if claim == nil {
		scopes, oerr := s.ResolveScopes(c, requested)
		if oerr != nil {
			return nil, oerr
		}
		if !refresh {
			scopes = slices.DeleteFunc(scopes, func(sc string) bool { return sc == OfflineAccess })
		}
		if len(scopes) == 0 {
			return nil, oautherr.InvalidScope("no requested scope may be granted")
		}
		return scopes, nil
	}
	granted, ok := ParseScope(*claim)
	if !ok {
		return nil, idJAGInvalid("malformed scope")
	}
	if requested != "" {
		want, ok := ParseScope(requested)
		if !ok {
			return nil, oautherr.InvalidScope("malformed scope")
		}
		for _, sc := range want {
			if !slices.Contains(granted, sc) {
				return nil, oautherr.InvalidScope("requested scope is not granted by the identity assertion")
			}
		}
		granted = want
	}
	registered, _ := ParseScope(c.Metadata.Scope)
	var out []string
	for _, sc := range granted {
		switch {
		case sc == OfflineAccess:
			if !refresh || !s.Enabled(RefreshToken) {
				continue
			}
			sc = OfflineAccess // the constant, not the assertion's copy
		case len(s.ScopesSupported) > 0:
			i := slices.Index(s.ScopesSupported, sc)
			if i < 0 {
				continue
			}
			sc = s.ScopesSupported[i]
		}
		if sc != OfflineAccess && len(registered) > 0 && !bearer.HasScope(registered, sc, s.ImpliedScopes) {
			continue
		}
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, oautherr.InvalidScope("none of the identity assertion's scopes is supported by this server and registered for this client")
	}
	return out, nil
}
