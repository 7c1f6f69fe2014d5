package mcpoauth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mcpoauth/mcpoauth/grants"
	"github.com/mcpoauth/mcpoauth/handlers"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
	"github.com/mcpoauth/mcpoauth/internal/ratelimit"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Router returns the handler that serves every endpoint and metadata
// document. Mount it at the root of the issuer's origin:
//
//   - RFC 8414 metadata at /.well-known/oauth-authorization-server[/issuer path]
//   - RFC 9728 metadata at /.well-known/oauth-protected-resource[/resource path]
//     (when ResourceServerURL is set)
//   - /authorize (GET, POST), /token, /register, /revoke under BaseURL's path
//
// Each endpoint answers 405 with Allow to other methods (HEAD wherever GET
// is allowed). Token, registration, revocation and metadata allow CORS; the
// authorization endpoint never does (RFC 9700 §2.6).
func (s *OAuthServer) Router() http.Handler { return s.router }

// Metadata returns the RFC 8414 authorization server metadata the router
// serves: every enabled endpoint, and explicit values for the members whose
// defaults would mislead clients (PKCE, auth methods, grant types).
func (s *OAuthServer) Metadata() metadata.AuthorizationServer {
	base := s.cfg.baseURL
	m := metadata.AuthorizationServer{
		Issuer:                                 s.cfg.issuer,
		TokenEndpoint:                          base + "/token",
		ScopesSupported:                        s.cfg.ScopesSupported,
		ResponseTypesSupported:                 []string{},
		GrantTypesSupported:                    s.cfg.GrantTypes,
		TokenEndpointAuthMethodsSupported:      grants.AuthMethods,
		ServiceDocumentation:                   s.cfg.ServiceDocumentationURL,
		RevocationEndpoint:                     base + "/revoke",
		RevocationEndpointAuthMethodsSupported: grants.AuthMethods,
		CodeChallengeMethodsSupported:          []string{pkce.MethodS256},
		// RFC 9207 §3: every authorization response carries iss.
		AuthorizationResponseISSParameterSupported: true,
	}
	if contains(s.cfg.GrantTypes, GrantAuthorizationCode) {
		m.AuthorizationEndpoint = base + "/authorize"
		m.ResponseTypesSupported = []string{"code"}
		m.ResponseModesSupported = []string{"query"}
	}
	if s.env.Registrar != nil {
		m.RegistrationEndpoint = base + "/register"
	}
	return m
}

// ProtectedResourceMetadata returns the RFC 9728 document of
// ResourceServerURL: its resource identifier byte for byte, this server as
// its authorization server, and the scopes.
func (s *OAuthServer) ProtectedResourceMetadata() metadata.ProtectedResource {
	return metadata.ProtectedResource{
		Resource:               s.cfg.resource,
		AuthorizationServers:   []string{s.cfg.issuer},
		ScopesSupported:        s.cfg.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           s.cfg.ResourceName,
		ResourceDocumentation:  s.cfg.ServiceDocumentationURL,
	}
}

func (s *OAuthServer) newRouter() (http.Handler, error) {
	// No RedirectSlashes or RealIP middleware: both were open-redirect and
	// spoofing advisories of chi (peer lessons 24-25).
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteError(w, &OAuthError{Code: "not_found", Description: "no such endpoint", Status: http.StatusNotFound})
	})

	asPath, err := metadata.WellKnownPath(s.cfg.issuer, metadata.AuthorizationServerSuffix)
	if err != nil {
		return nil, configError("Issuer", err.Error())
	}
	asDoc, err := metadata.Handler(s.Metadata())
	if err != nil {
		return nil, err
	}
	r.Handle(asPath, asDoc)
	if s.cfg.resource != "" {
		prmPath, err := metadata.WellKnownPath(s.cfg.resource, metadata.ProtectedResourceSuffix)
		if err != nil {
			return nil, configError("ResourceServerURL", err.Error())
		}
		prmDoc, err := metadata.Handler(s.ProtectedResourceMetadata())
		if err != nil {
			return nil, err
		}
		r.Handle(prmPath, prmDoc)
	}

	base, _ := url.Parse(s.cfg.baseURL)
	prefix := strings.TrimSuffix(base.EscapedPath(), "/")
	rl := s.cfg.RateLimits
	if contains(s.cfg.GrantTypes, GrantAuthorizationCode) {
		r.Handle(prefix+"/authorize", methods(s.limit(rl.Authorize, handlers.Authorize(s.env)), http.MethodGet, http.MethodPost))
	}
	r.Handle(prefix+"/token", cors(methods(s.limit(rl.Token, handlers.Token(s.env, nil)), http.MethodPost), http.MethodPost))
	r.Handle(prefix+"/revoke", cors(methods(s.limit(rl.Revoke, handlers.Revoke(s.env)), http.MethodPost), http.MethodPost))
	if s.env.Registrar != nil {
		r.Handle(prefix+"/register", cors(methods(s.limit(rl.Register, handlers.Register(s.env)), http.MethodPost), http.MethodPost))
	}
	return r, nil
}

// limit wraps h in a per-client-IP rate limiter, unless limits are disabled.
// It sits inside the method guard, so a 405 costs no request.
func (s *OAuthServer) limit(l RateLimit, h http.Handler) http.Handler {
	if s.cfg.RateLimits.Disabled {
		return h
	}
	return ratelimit.New(l, ratelimit.Options{Now: s.cfg.Now, TrustedProxies: s.cfg.RateLimits.TrustedProxies}).Middleware(h)
}

func methods(h http.Handler, allowed ...string) http.Handler { return httpx.Methods(h, allowed...) }

func cors(h http.Handler, allowed ...string) http.Handler { return httpx.CORS(h, allowed...) }
