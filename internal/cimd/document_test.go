package cimd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/cimd/cimdtest"
	"github.com/mcpoauth/mcpoauth/metadata"
)

const testClientID = "https://app.example.com/client.json"

// docJSON is a valid document for testClientID with the members of extra
// set (a nil value deletes the member).
func docJSON(t testing.TB, extra map[string]any) []byte {
	t.Helper()
	return cimdtest.Document(t, map[string]any{
		"client_id":     testClientID,
		"client_name":   "Example App",
		"redirect_uris": []string{"https://app.example.com/cb"},
	}, extra)
}

// TestDecodeDocument: a valid document decodes to a public client's
// metadata.
func TestDecodeDocument(t *testing.T) {
	md, err := DecodeDocument(docJSON(t, map[string]any{
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none",
		"logo_uri":                   "https://app.example.com/logo.png",
		"jwks_uri":                   "https://app.example.com/jwks.json",
		"application_type":           "native",
		"software_id":                "x",
		"unknown_member":             map[string]any{"ignored": true},
	}), testClientID)
	require.NoError(t, err)
	require.Equal(t, "Example App", md.ClientName)
	require.Equal(t, []string{"https://app.example.com/cb"}, md.RedirectURIs)
	require.Equal(t, AuthMethodNone, md.TokenEndpointAuthMethod)
	require.Equal(t, []string{"authorization_code", "refresh_token"}, md.GrantTypes)

	md, err = DecodeDocument(docJSON(t, nil), testClientID)
	require.NoError(t, err)
	require.Equal(t, AuthMethodNone, md.TokenEndpointAuthMethod, "an absent method means none")
	require.Empty(t, md.GrantTypes, "defaults are the server's to apply")

	// The MCP authorization specification (2026-07-28) lets a document
	// authenticate with private_key_jwt (ChatGPT's does); the keys are the
	// server's to check.
	md, err = DecodeDocument(docJSON(t, map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example.com/jwks"}), testClientID)
	require.NoError(t, err)
	require.Equal(t, AuthMethodPrivateKeyJWT, md.TokenEndpointAuthMethod, "private_key_jwt is kept")
	require.Equal(t, "https://app.example.com/jwks", md.JWKSURI)
}

// TestDecodeDocumentRefuses: the draft's document rules (§4, §4.1), the MCP
// required members, and the strict JSON rules of registration (no key
// smuggling, duplicate keys or NUL).
func TestDecodeDocumentRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"client_id missing":             string(docJSON(t, map[string]any{"client_id": nil})),
		"client_id differs":             string(docJSON(t, map[string]any{"client_id": "https://evil.example.com/client.json"})),
		"client_id differs by slash":    string(docJSON(t, map[string]any{"client_id": testClientID + "/"})),
		"client_id differs by case":     string(docJSON(t, map[string]any{"client_id": strings.ToUpper(testClientID)})),
		"client_id with port":           string(docJSON(t, map[string]any{"client_id": "https://app.example.com:443/client.json"})),
		"client_id not a string":        string(docJSON(t, map[string]any{"client_id": []string{testClientID}})),
		"client_id null":                `{"client_id":null,"client_name":"n","redirect_uris":["https://a.example.com/cb"]}`,
		"client_secret":                 string(docJSON(t, map[string]any{"client_secret": "s3cret"})),
		"empty client_secret":           string(docJSON(t, map[string]any{"client_secret": ""})),
		"client_secret_expires_at":      string(docJSON(t, map[string]any{"client_secret_expires_at": 0})),
		"client_secret_basic":           string(docJSON(t, map[string]any{"token_endpoint_auth_method": "client_secret_basic"})),
		"client_secret_post":            string(docJSON(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})),
		"client_secret_jwt":             string(docJSON(t, map[string]any{"token_endpoint_auth_method": "client_secret_jwt"})),
		"tls_client_auth (unsupported)": string(docJSON(t, map[string]any{"token_endpoint_auth_method": "tls_client_auth"})),
		"client_name missing":           string(docJSON(t, map[string]any{"client_name": nil})),
		"client_name blank":             string(docJSON(t, map[string]any{"client_name": "  "})),
		"redirect_uris missing":         string(docJSON(t, map[string]any{"redirect_uris": nil})),
		"redirect_uris empty":           string(docJSON(t, map[string]any{"redirect_uris": []string{}})),
		"not an object":                 `["https://app.example.com/client.json"]`,
		"not JSON":                      `<html>client</html>`,
		"empty":                         ``,
		"trailing data":                 string(docJSON(t, nil)) + `{}`,
		"duplicate client_id": `{"client_id":"https://evil.example.com/c","client_id":"` + testClientID +
			`","client_name":"n","redirect_uris":["https://a.example.com/cb"]}`,
		"duplicate redirect_uris": `{"client_id":"` + testClientID + `","client_name":"n",` +
			`"redirect_uris":["https://a.example.com/cb"],"redirect_uris":["https://evil.example.com/cb"]}`,
		"NUL in client_name": `{"client_id":"` + testClientID + `","client_name":"a\u0000b","redirect_uris":["https://a.example.com/cb"]}`,
		"unpaired surrogate": `{"client_id":"` + testClientID + `","client_name":"\ud800","redirect_uris":["https://a.example.com/cb"]}`,
		"too large":          string(docJSON(t, map[string]any{"client_uri": "https://app.example.com/" + strings.Repeat("a", MaxDocumentBytes)})),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeDocument([]byte(body), testClientID)
			require.ErrorIs(t, err, ErrInvalidDocument)
		})
	}
}

// TestDecodeDocumentCaseVariantKeys: a case variant of a member is an
// unknown member, never the member itself (go-sdk CVE-2026-27896): the document
// below has no client_id, and its Redirect_Uris are not redirect URIs.
func TestDecodeDocumentCaseVariantKeys(t *testing.T) {
	_, err := DecodeDocument([]byte(`{"Client_Id":"`+testClientID+`","client_name":"n","redirect_uris":["https://a.example.com/cb"]}`), testClientID)
	require.ErrorIs(t, err, ErrInvalidDocument)

	md, err := DecodeDocument([]byte(`{"client_id":"`+testClientID+`","client_name":"n","redirect_uris":["https://a.example.com/cb"],"Redirect_Uris":["https://evil.example.com/cb"],"CLIENT_SECRET_X":1}`), testClientID)
	require.NoError(t, err)
	require.Equal(t, []string{"https://a.example.com/cb"}, md.RedirectURIs)
}

// FuzzDecodeDocument checks that whatever DecodeDocument accepts names the
// URL as its client_id, carries no client_secret member, has the required
// members, and agrees with the registration decoder.
func FuzzDecodeDocument(f *testing.F) {
	f.Add([]byte(`{"client_id":"https://app.example.com/client.json","client_name":"n","redirect_uris":["https://a.example.com/cb"]}`))
	f.Add([]byte(`{"client_id":"https://app.example.com/client.json","client_id":"x","client_name":"n","redirect_uris":["https://a"]}`))
	f.Add([]byte(`{"client_id":"https://app.example.com/client.json","client_name":"n","redirect_uris":["https://a"],"client_secret":"s"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		md, err := DecodeDocument(body, testClientID)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidDocument)
			return
		}
		var members map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &members))
		var id string
		require.NoError(t, json.Unmarshal(members["client_id"], &id))
		require.Equal(t, testClientID, id)
		for k := range members {
			require.False(t, strings.HasPrefix(k, "client_secret"), k)
		}
		require.NotEmpty(t, md.ClientName)
		require.NotEmpty(t, md.RedirectURIs)
		require.Equal(t, AuthMethodNone, md.TokenEndpointAuthMethod)
		reg, err := metadata.DecodeClientMetadata(strings.NewReader(string(body)), MaxDocumentBytes)
		require.NoError(t, err)
		require.Equal(t, reg.RedirectURIs, md.RedirectURIs)
	})
}
