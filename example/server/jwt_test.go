package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
)

// TestAccessTokensJWT: -access-tokens jwt issues RFC 9068 tokens that /mcp
// accepts and a resource server verifies offline against the jwks_uri.
func TestAccessTokensJWT(t *testing.T) {
	e := newTestEnvWith(t, options{accessTokens: "jwt"})
	resp, body := e.get(http.DefaultClient, e.issuer+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var asm struct {
		JWKSURI string `json:"jwks_uri"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &asm))
	require.Equal(t, e.issuer+"/jwks", asm.JWKSURI)

	clientID := e.register("JWT Client")
	verifier, challenge := pkcePair()
	code := e.approve(clientID, challenge, "alice")
	tr := e.redeem(clientID, code, verifier)
	assert.Equal(t, 2, strings.Count(tr.AccessToken, "."), "a compact JWS")
	resp, body = e.callMCP(tr.AccessToken)
	assert.NotEqual(t, http.StatusUnauthorized, resp.StatusCode, body)

	v, err := bearer.NewJWTVerifier(bearer.JWTOptions{JWKSURL: asm.JWKSURI, Issuer: e.issuer, Resource: e.issuer + "/mcp"})
	require.NoError(t, err)
	info, err := v.VerifyAccessToken(context.Background(), tr.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, "alice", info.UserID)
	assert.Equal(t, clientID, info.ClientID)
}
