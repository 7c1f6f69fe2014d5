package integration_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// loginAs runs the consent flow for a client as user and redeems the code.
func (h *harness) loginAs(clientID, user string) tokenResponse {
	h.t.Helper()
	u := h.approve(authorizeParams(clientID), user)
	w := h.postForm("/token", exchangeForm(clientID, u.Query().Get("code")))
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	return decodeTokens(h.t, w)
}

func grantIDs(list []*mcpoauth.Grant) []string {
	var ids []string
	for _, g := range list {
		ids = append(ids, g.ID)
	}
	return ids
}

// TestUserGrants: a user's live grants, newest first, with when each last
// issued tokens; another user's never; an expired one no more.
func TestUserGrants(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app, other := h.publicClient(), h.publicClient()
	first := h.mcpAnswer(h.loginAs(app, "alice").AccessToken).Grant
	h.clock.Advance(time.Minute)
	second := h.mcpAnswer(h.loginAs(other, "alice").AccessToken).Grant
	h.loginAs(app, "bob")

	list, err := h.srv.UserGrants(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{second, first}, grantIDs(list), "newest first, alice's only")
	assert.Equal(t, harnessStart, list[1].LastUsedAt, "the code's redemption is the first use")
	assert.Equal(t, other, list[0].ClientID)

	g, err := h.srv.Grant(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, "alice", g.UserID)

	h.clock.Advance(mcpoauth.DefaultGrantLifetime - 30*time.Second) // past the first grant's end, before the second's
	list, err = h.srv.UserGrants(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{second}, grantIDs(list), "an expired grant is not listed")
	_, err = h.srv.Grant(ctx, first)
	assert.ErrorIs(t, err, mcpoauth.ErrNotFound)
}

// TestRevokeUserGrant: a user revokes their own grant, never another's.
func TestRevokeUserGrant(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app := h.publicClient()
	alice, bob := h.loginAs(app, "alice"), h.loginAs(app, "bob")
	bobsGrant := h.mcpAnswer(bob.AccessToken).Grant

	err := h.srv.RevokeUserGrant(ctx, "alice", bobsGrant)
	assert.ErrorIs(t, err, mcpoauth.ErrNotFound, "alice cannot revoke bob's grant")
	assert.Equal(t, http.StatusOK, h.callMCP(bob.AccessToken).Code)

	require.NoError(t, h.srv.RevokeUserGrant(ctx, "bob", bobsGrant))
	assert.Equal(t, http.StatusUnauthorized, h.callMCP(bob.AccessToken).Code)
	w := h.postForm("/token", refreshForm(app, bob.RefreshToken))
	assert.Equal(t, http.StatusBadRequest, w.Code, "the refresh token went with the grant")
	assert.Equal(t, http.StatusOK, h.callMCP(alice.AccessToken).Code)
	list, err := h.srv.UserGrants(ctx, "bob")
	require.NoError(t, err)
	assert.Empty(t, list)
}

// TestRevokeAllGrants: all of a user's grants, or all of a client's, end
// at once; the others stay, and a client whose grants were revoked can
// start again.
func TestRevokeAllGrants(t *testing.T) {
	ctx := context.Background()
	t.Run("a user's", func(t *testing.T) {
		h := newHarness(t)
		a, b := h.publicClient(), h.publicClient()
		aliceA, aliceB, bobA := h.loginAs(a, "alice"), h.loginAs(b, "alice"), h.loginAs(a, "bob")
		n, err := h.srv.RevokeUserGrants(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		for _, tr := range []tokenResponse{aliceA, aliceB} {
			assert.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
		}
		assert.Equal(t, http.StatusOK, h.callMCP(bobA.AccessToken).Code)
	})
	t.Run("a client's", func(t *testing.T) {
		h := newHarness(t)
		a, b := h.publicClient(), h.publicClient()
		aliceA, bobA, aliceB := h.loginAs(a, "alice"), h.loginAs(a, "bob"), h.loginAs(b, "alice")
		n, err := h.srv.RevokeClientGrants(ctx, a)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		for _, tr := range []tokenResponse{aliceA, bobA} {
			assert.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
		}
		assert.Equal(t, http.StatusOK, h.callMCP(aliceB.AccessToken).Code)
		assert.Equal(t, http.StatusOK, h.callMCP(h.loginAs(a, "alice").AccessToken).Code, "the client itself stays")
	})
}

// TestRevokeUserGrantsUnderConcurrentRefreshes: refreshes racing the
// revocation of all the user's grants leave nothing that works.
func TestRevokeUserGrantsUnderConcurrentRefreshes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const chains = 4
	app := h.publicClient()
	var mu sync.Mutex
	var issued []tokenResponse
	start := make([]tokenResponse, chains)
	for i := range start {
		start[i] = h.loginAs(app, "alice")
	}
	begun := make(chan struct{}, chains)
	var wg sync.WaitGroup
	for i := range chains {
		wg.Go(func() {
			tr := start[i]
			for n := 0; n < 20; n++ {
				w := h.postForm("/token", refreshForm(app, tr.RefreshToken))
				if w.Code != http.StatusOK {
					return // revoked under it
				}
				tr = decodeTokens(t, w)
				mu.Lock()
				issued = append(issued, tr)
				mu.Unlock()
				if n == 0 {
					begun <- struct{}{}
				}
			}
		})
	}
	for range chains {
		<-begun
	}
	_, err := h.srv.RevokeUserGrants(ctx, "alice")
	require.NoError(t, err)
	wg.Wait()
	// Grants saved by nothing after the revocation: a second pass finds
	// none, and no token issued at any point still works.
	n, err := h.srv.RevokeUserGrants(ctx, "alice")
	require.NoError(t, err)
	assert.Zero(t, n)
	for _, tr := range append(issued, start...) {
		assert.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
		assert.NotEqual(t, http.StatusOK, h.postForm("/token", refreshForm(app, tr.RefreshToken)).Code)
	}
}

// TestGrantManagementNeedsGrantRecords: with a Model that keeps no grant
// records, listing says so (ErrNoGrantRecords), and RevokeGrant still
// works.
func TestGrantManagementNeedsGrantRecords(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.Model = modelOnly{c.Model}
		c.DisableDynamicClientRegistration = true
	})
	ctx := context.Background()
	_, err := h.srv.UserGrants(ctx, "alice")
	assert.ErrorIs(t, err, mcpoauth.ErrNoGrantRecords)
	_, err = h.srv.RevokeClientGrants(ctx, "x")
	assert.ErrorIs(t, err, mcpoauth.ErrNoGrantRecords)
	assert.NoError(t, h.srv.RevokeGrant(ctx, "unknown"))
}

// TestClientLookup: OAuthServer.Client finds a registered client, and an
// unknown one is ErrNotFound.
func TestClientLookup(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	c, err := h.srv.Client(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, id, c.ID)
	_, err = h.srv.Client(context.Background(), "unknown-client")
	assert.ErrorIs(t, err, mcpoauth.ErrNotFound)
}
