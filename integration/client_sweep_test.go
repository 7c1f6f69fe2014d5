package integration_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/secret"
)

// TestIdleDynamicClientsAreSwept: a client registered at /register and
// issued no token for ClientIdleLifetime is deleted by the sweep, with its
// tokens; one issued a token meanwhile stays, and so does a pre-registered
// client however long unused. Verifying a token records no use.
func TestIdleDynamicClientsAreSwept(t *testing.T) {
	const day = 24 * time.Hour
	h := newHarness(t)
	ctx := context.Background()
	idle := h.dynamicPublicClient()
	used := h.dynamicPublicClient()
	static := h.publicClient()
	idleTokens := h.tokens(idle)
	usedTokens := h.tokens(used)

	lastUsed := func(id string) time.Time {
		t.Helper()
		c, err := h.model.GetClient(ctx, id)
		require.NoError(t, err)
		return c.LastUsedAt
	}
	registeredAt := lastUsed(idle)
	require.Equal(t, harnessStart, registeredAt, "LastUsedAt starts at registration")

	// Before the refresh token expires, the idle client only calls the MCP
	// endpoint, which verifies its token and writes nothing.
	h.clock.Advance(time.Hour)
	h.callMCP(idleTokens.AccessToken)
	require.Equal(t, registeredAt, lastUsed(idle), "verifying a token is no use")
	// Within the day, a refresh writes nothing either: use is recorded to
	// the day.
	w := h.postForm("/token", refreshForm(used, usedTokens.RefreshToken))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, registeredAt, lastUsed(used), "a use within the day writes nothing")

	// Halfway, the used client signs in again (a token issue: a use).
	h.clock.Advance(60 * day)
	usedAt := h.clock.Now()
	h.tokens(used)
	require.Equal(t, usedAt, lastUsed(used))

	// Not idle long enough yet.
	n, err := h.srv.SweepIdleClients(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	h.clock.Advance(mcpoauth.DefaultClientIdleLifetime - 60*day - time.Hour + time.Second)
	n, err = h.srv.SweepIdleClients(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	_, err = h.model.GetClient(ctx, idle)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound, "the idle client is deleted")
	w = h.postForm("/token", refreshForm(idle, idleTokens.RefreshToken))
	require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"invalid_client"`)
	_, err = h.model.GetToken(ctx, secret.Digest(idleTokens.RefreshToken))
	require.ErrorIs(t, err, mcpoauth.ErrNotFound, "its tokens go with it")

	for _, id := range []string{used, static} {
		_, err := h.model.GetClient(ctx, id)
		require.NoError(t, err, "client %s stays", id)
	}
}
