package metadata_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

func TestDocumentsJSON(t *testing.T) {
	tests := []struct {
		name string
		doc  any
		want string
	}{
		{
			name: "minimal AS omits empty arrays, empty strings and false flags",
			doc: metadata.AuthorizationServer{
				Issuer:                 "https://as.example",
				ScopesSupported:        []string{},
				GrantTypesSupported:    nil,
				ResponseTypesSupported: []string{},
			},
			want: `{"issuer":"https://as.example"}`,
		},
		{
			name: "full AS uses the RFC member names",
			doc: metadata.AuthorizationServer{
				Issuer:                            "https://as.example",
				AuthorizationEndpoint:             "https://as.example/authorize",
				TokenEndpoint:                     "https://as.example/token",
				JWKSURI:                           "https://as.example/jwks",
				RegistrationEndpoint:              "https://as.example/register",
				ScopesSupported:                   []string{"mcp:tools"},
				ResponseTypesSupported:            []string{"code"},
				ResponseModesSupported:            []string{"query"},
				GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
				TokenEndpointAuthMethodsSupported: []string{"none", "client_secret_basic"},
				TokenEndpointAuthSigningAlgValuesSupported: []string{"ES256"},
				ServiceDocumentation:                       "https://as.example/docs",
				RevocationEndpoint:                         "https://as.example/revoke",
				RevocationEndpointAuthMethodsSupported:     []string{"none"},
				IntrospectionEndpoint:                      "https://as.example/introspect",
				IntrospectionEndpointAuthMethodsSupported:  []string{"client_secret_basic"},
				CodeChallengeMethodsSupported:              []string{"S256"},
				DeviceAuthorizationEndpoint:                "https://as.example/device",
				AuthorizationResponseISSParameterSupported: true,
				ClientIDMetadataDocumentSupported:          true,
			},
			want: `{
				"issuer":"https://as.example",
				"authorization_endpoint":"https://as.example/authorize",
				"token_endpoint":"https://as.example/token",
				"jwks_uri":"https://as.example/jwks",
				"registration_endpoint":"https://as.example/register",
				"scopes_supported":["mcp:tools"],
				"response_types_supported":["code"],
				"response_modes_supported":["query"],
				"grant_types_supported":["authorization_code","refresh_token"],
				"token_endpoint_auth_methods_supported":["none","client_secret_basic"],
				"token_endpoint_auth_signing_alg_values_supported":["ES256"],
				"service_documentation":"https://as.example/docs",
				"revocation_endpoint":"https://as.example/revoke",
				"revocation_endpoint_auth_methods_supported":["none"],
				"introspection_endpoint":"https://as.example/introspect",
				"introspection_endpoint_auth_methods_supported":["client_secret_basic"],
				"code_challenge_methods_supported":["S256"],
				"device_authorization_endpoint":"https://as.example/device",
				"authorization_response_iss_parameter_supported":true,
				"client_id_metadata_document_supported":true
			}`,
		},
		{
			name: "minimal PRM keeps resource only",
			doc:  metadata.ProtectedResource{Resource: "https://rs.example/mcp", ScopesSupported: []string{}},
			want: `{"resource":"https://rs.example/mcp"}`,
		},
		{
			name: "full PRM",
			doc: metadata.ProtectedResource{
				Resource:               "https://rs.example/mcp",
				AuthorizationServers:   []string{"https://as.example"},
				ScopesSupported:        []string{"mcp:tools"},
				BearerMethodsSupported: []string{"header"},
				ResourceName:           "Demo",
				ResourceDocumentation:  "https://rs.example/docs",
			},
			want: `{"resource":"https://rs.example/mcp","authorization_servers":["https://as.example"],
				"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"],
				"resource_name":"Demo","resource_documentation":"https://rs.example/docs"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.doc)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
		})
	}
}
