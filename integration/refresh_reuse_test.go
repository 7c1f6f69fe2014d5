package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// TestConcurrentRefreshWithinReuseInterval: two tabs or processes refreshing
// with the same token at once must not sign the user out. Within the reuse
// interval every refresh succeeds, every pair it returns works, nothing is
// revoked; a replay after the interval still revokes the whole grant (RFC
// 9700 §4.14.2), every pair of it included.
func TestConcurrentRefreshWithinReuseInterval(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	first := h.tokens(id)
	ws := raceTokenRequests(h, 8, func() *http.Request {
		return newRequest(http.MethodPost, "/token", refreshForm(id, first.RefreshToken).Encode())
	})
	ok := successes(t, ws)
	require.Len(t, ok, len(ws), "every concurrent refresh succeeds")
	var pairs []tokenResponse
	for _, w := range ok {
		tr := decodeTokens(t, w)
		require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code, "every new access token works")
		pairs = append(pairs, tr)
	}
	require.Zero(t, h.model.Stats().RevokedGrants, "nothing revoked")

	// Each tab goes on refreshing with its own new refresh token.
	next := decodeTokens(t, h.postForm("/token", refreshForm(id, pairs[0].RefreshToken)))
	require.Equal(t, http.StatusOK, h.callMCP(next.AccessToken).Code)

	// The old token presented after the interval is a replay.
	h.clock.Advance(mcpoauth.DefaultRefreshTokenReuseInterval + time.Second)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, first.RefreshToken))))
	for _, tr := range append(pairs, next) {
		require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code, "the whole grant is revoked")
	}
}

// TestRefreshReuseInterval: the interval is measured from the first
// rotation, is the client's alone, and is configurable, NoReuse turning it
// off.
func TestRefreshReuseInterval(t *testing.T) {
	t.Run("within the interval, measured from the first rotation", func(t *testing.T) {
		h := newHarness(t, func(c *mcpoauth.Config) { c.RefreshTokenReuseInterval = 30 * time.Second })
		id := h.publicClient()
		first := h.tokens(id)
		require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, first.RefreshToken)).Code)
		h.clock.Advance(20 * time.Second)
		require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, first.RefreshToken)).Code, "20 s after the rotation")
		h.clock.Advance(11 * time.Second)
		require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, first.RefreshToken))), "31 s after the first rotation, not the second")
	})
	t.Run("another client's presentation is no reuse", func(t *testing.T) {
		h := newHarness(t)
		id, other := h.publicClient(), h.publicClient()
		first := h.tokens(id)
		require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, first.RefreshToken)).Code)
		require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(other, first.RefreshToken))))
		require.Zero(t, h.model.Stats().RevokedGrants, "a stranger cannot get the grant revoked")
	})
	t.Run("NoReuse: the second presentation is a replay", func(t *testing.T) {
		h := newHarness(t, func(c *mcpoauth.Config) { c.RefreshTokenReuseInterval = mcpoauth.NoReuse })
		id := h.publicClient()
		first := h.tokens(id)
		require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, first.RefreshToken)).Code)
		require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, first.RefreshToken))))
		require.Equal(t, 1, h.model.Stats().RevokedGrants)
	})
}
