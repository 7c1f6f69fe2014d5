// Package mcpoauth is an embeddable OAuth 2.1 authorization server for Go MCP
// (Model Context Protocol) servers. Build one with New, mount Router on your
// mux, mount AuthenticateHandler behind your consent page, and wrap the MCP
// handler with RequireBearerAuth:
//
//	srv, err := mcpoauth.New(mcpoauth.Config{
//		Issuer:            "https://example.com",
//		AuthorizationURL:  "https://example.com/consent",
//		ResourceServerURL: "https://example.com/mcp",
//		ScopesSupported:   []string{"mcp:tools"},
//	})
//	mux.Handle("/", srv.Router())
//	mux.Handle("POST /consent/decide", srv.AuthenticateHandler(currentUser))
//	mux.Handle("/mcp", srv.RequireBearerAuth("mcp:tools")(mcpHandler))
//
// The server stores only SHA-256 digests of what it issues, consumes every
// one-time credential atomically, revokes a whole grant when a code or a
// rotated refresh token is replayed, and answers every endpoint as the
// RFCs and the MCP authorization specification require.
package mcpoauth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/handlers"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/ratelimit"
	"github.com/mcpoauth/mcpoauth/internal/telemetry"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Compile-time proofs that a Model is all the grants need.
var (
	_ grants.Store           = Model(nil)
	_ grants.ClientRegistrar = ClientRegistrar(nil)
	_ grants.DeviceStore     = DeviceStore(nil)
	_ bearer.Verifier        = (*OAuthServer)(nil)
)

// OAuthServer is a configured authorization server. It is safe for
// concurrent use.
type OAuthServer struct {
	cfg    *settings
	grants *grants.Service
	env    *handlers.Env
	router http.Handler
	// deviceVerification limits user code entries per client IP across the
	// lookup and both decision handlers (RFC 8628 §5.1); nil when limits
	// are disabled.
	deviceVerification *ratelimit.Limiter
	// clientSweep deletes idle dynamically registered clients
	// (client_sweep.go).
	clientSweep clientSweeper
	closeOnce   sync.Once
	// telemetry carries events, metrics and spans (telemetry.go); nil
	// when Config sets no hook and no provider.
	telemetry *telemetry.Telemetry
}

// New validates cfg, applies its defaults and returns the server. An error
// wraps ErrInvalidConfig and names the offending field.
func New(cfg Config) (*OAuthServer, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	srv := &OAuthServer{cfg: s}
	if srv.telemetry, err = newTelemetry(s); err != nil {
		return nil, err
	}
	srv.grants = &grants.Service{
		Store: s.Model,
		Policy: grants.Policy{
			Now:                          s.Now,
			AccessTokenLifetime:          s.AccessTokenLifetime,
			RefreshTokenLifetime:         s.RefreshTokenLifetime,
			AuthorizationCodeLifetime:    s.AuthorizationCodeLifetime,
			AuthorizationRequestLifetime: authorizationRequestLifetime,
			GrantLifetime:                s.GrantLifetime,
			RefreshTokenReuseInterval:    s.RefreshTokenReuseInterval,
			ClientSecretLifetime:         s.ClientSecretLifetime,
			ScopesSupported:              s.ScopesSupported,
			ImpliedScopes:                s.ImpliedScopes,
			Resource:                     s.resource,
			StrictResource:               s.StrictResource,
			GrantTypes:                   s.GrantTypes,
			AllowInsecureRedirectURIs:    s.AllowInsecureRedirectURIs,
			DeviceAuthorizationLifetime:  s.DeviceAuthorizationLifetime,
			DevicePollInterval:           s.DevicePollInterval,
			DeviceMaxPollInterval:        max(maxDevicePollInterval, s.DevicePollInterval),
			IntrospectionClients:         s.IntrospectionClients,
			DPoPEnabled:                  s.dpop != nil,
			DPoPRequired:                 s.DPoP.Required,
		},
	}
	if gs, ok := s.Model.(GrantStore); ok {
		srv.grants.Grants = gs
		if s.OnApproval != nil || s.idJAG != nil {
			// Grants record who the user is at the upstream or the
			// enterprise identity provider: tell tools.
			srv.grants.Identities = &grants.IdentityCache{}
		}
	}
	if s.signingKeys != nil {
		srv.grants.JWTAccessTokens = &grants.JWTAccessTokens{Issuer: s.issuer, Signer: s.signingKeys}
	}
	if s.deviceAuthorizationURL != nil {
		srv.grants.DeviceVerificationURI = s.deviceAuthorizationURL.String()
	}
	if ds, ok := s.Model.(DeviceStore); ok && contains(s.GrantTypes, GrantDeviceCode) {
		srv.grants.Devices = ds
	}
	if rs, ok := s.Model.(AssertionReplayStore); ok {
		// private_key_jwt needs every replica to refuse a jti it has seen;
		// a Model that cannot record them leaves the method off.
		srv.grants.Assertions = &clientjwt.Verifier{
			// RFC 7523 §3: aud identifies the authorization server; the
			// issuer and the token endpoint URL both do.
			Audiences: []string{s.issuer, s.baseURL + "/token"},
			Now:       s.Now,
			Replay:    rs,
			Keys:      &clientjwt.KeySets{Now: s.Now},
		}
	}
	if s.idJAG != nil {
		s.idJAG.Keys.Now = s.Now
		srv.grants.IDJAG = s.idJAG
	}
	if c := s.ClientIDMetadataDocuments; c.Enabled {
		srv.grants.Documents = cimd.New(cimd.Options{
			Now:        s.Now,
			CacheSize:  c.CacheSize,
			MinTTL:     c.MinCacheTTL,
			MaxTTL:     c.MaxCacheTTL,
			DefaultTTL: c.CacheTTL,
			Timeout:    c.FetchTimeout,
			Allow:      c.AllowClientID,
			Validate:   srv.grants.ValidateDocumentMetadata,
			OnLookup:   srv.documentLookupHook(),
		})
	}
	if !s.RateLimits.Disabled {
		srv.deviceVerification = srv.newLimiter("device_verification", s.RateLimits.DeviceVerification)
	}
	srv.env = &handlers.Env{
		Grants:                         srv.grants,
		Issuer:                         s.issuer,
		AuthorizationURL:               s.authorizationURL,
		ModifyAuthorizationRedirectURL: s.ModifyAuthorizationRedirectURL,
		SecureCookies:                  isHTTPS(s.issuer),
		OnError:                        srv.onError,
		OnApproval:                     s.OnApproval,
		DPoP:                           s.dpop,
		TokenURL:                       s.baseURL + "/token",
	}
	if s.ErrorPage != nil {
		srv.env.ErrorPage = func(w http.ResponseWriter, r *http.Request, oerr *oautherr.Error) {
			s.ErrorPage(w, r, publicError(oerr))
		}
	}
	if reg, ok := s.Model.(ClientRegistrar); ok && s.dcr {
		srv.env.Registrar = reg
		if s.RegistrationPolicy != nil {
			srv.env.RegistrationPolicy = srv.registrationPolicy
		}
	}
	if len(s.ScopesSupported) == 0 {
		s.Logger.Warn("mcpoauth: ScopesSupported is empty: any scope a client asks for is granted; list the scopes your resource server checks")
	}
	if srv.router, err = srv.newRouter(); err != nil {
		return nil, err
	}
	srv.setUpClientSweep()
	srv.observeModel()
	return srv, nil
}

// registrationPolicy runs Config.RegistrationPolicy on a registration. An
// error that is not an OAuthError is answered invalid_client_metadata, its
// text kept for ErrorHandler only: a policy's message is not written for
// clients.
func (s *OAuthServer) registrationPolicy(r *http.Request, m *metadata.ClientMetadata) (bool, *oautherr.Error) {
	reg := &Registration{Request: r, Metadata: *m}
	if err := s.cfg.RegistrationPolicy(reg); err != nil {
		if oerr, ok := asInternalError(err); ok {
			return false, oerr
		}
		return false, errRegistrationRefused.WithCause(err)
	}
	*m = reg.Metadata
	return reg.AllowClientCredentials, nil
}

// errRegistrationRefused answers a registration RegistrationPolicy refused
// with a plain error.
var errRegistrationRefused = oautherr.InvalidClientMetadata("the registration is not allowed by this server's policy")

// onError logs an endpoint error and hands it to ErrorHandler. Server
// errors are logged at Error level with their cause; client errors at Debug.
func (s *OAuthServer) onError(ctx context.Context, step string, oerr *oautherr.Error) {
	telemetry.SetOutcome(ctx, oerr.Code)
	if oerr.Code == oautherr.CodeServerError {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelError, "oauth endpoint failed", slog.String("step", step), slog.Any("error", oerr.Cause))
	} else {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "oauth request refused", slog.String("step", step), slog.String("error", oerr.Code))
	}
	if s.cfg.ErrorHandler != nil {
		s.cfg.ErrorHandler(ctx, step, publicError(oerr))
	}
}

// Issuer returns the canonical issuer identifier.
func (s *OAuthServer) Issuer() string { return s.cfg.issuer }

// Model returns the storage the server uses.
func (s *OAuthServer) Model() Model { return s.cfg.Model }

// Close releases what New created: the sweeper of idle clients, and the
// default MemoryModel's sweeper. A Model passed in Config is left to its
// owner.
func (s *OAuthServer) Close() error {
	s.stopClientSweeper()
	if m, ok := s.cfg.Model.(*MemoryModel); ok && s.cfg.ownsModel {
		return m.Close()
	}
	return nil
}

// VerifyAccessToken resolves an access token to what it grants; it makes
// OAuthServer a bearer.Verifier. Unknown, expired and revoked tokens wrap
// bearer.ErrInvalidToken.
func (s *OAuthServer) VerifyAccessToken(ctx context.Context, token string) (*bearer.AuthInfo, error) {
	return s.grants.VerifyAccessToken(ctx, token)
}

// RequireBearerAuth returns middleware that admits only requests carrying a
// valid access token bound to ResourceServerURL and holding every scope in
// requiredScopes (with Config.DPoP, a DPoP-bound token with a proof of its
// key; see DPoPConfig); failures get the RFC 6750 / RFC 9728 challenges MCP
// clients discover the server by. Config.OperationScopes adds scopes per
// MCP method and tool, and Config.ImpliedScopes the scope hierarchy. Use
// package bearer directly for more options.
//
// It panics, as http.ServeMux.Handle does for a bad pattern, when a required
// scope is not in a non-empty ScopesSupported: no token could ever hold it,
// so every call would fail 403 at run time.
func (s *OAuthServer) RequireBearerAuth(requiredScopes ...string) func(http.Handler) http.Handler {
	for _, sc := range requiredScopes {
		if len(s.cfg.ScopesSupported) > 0 && !contains(s.cfg.ScopesSupported, sc) {
			panic(fmt.Sprintf("mcpoauth: RequireBearerAuth: scope %q is not in Config.ScopesSupported %q, so no token can hold it", sc, s.cfg.ScopesSupported))
		}
	}
	return bearer.RequireBearerAuth(bearer.Options{
		Verifier:            s,
		RequiredScopes:      requiredScopes,
		OperationScopes:     s.cfg.OperationScopes,
		ImpliedScopes:       s.cfg.ImpliedScopes,
		ResourceMetadataURL: ProtectedResourceMetadataURL(s.cfg.resource),
		Resource:            s.cfg.resource,
		Now:                 s.cfg.Now,
		DPoP:                s.cfg.dpop,
		DPoPRequired:        s.cfg.DPoP.Required,
		ErrorHandler: func(r *http.Request, err error) {
			s.onError(r.Context(), "verify", oautherr.ServerError(err))
		},
	})
}

// ProtectedResourceMetadataURL returns the RFC 9728 metadata URL of a
// resource: its well-known path inserted after the host
// ("https://h/mcp" → "https://h/.well-known/oauth-protected-resource/mcp").
// It returns "" for an invalid resource.
func ProtectedResourceMetadataURL(resource string) string {
	if resource == "" {
		return ""
	}
	return metadata.ProtectedResourceMetadataURL(resource)
}

// clientIDHost is the host of a client_id resolved through a client ID
// metadata document, "" for any other.
func (s *OAuthServer) clientIDHost(clientID string) string {
	if !s.grants.IsDocumentClientID(clientID) {
		return ""
	}
	return cimd.ClientIDHost(clientID)
}

func isHTTPS(u string) bool { return len(u) > 8 && u[:8] == "https://" }
