package integration_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// TestRegisterDisplaySpoofing: Unicode TR 36: the strings a client registers
// are shown on the consent and device pages, so /register refuses C1
// controls and bidirectional formatting characters in them with 400
// invalid_client_metadata (RFC 7591 §3.2.2), as it refuses C0 controls,
// and registers nothing.
func TestRegisterDisplaySpoofing(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name, member, value string
	}{
		{"TR36 bidi override U+202E in client_name", "client_name", `\u202EtnuoccA elgooG`},
		{"TR36 bidi isolate U+2067 in client_name", "client_name", `Acme\u2067`},
		{"TR36 bidi mark U+200F (RLM) in client_name", "client_name", `Acme\u200F`},
		{"TR36 C1 control U+009B (CSI) in client_name", "client_name", `\u009b31mAcme`},
		{"TR36 bidi override U+202E in client_uri", "client_uri", `https://acme.example/\u202E`},
		{"TR36 bidi override U+202E in logo_uri", "logo_uri", `https://acme.example/\u202Egnp.png`},
		{"TR36 bidi override U+202E in tos_uri", "tos_uri", `https://acme.example/\u202Etos`},
		{"TR36 bidi override U+202E in policy_uri", "policy_uri", `https://acme.example/\u202Epolicy`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.errsSnapshot())
			body := `{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","` + tt.member + `":"` + tt.value + `"}`
			w := h.register(body)
			regRequireError(t, w, http.StatusBadRequest, "invalid_client_metadata")
			errs := h.errsSnapshot()
			require.Greater(t, len(errs), before, "ErrorHandler sees the refusal")
			require.ErrorIs(t, errs[len(errs)-1], metadata.ErrInvalidClientMetadata, "refused by the decoder")
		})
	}
	// The same name without the control registers: the refusal is about
	// the character, not the text.
	w := h.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","client_name":"Acme \u05D0\u05D1 \u00e9"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
}

// TestRegisterClientDisplaySpoofing: a client registered from Go (a static
// client file, an application's own registration page) is shown on the
// same pages, so RegisterClient applies the same rule (Unicode TR 36).
func TestRegisterClientDisplaySpoofing(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name, clientName string
		ok               bool
	}{
		{"TR36 bidi override U+202E in client_name", "\u202eemcA", false},
		{"TR36 C1 control U+009B in client_name", "\u009b31mAcme", false},
		{"TR36 bidi mark U+200E (LRM) in client_name", "Acme\u200e", false},
		{"TR36 right-to-left client_name without controls", "מחשבון", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := mcpoauthClientInfo("static-"+tt.name, testRedirect)
			info.ClientName = tt.clientName
			_, err := h.srv.RegisterClient(context.Background(), info)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, metadata.ErrInvalidClientMetadata)
			require.ErrorContains(t, err, "client_name contains a control or bidirectional formatting character")
		})
	}
}
