package modeltest

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

var saveRequestClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		full := k.request(clientA)
		minimal := &mcpoauth.AuthorizationRequest{
			ID:            newDigest(),
			BrowserDigest: newDigest(),
			ClientID:      clientB,
			RedirectURI:   "http://localhost/cb",
			CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
			ExpiresAt:     k.now.Add(10 * time.Minute),
		}
		for _, r := range []*mcpoauth.AuthorizationRequest{full, minimal} {
			k.requireRequest(t, k.saveRequest(t, r))
		}
	}},
	{"StateRoundTripsAnyBytes", func(t *testing.T, k *kit) {
		// The state is the client's, copied from its request byte for byte,
		// and must come back so for the redirect (RFC 6749 §4.1.2).
		for _, state := range []string{"", " ", "a\x00b", "\xff\xfe\x80", "%00", "'; DROP TABLE x; --", "\\\"\n\t"} {
			r := k.request(clientA)
			r.State = state
			k.requireRequest(t, k.saveRequest(t, r))
		}
	}},
	{"DuplicateIDIsConflict", func(t *testing.T, k *kit) {
		orig := k.request(clientA)
		want := k.saveRequest(t, orig)
		dup := k.request(clientB)
		dup.ID = orig.ID
		errorIs(t, k.m.SaveAuthorizationRequest(k.ctx, dup), mcpoauth.ErrConflict)
		k.requireRequest(t, want)
	}},
	{"ZeroIDIsRefused", func(t *testing.T, k *kit) {
		// A zero ID is the digest of no request id, and the server never
		// makes one: the save is refused with an error that is no
		// sentinel, and nothing is stored under it.
		r := k.request(clientA)
		r.ID = mcpoauth.Digest{}
		requireRefused(t, k.m.SaveAuthorizationRequest(k.ctx, r), "SaveAuthorizationRequest of a request with a zero ID")
		k.requireNoRequest(t, mcpoauth.Digest{})
	}},
}

var getRequestClauses = []clause{
	{"DoesNotConsume", func(t *testing.T, k *kit) {
		want := k.saveRequest(t, k.request(clientA))
		k.requireRequest(t, want)
		k.requireRequest(t, want)
		got, err := k.m.ConsumeAuthorizationRequest(k.ctx, want.ID)
		noError(t, err)
		requireReadBack(t, want, got)
	}},
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		k.saveRequest(t, k.request(clientA))
		k.requireNoRequest(t, newDigest())
	}},
}

var consumeRequestClauses = []clause{
	{"ReturnsAndRemoves", func(t *testing.T, k *kit) {
		want := k.saveRequest(t, k.request(clientA))
		other := k.saveRequest(t, k.request(clientA))
		got, err := k.m.ConsumeAuthorizationRequest(k.ctx, want.ID)
		noError(t, err)
		requireReadBack(t, want, got)
		k.requireNoRequest(t, want.ID)
		k.requireRequest(t, other)
	}},
	{"SecondConsumeIsNotFound", func(t *testing.T, k *kit) {
		want := k.saveRequest(t, k.request(clientA))
		_, err := k.m.ConsumeAuthorizationRequest(k.ctx, want.ID)
		noError(t, err)
		got, err := k.m.ConsumeAuthorizationRequest(k.ctx, want.ID)
		errorIs(t, err, mcpoauth.ErrNotFound)
		isNil(t, got)
	}},
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		other := k.saveRequest(t, k.request(clientA))
		got, err := k.m.ConsumeAuthorizationRequest(k.ctx, newDigest())
		errorIs(t, err, mcpoauth.ErrNotFound)
		isNil(t, got)
		k.requireRequest(t, other)
	}},
	{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
		for range ConcurrencyRounds {
			want := k.saveRequest(t, k.request(clientA))
			got := make([]*mcpoauth.AuthorizationRequest, Concurrency)
			errs := together.Run(Concurrency, func(i int) error {
				var err error
				got[i], err = k.m.ConsumeAuthorizationRequest(k.ctx, want.ID)
				return err
			})
			winner := requireOneWinner(t, errs, mcpoauth.ErrNotFound)
			requireReadBack(t, want, got[winner])
			k.requireNoRequest(t, want.ID)
		}
	}},
}
