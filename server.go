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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/grants"
	"github.com/mcpoauth/mcpoauth/handlers"
	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/ratelimit"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Compile-time proofs that a Model is all the grants need.
var (
	_ grants.Store           = Model(nil)
	_ grants.ClientRegistrar = ClientRegistrar(nil)
	_ grants.DeviceStore     = DeviceStore(nil)
	_ bearer.Verifier        = (*OAuthServer)(nil)
)

// OAuthError is the error type of every OAuth error response: it knows its
// code (errors.Is compares codes), fixed description and HTTP status.
// ErrorHandler receives it; storage failures arrive as server_error wrapping
// the Model's error.
type OAuthError = oautherr.Error

// GetUserFunc returns the id of the user signed in on a request, or "" or an
// error if nobody is. AuthenticateHandler calls it to learn who approves;
// an error wrapping ErrAccessDenied says the user is signed in but may not
// authorize the request.
type GetUserFunc = handlers.GetUserFunc

// ErrAccessDenied is what a GetUserFunc returns (or wraps) for a signed-in
// user the application refuses (the wrong tenant, a suspended account).
// AuthenticateHandler then consumes the request and sends the browser back
// to the client with error=access_denied and iss (RFC 6749 §4.1.2.1), so the
// client stops waiting; "" or any other error means nobody is signed in,
// which stays a page of the application (ErrorPage, 403).
var ErrAccessDenied = grants.ErrAccessDenied

// Field names of the consent form that AuthenticateHandler reads.
const (
	FormRequestID = handlers.ParamRequestID
	FormCSRFToken = handlers.ParamCSRFToken
	FormDecision  = handlers.ParamDecision
	// DecisionApprove and DecisionDeny are the values of FormDecision.
	DecisionApprove = handlers.DecisionApprove
	DecisionDeny    = handlers.DecisionDeny
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
}

// New validates cfg, applies its defaults and returns the server. An error
// wraps ErrInvalidConfig and names the offending field.
func New(cfg Config) (*OAuthServer, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	srv := &OAuthServer{cfg: s}
	srv.grants = &grants.Service{
		Store: s.Model,
		Policy: grants.Policy{
			Now:                          s.Now,
			AccessTokenLifetime:          s.AccessTokenLifetime,
			RefreshTokenLifetime:         s.RefreshTokenLifetime,
			AuthorizationCodeLifetime:    s.AuthorizationCodeLifetime,
			AuthorizationRequestLifetime: authorizationRequestLifetime,
			GrantLifetime:                s.GrantLifetime,
			ClientSecretLifetime:         s.ClientSecretLifetime,
			ScopesSupported:              s.ScopesSupported,
			Resource:                     s.resource,
			StrictResource:               s.strictResource,
			GrantTypes:                   s.GrantTypes,
			AllowInsecureRedirectURIs:    s.AllowInsecureRedirectURIs,
			DeviceAuthorizationLifetime:  s.DeviceAuthorizationLifetime,
			DevicePollInterval:           s.DevicePollInterval,
			DeviceMaxPollInterval:        max(maxDevicePollInterval, s.DevicePollInterval),
			IntrospectionClients:         s.IntrospectionClients,
		},
	}
	if s.deviceAuthorizationURL != nil {
		srv.grants.DeviceVerificationURI = s.deviceAuthorizationURL.String()
	}
	if ds, ok := s.Model.(DeviceStore); ok && contains(s.GrantTypes, GrantDeviceCode) {
		srv.grants.Devices = ds
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
			Transport:  c.testTransport,
		})
	}
	if !s.RateLimits.Disabled {
		srv.deviceVerification = ratelimit.New(s.RateLimits.DeviceVerification, ratelimit.Options{Now: s.Now, TrustedProxies: s.RateLimits.TrustedProxies})
	}
	srv.env = &handlers.Env{
		Grants:                         srv.grants,
		Issuer:                         s.issuer,
		AuthorizationURL:               s.authorizationURL,
		ModifyAuthorizationRedirectURL: s.ModifyAuthorizationRedirectURL,
		SecureCookies:                  isHTTPS(s.issuer),
		OnError:                        srv.onError,
	}
	if s.ErrorPage != nil {
		srv.env.ErrorPage = s.ErrorPage
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
	return srv, nil
}

// registrationPolicy runs Config.RegistrationPolicy on a registration. An
// error that is not an OAuthError is answered invalid_client_metadata, its
// text kept for ErrorHandler only: a policy's message is not written for
// clients.
func (s *OAuthServer) registrationPolicy(r *http.Request, m *metadata.ClientMetadata) (bool, *oautherr.Error) {
	reg := &Registration{Request: r, Metadata: *m}
	if err := s.cfg.RegistrationPolicy(reg); err != nil {
		var oerr *oautherr.Error
		if errors.As(err, &oerr) {
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
	if oerr.Code == oautherr.CodeServerError {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelError, "oauth endpoint failed", slog.String("step", step), slog.Any("error", oerr.Cause))
	} else {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "oauth request refused", slog.String("step", step), slog.String("error", oerr.Code))
	}
	if s.cfg.ErrorHandler != nil {
		s.cfg.ErrorHandler(ctx, step, oerr)
	}
}

// Issuer returns the canonical issuer identifier.
func (s *OAuthServer) Issuer() string { return s.cfg.issuer }

// Model returns the storage the server uses.
func (s *OAuthServer) Model() Model { return s.cfg.Model }

// Close releases what New created: the default MemoryModel's sweeper. A
// Model passed in Config is left to its owner.
func (s *OAuthServer) Close() error {
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
// requiredScopes; failures get the RFC 6750 / RFC 9728 challenges MCP
// clients discover the server by. Use package bearer directly for more
// options.
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
		ResourceMetadataURL: ProtectedResourceMetadataURL(s.cfg.resource),
		Resource:            s.cfg.resource,
		Now:                 s.cfg.Now,
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

// AuthenticateHandler receives the consent page's decision (see
// PendingAuthorization): a POST with request_id, csrf_token and decision
// (approve or deny). getUser tells who is signed in; it is asked only for an
// approval. The response is a 303 to the client's redirect URI, with a code,
// or with error=access_denied after a denial or when getUser returns
// ErrAccessDenied. Errors about the request itself, and nobody signed in,
// are rendered with ErrorPage. The body may have been parsed by a
// middleware already (r.PostForm). Mount it on the issuer's origin, where
// the browser-binding cookie set by /authorize is visible.
func (s *OAuthServer) AuthenticateHandler(getUser GetUserFunc) http.Handler {
	h := handlers.Authenticate(s.env, getUser)
	return methods(s.limit(s.cfg.RateLimits.Authenticate, h), http.MethodPost)
}

// PendingAuthorization is what a consent page shows and posts back: who asks
// (the client's self-asserted name, and the redirect host where the browser
// will go), for what (scopes, resource), and the hidden fields the decision
// form must carry.
type PendingAuthorization struct {
	// RequestID and CSRFToken go in hidden form fields named FormRequestID
	// and FormCSRFToken.
	RequestID string
	CSRFToken string
	ClientID  string
	// ClientIDHost is the host (and port, if any) of a client_id that is a
	// client ID metadata document URL, empty for any other client. It is
	// the one verified fact about such a client (its document is served
	// there): show it prominently (draft-ietf-oauth-client-id-metadata-
	// document §8.5).
	ClientIDHost string
	// ClientName, ClientURI and LogoURI are registered by the client itself:
	// show them as claims, HTML-escaped.
	ClientName string
	ClientURI  string
	LogoURI    string
	// RedirectURI is where the browser goes after the decision; show its
	// host (MCP authorization: the redirect host must be displayed).
	RedirectURI  string
	RedirectHost string
	Scopes       []string
	Resource     string
	ExpiresAt    time.Time
}

// ErrNoPendingAuthorization is returned by PendingAuthorization for an
// unknown, expired or decided request, or one started in another browser.
var ErrNoPendingAuthorization = errors.New("mcpoauth: no pending authorization request for this browser")

// PendingAuthorization looks up the authorization request a consent page
// was opened for (its request_id query parameter), checking that this
// browser started it.
func (s *OAuthServer) PendingAuthorization(r *http.Request) (*PendingAuthorization, error) {
	id := r.URL.Query().Get(FormRequestID)
	browser := handlers.BrowserSecret(r, s.env.SecureCookies)
	req, client, oerr := s.grants.PendingRequest(r.Context(), id, browser)
	if oerr != nil {
		if oerr.Code == oautherr.CodeServerError {
			return nil, oerr
		}
		return nil, fmt.Errorf("%w: %s", ErrNoPendingAuthorization, oerr.Description)
	}
	p := &PendingAuthorization{
		RequestID:    id,
		CSRFToken:    grants.CSRFToken(browser, id),
		ClientID:     client.ID,
		ClientIDHost: s.clientIDHost(client.ID),
		ClientName:   client.Metadata.ClientName,
		ClientURI:    client.Metadata.ClientURI,
		LogoURI:      client.Metadata.LogoURI,
		RedirectURI:  req.RedirectURI,
		Scopes:       req.Scopes,
		Resource:     req.Resource,
		ExpiresAt:    req.ExpiresAt,
	}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		p.RedirectHost = u.Host
		if p.RedirectHost == "" {
			p.RedirectHost = u.Scheme + ":"
		}
	}
	return p, nil
}

// minStaticSecretLength bounds how weak a pre-registered secret may be: 128
// bits of hex, or 96 of base64.
const minStaticSecretLength = 32

// RegisterClient pre-registers a client (a static client of a
// configuration file), validated like a dynamic registration. info.ClientID
// is required; a confidential client with no ClientSecret gets a fresh one,
// returned in the result, which is the only place it appears. A given secret
// must have at least 32 characters; it expires at
// info.ClientSecretExpiresAt (absent or 0: never).
func (s *OAuthServer) RegisterClient(ctx context.Context, info metadata.ClientInformation) (*metadata.ClientInformation, error) {
	reg, ok := s.cfg.Model.(ClientRegistrar)
	if !ok {
		return nil, errors.New("mcpoauth: the Model does not implement ClientRegistrar")
	}
	if info.ClientID == "" {
		return nil, errors.New("mcpoauth: client_id is required")
	}
	if s.grants.IsDocumentClientID(info.ClientID) {
		// It would never be looked up: such ids name metadata documents.
		return nil, fmt.Errorf("mcpoauth: client %q: with ClientIDMetadataDocuments enabled, a client_id beginning with https:// names a metadata document and cannot be registered", info.ClientID)
	}
	m, oerr := s.grants.ValidateClientMetadata(info.ClientMetadata)
	if oerr != nil {
		return nil, fmt.Errorf("mcpoauth: client %q: %w", info.ClientID, oerr)
	}
	if m.TokenEndpointAuthMethod == grants.AuthMethodNone && info.ClientSecret != "" {
		return nil, fmt.Errorf("mcpoauth: client %q: a public client (token_endpoint_auth_method none) has no secret", info.ClientID)
	}
	if info.ClientSecret != "" && len(info.ClientSecret) < minStaticSecretLength {
		return nil, fmt.Errorf("mcpoauth: client %q: client_secret must have at least %d characters", info.ClientID, minStaticSecretLength)
	}
	c, out := s.grants.NewClient(m, info.ClientID, info.ClientSecret)
	c.PreRegistered = true
	c.AuthMethodDefaulted = info.TokenEndpointAuthMethod == ""
	if out.ClientSecretExpiresAt != nil {
		// A static client's secret is the operator's: it expires when the
		// client information says (0 or absent: never), not after
		// ClientSecretLifetime.
		var exp int64
		c.SecretExpiresAt = time.Time{}
		if info.ClientSecretExpiresAt != nil && *info.ClientSecretExpiresAt > 0 {
			exp = *info.ClientSecretExpiresAt
			c.SecretExpiresAt = time.Unix(exp, 0)
		}
		out.ClientSecretExpiresAt = &exp
	}
	if err := reg.RegisterClient(ctx, c); err != nil {
		return nil, fmt.Errorf("mcpoauth: register client %q: %w", info.ClientID, err)
	}
	return out, nil
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

// Field names of the device verification form that the approve and deny
// handlers read (with FormCSRFToken), and the query parameter and values
// with which they report the decision back to DeviceAuthorizationURL.
const (
	FormUserCode         = handlers.ParamUserCode
	DeviceResultParam    = handlers.ParamDeviceResult
	DeviceResultApproved = handlers.DeviceResultApproved
	DeviceResultDenied   = handlers.DeviceResultDenied
)

// ApproveDeviceAuthorizationHandler receives the user's approval from the
// device verification page (DeviceAuthorizationURL): a POST whose body
// carries FormUserCode (as typed: case, dashes and spaces do not matter;
// never read from the query) and FormCSRFToken (from DeviceFormToken).
// getUser tells who is signed in; nobody signed in is 403 access_denied.
// The decision is final and atomic. Success is a 303 to
// DeviceAuthorizationURL with DeviceResultParam=DeviceResultApproved;
// errors are JSON OAuth errors: 403 access_denied for a missing or wrong
// CSRF token or cookie, 400 invalid_grant for an unknown or decided code,
// 400 expired_token for an expired one, 429 when the per-IP user code
// budget (RateLimits.DeviceVerification, shared with the deny handler and
// PendingDeviceAuthorization) is spent. The body may have been parsed by
// the application already (r.PostForm). Mount it on the issuer's origin,
// where the browser-binding cookie is visible.
func (s *OAuthServer) ApproveDeviceAuthorizationHandler(getUser GetUserFunc) http.Handler {
	return methods(s.deviceVerification.Middleware(handlers.ApproveDevice(s.env, getUser)), http.MethodPost)
}

// DenyDeviceAuthorizationHandler receives the user's denial from the device
// verification page, exactly as ApproveDeviceAuthorizationHandler receives
// an approval: the same fields, a signed-in user (the seed let anyone who
// knew a code deny it), the same CSRF check and rate limit. Success is a
// 303 to DeviceAuthorizationURL with DeviceResultParam=DeviceResultDenied;
// the device's next poll gets access_denied.
func (s *OAuthServer) DenyDeviceAuthorizationHandler(getUser GetUserFunc) http.Handler {
	return methods(s.deviceVerification.Middleware(handlers.DenyDevice(s.env, getUser)), http.MethodPost)
}

// DeviceFormToken returns the CSRF token the device verification form must
// carry in its FormCSRFToken field, and sets the browser-binding cookie when
// the browser has none yet. Call it once per render of the form, before
// writing the body. The token is an HMAC under that cookie's secret, so a
// form posted from another site, or from a browser that never loaded the
// page, fails; it does not depend on the user code, which the user may type
// into the same form.
func (s *OAuthServer) DeviceFormToken(w http.ResponseWriter, r *http.Request) string {
	return handlers.DeviceFormToken(w, r, s.env.SecureCookies)
}

// PendingDeviceAuthorization is what a device verification page shows
// before the user decides (RFC 8628 §5.4: the user must see which client
// asks for what, so that a code sent by a phisher is recognised).
type PendingDeviceAuthorization struct {
	// UserCode is the code in display form (XXXX-XXXX), for the form's
	// FormUserCode field.
	UserCode string
	ClientID string
	// ClientIDHost is the host of a client ID metadata document client_id,
	// empty otherwise; see PendingAuthorization.
	ClientIDHost string
	// ClientName, ClientURI and LogoURI are registered by the client itself:
	// show them as claims, HTML-escaped.
	ClientName string
	ClientURI  string
	LogoURI    string
	Scopes     []string
	Resource   string
	// ExpiresAt is when the code stops being accepted.
	ExpiresAt time.Time
}

// ErrNoPendingDeviceAuthorization is wrapped by PendingDeviceAuthorization's
// error for a malformed, unknown, expired or already decided user code;
// the error also wraps the OAuthError that tells which (errors.Is with
// &OAuthError{Code: "expired_token"} finds an expired one).
var ErrNoPendingDeviceAuthorization = errors.New("mcpoauth: no pending device authorization for this user code")

// ErrTooManyUserCodeAttempts is returned by PendingDeviceAuthorization when
// the client IP spent its user code budget (RateLimits.DeviceVerification);
// the page should answer 429.
var ErrTooManyUserCodeAttempts = errors.New("mcpoauth: too many user code attempts, try again later")

// PendingDeviceAuthorization looks up the pending device authorization a
// user code names (as the user typed it, or from verification_uri_complete's
// user_code query parameter), so the verification page can show it. Each
// call with a non-empty code takes one attempt from the client IP's user
// code budget, shared with the approve and deny handlers: a lookup answers
// whether a code exists, so it would otherwise be a guessing oracle
// (RFC 8628 §5.1).
func (s *OAuthServer) PendingDeviceAuthorization(r *http.Request, userCode string) (*PendingDeviceAuthorization, error) {
	if userCode == "" {
		return nil, fmt.Errorf("%w: %w", ErrNoPendingDeviceAuthorization, grants.ErrUnknownUserCode)
	}
	if ok, _ := s.deviceVerification.Allow(r); !ok {
		return nil, ErrTooManyUserCodeAttempts
	}
	d, client, oerr := s.grants.PendingDevice(r.Context(), userCode)
	if oerr != nil {
		if oerr.Code == oautherr.CodeServerError {
			return nil, oerr
		}
		return nil, fmt.Errorf("%w: %w", ErrNoPendingDeviceAuthorization, oerr)
	}
	norm, _ := grants.NormalizeUserCode(userCode)
	return &PendingDeviceAuthorization{
		UserCode:     grants.FormatUserCode(norm),
		ClientID:     client.ID,
		ClientIDHost: s.clientIDHost(client.ID),
		ClientName:   client.Metadata.ClientName,
		ClientURI:    client.Metadata.ClientURI,
		LogoURI:      client.Metadata.LogoURI,
		Scopes:       d.Scopes,
		Resource:     d.Resource,
		ExpiresAt:    d.ExpiresAt,
	}, nil
}
