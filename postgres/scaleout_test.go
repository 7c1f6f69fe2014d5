package postgres_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/postgres"
)

// tokenPair is a token response's credentials.
type tokenPair struct{ access, refresh string }

// mustTokens checks a token response and returns its credentials.
func mustTokens(t *testing.T, r reply, err error) tokenPair {
	t.Helper()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	p := tokenPair{access: r.str("access_token"), refresh: r.str("refresh_token")}
	require.NotEmpty(t, p.access)
	return p
}

// mustCode runs codeVia and requires an authorization code.
func (a *agent) mustCode(t *testing.T, clientID string, authorize, consent, decide *replica) string {
	t.Helper()
	code, r, err := a.codeVia(clientID, authorize, consent, decide)
	require.NoError(t, err)
	require.NotEmpty(t, code, r.String())
	return code
}

// mustLogin runs codeVia, redeems the code on redeem and returns the
// tokens it issued.
func (a *agent) mustLogin(t *testing.T, clientID string, authorize, consent, decide, redeem *replica) tokenPair {
	t.Helper()
	code := a.mustCode(t, clientID, authorize, consent, decide)
	r, err := a.postForm(redeem.base+"/token", exchangeForm(clientID, code))
	return mustTokens(t, r, err)
}

// requireStatus checks a reply's status and, for an error, its OAuth code.
func requireStatus(t *testing.T, r reply, err error, status int, code string) {
	t.Helper()
	require.NoError(t, err)
	require.Equal(t, status, r.Status, r.String())
	if code != "" {
		require.Equal(t, code, r.errorCode(), r.String())
	}
}

// TestScaleOut runs two OAuthServer replicas, each with its own connection
// pool and postgres.Model on one shared database and its own loopback
// port, as behind a load balancer: every step of every flow may land on
// either replica. (ISSUE 5 item 3.)
func TestScaleOut(t *testing.T) {
	pools := postgres.NewSharedTestPools(t, 2)
	var replicas [2]*replica
	for i, pool := range pools {
		m := postgres.NewTestModelOn(t, pool, postgres.Options{SweepInterval: postgres.NoSweep})
		replicas[i] = newReplica(t, m, nil)
	}
	a, b := replicas[0], replicas[1]
	ua := newAgent()
	clientID, _, err := ua.register(a.base, publicCodeClient())
	require.NoError(t, err)

	// tokensVia runs the code flow with /authorize and the decision on
	// one replica, the consent page and the redemption on the other.
	tokensVia := func(t *testing.T, first, second *replica) tokenPair {
		t.Helper()
		return ua.mustLogin(t, clientID, first, second, first, second)
	}

	// The client registered on A exists for B; the pending request saved by
	// A is shown by B and decided on A; the code A issued is redeemed on B;
	// the tokens B issued work on both, and rotate on A.
	t.Run("a code issued through one replica is redeemed through the other", func(t *testing.T) {
		for _, tc := range []struct {
			name          string
			first, second *replica
		}{
			{"A then B", a, b},
			{"B then A", b, a},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tok := tokensVia(t, tc.first, tc.second)
				for _, rep := range replicas {
					r, err := ua.bearer(rep.base, tok.access)
					requireStatus(t, r, err, http.StatusOK, "")
					require.Equal(t, "alice", r.str("user"))
				}
				r, err := ua.postForm(tc.first.base+"/token", refreshForm(clientID, tok.refresh))
				rotated := mustTokens(t, r, err)
				r, err = ua.bearer(tc.second.base, rotated.access)
				requireStatus(t, r, err, http.StatusOK, "")
				// The rotated token, replayed on the other replica, revokes
				// the grant everywhere.
				r, err = ua.postForm(tc.second.base+"/token", refreshForm(clientID, tok.refresh))
				requireStatus(t, r, err, http.StatusBadRequest, "invalid_grant")
				for _, rep := range replicas {
					r, err = ua.bearer(rep.base, rotated.access)
					requireStatus(t, r, err, http.StatusUnauthorized, "invalid_token")
				}
			})
		}
	})

	// No replica caches a token: a revocation on one is seen by the next
	// request on the other.
	t.Run("a token revoked on one replica is refused by the other at once", func(t *testing.T) {
		for _, tc := range []struct {
			name             string
			revokeOn, useOn  *replica
			revokeRefresh    bool
			refreshStillWork bool
		}{
			{"access token revoked on A, used on B", a, b, false, true},
			{"access token revoked on B, used on A", b, a, false, true},
			{"refresh token (the grant) revoked on A, used on B", a, b, true, false},
			{"refresh token (the grant) revoked on B, used on A", b, a, true, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tok := tokensVia(t, tc.useOn, tc.revokeOn)
				r, err := ua.bearer(tc.useOn.base, tok.access)
				requireStatus(t, r, err, http.StatusOK, "")
				revoked := tok.access
				if tc.revokeRefresh {
					revoked = tok.refresh
				}
				r, err = ua.postForm(tc.revokeOn.base+"/revoke", url.Values{"client_id": {clientID}, "token": {revoked}})
				requireStatus(t, r, err, http.StatusOK, "")
				r, err = ua.bearer(tc.useOn.base, tok.access)
				requireStatus(t, r, err, http.StatusUnauthorized, "invalid_token")
				r, err = ua.postForm(tc.useOn.base+"/token", refreshForm(clientID, tok.refresh))
				if tc.refreshStillWork {
					next := mustTokens(t, r, err)
					r, err = ua.bearer(tc.revokeOn.base, next.access)
					requireStatus(t, r, err, http.StatusOK, "")
				} else {
					requireStatus(t, r, err, http.StatusBadRequest, "invalid_grant")
				}
			})
		}
	})

	// 20 redemptions of one credential, split across the replicas and
	// released together: exactly one succeeds, the others are replays that
	// revoke the grant, so even the winner's tokens are refused afterwards
	// (OAuth 2.1 §4.1.3, RFC 9700 §4.14.2).
	t.Run("concurrent redemption across replicas yields exactly one success", func(t *testing.T) {
		const redeemers = 20
		for _, tc := range []struct {
			name    string
			prepare func(t *testing.T) (form url.Values, issued []string)
		}{
			{"authorization code", func(t *testing.T) (url.Values, []string) {
				return exchangeForm(clientID, ua.mustCode(t, clientID, a, b, a)), nil
			}},
			{"refresh token", func(t *testing.T) (url.Values, []string) {
				tok := tokensVia(t, a, b)
				return refreshForm(clientID, tok.refresh), []string{tok.access}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				form, issued := tc.prepare(t)
				start := make(chan struct{})
				type result struct {
					r   reply
					err error
				}
				results := make(chan result, redeemers)
				for i := range redeemers {
					rep := replicas[i%2]
					go func() {
						<-start
						r, err := ua.postForm(rep.base+"/token", form)
						results <- result{r, err}
					}()
				}
				close(start)
				var won []tokenPair
				for range redeemers {
					res := <-results
					require.NoError(t, res.err)
					if res.r.Status == http.StatusOK {
						won = append(won, tokenPair{access: res.r.str("access_token"), refresh: res.r.str("refresh_token")})
						continue
					}
					requireStatus(t, res.r, nil, http.StatusBadRequest, "invalid_grant")
				}
				require.Len(t, won, 1, "exactly one redemption succeeds")
				for _, rep := range replicas {
					for _, access := range append(issued, won[0].access) {
						r, err := ua.bearer(rep.base, access)
						requireStatus(t, r, err, http.StatusUnauthorized, "invalid_token")
					}
					r, err := ua.postForm(rep.base+"/token", refreshForm(clientID, won[0].refresh))
					requireStatus(t, r, err, http.StatusBadRequest, "invalid_grant")
				}
			})
		}
	})

	// RFC 8628 across replicas: the device asks A, polls B (whose poll
	// bookkeeping A sees: slow_down), the user approves on A after loading
	// the page from B, and B's next poll gets the tokens, once.
	t.Run("a device code approved on one replica is polled on the other", func(t *testing.T) {
		devID, _, err := ua.register(a.base, map[string]any{
			"grant_types":                []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
			"token_endpoint_auth_method": "none", "client_name": "TV",
		})
		require.NoError(t, err)
		r, err := ua.postForm(a.base+"/device", url.Values{"client_id": {devID}, "scope": {clusterScope}, "resource": {clusterResource}})
		requireStatus(t, r, err, http.StatusOK, "")
		deviceCode, userCode := r.str("device_code"), r.str("user_code")
		poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {devID}, "device_code": {deviceCode}}

		r, err = ua.postForm(b.base+"/token", poll)
		requireStatus(t, r, err, http.StatusBadRequest, "authorization_pending")
		r, err = ua.postForm(a.base+"/token", poll)
		requireStatus(t, r, err, http.StatusBadRequest, "slow_down")

		r, err = ua.get(b.base + "/activate")
		requireStatus(t, r, err, http.StatusOK, "")
		r, err = ua.postForm(a.base+"/activate/approve", url.Values{"user_code": {userCode}, "csrf_token": {r.str("csrf_token")}, "username": {"alice"}})
		requireStatus(t, r, err, http.StatusSeeOther, "")

		r, err = ua.postForm(b.base+"/token", poll)
		tok := mustTokens(t, r, err)
		require.NotEmpty(t, tok.refresh)
		for _, rep := range replicas {
			r, err = ua.bearer(rep.base, tok.access)
			requireStatus(t, r, err, http.StatusOK, "")
			require.Equal(t, map[string]any{"user": "alice", "client": devID}, r.json())
		}
		r, err = ua.postForm(a.base+"/token", poll)
		requireStatus(t, r, err, http.StatusBadRequest, "invalid_grant")
	})

	require.Empty(t, a.serverErrors())
	require.Empty(t, b.serverErrors())
}
