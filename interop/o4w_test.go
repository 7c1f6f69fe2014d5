package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// TestOAuth4WebAPIPrivateKeyJWT runs interop/ts/o4w.mjs: oauth4webapi, as a
// static confidential client whose ES256 public key is in the -clients
// file's jwks, discovers the metadata, gets a token by client credentials
// authenticating with private_key_jwt (RFC 7523), and validates the RFC
// 9068 JWT access token against the jwks_uri with validateJwtAccessToken;
// the MCP endpoint then accepts the token.
func TestOAuth4WebAPIPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	node := tsNode(t, "oauth4webapi")

	const clientID, kid = "interop-o4w", "o4w-key-1"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	require.NoError(t, err)
	d, err := key.Bytes()
	require.NoError(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	publicJWK := map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": b64(pub[1:33]), "y": b64(pub[33:])}
	clients := writeClients(t, []map[string]any{{
		"client_id": clientID, "client_name": "interop oauth4webapi",
		"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"scope": scopeTools, "jwks": map[string]any{"keys": []map[string]string{publicJWK}},
	}})
	s := startServer(t, "-access-tokens", "jwt", "-clients", clients)

	privateJWK := map[string]string{"client_id": clientID, "d": b64(d)}
	for k, v := range publicJWK {
		privateJWK[k] = v
	}
	stdin, err := json.Marshal(privateJWK)
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), "token")
	ctx := testContext(t, flowTimeout)
	stdout, stderr := runScript(t, ctx, node, stdin, "o4w.mjs", s.issuer, s.mcpURL, tokenFile)

	var sum struct {
		scriptStatus
		Issuer          string   `json:"issuer"`
		JWKSURI         string   `json:"jwks_uri"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
		AuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		Assertion       struct {
			Alg    string `json:"alg"`
			Kid    string `json:"kid"`
			Iss    string `json:"iss"`
			Sub    string `json:"sub"`
			Aud    any    `json:"aud"`
			HasJTI bool   `json:"has_jti"`
			HasExp bool   `json:"has_exp"`
		} `json:"assertion"`
		TokenStatus     int    `json:"token_status"`
		TokenType       string `json:"token_type"`
		Scope           string `json:"scope"`
		ExpiresIn       int    `json:"expires_in"`
		HasRefreshToken bool   `json:"has_refresh_token"`
		TokenHeader     struct {
			Typ    string `json:"typ"`
			Alg    string `json:"alg"`
			HasKid bool   `json:"has_kid"`
		} `json:"token_header"`
		Claims struct {
			Iss      string `json:"iss"`
			Sub      string `json:"sub"`
			Aud      any    `json:"aud"`
			ClientID string `json:"client_id"`
			Scope    string `json:"scope"`
			Exp      int64  `json:"exp"`
			Iat      int64  `json:"iat"`
			HasJTI   bool   `json:"has_jti"`
		} `json:"claims"`
	}
	decodeSummary(t, stdout, &sum, "o4w.mjs")

	// Discovery.
	assert.Equal(t, s.issuer, sum.Issuer)
	assert.Equal(t, s.issuer+"/jwks", sum.JWKSURI)
	assert.Contains(t, sum.AuthMethods, "private_key_jwt")
	assert.Contains(t, sum.AuthSigningAlgs, "ES256")
	// The assertion oauth4webapi signed, which the token endpoint accepted.
	assert.Equal(t, "ES256", sum.Assertion.Alg)
	assert.Equal(t, kid, sum.Assertion.Kid)
	assert.Equal(t, clientID, sum.Assertion.Iss)
	assert.Equal(t, clientID, sum.Assertion.Sub)
	assert.Contains(t, []any{s.issuer, s.issuer + "/token"}, sum.Assertion.Aud)
	assert.True(t, sum.Assertion.HasJTI)
	assert.True(t, sum.Assertion.HasExp)
	assert.Equal(t, 200, sum.TokenStatus)
	assert.Equal(t, "bearer", sum.TokenType, "oauth4webapi lower-cases token_type")
	assert.Equal(t, scopeTools, sum.Scope)
	assert.Positive(t, sum.ExpiresIn)
	assert.False(t, sum.HasRefreshToken, "client credentials issue no refresh token")
	// The JWT access token as validateJwtAccessToken saw it (it checks
	// typ, the signature against jwks_uri, iss, aud and exp itself).
	assert.Equal(t, "at+jwt", sum.TokenHeader.Typ)
	assert.Equal(t, "ES256", sum.TokenHeader.Alg)
	assert.True(t, sum.TokenHeader.HasKid)
	assert.Equal(t, s.issuer, sum.Claims.Iss)
	assert.Equal(t, clientID, sum.Claims.Sub, "RFC 9068 §2.2: with no resource owner, sub is the client")
	assert.Equal(t, s.mcpURL, sum.Claims.Aud)
	assert.Equal(t, clientID, sum.Claims.ClientID)
	assert.Equal(t, scopeTools, sum.Claims.Scope)
	assert.Equal(t, int64(sum.ExpiresIn), sum.Claims.Exp-sum.Claims.Iat)
	assert.True(t, sum.Claims.HasJTI)

	// The MCP endpoint accepts the token.
	token, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	require.NotContains(t, string(stdout)+string(stderr), string(token), "the script never prints the token")
	assert.NotContains(t, s.logs.String(), string(token), "the server never logs the token")
	_, w := callWhoami(t, ctx, bearerTransport(ctx, s.mcpURL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: string(token), TokenType: "Bearer"})))
	assert.Equal(t, whoamiResult{UserID: "", ClientID: clientID, Scopes: []string{scopeTools}}, w)
}

// TestOAuth4WebAPIDPoP runs interop/ts/o4w_dpop.mjs: oauth4webapi, as a
// public client, runs the authorization code flow with DPoP against the
// example server (which accepts DPoP out of the box), renews its proof
// after the token endpoint's and the MCP endpoint's use_dpop_nonce
// challenges, calls /mcp with the DPoP scheme, sees the bound token refused
// as Bearer, and refreshes with a proof of the same key.
func TestOAuth4WebAPIDPoP(t *testing.T) {
	t.Parallel()
	node := tsNode(t, "oauth4webapi")
	s := startServer(t)
	ctx := testContext(t, flowTimeout)
	stdout, _ := runScript(t, ctx, node, nil, "o4w_dpop.mjs", s.issuer, s.mcpURL)
	var sum struct {
		scriptStatus
		Algs            []string `json:"dpop_signing_alg_values_supported"`
		NonceChallenges struct {
			Token int `json:"token"`
			MCP   int `json:"mcp"`
		} `json:"nonce_challenges"`
		TokenType             string `json:"token_type"`
		HasRefreshToken       bool   `json:"has_refresh_token"`
		MCPStatus             int    `json:"mcp_status"`
		BearerStatus          int    `json:"bearer_status"`
		BearerChallenge       string `json:"bearer_challenge"`
		RefreshedTokenType    string `json:"refreshed_token_type"`
		MCPStatusAfterRefresh int    `json:"mcp_status_after_refresh"`
	}
	decodeSummary(t, stdout, &sum, "o4w_dpop.mjs")
	assert.Contains(t, sum.Algs, "ES256")
	assert.Equal(t, 1, sum.NonceChallenges.Token, "the first token request is asked for a nonce")
	assert.Equal(t, 1, sum.NonceChallenges.MCP, "a handle without a nonce is asked for one by /mcp")
	assert.Equal(t, "dpop", sum.TokenType, "oauth4webapi lower-cases token_type")
	assert.True(t, sum.HasRefreshToken)
	assert.Equal(t, 200, sum.MCPStatus)
	assert.Equal(t, 401, sum.BearerStatus, "a DPoP-bound token presented as Bearer")
	assert.Contains(t, sum.BearerChallenge, `error="invalid_token"`)
	assert.Equal(t, "dpop", sum.RefreshedTokenType)
	assert.Equal(t, 200, sum.MCPStatusAfterRefresh)
}
