package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// Token revocation (RFC 7009) through POST /revoke.

// rvRevoke revokes token as a public client, with optional extra fields.
func rvRevoke(h *harness, clientID, token string, extra ...string) *httptest.ResponseRecorder {
	form := url.Values{"token": {token}, "client_id": {clientID}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return h.postForm("/revoke", form)
}

// rvRequireRevokeOK asserts RFC 7009 §2.2 success: exactly 200, empty body.
func rvRequireRevokeOK(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Empty(t, w.Body.String())
}

// rvRefresh sends a refresh request for a public client.
func rvRefresh(h *harness, clientID, rt string) *httptest.ResponseRecorder {
	return h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
}

// rvEachHint runs test in a subtest per token_type_hint (none, either
// token type, an unknown value), on a new harness with a public client;
// extra is the hint's form field, if any. The hint never decides the
// outcome (RFC 7009 §2.1).
func rvEachHint(t *testing.T, test func(t *testing.T, h *harness, id string, extra []string)) {
	for _, hint := range []string{"", "access_token", "refresh_token", "unknown_hint"} {
		t.Run("hint "+hint, func(t *testing.T) {
			h := newHarness(t)
			var extra []string
			if hint != "" {
				extra = []string{"token_type_hint", hint}
			}
			test(t, h, h.publicClient(), extra)
		})
	}
}

func TestRevokeAccessToken(t *testing.T) {
	rvEachHint(t, func(t *testing.T, h *harness, id string, extra []string) {
		tr := h.tokens(id)
		require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
		rvRequireRevokeOK(t, rvRevoke(h, id, tr.AccessToken, extra...))
		w := h.callMCP(tr.AccessToken)
		require.Equal(t, http.StatusUnauthorized, w.Code)
		require.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
		// Revoking again, or revoking what no longer exists, is still 200.
		rvRequireRevokeOK(t, rvRevoke(h, id, tr.AccessToken, extra...))
	})
}

// TestRevokeRefreshTokenRevokesGrant: RFC 7009 §2.1: revoking a refresh
// token SHOULD invalidate the access tokens of the same grant. The hint is
// ignored (the TypeScript original once took it as authoritative), and an
// unknown hint value is accepted.
func TestRevokeRefreshTokenRevokesGrant(t *testing.T) {
	rvEachHint(t, func(t *testing.T, h *harness, id string, extra []string) {
		first := h.tokens(id)
		// Rotate once: the grant now has a used and a live refresh token.
		w := rvRefresh(h, id, first.RefreshToken)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		tr := decodeRevokeTokens(t, w)
		other := h.tokens(id) // another grant of the same client

		rvRequireRevokeOK(t, rvRevoke(h, id, tr.RefreshToken, extra...))

		require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code, "access token of the grant")
		require.Equal(t, http.StatusUnauthorized, h.callMCP(first.AccessToken).Code, "earlier access token of the grant")
		w = rvRefresh(h, id, tr.RefreshToken)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, "invalid_grant", oauthError(t, w))

		// The client's other grant is untouched.
		require.Equal(t, http.StatusOK, h.callMCP(other.AccessToken).Code)
		require.Equal(t, http.StatusOK, rvRefresh(h, id, other.RefreshToken).Code)
	})
}

func decodeRevokeTokens(t *testing.T, w *httptest.ResponseRecorder) tokenResponse {
	t.Helper()
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	require.NotEmpty(t, tr.AccessToken)
	return tr
}

// TestRevokeOtherClientsToken: RFC 7009 §2.1: the server verifies the token
// was issued to the requesting client; another client's token is answered
// 200 (§2.2, nothing to reveal) and stays valid.
func TestRevokeOtherClientsToken(t *testing.T) {
	h := newHarness(t)
	victim := h.publicClient()
	tr := h.tokens(victim)
	attacker := h.publicClient()
	confID, confSecret := h.confidentialClient()

	rvRequireRevokeOK(t, rvRevoke(h, attacker, tr.AccessToken))
	rvRequireRevokeOK(t, rvRevoke(h, attacker, tr.RefreshToken))
	rvRequireRevokeOK(t, h.postForm("/revoke", url.Values{"token": {tr.AccessToken}}, confID, confSecret))
	rvRequireRevokeOK(t, h.postForm("/revoke", url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"refresh_token"}}, confID, confSecret))

	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	require.Equal(t, http.StatusOK, rvRefresh(h, victim, tr.RefreshToken).Code)
}

// TestRevokeUnknownToken: RFC 7009 §2.2: an invalid token is answered 200.
func TestRevokeUnknownToken(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	for _, tok := range []string{"no-such-token", strings.Repeat("A", 43), "with spaces and ünïcode", strings.Repeat("x", 4096)} {
		w := rvRevoke(h, id, tok)
		rvRequireRevokeOK(t, w)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	}
}

func TestRevokeRequestErrors(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	confID, _ := h.confidentialClient()
	tr := h.tokens(id)
	for name, tc := range map[string]struct {
		form   url.Values
		status int
		code   string
	}{
		"missing token":  {url.Values{"client_id": {id}}, http.StatusBadRequest, "invalid_request"},
		"empty token":    {url.Values{"client_id": {id}, "token": {""}}, http.StatusBadRequest, "invalid_request"},
		"repeated token": {url.Values{"client_id": {id}, "token": {tr.AccessToken, tr.AccessToken}}, http.StatusBadRequest, "invalid_request"},
		"repeated hint":  {url.Values{"client_id": {id}, "token": {tr.AccessToken}, "token_type_hint": {"access_token", "refresh_token"}}, http.StatusBadRequest, "invalid_request"},
		// Client authentication is required (RFC 7009 §2.1).
		"no client":                   {url.Values{"token": {tr.AccessToken}}, http.StatusUnauthorized, "invalid_client"},
		"unknown client":              {url.Values{"token": {tr.AccessToken}, "client_id": {"nope"}}, http.StatusUnauthorized, "invalid_client"},
		"confidential without secret": {url.Values{"token": {tr.AccessToken}, "client_id": {confID}}, http.StatusUnauthorized, "invalid_client"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.postForm("/revoke", tc.form)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Equal(t, tc.code, oauthError(t, w))
		})
	}
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code, "no failed request revoked anything")

	// A form in the query of a POST is not read; the body must be a form.
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/revoke?"+url.Values{"token": {tr.AccessToken}, "client_id": {id}}.Encode(), nil)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := h.do(r)
	require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
	require.Equal(t, "invalid_client", oauthError(t, w), "client_id in the query was not read")
	r = httptest.NewRequest(http.MethodPost, testIssuer+"/revoke", strings.NewReader(`{"token":"`+tr.AccessToken+`","client_id":"`+id+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w = h.do(r)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Equal(t, "invalid_request", oauthError(t, w))
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
}

// TestRevokeConfidentialClient: a confidential client revokes its own token
// only when authenticated.
func TestRevokeConfidentialClient(t *testing.T) {
	h := newHarness(t)
	id, sec := h.confidentialClient()
	tr := h.basicTokens(id, sec)
	require.NotEmpty(t, tr.AccessToken)

	w := h.postForm("/revoke", url.Values{"token": {tr.AccessToken}, "client_id": {id}})
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, "invalid_client", oauthError(t, w))
	w = h.postForm("/revoke", url.Values{"token": {tr.AccessToken}}, id, "wrong")
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.True(t, strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic "))
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)

	rvRequireRevokeOK(t, h.postForm("/revoke", url.Values{"token": {tr.RefreshToken}}, id, sec))
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
}

func TestRevokeMethodGuard(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w := h.do(httptest.NewRequest(m, testIssuer+"/revoke?token=x", nil))
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		require.Equal(t, "POST", w.Header().Get("Allow"), m)
	}
}

// revokeFailingModel is a MemoryModel whose revocations fail, as a database
// that is down would.
type revokeFailingModel struct {
	*mcpoauth.MemoryModel
	failToken, failGrant bool
}

var errRevokeStorageDown = errors.New("revoke storage: connection to db-internal-7.corp refused")

func (m *revokeFailingModel) RevokeToken(ctx context.Context, d mcpoauth.Digest, clientID string) (*mcpoauth.Token, error) {
	if m.failToken {
		return nil, fmt.Errorf("revoke token: %w", errRevokeStorageDown)
	}
	return m.MemoryModel.RevokeToken(ctx, d, clientID)
}

func (m *revokeFailingModel) RevokeGrant(ctx context.Context, grantID string) error {
	if m.failGrant {
		return fmt.Errorf("revoke grant: %w", errRevokeStorageDown)
	}
	return m.MemoryModel.RevokeGrant(ctx, grantID)
}

// TestRevokeStorageFailure (fosite CVE-2020-15223): a storage
// error is 500 server_error, never a false 200; the body names no internals;
// ErrorHandler gets the error (never the token); and the token really stays
// valid, since nothing was revoked.
func TestRevokeStorageFailure(t *testing.T) {
	for name, tc := range map[string]struct {
		failToken, failGrant bool
		refresh              bool
	}{
		"RevokeToken fails, access token":  {failToken: true},
		"RevokeGrant fails, refresh token": {failGrant: true, refresh: true},
	} {
		t.Run(name, func(t *testing.T) {
			model := &revokeFailingModel{}
			h := newHarness(t, withModel(model, &model.MemoryModel))
			id := h.publicClient()
			tr := h.tokens(id)
			model.failToken, model.failGrant = tc.failToken, tc.failGrant
			tok := tr.AccessToken
			if tc.refresh {
				tok = tr.RefreshToken
			}
			before := len(h.errsSnapshot())
			w := rvRevoke(h, id, tok)
			require.Equal(t, http.StatusInternalServerError, w.Code, w.Body.String())
			require.Equal(t, "server_error", oauthError(t, w))
			require.NotContains(t, w.Body.String(), "db-internal")
			require.NotContains(t, w.Body.String(), "refused")
			require.NotContains(t, w.Body.String(), "revoke")

			errs := h.errsSnapshot()[before:]
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], errRevokeStorageDown)
			var oerr *mcpoauth.OAuthError
			require.ErrorAs(t, errs[0], &oerr)
			require.Equal(t, "server_error", oerr.Code)
			require.NotContains(t, errs[0].Error(), tok)
			require.NotContains(t, fmt.Sprintf("%+v", errs[0]), tok)
			require.NotContains(t, h.logs.String(), tok)
			require.Contains(t, h.logs.String(), "db-internal", "the cause is logged for the operator")

			// The access token is still valid: it was not revoked, and the
			// client was not told it was.
			require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
		})
	}
}

// TestRevokeRetryAfterPartialFailure: when revoking a refresh token fails
// half-way (the grant could not be revoked), the 500 tells the client to
// retry; the retry must finish the job, not answer 200 while the grant's
// access tokens stay valid (fosite CVE-2020-15223: "revoked" but still
// valid).
func TestRevokeRetryAfterPartialFailure(t *testing.T) {
	model := &revokeFailingModel{}
	h := newHarness(t, withModel(model, &model.MemoryModel))
	id := h.publicClient()
	tr := h.tokens(id)
	model.failGrant = true
	require.Equal(t, http.StatusInternalServerError, rvRevoke(h, id, tr.RefreshToken).Code)
	model.failGrant = false // the database is back
	w := rvRevoke(h, id, tr.RefreshToken)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code,
		"after a successful revocation of the refresh token, the grant's access token must be refused")
}
