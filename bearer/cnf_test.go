package bearer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

// thumbprint stands for a DPoP key's JWK SHA-256 thumbprint (RFC 7638).
const thumbprint = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

// confirmationCases are the cnf claims (RFC 7800) both verifiers meet: the
// thumbprint a token is bound to (RFC 9449 §6), or an error. A binding
// these verifiers cannot check is refused rather than dropped, or a
// stolen mTLS-bound token would work as a bearer token here.
var confirmationCases = []struct {
	rule string
	cnf  any // nil: no cnf member
	jkt  string
	ok   bool
}{
	{"RFC 9449 §6.1: cnf.jkt binds the token to a DPoP key", map[string]any{"jkt": thumbprint}, thumbprint, true},
	{"RFC 7800 §3.1: no cnf, no binding", nil, "", true},
	{"RFC 7800 §3.1: an empty cnf binds nothing", map[string]any{}, "", true},
	{"RFC 8705 §3.1: an x5t#S256 binding cannot be checked here", map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, "", false},
	{"RFC 9449 §6.1: jkt beside another confirmation method", map[string]any{"jkt": thumbprint, "x5t#S256": "bwcK"}, "", false},
	{"RFC 9449 §6.1: jkt is a non-empty string", map[string]any{"jkt": ""}, "", false},
	{"RFC 9449 §6.1: jkt is a string", map[string]any{"jkt": 7}, "", false},
}

func TestJWTVerifierConfirmation(t *testing.T) {
	key := newP256(t)
	for _, tc := range confirmationCases {
		t.Run(tc.rule, func(t *testing.T) {
			stub := newJWKSStub(t)
			stub.publish([]string{"k1"}, key)
			v := newTestJWTVerifier(t, stub, testclock.New(t0))
			claims := accessClaims()
			if tc.cnf != nil {
				claims["cnf"] = tc.cnf
			}
			info, err := v.VerifyAccessToken(context.Background(), signJWT(t, jose.ES256, key, "at+jwt", "k1", claims))
			if !tc.ok {
				require.ErrorIs(t, err, bearer.ErrInvalidToken)
				require.Nil(t, info)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.jkt, info.JKT)
		})
	}
}

func TestIntrospectionVerifierConfirmation(t *testing.T) {
	hour := t0.Add(time.Hour).Unix()
	answer := func(tokenType string, cnf any) string {
		body := fmt.Sprintf(`{"active":true,"token_type":%q,"client_id":"app","sub":"alice","scope":"mcp:tools","aud":%q,"exp":%d`, tokenType, stubResource, hour)
		if cnf != nil {
			b, err := json.Marshal(cnf)
			require.NoError(t, err)
			body += `,"cnf":` + string(b)
		}
		return body + "}"
	}
	type introspectionCase struct {
		rule      string
		tokenType string
		cnf       any
		jkt       string
		ok        bool
	}
	cases := []introspectionCase{
		{"RFC 9449 §6.2: a DPoP token carries cnf.jkt", "DPoP", map[string]any{"jkt": thumbprint}, thumbprint, true},
		{"RFC 9449 §6.2: token_type DPoP without cnf.jkt", "DPoP", nil, "", false},
		{"RFC 9449 §6.2: token_type DPoP with an empty cnf", "DPoP", map[string]any{}, "", false},
		{"RFC 9449 §6.2: a bound token keeps its binding whatever its token_type says", "Bearer", map[string]any{"jkt": thumbprint}, thumbprint, true},
	}
	for _, c := range confirmationCases {
		cases = append(cases, introspectionCase{c.rule, "Bearer", c.cnf, c.jkt, c.ok})
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			as := newStubAS(t)
			as.answer(200, answer(tc.tokenType, tc.cnf))
			v := newVerifier(t, as, testclock.New(t0))
			info, err := v.VerifyAccessToken(context.Background(), "the-token-value")
			if !tc.ok {
				require.ErrorIs(t, err, bearer.ErrInvalidToken)
				require.NotErrorIs(t, err, bearer.ErrIntrospectionFailed)
				require.Nil(t, info)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.jkt, info.JKT)
		})
	}
}
