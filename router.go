package mcpoauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/handlers"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Router returns the handler that serves every endpoint and metadata
// document. Mount it at the root of the issuer's origin:
//
//   - RFC 8414 metadata at /.well-known/oauth-authorization-server[/issuer path]
//   - RFC 9728 metadata at /.well-known/oauth-protected-resource[/resource path]
//     (when ResourceServerURL is set)
//   - /authorize (GET, POST), /token, /register, /revoke, /introspect (RFC
//     7662), and /device (the RFC 8628 device authorization endpoint, when
//     GrantDeviceCode is on) under BaseURL's path
//   - the JSON Web Key Set of SigningKeys at JWKSPath under BaseURL's path,
//     with AccessTokenJWT
//
// Each endpoint answers 405 with Allow to other methods (HEAD wherever GET
// is allowed). Token, registration, revocation, introspection, device
// authorization and metadata allow CORS; the authorization endpoint never does (RFC 9700
// §2.6).
func (s *OAuthServer) Router() http.Handler { return s.router }

// Metadata returns the RFC 8414 authorization server metadata the router
// serves: every enabled endpoint, and explicit values for the members whose
// defaults would mislead clients (PKCE, auth methods, grant types).
func (s *OAuthServer) Metadata() metadata.AuthorizationServer {
	base := s.cfg.baseURL
	m := metadata.AuthorizationServer{
		Issuer:                                 s.cfg.issuer,
		TokenEndpoint:                          base + "/token",
		ScopesSupported:                        s.asScopes(),
		ResponseTypesSupported:                 []string{},
		GrantTypesSupported:                    slices.Clone(s.cfg.GrantTypes),
		TokenEndpointAuthMethodsSupported:      s.grants.AuthMethods(),
		ServiceDocumentation:                   s.cfg.ServiceDocumentationURL,
		RevocationEndpoint:                     base + "/revoke",
		RevocationEndpointAuthMethodsSupported: s.grants.AuthMethods(),
		IntrospectionEndpoint:                  base + "/introspect",
		// RFC 7662 §2.1: only confidential clients may introspect.
		IntrospectionEndpointAuthMethodsSupported: slices.DeleteFunc(s.grants.AuthMethods(), func(m string) bool { return m == grants.AuthMethodNone }),
		CodeChallengeMethodsSupported:             []string{pkce.MethodS256},
		// RFC 9207 §3: every authorization response carries iss.
		AuthorizationResponseISSParameterSupported: true,
		// draft-ietf-oauth-client-id-metadata-document §6.
		ClientIDMetadataDocumentSupported: s.cfg.ClientIDMetadataDocuments.Enabled,
	}
	if s.cfg.dpop != nil {
		// RFC 9449 §5.1.
		m.DPoPSigningAlgValuesSupported = s.cfg.dpop.Algorithms()
	}
	if s.grants.Assertions != nil {
		// RFC 8414 §2: required once private_key_jwt is listed.
		m.TokenEndpointAuthSigningAlgValuesSupported = slices.Clone(clientjwt.Algorithms)
	}
	if contains(s.cfg.GrantTypes, GrantAuthorizationCode) {
		m.AuthorizationEndpoint = base + "/authorize"
		m.ResponseTypesSupported = []string{"code"}
		m.ResponseModesSupported = []string{"query"}
	}
	if s.env.Registrar != nil {
		m.RegistrationEndpoint = base + "/register"
	}
	if s.cfg.signingKeys != nil {
		m.JWKSURI = base + JWKSPath
	}
	if contains(s.cfg.GrantTypes, GrantJWTBearer) {
		// ID-JAG draft §7.2; grant_types_supported lists the jwt-bearer
		// URN already, as the draft requires beside it.
		m.AuthorizationGrantProfilesSupported = []string{grants.IDJAGProfile}
	}
	if contains(s.cfg.GrantTypes, GrantDeviceCode) {
		// RFC 8628 §4.
		m.DeviceAuthorizationEndpoint = base + "/device"
	}
	return m
}

// asScopes are the scopes the server metadata lists: ScopesSupported, and
// offline_access while the refresh grant is on (MCP SEP-2207: clients such
// as ChatGPT look for it there before they ask for a refresh token).
func (s *OAuthServer) asScopes() []string {
	scopes := slices.DeleteFunc(slices.Clone(s.cfg.ScopesSupported), func(sc string) bool { return sc == grants.OfflineAccess })
	if contains(s.cfg.GrantTypes, GrantRefreshToken) {
		scopes = append(scopes, grants.OfflineAccess)
	}
	return scopes
}

// ProtectedResourceMetadata returns the RFC 9728 document of
// ResourceServerURL: its resource identifier byte for byte, this server as
// its authorization server, and the scopes.
func (s *OAuthServer) ProtectedResourceMetadata() metadata.ProtectedResource {
	var algs []string
	if s.cfg.dpop != nil {
		algs = s.cfg.dpop.Algorithms()
	}
	return metadata.ProtectedResource{
		// RFC 9728 §2 (RFC 9449 §5.1 defines the values).
		DPoPSigningAlgValuesSupported: algs,
		DPoPBoundAccessTokensRequired: s.cfg.DPoP.Required,
		Resource:                      s.cfg.resource,
		AuthorizationServers:          []string{s.cfg.issuer},
		// SEP-2207: offline_access is no resource's scope.
		ScopesSupported:        slices.DeleteFunc(slices.Clone(s.cfg.ScopesSupported), func(sc string) bool { return sc == grants.OfflineAccess }),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           s.cfg.ResourceName,
		ResourceDocumentation:  s.cfg.ServiceDocumentationURL,
	}
}

func (s *OAuthServer) newRouter() (http.Handler, error) {
	// No RedirectSlashes or RealIP middleware: both were open-redirect and
	// spoofing advisories of chi.
	r := chi.NewRouter()
	notFound := func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteError(w, &oautherr.Error{Code: "not_found", Description: "no such endpoint", Status: http.StatusNotFound})
	}
	r.NotFound(notFound)
	// chi answers a method it does not know (PROPFIND) itself, before any
	// handler: give that 405 its Allow header (RFC 9110 §15.5.6), and keep
	// unknown paths 404.
	allow := map[string]string{}
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		a, ok := allow[req.URL.Path]
		if !ok {
			notFound(w, req)
			return
		}
		w.Header().Set("Allow", a)
		httpx.WriteError(w, &oautherr.Error{Code: "method_not_allowed", Description: "method not allowed", Status: http.StatusMethodNotAllowed})
	})
	handle := func(endpoint, path, allowed string, h http.Handler) {
		allow[path] = allowed
		r.Handle(path, s.telemetry.Endpoint(endpoint, h))
	}

	// handleDocument serves doc at the well-known URL of identifier (RFC
	// 8414 §3, RFC 9728 §3); field names the setting identifier comes from.
	handleDocument := func(identifier, suffix, field string, doc any) error {
		path, err := metadata.WellKnownPath(identifier, suffix)
		if err != nil {
			return configError(field, err.Error())
		}
		h, err := metadata.Handler(doc)
		if err != nil {
			return err
		}
		handle("metadata", path, "GET, HEAD", h)
		return nil
	}
	if err := handleDocument(s.cfg.issuer, metadata.AuthorizationServerSuffix, "Issuer", s.Metadata()); err != nil {
		return nil, err
	}
	if s.cfg.resource != "" {
		if err := handleDocument(s.cfg.resource, metadata.ProtectedResourceSuffix, "ResourceServerURL", s.ProtectedResourceMetadata()); err != nil {
			return nil, err
		}
	}

	base, _ := url.Parse(s.cfg.baseURL)
	prefix := strings.TrimSuffix(base.EscapedPath(), "/")
	rl := s.cfg.RateLimits
	if contains(s.cfg.GrantTypes, GrantAuthorizationCode) {
		handle("authorize", prefix+"/authorize", "GET, HEAD, POST", methods(s.limit("authorize", rl.Authorize, handlers.Authorize(s.env)), http.MethodGet, http.MethodPost))
	}
	handle("token", prefix+"/token", "POST", cors(methods(s.limit("token", rl.Token, handlers.Token(s.env)), http.MethodPost), http.MethodPost))
	handle("revoke", prefix+"/revoke", "POST", cors(methods(s.limit("revoke", rl.Revoke, handlers.Revoke(s.env)), http.MethodPost), http.MethodPost))
	handle("introspect", prefix+"/introspect", "POST", cors(methods(s.limit("introspect", rl.Introspect, handlers.Introspect(s.env)), http.MethodPost), http.MethodPost))
	if contains(s.cfg.GrantTypes, GrantDeviceCode) {
		handle("device_authorization", prefix+"/device", "POST", cors(methods(s.limit("device_authorization", rl.Device, handlers.Device(s.env)), http.MethodPost), http.MethodPost))
	}
	if s.cfg.signingKeys != nil {
		handle("jwks", prefix+JWKSPath, "GET, HEAD", cors(methods(jwksHandler(s.cfg.signingKeys), http.MethodGet), http.MethodGet))
	}
	if s.env.Registrar != nil {
		handle("register", prefix+"/register", "POST", cors(methods(s.limit("register", rl.Register, handlers.Register(s.env)), http.MethodPost), http.MethodPost))
	}
	return r, nil
}

// limit wraps h in a per-client-IP rate limiter, unless limits are disabled.
// It sits inside the method guard, so a 405 costs no request. name names
// the limit in metrics and events.
func (s *OAuthServer) limit(name string, l RateLimit, h http.Handler) http.Handler {
	if s.cfg.RateLimits.Disabled {
		return h
	}
	return s.newLimiter(name, l).Middleware(h)
}

func methods(h http.Handler, allowed ...string) http.Handler { return httpx.Methods(h, allowed...) }

func cors(h http.Handler, allowed ...string) http.Handler { return httpx.CORS(h, allowed...) }
