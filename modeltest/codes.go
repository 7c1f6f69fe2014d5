package modeltest

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

var saveCodeClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		full := k.code(clientA, newGrantID())
		minimal := &mcpoauth.AuthorizationCode{
			Digest:         newDigest(),
			ClientID:       clientB,
			GrantID:        newGrantID(),
			CodeChallenge:  "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
			ExpiresAt:      k.now.Add(time.Minute),
			GrantExpiresAt: k.now.Add(time.Minute),
		}
		for _, c := range []*mcpoauth.AuthorizationCode{full, minimal} {
			want := k.saveCode(t, c)
			if want.Used {
				t.Fatalf("a fresh code has Used set: %+v", want)
			}
			k.requireCode(t, want)
		}
	}},
	{"DuplicateDigestIsConflict", func(t *testing.T, k *kit) {
		orig := k.code(clientA, newGrantID())
		want := k.saveCode(t, orig)
		dup := k.code(clientB, newGrantID())
		dup.Digest = orig.Digest
		errorIs(t, k.m.SaveAuthorizationCode(k.ctx, dup), mcpoauth.ErrConflict)
		k.requireCode(t, want)
	}},
	{"DuplicateDoesNotResetUsedCode", func(t *testing.T, k *kit) {
		// Saving over a used code must not make it redeemable again.
		orig := k.code(clientA, newGrantID())
		want := k.saveCode(t, orig)
		noError(t, k.m.ConsumeAuthorizationCode(k.ctx, orig.Digest, clientA))
		dup := k.code(clientA, want.GrantID)
		dup.Digest = orig.Digest
		errorIs(t, k.m.SaveAuthorizationCode(k.ctx, dup), mcpoauth.ErrConflict)
		want.Used = true
		k.requireCode(t, want)
		errorIs(t, k.m.ConsumeAuthorizationCode(k.ctx, orig.Digest, clientA), mcpoauth.ErrAlreadyUsed)
	}},
	{"ZeroDigestIsRefused", func(t *testing.T, k *kit) {
		// A zero digest is the digest of no code, and the server never
		// makes one: the save is refused with an error that is no
		// sentinel, and nothing is stored under it.
		c := k.code(clientA, newGrantID())
		c.Digest = mcpoauth.Digest{}
		requireRefused(t, k.m.SaveAuthorizationCode(k.ctx, c), "SaveAuthorizationCode of a code with a zero digest")
		k.requireNoCode(t, mcpoauth.Digest{})
	}},
}

var getCodeClauses = []clause{
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		k.saveCode(t, k.code(clientA, newGrantID()))
		k.requireNoCode(t, newDigest())
	}},
}

// consumeCodeClauses is the ConsumeAuthorizationCode table, plus its
// concurrency clause.
func consumeCodeClauses() []clause {
	return append(consumeClauses(consumeCases(), prepareCode),
		clause{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
			for range ConcurrencyRounds {
				g := newGrantID()
				code := k.saveCode(t, k.code(clientA, g))
				k.requireOneRedeems(t, g, mcpoauth.ErrAlreadyUsed, func(issued ...*mcpoauth.Token) error {
					return k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA, issued...)
				})
				code.Used = true
				k.requireCode(t, code)
			}
		}},
	)
}

// prepareCode saves a code, and a token of its grant, for a row of the
// ConsumeAuthorizationCode table. A consumed code is kept, with every field,
// until it expires.
func prepareCode(t *testing.T, k *kit, tc consumeCase) redemption {
	t.Helper()
	g := newGrantID()
	existing := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, g))[0]
	code := k.code(clientA, g)
	want := k.saveCode(t, code)
	if tc.used {
		noError(t, k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA))
		want.Used = true
	}
	used := want
	used.Used = true
	return redemption{
		grantID:  g,
		existing: existing,
		key:      code.Digest,
		redeem: func(key mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
			return k.m.ConsumeAuthorizationCode(k.ctx, key, clientID, issued...)
		},
		requireAsBefore: func(t *testing.T) { t.Helper(); k.requireCode(t, want) },
		requireRedeemed: func(t *testing.T) { t.Helper(); k.requireCode(t, used) },
		replayErr:       mcpoauth.ErrAlreadyUsed,
	}
}
