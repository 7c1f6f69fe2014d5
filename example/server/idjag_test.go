package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// TestTrustIDPFlag: -trust-idp ISSUER=JWKS_URL (repeatable) names the
// identity providers whose ID-JAGs the jwt-bearer grant accepts; a value
// without "=" is refused.
func TestTrustIDPFlag(t *testing.T) {
	o, err := parseFlags([]string{"-trust-idp", "https://idp.example.com=https://idp.example.com/jwks?x=1", "-trust-idp", "http://127.0.0.1:9=http://127.0.0.1:9/jwks"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []mcpoauth.IdentityProvider{
		{Issuer: "https://idp.example.com", JWKSURL: "https://idp.example.com/jwks?x=1"},
		{Issuer: "http://127.0.0.1:9", JWKSURL: "http://127.0.0.1:9/jwks"},
	}, o.trustIDPs)
	_, err = parseFlags([]string{"-trust-idp", "https://idp.example.com"}, io.Discard)
	assert.Error(t, err)
}

// TestTrustIDPEnablesJWTBearer: the jwt-bearer grant and the ID-JAG
// profile are advertised with -trust-idp, and not by default.
func TestTrustIDPEnablesJWTBearer(t *testing.T) {
	for _, trust := range []bool{false, true} {
		var opts options
		if trust {
			opts.trustIDPs = []mcpoauth.IdentityProvider{{Issuer: "https://idp.example.com", JWKSURL: "https://idp.example.com/jwks"}}
		}
		e := newTestEnvWith(t, opts)
		resp, err := http.Get(e.issuer + "/.well-known/oauth-authorization-server")
		require.NoError(t, err)
		var m struct {
			GrantTypes []string `json:"grant_types_supported"`
			Profiles   []string `json:"authorization_grant_profiles_supported"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		_ = resp.Body.Close()
		assert.Equal(t, trust, slices.Contains(m.GrantTypes, mcpoauth.GrantJWTBearer), m.GrantTypes)
		assert.Equal(t, trust, slices.Contains(m.Profiles, "urn:ietf:params:oauth:grant-profile:id-jag"), m.Profiles)
	}
}
