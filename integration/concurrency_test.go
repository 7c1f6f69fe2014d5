package integration_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
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
// exactly one succeeds (atomic consume, DESIGN invariant; go-oauth2's
// get-then-delete allowed several, peer lesson 10), and the replays revoke
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

// TestConcurrentRefresh: 50 concurrent rotations of one refresh token:
// exactly one succeeds and the replays revoke the whole grant.
func TestConcurrentRefresh(t *testing.T) {
	h := newHarness(t)
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
