package integration_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// raceTokenRequests fires n identical token requests at once and returns
// the responses.
func raceTokenRequests(h *harness, n int, form func() *http.Request) []*httptest.ResponseRecorder {
	out := make([]*httptest.ResponseRecorder, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := form()
			<-start
			out[i] = h.do(r)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func successes(t *testing.T, ws []*httptest.ResponseRecorder) (ok []*httptest.ResponseRecorder) {
	t.Helper()
	for _, w := range ws {
		switch w.Code {
		case http.StatusOK:
			ok = append(ok, w)
		default:
			require.Equal(t, "invalid_grant", oauthError(t, w), w.Body.String())
		}
	}
	return ok
}

// TestConcurrentCodeRedemption: 50 concurrent redemptions of one code:
// exactly one succeeds (atomic consumption, docs/security.md; go-oauth2's
// get-then-delete allowed several), and the replays revoke
// the winner's tokens.
func TestConcurrentCodeRedemption(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	code := h.code(id)
	ws := raceTokenRequests(h, 50, func() *http.Request {
		r := newRequest(http.MethodPost, "/token", exchangeForm(id, code).Encode())
		return r
	})
	ok := successes(t, ws)
	require.Len(t, ok, 1)
	tr := decodeTokens(t, ok[0])
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code, "replays revoked the grant")
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, tr.RefreshToken))))
}

// TestConcurrentRefreshStrict: without a reuse interval (NoReuse), 50
// concurrent refreshes with one token yield exactly one success, and the
// losers' replays revoke the grant.
func TestConcurrentRefreshStrict(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.RefreshTokenReuseInterval = mcpoauth.NoReuse })
	id := h.publicClient()
	first := h.tokens(id)
	ws := raceTokenRequests(h, 50, func() *http.Request {
		return newRequest(http.MethodPost, "/token", refreshForm(id, first.RefreshToken).Encode())
	})
	ok := successes(t, ws)
	require.Len(t, ok, 1)
	tr := decodeTokens(t, ok[0])
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
	require.Equal(t, http.StatusUnauthorized, h.callMCP(first.AccessToken).Code)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, tr.RefreshToken))))
}

// TestConcurrentConsent: one pending request decided 20 times at once
// yields exactly one redirect.
func TestConcurrentConsent(t *testing.T) {
	h := newHarness(t)
	b, p := h.startConsent(h.publicClient())
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = h.decide(b, consentForm(p, "approve")).Code
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range codes {
		if c == http.StatusSeeOther {
			n++
		} else {
			require.Equal(t, http.StatusBadRequest, c)
		}
	}
	require.Equal(t, 1, n)
}

// TestDeviceConcurrentPollsOfApprovedCode: 50 concurrent polls of one
// approved device code yield exactly one token response (atomic consume);
// the others are invalid_grant and revoke nothing.
func TestDeviceConcurrentPollsOfApprovedCode(t *testing.T) {
	h := newDeviceHarness(t)
	id := h.deviceClient()
	da := h.decidedDevice(id, "approve", "alice")
	ws := raceTokenRequests(h, 50, func() *http.Request {
		return newRequest(http.MethodPost, "/token", devicePollForm(id, da.DeviceCode).Encode())
	})
	ok := successes(t, ws)
	require.Len(t, ok, 1)
	tr := decodeTokens(t, ok[0])
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code, "the losers revoke nothing")
	require.Equal(t, 2, h.model.Stats().Tokens, "one access and one refresh token")
}

// TestDevicePollRacesDecision: the TypeScript original's lost update (see
// TestDevicePollLosesToDecision) under real concurrency. Each of 1,000
// rounds starts a device flow, then releases at once a poll and the user's
// decision (approve and deny alternate). The decision is never lost:
// afterwards the stored status is the decision (unless the racing poll
// already answered by it and consumed the record), and the next poll
// answers by it: tokens exactly once for an approval, access_denied for a
// denial; never authorization_pending.
func TestDevicePollRacesDecision(t *testing.T) {
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	h := newDeviceHarness(t)
	id := h.deviceClient()
	b := &browser{}
	csrf := h.openDevicePage(b, "").CSRFToken
	for round := range rounds {
		approve := round%2 == 0
		action, decided := "deny", mcpoauth.DeviceDenied
		if approve {
			action, decided = "approve", mcpoauth.DeviceApproved
		}
		da := h.startDevice(id)
		decide := url.Values{"user_code": {da.UserCode}, "csrf_token": {csrf}, "username": {"alice"}}

		var racing, decision *httptest.ResponseRecorder
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			racing = h.pollDevice(id, da.DeviceCode)
		})
		wg.Go(func() {
			<-start
			decision = h.postDecision(b, action, decide)
		})
		close(start)
		wg.Wait()
		require.Equal(t, http.StatusSeeOther, decision.Code, "round %d: %s", round, decision.Body.String())

		// The racing poll came before the decision (pending) or after it
		// (answered by it); nothing else.
		racedFirst := racing.Code == http.StatusBadRequest && oauthError(t, racing) == "authorization_pending"
		if !racedFirst {
			if approve {
				require.Equal(t, http.StatusOK, racing.Code, "round %d: %s", round, racing.Body.String())
			} else {
				require.Equal(t, "access_denied", oauthError(t, racing), "round %d", round)
			}
		}

		stored := storedDevice(t, h.model, da.DeviceCode)
		if racedFirst {
			require.NotNil(t, stored, "round %d: the decision was lost", round)
			require.Equal(t, decided, stored.Status, "round %d: the decision was overwritten", round)
			require.Equal(t, "alice", stored.UserID, "round %d", round)
		} else {
			require.Nil(t, stored, "round %d: consumed by the racing poll", round)
		}

		final := h.pollDevice(id, da.DeviceCode)
		switch {
		case !racedFirst:
			require.Equal(t, "invalid_grant", oauthError(t, final), "round %d: answered once", round)
		case approve:
			require.Equal(t, http.StatusOK, final.Code, "round %d: %s", round, final.Body.String())
		default:
			require.Equal(t, "access_denied", oauthError(t, final), "round %d", round)
		}
	}
	require.Zero(t, h.model.Stats().DeviceAuthorizations)
	require.Equal(t, rounds/2*2, h.model.Stats().Tokens, "one token pair per approval")
}
