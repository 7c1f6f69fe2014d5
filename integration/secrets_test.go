package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// recordingModel writes down everything that crosses the Model boundary,
// arguments and results.
type recordingModel struct {
	*mcpoauth.MemoryModel
	mu  sync.Mutex
	log strings.Builder
}

func (m *recordingModel) note(args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range args {
		fmt.Fprintf(&m.log, "%+v\n", a)
	}
}

// answer is what a read of the Model returned.
type answer[T any] struct {
	v   T
	err error
}

func answered[T any](v T, err error) answer[T] { return answer[T]{v, err} }

// noted notes args, then the answer, and returns the answer.
func (a answer[T]) noted(m *recordingModel, args ...any) (T, error) {
	m.note(append(args, a.v, a.err)...)
	return a.v, a.err
}

func (m *recordingModel) GetClient(ctx context.Context, id string) (*mcpoauth.Client, error) {
	return answered(m.MemoryModel.GetClient(ctx, id)).noted(m, id)
}

func (m *recordingModel) RegisterClient(ctx context.Context, c *mcpoauth.Client) error {
	m.note(c)
	return m.MemoryModel.RegisterClient(ctx, c)
}

func (m *recordingModel) SaveAuthorizationRequest(ctx context.Context, r *mcpoauth.AuthorizationRequest) error {
	m.note(r)
	return m.MemoryModel.SaveAuthorizationRequest(ctx, r)
}

func (m *recordingModel) GetAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	return answered(m.MemoryModel.GetAuthorizationRequest(ctx, id)).noted(m, id)
}

func (m *recordingModel) ConsumeAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	return answered(m.MemoryModel.ConsumeAuthorizationRequest(ctx, id)).noted(m, id)
}

func (m *recordingModel) SaveAuthorizationCode(ctx context.Context, c *mcpoauth.AuthorizationCode) error {
	m.note(c)
	return m.MemoryModel.SaveAuthorizationCode(ctx, c)
}

func (m *recordingModel) GetAuthorizationCode(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.AuthorizationCode, error) {
	return answered(m.MemoryModel.GetAuthorizationCode(ctx, d)).noted(m, d)
}

func (m *recordingModel) ConsumeAuthorizationCode(ctx context.Context, d mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
	m.note(d, clientID)
	for _, t := range issued {
		m.note(t)
	}
	return m.MemoryModel.ConsumeAuthorizationCode(ctx, d, clientID, issued...)
}

func (m *recordingModel) SaveTokens(ctx context.Context, tokens ...*mcpoauth.Token) error {
	for _, t := range tokens {
		m.note(t)
	}
	return m.MemoryModel.SaveTokens(ctx, tokens...)
}

func (m *recordingModel) GetToken(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.Token, error) {
	return answered(m.MemoryModel.GetToken(ctx, d)).noted(m, d)
}

func (m *recordingModel) RotateRefreshToken(ctx context.Context, d mcpoauth.Digest, clientID string, at, reuseSince time.Time, issued ...*mcpoauth.Token) error {
	m.note(d, clientID)
	for _, t := range issued {
		m.note(t)
	}
	return m.MemoryModel.RotateRefreshToken(ctx, d, clientID, at, reuseSince, issued...)
}

func (m *recordingModel) RevokeToken(ctx context.Context, d mcpoauth.Digest, clientID string) (*mcpoauth.Token, error) {
	return answered(m.MemoryModel.RevokeToken(ctx, d, clientID)).noted(m, d, clientID)
}

func (m *recordingModel) RevokeGrant(ctx context.Context, grantID string) error {
	m.note(grantID)
	return m.MemoryModel.RevokeGrant(ctx, grantID)
}

// TestNoCredentialReachesModelLogsOrErrorHandler: no raw token, code,
// verifier, secret, request id or CSRF token reaches the model, a log line
// or ErrorHandler (docs/security.md; the TypeScript original stored them in
// plaintext and handed them to its logs and error hook).
func TestNoCredentialReachesModelLogsOrErrorHandler(t *testing.T) {
	rec := &recordingModel{}
	h := newHarness(t, withModel(rec, &rec.MemoryModel))
	var secrets []string
	keep := func(s ...string) {
		for _, v := range s {
			require.NotEmpty(t, v)
			secrets = append(secrets, v)
		}
	}

	id, clientSecret := h.confidentialClient()
	keep(clientSecret, testVerifier)
	b := &browser{}
	p := h.pending(b, h.authorize(b, authorizeParams(id)))
	keep(p.RequestID, p.CSRFToken)
	for _, c := range b.cookies {
		keep(c.Value)
	}
	// A forged decision first, then the real one.
	require.Equal(t, http.StatusForbidden, h.decide(&browser{}, url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"approve"}}).Code)
	w := h.decide(b, url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"approve"}, "username": {"alice"}})
	loc, _ := url.Parse(w.Header().Get("Location"))
	code := loc.Query().Get("code")
	keep(code)

	// Failures: wrong verifier, wrong secret; then success; then a replay.
	f := exchangeForm(id, code)
	f.Set("code_verifier", strings.Repeat("w", 43))
	keep(f.Get("code_verifier"))
	require.Equal(t, "invalid_client", oauthError(t, h.postForm("/token", f, id, "wrong-"+clientSecret)))
	f.Del("client_id")
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", f, id, clientSecret)))
	f.Set("code_verifier", testVerifier)
	w = h.postForm("/token", f, id, clientSecret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	tr := decodeTokens(t, w)
	keep(tr.AccessToken, tr.RefreshToken)
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	w = h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, id, clientSecret)
	require.Equal(t, http.StatusOK, w.Code)
	tr2 := decodeTokens(t, w)
	keep(tr2.AccessToken, tr2.RefreshToken)
	// Replay of the rotated token, after the reuse interval, revokes the
	// grant; a revoke and a verification of a dead token follow.
	h.clock.Advance(mcpoauth.DefaultRefreshTokenReuseInterval + time.Second)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, id, clientSecret)))
	require.Equal(t, http.StatusOK, h.postForm("/revoke", url.Values{"token": {tr2.AccessToken}}, id, clientSecret).Code)
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr2.AccessToken).Code)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", f, id, clientSecret)))

	h.mu.Lock()
	var handlerErrs strings.Builder
	for _, e := range h.errs {
		fmt.Fprintf(&handlerErrs, "%v %+v\n", e, e)
	}
	h.mu.Unlock()
	require.NotEmpty(t, handlerErrs.String(), "ErrorHandler saw the failures")
	rec.mu.Lock()
	modelLog := rec.log.String()
	rec.mu.Unlock()
	require.NotEmpty(t, modelLog)
	logs := h.logs.String()
	require.NotEmpty(t, logs)
	for _, s := range secrets {
		require.NotContains(t, modelLog, s, "the model saw a raw credential")
		require.NotContains(t, logs, s, "a log line carries a raw credential")
		require.NotContains(t, handlerErrs.String(), s, "ErrorHandler saw a raw credential")
	}
}
