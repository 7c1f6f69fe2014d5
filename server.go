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
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Compile-time proofs that a Model is all the grants need.
var (
	_ grants.Store           = Model(nil)
	_ grants.ClientRegistrar = ClientRegistrar(nil)
	_ bearer.Verifier        = (*OAuthServer)(nil)
)

// OAuthError is the error type of every OAuth error response: it knows its
// code (errors.Is compares codes), fixed description and HTTP status.
// ErrorHandler receives it; storage failures arrive as server_error wrapping
// the Model's error.
type OAuthError = oautherr.Error

// GetUserFunc returns the id of the user signed in on a request, or "" or an
// error if nobody is. AuthenticateHandler calls it to learn who approves.
type GetUserFunc = handlers.GetUserFunc

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
		},
	}
	srv.env = &handlers.Env{
		Grants:                         srv.grants,
		Issuer:                         s.issuer,
		AuthorizationURL:               s.authorizationURL,
		ModifyAuthorizationRedirectURL: s.ModifyAuthorizationRedirectURL,
		SecureCookies:                  isHTTPS(s.issuer),
		OnError:                        srv.onError,
	}
	if reg, ok := s.Model.(ClientRegistrar); ok && s.dcr {
		srv.env.Registrar = reg
	}
	if srv.router, err = srv.newRouter(); err != nil {
		return nil, err
	}
	return srv, nil
}

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
func (s *OAuthServer) RequireBearerAuth(requiredScopes ...string) func(http.Handler) http.Handler {
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
// approval. The response is a 303 to the client's redirect URI. Mount it on
// the issuer's origin, where the browser-binding cookie set by /authorize is
// visible.
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
		RequestID:   id,
		CSRFToken:   grants.CSRFToken(browser, id),
		ClientID:    client.ID,
		ClientName:  client.Metadata.ClientName,
		ClientURI:   client.Metadata.ClientURI,
		LogoURI:     client.Metadata.LogoURI,
		RedirectURI: req.RedirectURI,
		Scopes:      req.Scopes,
		Resource:    req.Resource,
		ExpiresAt:   req.ExpiresAt,
	}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		p.RedirectHost = u.Host
		if p.RedirectHost == "" {
			p.RedirectHost = u.Scheme + ":"
		}
	}
	return p, nil
}

// RegisterClient pre-registers a client (a static client of a
// configuration file), validated like a dynamic registration. info.ClientID
// is required; a confidential client with no ClientSecret gets a fresh one,
// returned in the result, which is the only place it appears.
func (s *OAuthServer) RegisterClient(ctx context.Context, info metadata.ClientInformation) (*metadata.ClientInformation, error) {
	reg, ok := s.cfg.Model.(ClientRegistrar)
	if !ok {
		return nil, errors.New("mcpoauth: the Model does not implement ClientRegistrar")
	}
	if info.ClientID == "" {
		return nil, errors.New("mcpoauth: client_id is required")
	}
	m, oerr := s.grants.ValidateClientMetadata(info.ClientMetadata)
	if oerr != nil {
		return nil, fmt.Errorf("mcpoauth: client %q: %w", info.ClientID, oerr)
	}
	c, out := s.grants.NewClient(m, info.ClientID, info.ClientSecret)
	if err := reg.RegisterClient(ctx, c); err != nil {
		return nil, fmt.Errorf("mcpoauth: register client %q: %w", info.ClientID, err)
	}
	return out, nil
}

func isHTTPS(u string) bool { return len(u) > 8 && u[:8] == "https://" }
