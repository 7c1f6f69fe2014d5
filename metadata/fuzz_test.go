package metadata_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// FuzzDecodeClientMetadata checks that whatever DecodeClientMetadata
// accepts is a valid JSON object whose exactly named members carry the
// decoded values, so the strict decoder never disagrees with a plain
// case-sensitive reading of the same document.
func FuzzDecodeClientMetadata(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"redirect_uris":["https://a/cb"],"client_name":"n"}`,
		`{"Redirect_Uris":["https://evil/cb"]}`,
		`{"redirect_uris":["a"],"redirect_uris":["b"]}`,
		`{"client_name":"\u0000"}`,
		`{"client_name":"\ud800"}`,
		`{"jwks":{"keys":[]}}`,
		`{} {}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		md, err := metadata.DecodeClientMetadata(strings.NewReader(body), 4096)
		if err != nil {
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			return
		}
		require.True(t, json.Valid([]byte(body)))
		var members map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(body), &members))
		check := func(name string, got any) {
			raw, ok := members[name]
			if !ok || string(raw) == "null" {
				require.Empty(t, got, name)
				return
			}
			gotJSON, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, string(raw), string(gotJSON), name)
		}
		check("redirect_uris", md.RedirectURIs)
		check("client_name", md.ClientName)
		check("grant_types", md.GrantTypes)
		check("token_endpoint_auth_method", md.TokenEndpointAuthMethod)
		check("scope", md.Scope)
	})
}
