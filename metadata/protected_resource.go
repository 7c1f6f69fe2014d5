package metadata

// ProtectedResource is the RFC 9728 §2 protected resource metadata document
// that an MCP server publishes so clients can find its authorization server.
// Optional members carry omitempty: members with zero elements are omitted
// (RFC 9728 §3.2).
type ProtectedResource struct {
	// Resource is the REQUIRED resource identifier. It must be identical to
	// the identifier the well-known URL was built from and to the URL
	// clients address (RFC 9728 §3.3), so use the MCP endpoint URL exactly.
	Resource string `json:"resource"`
	// AuthorizationServers lists issuer identifiers of the authorization
	// servers that issue tokens for this resource (MCP requires one at
	// least).
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported lists the scopes needed for basic use of the resource
	// (RECOMMENDED).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported lists how a bearer token may be presented;
	// MCP allows only ["header"].
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	// ResourceName is a human-readable name (RECOMMENDED).
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a human-readable page about the resource.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// DPoPSigningAlgValuesSupported are the algorithms the resource accepts
	// for DPoP proofs (RFC 9728 §2).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired says that the resource accepts only
	// DPoP-bound access tokens (RFC 9728 §2).
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required,omitempty"`
}
