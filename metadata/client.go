package metadata

import "encoding/json"

// ClientMetadata is the RFC 7591 §2 client metadata a client registers. Fields
// the server does not understand are dropped on decoding (RFC 7591 §2 says to
// ignore them).
type ClientMetadata struct {
	// RedirectURIs, TokenEndpointAuthMethod, GrantTypes and ResponseTypes
	// are always rendered: a registration response echoes them even when
	// empty (RFC 7591 §3.2.1; the TypeScript SDK requires redirect_uris).
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	ClientName              string          `json:"client_name,omitempty"`
	ClientURI               string          `json:"client_uri,omitempty"`
	LogoURI                 string          `json:"logo_uri,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	Contacts                []string        `json:"contacts,omitempty"`
	TOSURI                  string          `json:"tos_uri,omitempty"`
	PolicyURI               string          `json:"policy_uri,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	SoftwareID              string          `json:"software_id,omitempty"`
	SoftwareVersion         string          `json:"software_version,omitempty"`
	// ApplicationType is the OpenID Connect Registration member ("native" or
	// "web") that MCP clients send.
	ApplicationType string `json:"application_type,omitempty"`
	// DPoPBoundAccessTokens asks that the client's access tokens always be
	// DPoP-bound: the server then refuses its token requests without a
	// proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
}

// ClientInformation is the RFC 7591 §3.2.1 registration response: the
// metadata as registered plus what the server issued. It is also the format of
// pre-registered (static) clients.
type ClientInformation struct {
	ClientID string `json:"client_id"`
	// ClientSecret is present only in the registration response (and in a
	// static client file); the server stores its digest alone.
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at,omitempty"`
	// ClientSecretExpiresAt is REQUIRED when a secret is issued; 0 means the
	// secret never expires (RFC 7591 §3.2.1), hence a pointer.
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	ClientMetadata
}
