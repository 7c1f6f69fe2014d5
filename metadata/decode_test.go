package metadata_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// marker is put into rejected inputs to prove that error messages do not
// echo input values.
const marker = "SMUGGLED"

func decode(t *testing.T, body string) (metadata.ClientMetadata, error) {
	t.Helper()
	return metadata.DecodeClientMetadata(strings.NewReader(body), 0)
}

func TestDecodeClientMetadataAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want metadata.ClientMetadata
	}{
		{
			name: "typical MCP client request with unknown members",
			body: `{
				"redirect_uris": ["http://127.0.0.1:33418/callback"],
				"token_endpoint_auth_method": "none",
				"grant_types": ["authorization_code", "refresh_token"],
				"response_types": ["code"],
				"client_name": "Demo ✓",
				"client_uri": "https://client.example",
				"scope": "mcp:tools",
				"application_type": "native",
				"resource": "https://rs.example/mcp",
				"client_id": "chosen-by-client",
				"software_statement": "eyJ.x.y"
			}`,
			want: metadata.ClientMetadata{
				RedirectURIs:            []string{"http://127.0.0.1:33418/callback"},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				ClientName:              "Demo ✓",
				ClientURI:               "https://client.example",
				Scope:                   "mcp:tools",
				ApplicationType:         "native",
			},
		},
		{
			name: "every known member",
			body: `{"redirect_uris":["https://a/cb"],"token_endpoint_auth_method":"client_secret_basic",
				"grant_types":["client_credentials"],"response_types":[],"client_name":"n","client_uri":"https://a",
				"logo_uri":"https://a/l.png","scope":"s","contacts":["ops@a"],"tos_uri":"https://a/tos",
				"policy_uri":"https://a/p","jwks":{"keys":[ {"kty":"EC"} ]},"software_id":"id","software_version":"1"}`,
			want: metadata.ClientMetadata{
				RedirectURIs:            []string{"https://a/cb"},
				TokenEndpointAuthMethod: "client_secret_basic",
				GrantTypes:              []string{"client_credentials"},
				ResponseTypes:           []string{},
				ClientName:              "n",
				ClientURI:               "https://a",
				LogoURI:                 "https://a/l.png",
				Scope:                   "s",
				Contacts:                []string{"ops@a"},
				TOSURI:                  "https://a/tos",
				PolicyURI:               "https://a/p",
				JWKS:                    json.RawMessage(`{"keys":[{"kty":"EC"}]}`),
				SoftwareID:              "id",
				SoftwareVersion:         "1",
			},
		},
		{
			name: "jwks_uri alone",
			body: `{"jwks_uri":"https://a/jwks"}`,
			want: metadata.ClientMetadata{JWKSURI: "https://a/jwks"},
		},
		{
			name: "case variants of known names are unknown members",
			body: `{"Redirect_Uris":["https://evil/cb"],"REDIRECT_URIS":["https://evil/cb"],"Client_Name":"evil",
				"redirect_uris":["https://good/cb"]}`,
			want: metadata.ClientMetadata{RedirectURIs: []string{"https://good/cb"}},
		},
		{
			name: "case variant alone does not populate the field",
			body: `{"Redirect_Uris":["https://evil/cb"]}`,
			want: metadata.ClientMetadata{},
		},
		{
			name: "null counts as absent",
			body: `{"client_name":null,"redirect_uris":null,"jwks":null,"jwks_uri":"https://a/jwks"}`,
			want: metadata.ClientMetadata{JWKSURI: "https://a/jwks"},
		},
		{
			name: "escaped backslash before u0000 is not NUL",
			body: `{"client_name":"a\\u0000"}`,
			want: metadata.ClientMetadata{ClientName: `a\u0000`},
		},
		{
			name: "paired surrogates",
			body: `{"client_name":"\ud83d\ude00"}`,
			want: metadata.ClientMetadata{ClientName: "😀"},
		},
		{
			name: "escapes in names are decoded before matching",
			body: `{"client\u005fname":"n"}`,
			want: metadata.ClientMetadata{ClientName: "n"},
		},
		{
			name: "control characters allowed in unknown members",
			body: `{"description":"line1\nline2","client_name":"n"}`,
			want: metadata.ClientMetadata{ClientName: "n"},
		},
		{
			name: "trailing white space",
			body: "{}\r\n\t ",
			want: metadata.ClientMetadata{},
		},
		{
			name: "empty object",
			body: `{}`,
			want: metadata.ClientMetadata{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, tt.body)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeClientMetadataRejects(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	tests := []struct {
		name string
		body string
	}{
		// Not one JSON object.
		{"empty body", ``},
		{"white space only", "  "},
		{"array", `["` + marker + `"]`},
		{"string", `"` + marker + `"`},
		{"null", `null`},
		{"truncated", `{"client_name":"` + marker},
		{"syntax error", `{"client_name" "` + marker + `"}`},
		{"trailing object", `{"client_name":"a"}{"redirect_uris":["https://` + marker + `"]}`},
		{"trailing garbage", `{"client_name":"a"} ` + marker},
		{"trailing bracket", `{}]`},
		{"byte order mark", "\ufeff{}"},
		{"nested too deeply", deep},
		// Duplicate member names.
		{"duplicate known member", `{"redirect_uris":["https://a/cb"],"redirect_uris":["https://` + marker + `/cb"]}`},
		{"duplicate via escape", `{"redirect_uris":["https://a/cb"],"redirect\u005furis":["https://` + marker + `/cb"]}`},
		{"duplicate unknown member", `{"x":1,"x":"` + marker + `"}`},
		{"duplicate inside jwks", `{"jwks":{"keys":[{"kty":"EC","kty":"` + marker + `"}]}}`},
		{"duplicate inside unknown member", `{"extra":{"a":1,"a":2}}`},
		// NUL, surrogates, UTF-8.
		{"NUL in known member", `{"client_name":"a\u0000` + marker + `"}`},
		{"NUL in array element", `{"redirect_uris":["https://a/cb\u0000` + marker + `"]}`},
		{"NUL in unknown member", `{"x":"\u0000` + marker + `"}`},
		{"NUL in member name", `{"client_name\u0000":"` + marker + `"}`},
		{"raw NUL byte", "{\"client_name\":\"a\x00" + marker + "\"}"},
		{"lone high surrogate", `{"client_name":"\ud800` + marker + `"}`},
		{"high surrogate at end of string", `{"client_name":"\ud800"}`},
		{"high surrogate then non-surrogate escape", `{"client_name":"\ud800\u0041"}`},
		{"lone low surrogate", `{"client_name":"\udc00"}`},
		{"invalid UTF-8", "{\"client_name\":\"\xff" + marker + "\"}"},
		{"invalid UTF-8 in unknown member", "{\"x\":\"\xc3\x28\"}"},
		{"overlong UTF-8", "{\"client_name\":\"\xc0\xaf\"}"},
		// Control characters in known members.
		{"tab in client_name", `{"client_name":"a\t` + marker + `"}`},
		{"newline in redirect uri", `{"redirect_uris":["https://a/cb\n` + marker + `"]}`},
		{"escape char in contacts", `{"contacts":["\u001b[31m` + marker + `"]}`},
		{"DEL in scope", `{"scope":"a\u007f"}`},
		// Wrong JSON types.
		{"redirect_uris as string", `{"redirect_uris":"https://` + marker + `/cb"}`},
		{"redirect_uris as object", `{"redirect_uris":{"0":"https://` + marker + `/cb"}}`},
		{"redirect_uris with number", `{"redirect_uris":["https://a/cb",1]}`},
		{"redirect_uris with null element", `{"redirect_uris":["https://a/cb",null]}`},
		{"redirect_uris with nested array", `{"redirect_uris":[["https://` + marker + `/cb"]]}`},
		{"grant_types as string", `{"grant_types":"authorization_code"}`},
		{"client_name as number", `{"client_name":42}`},
		{"client_name as array", `{"client_name":["` + marker + `"]}`},
		{"client_name as object", `{"client_name":{"a":"` + marker + `"}}`},
		{"token_endpoint_auth_method as bool", `{"token_endpoint_auth_method":true}`},
		{"jwks as string", `{"jwks":"` + marker + `"}`},
		{"jwks as array", `{"jwks":[]}`},
		// RFC 7591 §2 exclusivity.
		{"jwks with jwks_uri", `{"jwks":{"keys":[]},"jwks_uri":"https://a/jwks"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, tt.body)
			require.Error(t, err)
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.NotErrorIs(t, err, metadata.ErrTooLarge)
			require.Equal(t, metadata.ClientMetadata{}, got)
			msg := err.Error()
			require.NotContains(t, msg, marker)
			require.NotContains(t, msg, "evil")
			require.NotContains(t, msg, `"`) // safe as error_description
			require.NotContains(t, msg, `\`)
		})
	}
}

func TestDecodeClientMetadataSize(t *testing.T) {
	const limit = 64
	fits := `{"client_name":"` + strings.Repeat("a", limit-18) + `"}`
	require.Len(t, fits, limit)
	tests := []struct {
		name    string
		body    io.Reader
		max     int64
		tooBig  bool
		wantErr bool
	}{
		{"exactly the limit", strings.NewReader(fits), limit, false, false},
		{"one byte over", strings.NewReader(fits + " "), limit, true, true},
		{"far over", strings.NewReader(`{"x":"` + strings.Repeat("a", 10*limit) + `"}`), limit, true, true},
		{"default limit", strings.NewReader(`{"x":"` + strings.Repeat("a", metadata.DefaultMaxClientMetadataBytes) + `"}`), 0, true, true},
		{"http.MaxBytesReader", http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(fits)), 10), limit, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metadata.DecodeClientMetadata(tt.body, tt.max)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.Equal(t, tt.tooBig, errors.Is(err, metadata.ErrTooLarge))
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestDecodeClientMetadataReadError(t *testing.T) {
	_, err := metadata.DecodeClientMetadata(failingReader{}, 0)
	require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
	require.NotErrorIs(t, err, metadata.ErrTooLarge)
}

func TestValidateURI(t *testing.T) {
	tests := []struct {
		raw string
		ok  bool
	}{
		{"https://client.example", true},
		{"https://client.example/logo.png?size=2", true},
		{"http://localhost:8080/tos", true},
		{"HTTPS://client.example/", true},
		{"https://[2001:db8::1]/p", true},
		{"", false},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{" javascript:alert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"vbscript:msgbox(1)", false},
		{"file:///etc/passwd", false},
		{"ftp://client.example/x", false},
		{"mailto:a@b", false},
		{"//client.example/x", false},
		{"/relative", false},
		{"client.example", false},
		{"https:opaque", false},
		{"https://", false},
		{"https://:443/x", false},
		{"https://client.example/#frag", false},
		{"https://client.example/#", false},
		{"https://user:pw@client.example/", false},
		{"https://client.example\\@evil.example/", false},
		{"https://client.example/a b", false},
		{"https://client.example/\x00", false},
		{"https://client.example/\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			err := metadata.ValidateURI("logo_uri", tt.raw)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.Contains(t, err.Error(), "logo_uri")
			if tt.raw != "" {
				require.NotContains(t, err.Error(), tt.raw)
			}
		})
	}
}

func TestClientMetadataValidateURIs(t *testing.T) {
	tests := []struct {
		name    string
		md      metadata.ClientMetadata
		wantErr string
	}{
		{"none set", metadata.ClientMetadata{}, ""},
		{"all valid", metadata.ClientMetadata{ClientURI: "https://a", LogoURI: "https://a/l", TOSURI: "https://a/t", PolicyURI: "https://a/p", JWKSURI: "https://a/j"}, ""},
		{"bad policy_uri", metadata.ClientMetadata{ClientURI: "https://a", PolicyURI: "javascript:alert(1)"}, "policy_uri"},
		{"bad jwks_uri", metadata.ClientMetadata{JWKSURI: "file:///etc/passwd"}, "jwks_uri"},
		{"bad client_uri", metadata.ClientMetadata{ClientURI: "data:,x"}, "client_uri"},
		{"bad logo_uri", metadata.ClientMetadata{LogoURI: "vbscript:x"}, "logo_uri"},
		{"bad tos_uri", metadata.ClientMetadata{TOSURI: "https://a/#x"}, "tos_uri"},
		{"redirect_uris not checked here", metadata.ClientMetadata{RedirectURIs: []string{"myapp:/cb"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.md.ValidateURIs()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

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
