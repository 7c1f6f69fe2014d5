package grants

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthMethodNone              = "none"
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
	// AuthMethodPrivateKeyJWT: the client signs assertions with a key of
	// its jwks or jwks_uri (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthMethodPrivateKeyJWT = clientjwt.AuthMethod
)

// Application types (OpenID Connect Dynamic Client Registration 1.0 §2).
const (
	ApplicationTypeWeb    = "web"
	ApplicationTypeNative = "native"
)

// AuthMethods are the token endpoint authentication methods every server
// supports, in the order metadata advertises them; private_key_jwt joins
// them where the Model can record assertion ids (see Service.AuthMethods).
var AuthMethods = []string{AuthMethodNone, AuthMethodClientSecretBasic, AuthMethodClientSecretPost}

// AuthMethods are the token endpoint authentication methods this server
// supports: AuthMethods, and private_key_jwt when Assertions is set.
func (s *Service) AuthMethods() []string {
	out := slices.Clone(AuthMethods)
	if s.Assertions != nil {
		out = append(out, AuthMethodPrivateKeyJWT)
	}
	return out
}

// supportsAuthMethod reports whether AuthMethods() lists method, without
// building the list.
func (s *Service) supportsAuthMethod(method string) bool {
	return slices.Contains(AuthMethods, method) || method == AuthMethodPrivateKeyJWT && s.Assertions != nil
}

// UsesSecret reports whether a token_endpoint_auth_method authenticates
// with a client secret the server issues.
func UsesSecret(method string) bool {
	return method == AuthMethodClientSecretBasic || method == AuthMethodClientSecretPost
}

// ValidateClientMetadata checks RFC 7591 client metadata and applies its
// defaults (RFC 7591 §2): token_endpoint_auth_method client_secret_basic,
// grant_types [authorization_code], response_types [code]. Grant types the
// server does not enable are dropped (RFC 7591 §3.2.1 lets the server replace
// values; the response shows what was registered).
//
// application_type (OpenID Connect Dynamic Client Registration 1.0 §2) is
// kept as sent and echoed. A "web" client may not register a loopback or
// private-use redirect URI: it is served from a host of its own, and the
// MCP authorization spec (2026-07-28) tells apps on the user's device, a
// web app on localhost included, to register as "native". A "native"
// client may register https URIs beside loopback and private-use ones
// (RFC 8252 §7.2; VS Code registers https://vscode.dev/redirect), though
// OIDC Registration §2 predates that and names only the latter two. No
// application_type, or another value, means no check: clients older than
// the 2026-07-28 revision send none, and OIDC's default "web" would refuse
// Cursor and Claude Code. A refusal is invalid_redirect_uri (RFC 7591
// §3.2.2, OIDC Registration §3.3: the value of a redirect URI is invalid
// for this client), not invalid_client_metadata.
func (s *Service) ValidateClientMetadata(m metadata.ClientMetadata) (metadata.ClientMetadata, *oautherr.Error) {
	// Metadata from DecodeClientMetadata passed this already; clients
	// registered from Go did not, and the pages show their names too.
	if err := m.ValidateText(); err != nil {
		// Its message names the member only: safe as error_description.
		return m, oautherr.InvalidClientMetadata(err.Error()).WithCause(err)
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthMethodClientSecretBasic
	}
	if m.DPoPBoundAccessTokens && !s.DPoPEnabled {
		// RFC 9449 §5.2: its token requests must then be refused; better
		// to say so now than at every one.
		return m, oautherr.InvalidClientMetadata("dpop_bound_access_tokens: this server does not support DPoP")
	}
	if !s.supportsAuthMethod(m.TokenEndpointAuthMethod) {
		return m, oautherr.InvalidClientMetadata("unsupported token_endpoint_auth_method")
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{AuthorizationCode}
	}
	var grants []string
	for _, g := range m.GrantTypes {
		if s.Enabled(g) && !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	if len(grants) == 0 {
		return m, oautherr.InvalidClientMetadata("none of the requested grant_types is supported")
	}
	m.GrantTypes = grants
	codeGrant := slices.Contains(grants, AuthorizationCode)
	if len(m.ResponseTypes) == 0 && codeGrant {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return m, oautherr.InvalidClientMetadata("only response_type code is supported")
		}
	}
	// RFC 7591 §2.1: grant_types and response_types must agree.
	if codeGrant != slices.Contains(m.ResponseTypes, "code") {
		return m, oautherr.InvalidClientMetadata("response_types and grant_types are inconsistent")
	}
	if slices.Contains(grants, ClientCredentials) && m.TokenEndpointAuthMethod == AuthMethodNone {
		// A public client cannot authenticate, so it cannot act for itself.
		return m, oautherr.InvalidClientMetadata("client_credentials requires a confidential client")
	}
	if codeGrant && len(m.RedirectURIs) == 0 {
		return m, oautherr.InvalidRedirectURI("redirect_uris is required for the authorization_code grant")
	}
	for _, u := range m.RedirectURIs {
		if err := redirect.Validate(u, s.AllowInsecureRedirectURIs); err != nil {
			return m, oautherr.InvalidRedirectURI(err.Error())
		}
	}
	if m.ApplicationType == ApplicationTypeWeb {
		for _, u := range m.RedirectURIs {
			if redirect.IsNativeOnly(u) {
				return m, oautherr.InvalidRedirectURI("a web client's redirect_uris must not be loopback or private-use URIs")
			}
		}
	}
	for field, u := range map[string]string{"client_uri": m.ClientURI, "logo_uri": m.LogoURI, "tos_uri": m.TOSURI, "policy_uri": m.PolicyURI, "jwks_uri": m.JWKSURI} {
		if u == "" {
			continue
		}
		if err := metadata.ValidateURI(field, u); err != nil {
			return m, oautherr.InvalidClientMetadata(field + " must be an http(s) URL without fragment")
		}
	}
	if m.JWKSURI != "" && len(m.JWKS) > 0 {
		return m, oautherr.InvalidClientMetadata("jwks and jwks_uri are mutually exclusive")
	}
	if m.TokenEndpointAuthMethod == AuthMethodPrivateKeyJWT {
		if oerr := validateClientKeys(m); oerr != nil {
			return m, oerr
		}
	}
	if m.Scope != "" {
		scopes, ok := ParseScope(m.Scope)
		if !ok {
			return m, oautherr.InvalidClientMetadata("malformed scope")
		}
		for _, sc := range scopes {
			if len(s.ScopesSupported) > 0 && !slices.Contains(s.ScopesSupported, sc) {
				return m, oautherr.InvalidClientMetadata("scope is not supported")
			}
		}
	}
	// Echo empty lists as [] rather than null.
	if m.RedirectURIs == nil {
		m.RedirectURIs = []string{}
	}
	if m.ResponseTypes == nil {
		m.ResponseTypes = []string{}
	}
	return m, nil
}

// validateClientKeys checks the keys of a private_key_jwt client (OpenID
// Connect Dynamic Client Registration §2: it needs jwks or jwks_uri): an
// https jwks_uri, or a jwks with at least one public signature key. A
// jwks_uri is fetched when an assertion needs it, not here: registration
// does not make the server fetch a URL a stranger chose.
func validateClientKeys(m metadata.ClientMetadata) *oautherr.Error {
	switch {
	case m.JWKSURI != "":
		if !strings.HasPrefix(m.JWKSURI, "https://") {
			return oautherr.InvalidClientMetadata("jwks_uri must be an https URL")
		}
	case len(m.JWKS) > 0:
		set, err := clientjwt.ParseKeySet(m.JWKS)
		if err != nil || len(set.Keys) == 0 {
			return oautherr.InvalidClientMetadata("jwks holds no public signature key")
		}
	default:
		return oautherr.InvalidClientMetadata("private_key_jwt requires jwks or jwks_uri")
	}
	return nil
}

// NewClient builds the client record and the registration response for
// validated metadata. An empty clientID gets a fresh UUID; an empty secret for
// a client that authenticates with a secret gets a fresh 256-bit one from
// the unreserved alphabet. A private_key_jwt client gets no secret.
func (s *Service) NewClient(m metadata.ClientMetadata, clientID, clientSecret string) (*record.Client, *metadata.ClientInformation) {
	now := s.Now()
	if clientID == "" {
		clientID = uuid.NewString()
	}
	c := &record.Client{ID: clientID, IssuedAt: now, LastUsedAt: now, Metadata: m}
	info := &metadata.ClientInformation{ClientID: clientID, ClientIDIssuedAt: now.Unix(), ClientMetadata: m}
	if UsesSecret(m.TokenEndpointAuthMethod) {
		if clientSecret == "" {
			clientSecret = secret.New()
		}
		c.SecretDigest = secret.Digest(clientSecret)
		c.SecretExpiresAt = s.secretExpiry(now)
		var exp int64 // RFC 7591 §3.2.1: 0 means it never expires.
		if !c.SecretExpiresAt.IsZero() {
			exp = c.SecretExpiresAt.Unix()
		}
		info.ClientSecret = clientSecret
		info.ClientSecretExpiresAt = &exp
	}
	return c, info
}

// NewClientSecret mints a fresh 256-bit secret for a confidential client:
// it returns a copy of c with the secret's digest, expiring
// ClientSecretLifetime from now as a registered secret does, and the
// secret, which appears nowhere else. c is not changed.
func (s *Service) NewClientSecret(c *record.Client) (*record.Client, string) {
	v := secret.New()
	out := *c
	out.SecretDigest = secret.Digest(v)
	out.SecretExpiresAt = s.secretExpiry(s.Now())
	return &out, v
}

// secretExpiry is when a secret issued at now expires: ClientSecretLifetime
// later, or never (zero) when that is not positive.
func (s *Service) secretExpiry(now time.Time) time.Time {
	if s.ClientSecretLifetime > 0 {
		return now.Add(s.ClientSecretLifetime)
	}
	return time.Time{}
}

// ErrClientCredentialsNotRegistrable refuses the client_credentials grant at
// /register. A client that registers itself has vouched for nothing, and
// with that grant it would get tokens without a user or a consent: machine
// clients are pre-registered (the MCP client-credentials extension), unless
// the operator's registration policy lets a registration have it.
var ErrClientCredentialsNotRegistrable = oautherr.InvalidClientMetadata("client_credentials is available to pre-registered clients only")

// RegistrationPolicy is the operator's say over a registration: it sees the
// validated metadata, may narrow it in place or refuse it, and tells whether
// the client may have the client_credentials grant.
type RegistrationPolicy func(m *metadata.ClientMetadata) (allowClientCredentials bool, err *oautherr.Error)

// Register validates metadata, applies policy (nil: the default, which
// refuses client_credentials), validates what the policy left, mints
// credentials and stores the client (RFC 7591 §3). It returns the
// registration response, which is the only place the secret ever appears.
func (s *Service) Register(ctx context.Context, reg ClientRegistrar, m metadata.ClientMetadata, policy RegistrationPolicy) (*metadata.ClientInformation, *oautherr.Error) {
	defaulted := m.TokenEndpointAuthMethod == ""
	m, oerr := s.ValidateClientMetadata(m)
	if oerr != nil {
		return nil, oerr
	}
	allowClientCredentials := false
	if policy != nil {
		if allowClientCredentials, oerr = policy(&m); oerr != nil {
			return nil, oerr
		}
		// RFC 7591 §3.2.1 lets the server replace what was asked; what the
		// policy left must still be a valid registration.
		if m, oerr = s.ValidateClientMetadata(m); oerr != nil {
			return nil, oerr
		}
	}
	if !allowClientCredentials && slices.Contains(m.GrantTypes, ClientCredentials) {
		return nil, ErrClientCredentialsNotRegistrable
	}
	c, info := s.NewClient(m, "", "")
	c.AuthMethodDefaulted = defaulted
	if err := reg.RegisterClient(ctx, c); err != nil {
		return nil, storeError(err)
	}
	s.Telemetry.Emit(ctx, audit.Event{Type: audit.ClientRegistered, ClientID: c.ID})
	return info, nil
}
