package modeltest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

var getClientClauses = []clause{
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		// Any string can arrive as a client_id: a lookup of one no client
		// has is ErrNotFound, never a storage error.
		for _, id := range append(otherClients, "unknown", strings.Repeat("x", 4096)) {
			got, err := k.m.GetClient(k.ctx, id)
			require.ErrorIs(t, err, mcpoauth.ErrNotFound, "client_id %q", id)
			require.Nil(t, got)
		}
	}},
}

var registerClientClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		for _, c := range []*mcpoauth.Client{confidentialClient(k, clientA), publicClient(clientB)} {
			want := copyClient(c)
			require.NoError(t, r.RegisterClient(k.ctx, c))
			got, err := k.m.GetClient(k.ctx, want.ID)
			require.NoError(t, err)
			requireClientEqual(t, want, got)
			require.Equal(t, want.IsPublic(), got.IsPublic())
		}
	}},
	{"DuplicateIDIsConflict", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		orig := confidentialClient(k, clientA)
		want := copyClient(orig)
		require.NoError(t, r.RegisterClient(k.ctx, orig))

		// A second registration under the same ID must not replace the
		// first: that would hand the client to whoever registered last.
		err := r.RegisterClient(k.ctx, publicClient(clientA))
		require.ErrorIs(t, err, mcpoauth.ErrConflict)
		got, err := k.m.GetClient(k.ctx, clientA)
		require.NoError(t, err)
		requireClientEqual(t, want, got)
	}},
	{"IDIsMatchedExactly", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		require.NoError(t, r.RegisterClient(k.ctx, publicClient(clientA)))
		for _, id := range otherClients {
			got, err := k.m.GetClient(k.ctx, id)
			require.ErrorIs(t, err, mcpoauth.ErrNotFound, "client_id %q", id)
			require.Nil(t, got)
		}
	}},
}

// registrar returns the model as a ClientRegistrar, or skips the test.
func registrar(t *testing.T, k *kit) mcpoauth.ClientRegistrar {
	t.Helper()
	r, ok := k.m.(mcpoauth.ClientRegistrar)
	if !ok {
		t.Skip("the Model does not implement mcpoauth.ClientRegistrar")
	}
	return r
}

// confidentialClient returns a client with a secret and every metadata
// field set.
func confidentialClient(k *kit, id string) *mcpoauth.Client {
	return &mcpoauth.Client{
		ID:              id,
		SecretDigest:    newDigest(),
		SecretExpiresAt: k.now.Add(90 * 24 * time.Hour),
		IssuedAt:        k.now,
		Metadata: metadata.ClientMetadata{
			RedirectURIs:            []string{"https://client.example.com/cb", "http://127.0.0.1/cb"},
			TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes:              []string{"authorization_code", "refresh_token", "client_credentials"},
			ResponseTypes:           []string{"code"},
			ClientName:              "Example \u00e9 <Client> & \"Co\"",
			ClientURI:               "https://client.example.com/",
			LogoURI:                 "https://client.example.com/logo.png",
			Scope:                   "mcp:tools read",
			Contacts:                []string{"ops@client.example.com", "dev@client.example.com"},
			TOSURI:                  "https://client.example.com/tos",
			PolicyURI:               "https://client.example.com/policy",
			JWKS:                    json.RawMessage(`{"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
			SoftwareID:              "4NRB1-0XZABZI9E6-5SM3R",
			SoftwareVersion:         "2.1",
			ApplicationType:         "web",
		},
	}
}

// publicClient returns a client without a secret (zero SecretDigest and
// SecretExpiresAt) and minimal metadata.
func publicClient(id string) *mcpoauth.Client {
	return &mcpoauth.Client{
		ID:       id,
		IssuedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Metadata: metadata.ClientMetadata{
			RedirectURIs:            []string{"http://localhost/callback"},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code"},
		},
	}
}

func copyClient(c *mcpoauth.Client) mcpoauth.Client {
	out := *c
	m := &out.Metadata
	m.RedirectURIs = append([]string(nil), m.RedirectURIs...)
	m.GrantTypes = append([]string(nil), m.GrantTypes...)
	m.ResponseTypes = append([]string(nil), m.ResponseTypes...)
	m.Contacts = append([]string(nil), m.Contacts...)
	m.JWKS = append(json.RawMessage(nil), m.JWKS...)
	return out
}
