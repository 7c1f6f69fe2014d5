package cimd

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeDocumentDisplaySpoofing: a client ID metadata document is
// decoded by the registration decoder, so its display strings refuse C1
// controls and bidirectional formatting characters just as /register does
// (Unicode TR 36); the name is what the consent page shows.
func TestDecodeDocumentDisplaySpoofing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra map[string]any
	}{
		{"TR36 bidi override U+202E in client_name", map[string]any{"client_name": "\u202eppA elpmaxE"}},
		{"TR36 bidi isolate U+2066 in client_name", map[string]any{"client_name": "Example\u2066 App"}},
		{"TR36 bidi mark U+200F (RLM) in client_name", map[string]any{"client_name": "Example App\u200f"}},
		{"TR36 C1 control U+009B in client_name", map[string]any{"client_name": "\u009b31mExample"}},
		{"TR36 bidi override U+202E in logo_uri", map[string]any{"logo_uri": "https://app.example.com/\u202egnp.png"}},
		{"TR36 bidi override U+202E in policy_uri", map[string]any{"policy_uri": "https://app.example.com/\u202e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeDocument(docJSON(t, tt.extra), testClientID)
			require.ErrorIs(t, err, ErrInvalidDocument)
		})
	}
}
