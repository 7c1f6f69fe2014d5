// Package grants holds the transport-free logic of the authorization server:
// what each grant checks, in which order, and what it stores. Handlers parse
// HTTP and render; everything that decides lives here.
//
// The package declares the narrow store interfaces it consumes; the root
// package's Model satisfies all of them.
package grants

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/resource"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/internal/telemetry"
	"github.com/mcpoauth/mcpoauth/record"
)

// OfflineAccess is the scope with which a client asks for a refresh token
// (OpenID Connect Core §11; MCP SEP-2207). It is no resource's scope: the
// authorization server metadata lists it while the refresh grant is on, the
// protected resource metadata never does, and a request may carry it
// whatever ScopesSupported says.
const OfflineAccess = "offline_access"

// Grant type identifiers (RFC 6749 §4, RFC 8628 §3.4).
const (
	AuthorizationCode = "authorization_code"
	RefreshToken      = "refresh_token"
	ClientCredentials = "client_credentials"
	DeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// ClientStore resolves clients.
type ClientStore interface {
	GetClient(ctx context.Context, clientID string) (*record.Client, error)
}

// ClientRegistrar stores new clients (RFC 7591), and replaces and removes
// them for the server's client administration. The root package's
// ClientRegistrar documents the contract: a delete also removes everything
// issued to the client, atomically.
type ClientRegistrar interface {
	RegisterClient(ctx context.Context, client *record.Client) error
	UpdateClient(ctx context.Context, client *record.Client) error
	DeleteClient(ctx context.Context, clientID string) error
}

// RequestStore keeps pending authorization requests between /authorize and
// the user's decision.
type RequestStore interface {
	SaveAuthorizationRequest(ctx context.Context, req *record.AuthorizationRequest) error
	GetAuthorizationRequest(ctx context.Context, id record.Digest) (*record.AuthorizationRequest, error)
	ConsumeAuthorizationRequest(ctx context.Context, id record.Digest) (*record.AuthorizationRequest, error)
}

// CodeStore keeps authorization codes.
type CodeStore interface {
	SaveAuthorizationCode(ctx context.Context, code *record.AuthorizationCode) error
	GetAuthorizationCode(ctx context.Context, code record.Digest) (*record.AuthorizationCode, error)
	ConsumeAuthorizationCode(ctx context.Context, code record.Digest, clientID string, issued ...*record.Token) error
}

// TokenStore keeps access and refresh tokens.
type TokenStore interface {
	SaveTokens(ctx context.Context, tokens ...*record.Token) error
	GetToken(ctx context.Context, token record.Digest) (*record.Token, error)
	RotateRefreshToken(ctx context.Context, token record.Digest, clientID string, at, reuseSince time.Time, issued ...*record.Token) error
	RevokeToken(ctx context.Context, token record.Digest, clientID string) (*record.Token, error)
	RevokeGrant(ctx context.Context, grantID string) error
}

// DeviceStore keeps RFC 8628 device authorizations. The root package's
// DeviceStore documents the contract; every update is conditional, so a poll
// never overwrites a decision and an approved device code is redeemed once.
type DeviceStore interface {
	SaveDeviceAuthorization(ctx context.Context, d *record.DeviceAuthorization) error
	GetDeviceAuthorization(ctx context.Context, deviceCode record.Digest) (*record.DeviceAuthorization, error)
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode record.Digest) (*record.DeviceAuthorization, error)
	ResolveDeviceAuthorization(ctx context.Context, userCode record.Digest, decision record.DeviceDecision) error
	RecordDevicePoll(ctx context.Context, deviceCode record.Digest, clientID string, seen, next record.DevicePoll) error
	ConsumeDeviceAuthorization(ctx context.Context, deviceCode record.Digest, clientID string, now time.Time, issued ...*record.Token) error
	DeleteDeviceAuthorization(ctx context.Context, deviceCode record.Digest, clientID string) error
}

// GrantStore keeps grants as records (the root package's GrantStore
// documents the contract).
type GrantStore interface {
	SaveGrant(ctx context.Context, g *record.Grant) error
	GetGrant(ctx context.Context, grantID string) (*record.Grant, error)
	ListUserGrants(ctx context.Context, userID string) ([]*record.Grant, error)
	ListClientGrants(ctx context.Context, clientID string) ([]*record.Grant, error)
	RecordGrantUse(ctx context.Context, grantID string, at time.Time) error
}

// IdentifyFunc is the application's hook on an approval
// (Config.OnApproval): given the grant about to be made, it returns who the
// user is at the upstream provider.
type IdentifyFunc func(g *record.Grant) (*record.Identity, error)

// Store is everything the authorization-code and refresh-token grants need.
type Store interface {
	ClientStore
	RequestStore
	CodeStore
	TokenStore
}

// ErrSignInRequired: nobody is signed in to approve (or, for a device,
// deny) a request. 403, not 401: sign-in belongs to the application, and a
// 401 must carry a challenge (RFC 9110 §15.5.2).
var ErrSignInRequired = &oautherr.Error{Code: oautherr.CodeAccessDenied, Description: "sign-in required", Status: http.StatusForbidden}

// Policy is the configuration the grants apply. The root package fills it
// from Config, defaults applied.
type Policy struct {
	// Now is the clock.
	Now func() time.Time
	// AccessTokenLifetime, RefreshTokenLifetime, AuthorizationCodeLifetime and
	// AuthorizationRequestLifetime bound each credential.
	AccessTokenLifetime          time.Duration
	RefreshTokenLifetime         time.Duration
	AuthorizationCodeLifetime    time.Duration
	AuthorizationRequestLifetime time.Duration
	// RefreshTokenReuseInterval is how long after its rotation a refresh
	// token may be presented again by its client without being taken for a
	// replay; zero or negative: never.
	RefreshTokenReuseInterval time.Duration
	// GrantLifetime caps a grant: no refresh token outlives its grant's start
	// by more than this, however often it is rotated.
	GrantLifetime time.Duration
	// ClientSecretLifetime is the lifetime of a registered secret; zero or
	// negative means it never expires.
	ClientSecretLifetime time.Duration
	// ScopesSupported lists the scopes the server knows; empty means any
	// syntactically valid scope is accepted.
	ScopesSupported []string
	// ImpliedScopes is the scope hierarchy (one scope's implied scopes);
	// a scope implied by a registered or granted one counts as within it.
	// nil: none.
	ImpliedScopes func(scope string) []string
	// Resource is the canonical RFC 8707 resource the server issues for;
	// empty means any absolute http(s) resource is accepted.
	Resource string
	// StrictResource requires a resource on authorization requests.
	StrictResource bool
	// GrantTypes are the enabled grant types.
	GrantTypes []string
	// AllowInsecureRedirectURIs lets clients register non-loopback http
	// redirect URIs (development only).
	AllowInsecureRedirectURIs bool
	// DeviceVerificationURI is the page where the user enters a device's
	// user code (RFC 8628 §3.2 verification_uri), an absolute URL.
	DeviceVerificationURI string
	// DeviceAuthorizationLifetime bounds a device authorization (RFC 8628
	// §3.2 expires_in).
	DeviceAuthorizationLifetime time.Duration
	// DevicePollInterval is the initial least time between two polls of a
	// device code, in whole seconds (RFC 8628 §3.2 interval).
	DevicePollInterval time.Duration
	// DeviceMaxPollInterval caps the interval slow_down raises.
	DeviceMaxPollInterval time.Duration
	// IntrospectionClients are the client IDs of resource servers that may
	// introspect every access token bound to Resource (see Introspect).
	IntrospectionClients []string
	// DPoPEnabled accepts DPoP proofs at the token endpoint (RFC 9449);
	// DPoPRequired refuses token requests without one.
	DPoPEnabled, DPoPRequired bool
}

// Enabled reports whether the server enables a grant type.
func (p *Policy) Enabled(grantType string) bool { return slices.Contains(p.GrantTypes, grantType) }

// Service runs the grants against a store.
type Service struct {
	Policy
	Store Store
	// Devices stores device authorizations; nil unless the device grant is
	// enabled.
	Devices DeviceStore
	// Documents resolves URL client_ids through client ID metadata
	// documents; nil unless they are enabled. See GetClient.
	Documents ClientDocuments
	// JWTAccessTokens, if set, makes access tokens RFC 9068 JWTs; nil:
	// opaque, and no JOSE code runs.
	JWTAccessTokens *JWTAccessTokens
	// Assertions verifies private_key_jwt client assertions; nil when the
	// Model cannot record assertion ids, and then private_key_jwt is
	// neither advertised nor accepted.
	Assertions *clientjwt.Verifier
	// IDJAG verifies the identity assertions of the jwt-bearer grant; nil
	// unless that grant is enabled.
	IDJAG *IDJAGVerifier
	// Usage records that clients were issued tokens (see recordUse); nil
	// when the store cannot, or idle clients are kept.
	Usage ClientUsageRecorder
	// UseNotRecorded receives a failure of Usage, which does not fail the
	// token request; nil: ignored.
	UseNotRecorded func(ctx context.Context, err error)
	// Grants stores approvals as grant records; nil when the store cannot.
	Grants GrantStore
	// Identities, if set (with Grants), makes VerifyAccessToken tell the
	// user's upstream identity; nil when no approval records one.
	Identities *IdentityCache
	// Telemetry receives the grants' audit events and metrics; nil: none.
	// Set it with Observe.
	Telemetry *telemetry.Telemetry
	// observeRegistrar wraps a ClientRegistrar as Observe wrapped the
	// stores; nil when Model calls are not observed.
	observeRegistrar func(ClientRegistrar) ClientRegistrar
}

// ParseScope splits an RFC 6749 §3.3 scope string: scope-tokens of
// %x21 / %x23-5B / %x5D-7E separated by single spaces. Duplicates are
// dropped, order kept.
func ParseScope(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	// One allocation: the tokens are cut in place rather than split into
	// a slice of their own first.
	out := make([]string, 0, strings.Count(s, " ")+1)
	// Duplicates are found by comparing with each token kept, until there
	// are many: a 64 KB scope of distinct tokens took a quarter of a second
	// of CPU that way, for anyone who can send a request.
	var seen map[string]struct{}
	for rest, more := s, true; more; {
		var p string
		p, rest, more = strings.Cut(rest, " ")
		if p == "" || !validScopeToken(p) {
			return nil, false
		}
		if seen == nil && len(out) == maxScopesCompared {
			seen = make(map[string]struct{}, cap(out))
			for _, o := range out {
				seen[o] = struct{}{}
			}
		}
		if seen != nil {
			if _, dup := seen[p]; dup {
				continue
			}
			seen[p] = struct{}{}
		} else if slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out, true
}

// maxScopesCompared is how many distinct scope tokens ParseScope compares
// pairwise before it switches to a set.
const maxScopesCompared = 16

func validScopeToken(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// ErrNoDefaultScope: a request named no scope, and there is none to default
// to.
var ErrNoDefaultScope = oautherr.InvalidScope("scope is required: the server has no default scope (configure ScopesSupported, or register the client with a scope)")

// ResolveScopes decides the scopes of a new grant for client. An empty
// request gets the client's registered scope, else ScopesSupported. Every
// scope must be supported by the server and, when the client registered a
// scope, be part of it (or implied by it, ImpliedScopes); offline_access is accepted whenever the refresh
// grant is on.
func (s *Service) ResolveScopes(client *record.Client, requested string) ([]string, *oautherr.Error) {
	scopes, ok := ParseScope(requested)
	if !ok {
		return nil, oautherr.InvalidScope("malformed scope")
	}
	registered, _ := ParseScope(client.Metadata.Scope)
	if len(scopes) == 0 {
		switch {
		case len(registered) > 0:
			return s.sharedScopes(registered), nil
		case len(s.ScopesSupported) > 0:
			return s.ScopesSupported[:len(s.ScopesSupported):len(s.ScopesSupported)], nil
		}
		// A token with no scope passes no scope check: fail here, where the
		// description can say what is missing, not at every call.
		return nil, ErrNoDefaultScope
	}
	for i, sc := range scopes {
		if sc == OfflineAccess {
			if !s.Enabled(RefreshToken) {
				return nil, oautherr.InvalidScope("offline_access needs the refresh_token grant, which this server does not enable")
			}
			scopes[i] = OfflineAccess // the constant, not the request's copy
			continue
		}
		if len(s.ScopesSupported) > 0 {
			j := slices.Index(s.ScopesSupported, sc)
			if j < 0 {
				return nil, oautherr.InvalidScope("requested scope is not supported")
			}
			// Keep the server's copy of the string, not the request's: the
			// records that store the scopes would otherwise keep the request
			// body alive as long as they live.
			scopes[i] = s.ScopesSupported[j]
		}
		if len(registered) > 0 && !bearer.HasScope(registered, sc, s.ImpliedScopes) {
			return nil, oautherr.InvalidScope("requested scope is not registered for this client")
		}
	}
	return s.sharedScopes(scopes), nil
}

// sharedScopes returns scopes as a slice of ScopesSupported when they are a
// run of it, in its order (one scope, or all of them, as most requests
// ask), so that the records of a million tokens share the server's array
// rather than hold a copy each (16 bytes a token for one scope). The
// capacity is cut, so that an append never writes into ScopesSupported;
// records are read-only, and ScopesSupported is the server's own copy.
func (s *Service) sharedScopes(scopes []string) []string {
	sup := s.ScopesSupported
	if len(scopes) == 0 {
		return scopes
	}
	i := slices.Index(sup, scopes[0])
	if i < 0 || i+len(scopes) > len(sup) || !slices.Equal(sup[i:i+len(scopes)], scopes) {
		return scopes
	}
	return sup[i : i+len(scopes) : i+len(scopes)]
}

// ResolveResource decides the RFC 8707 resource a new grant is bound to. A
// missing resource is invalid_target under StrictResource, else the server's
// configured resource applies (MCP clients must send it; the MCP Go SDK's
// client_credentials flow does not).
func (s *Service) ResolveResource(requested string, strict bool) (string, *oautherr.Error) {
	if requested == "" {
		if strict {
			return "", oautherr.InvalidTarget("resource is required")
		}
		return s.Resource, nil
	}
	if requested == s.Resource && requested != "" {
		return requested, nil // the canonical form already: nothing to parse
	}
	canon, err := resource.Canonical(requested)
	if err != nil {
		return "", oautherr.InvalidTarget("resource must be an absolute URI without fragment")
	}
	if s.Resource != "" && canon != s.Resource {
		return "", oautherr.InvalidTarget("resource is not served by this authorization server")
	}
	return canon, nil
}

// checkBoundResource verifies a resource repeated at the token endpoint names
// the one the grant is bound to; omitting it is allowed (golang.org/x/oauth2
// omits it on refresh).
func checkBoundResource(requested, bound string) *oautherr.Error {
	if requested == "" || requested == bound {
		return nil // bound is canonical: an exact repeat needs no parsing
	}
	canon, err := resource.Canonical(requested)
	if err != nil || canon != bound {
		return oautherr.InvalidTarget("resource does not match the grant")
	}
	return nil
}

// newGrantID names a new grant.
// It is 128 random bits in 22 characters rather than a UUID string, which
// takes twice the memory in every stored token.
func newGrantID() string { return secret.NewID() }

// issued is a freshly minted credential pair: the value for the client and the
// record for the store.
type issued struct {
	value  string
	record *record.Token
}

// mintToken creates a token record of kind for a grant.
func (s *Service) mintToken(kind record.TokenKind, clientID, userID, grantID string, scopes []string, res string, now, grantExpires time.Time) issued {
	v := secret.New()
	life := s.AccessTokenLifetime
	if kind == record.RefreshToken {
		life = s.RefreshTokenLifetime
	}
	exp := now.Add(life)
	if !grantExpires.IsZero() && exp.After(grantExpires) {
		exp = grantExpires
	}
	return issued{value: v, record: &record.Token{
		Digest: secret.Digest(v), Kind: kind, ClientID: clientID, UserID: userID, GrantID: grantID,
		Scopes: scopes, Resource: res, IssuedAt: now, ExpiresAt: exp, GrantExpiresAt: grantExpires,
	}}
}

// mintTokens mints what a token response of a grant carries: an access
// token bound to jkt ("" for none), and with refresh a refresh token, bound
// as refreshBinding says. It returns the response and the records to store.
func (s *Service) mintTokens(client *record.Client, userID, grantID string, scopes []string, res, jkt string, now, grantExpires time.Time, refresh bool) (*TokenResponse, []*record.Token, *oautherr.Error) {
	access, oerr := s.mintBoundAccessToken(client.ID, userID, grantID, scopes, res, jkt, now, grantExpires)
	if oerr != nil {
		return nil, nil, oerr
	}
	toSave := []*record.Token{access.record}
	resp := &TokenResponse{AccessToken: access.value, ExpiresIn: expiresIn(access.record.ExpiresAt, now), Scopes: scopes, DPoP: jkt != ""}
	if refresh {
		r := s.mintToken(record.RefreshToken, client.ID, userID, grantID, scopes, res, now, grantExpires)
		r.record.JKT = refreshBinding(client, jkt)
		toSave = append(toSave, r.record)
		resp.RefreshToken = r.value
	}
	return resp, toSave, nil
}

// discardTimeout bounds discardGrant, which outlives the request.
const discardTimeout = 5 * time.Second

// discardGrant revokes a grant none of whose tokens or codes was handed
// out, so that it neither lists as a connected app nor counts as
// remembered consent. It runs even when the request's context has ended (a
// client that hung up is a likely cause of the failure it cleans up
// after), within discardTimeout; its error is dropped, since the failure it
// follows is the one reported.
func (s *Service) discardGrant(ctx context.Context, grantID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
	defer cancel()
	_ = s.Store.RevokeGrant(ctx, grantID)
}

// storeError turns a store failure into server_error, keeping the cause for
// ErrorHandler.
func storeError(err error) *oautherr.Error { return oautherr.ServerError(err) }

// isNotFound reports a missing record.
func isNotFound(err error) bool { return errors.Is(err, record.ErrNotFound) }
