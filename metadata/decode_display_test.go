package metadata_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// TestDecodeClientMetadataDisplaySpoofing: the strings of client metadata
// are shown on the consent and device pages, so neither RFC 7591
// registration nor a client ID metadata document (both decode here) may
// carry C1 controls or bidirectional formatting characters, as they may
// carry no C0 control (Unicode TR 36, UTS 39, UAX #9 Bidi_Control).
func TestDecodeClientMetadataDisplaySpoofing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		body  string
		field string // the member the error names; "" for an accepted body
	}{
		// Refused: C1 controls, JSON-escaped and raw.
		{"TR36 C1 control U+0085 (NEL) in client_name", `{"client_name":"Acme\u0085Bank"}`, "client_name"},
		{"TR36 C1 control U+009B (CSI) in client_name", `{"client_name":"\u009b31mAcme"}`, "client_name"},
		{"TR36 C1 control U+0080 raw in client_name", "{\"client_name\":\"Acme\u0080\"}", "client_name"},
		{"TR36 C1 control U+009F in client_uri", `{"client_uri":"https://acme.example/\u009f"}`, "client_uri"},
		// Refused: embeddings and overrides U+202A-U+202E.
		{"TR36 bidi override U+202E in client_name", `{"client_name":"\u202Eelgoog"}`, "client_name"},
		{"TR36 bidi override U+202E raw in client_name", "{\"client_name\":\"\u202eelgoog\"}", "client_name"},
		{"TR36 bidi override U+202D in client_name", `{"client_name":"\u202DAcme"}`, "client_name"},
		{"TR36 bidi embedding U+202A in client_name", `{"client_name":"\u202AAcme"}`, "client_name"},
		{"TR36 bidi embedding U+202B in client_name", `{"client_name":"\u202BAcme"}`, "client_name"},
		{"TR36 bidi pop U+202C in client_name", `{"client_name":"Acme\u202C"}`, "client_name"},
		// Refused: isolates U+2066-U+2069.
		{"TR36 bidi isolate U+2066 in client_name", `{"client_name":"\u2066Acme"}`, "client_name"},
		{"TR36 bidi isolate U+2067 in client_name", `{"client_name":"\u2067Acme"}`, "client_name"},
		{"TR36 bidi isolate U+2068 in client_name", `{"client_name":"\u2068Acme"}`, "client_name"},
		{"TR36 bidi pop isolate U+2069 in client_name", `{"client_name":"Acme\u2069"}`, "client_name"},
		// Refused: the implicit marks, also Bidi_Control (see hasControl).
		{"TR36 bidi mark U+200E (LRM) in client_name", `{"client_name":"Acme\u200E"}`, "client_name"},
		{"TR36 bidi mark U+200F (RLM) in client_name", `{"client_name":"Acme\u200F 2.0"}`, "client_name"},
		{"TR36 bidi mark U+061C (ALM) in client_name", `{"client_name":"\u061CAcme"}`, "client_name"},
		// Every display string of the pages, and the other members alike.
		{"TR36 bidi override U+202E in logo_uri", `{"logo_uri":"https://acme.example/\u202Egnp.png"}`, "logo_uri"},
		{"TR36 bidi override U+202E in tos_uri", `{"tos_uri":"https://acme.example/\u202Etos"}`, "tos_uri"},
		{"TR36 bidi override U+202E in policy_uri", `{"policy_uri":"https://acme.example/\u202Epolicy"}`, "policy_uri"},
		{"TR36 bidi isolate U+2067 in client_uri", `{"client_uri":"https://acme.example/\u2067"}`, "client_uri"},
		{"TR36 bidi override U+202E in redirect_uris", `{"redirect_uris":["https://acme.example/\u202Ebc"]}`, "redirect_uris"},
		{"TR36 bidi override U+202E in contacts", `{"contacts":["admin@acme.example\u202E"]}`, "contacts"},
		{"TR36 bidi override U+202E in software_id", `{"software_id":"\u202Eacme"}`, "software_id"},
		{"TR36 bidi override U+202E in software_version", `{"software_version":"1.0\u202E"}`, "software_version"},
		{"TR36 bidi override U+202E in scope", `{"scope":"mcp:tools\u202E"}`, "scope"},

		// Accepted: text that is not a control or bidi control.
		{"UAX9 right-to-left client_name without controls", `{"client_name":"מחשבון"}`, ""},
		{"UAX9 Arabic client_name", `{"client_name":"حاسبة 2"}`, ""},
		{"TR36 Latin-1 letters are not C1 controls", `{"client_name":"Café Ünïcode \u00a0\u00ff"}`, ""},
		{"UTS39 zero width joiner in an emoji sequence", `{"client_name":"Team 👩\u200D💻"}`, ""},
		{"UTS39 zero width non-joiner in Persian", `{"client_name":"می\u200Cخواهم"}`, ""},
		{"RFC 7591 §2: unknown members are not inspected", `{"description":"\u202E","client_name":"Acme"}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, tt.body)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.Equal(t, metadata.ClientMetadata{}, got)
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, metadata.ErrInvalidClientMetadata.Error()+": "+tt.field+" "), msg)
			// The message is safe as error_description: printable ASCII.
			for _, c := range msg {
				require.True(t, c >= 0x20 && c < 0x7f && c != '"' && c != '\\', "%q", msg)
			}
		})
	}
}

// TestClientMetadataValidateText: metadata registered from Go, not decoded,
// gets the decoder's character rule on every string member (Unicode TR 36).
func TestClientMetadataValidateText(t *testing.T) {
	for _, tt := range []struct {
		name  string
		md    metadata.ClientMetadata
		field string // "" for valid
	}{
		{"TR36 valid metadata passes", metadata.ClientMetadata{ClientName: "Acme מחשבון", RedirectURIs: []string{"https://acme.example/cb"}}, ""},
		{"TR36 bidi override U+202E in client_name", metadata.ClientMetadata{ClientName: "\u202eemcA"}, "client_name"},
		{"TR36 C1 control U+0085 in client_name", metadata.ClientMetadata{ClientName: "Acme\u0085"}, "client_name"},
		{"TR36 C0 control ESC in client_name", metadata.ClientMetadata{ClientName: "\x1b[31mAcme"}, "client_name"},
		{"TR36 bidi isolate U+2066 in logo_uri", metadata.ClientMetadata{LogoURI: "https://acme.example/\u2066"}, "logo_uri"},
		{"TR36 bidi mark U+200F in tos_uri", metadata.ClientMetadata{TOSURI: "https://acme.example/\u200f"}, "tos_uri"},
		{"TR36 bidi override U+202D in policy_uri", metadata.ClientMetadata{PolicyURI: "https://acme.example/\u202d"}, "policy_uri"},
		{"TR36 bidi override U+202E in client_uri", metadata.ClientMetadata{ClientURI: "https://acme.example/\u202e"}, "client_uri"},
		{"TR36 bidi override U+202E in a redirect URI", metadata.ClientMetadata{RedirectURIs: []string{"https://acme.example/cb", "https://acme.example/\u202e"}}, "redirect_uris"},
		{"TR36 bidi override U+202E in contacts", metadata.ClientMetadata{Contacts: []string{"a@acme.example\u202e"}}, "contacts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.md.ValidateText()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.Equal(t, "invalid client metadata: "+tt.field+" contains a control or bidirectional formatting character", err.Error())
		})
	}
}
