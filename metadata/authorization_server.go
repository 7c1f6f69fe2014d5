package metadata

// AuthorizationServer is the RFC 8414 §2 authorization server metadata
// document. Optional members carry omitempty so that absent values and empty
// arrays are left out of the JSON, as RFC 8414 §3.2 requires for members
// with zero elements.
//
// Several members have defaults that apply when they are omitted (RFC 8414
// §2): no grant_types_supported means ["authorization_code", "implicit"], no
// token_endpoint_auth_methods_supported means ["client_secret_basic"], and no
// code_challenge_methods_supported means PKCE is not supported (so MCP
// clients refuse the server). A server should therefore always fill them in.
type AuthorizationServer struct {
	// Issuer is the REQUIRED issuer identifier: an https URL with no query
	// or fragment, byte-for-byte the string the well-known URL was built
	// from (RFC 8414 §3.3).
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is REQUIRED unless no grant type uses it.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint is REQUIRED unless only the implicit grant is supported.
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// JWKSURI is the server's JSON Web Key Set, needed only when it signs
	// tokens.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// RegistrationEndpoint is the RFC 7591 dynamic client registration
	// endpoint.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// ScopesSupported lists the scopes the server knows (RECOMMENDED).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResponseTypesSupported is REQUIRED; ["code"] for OAuth 2.1.
	ResponseTypesSupported []string `json:"response_types_supported,omitempty"`
	// ResponseModesSupported defaults to ["query", "fragment"] when omitted.
	ResponseModesSupported []string `json:"response_modes_supported,omitempty"`
	// GrantTypesSupported lists the enabled grant types.
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported lists the client authentication
	// methods of the token endpoint.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// TokenEndpointAuthSigningAlgValuesSupported is needed when
	// private_key_jwt or client_secret_jwt is supported.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// ServiceDocumentation is a human-readable page about the server.
	ServiceDocumentation string `json:"service_documentation,omitempty"`
	// RevocationEndpoint is the RFC 7009 token revocation endpoint.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// RevocationEndpointAuthMethodsSupported lists the client
	// authentication methods of the revocation endpoint.
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	// IntrospectionEndpoint is the RFC 7662 token introspection endpoint.
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	// IntrospectionEndpointAuthMethodsSupported lists the client
	// authentication methods of the introspection endpoint.
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	// CodeChallengeMethodsSupported lists the PKCE methods; MCP clients
	// refuse a server that does not list "S256".
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	// DeviceAuthorizationEndpoint is the RFC 8628 §4 device authorization
	// endpoint.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	// AuthorizationResponseISSParameterSupported tells clients that every
	// authorization response carries iss (RFC 9207 §3); false is the
	// default and is omitted.
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// AuthorizationGrantProfilesSupported lists the authorization grant
	// profiles the token endpoint processes, such as the Identity Assertion
	// JWT Authorization Grant's urn:ietf:params:oauth:grant-profile:id-jag
	// (draft-ietf-oauth-identity-assertion-authz-grant §7.2), which MCP
	// clients look for to find enterprise-managed authorization. It never
	// names which issuers are trusted.
	AuthorizationGrantProfilesSupported []string `json:"authorization_grant_profiles_supported,omitempty"`
	// ClientIDMetadataDocumentSupported tells clients that an https URL may
	// be used as client_id (OAuth Client ID Metadata Document draft).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// DPoPSigningAlgValuesSupported are the algorithms DPoP proofs may be
	// signed with; present when the server supports DPoP (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}
