package modeltest

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

var saveTokensClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		g := newGrantID()
		pair := k.tokens(clientA, g)
		// A client-credentials token acts for no user; some grants carry
		// no scope.
		machine := k.token(mcpoauth.AccessToken, clientB, newGrantID())
		machine.UserID = ""
		machine.Scopes = nil
		machine.JKT = "" // a bearer token
		// A refresh token whose JKT is the access token's: a public
		// client's pair bound to one key.
		pair[1].JKT = pair[0].JKT
		many := k.token(mcpoauth.RefreshToken, clientA, g)
		many.Scopes = []string{"z", "a", "mcp:tools", "a"}
		want := k.saveTokens(t, append(pair, machine, many)...)
		for _, w := range want {
			if w.Rotated() {
				t.Fatalf("a fresh token has RotatedAt set: %+v", w)
			}
		}
		k.requireTokens(t, want)
	}},
	{"NoTokensIsNoOp", func(t *testing.T, k *kit) {
		noError(t, k.m.SaveTokens(k.ctx))
	}},
	{"StoredDigestIsConflict", func(t *testing.T, k *kit) {
		stored := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, newGrantID()))[0]
		fresh := k.token(mcpoauth.AccessToken, clientA, newGrantID())
		dup := k.token(mcpoauth.RefreshToken, clientB, newGrantID())
		dup.Digest = stored.Digest
		// All or nothing: the fresh token is not saved either, and the
		// stored one is not replaced.
		errorIs(t, k.m.SaveTokens(k.ctx, fresh, dup), mcpoauth.ErrConflict)
		k.requireNoToken(t, fresh.Digest)
		k.requireToken(t, stored)
	}},
	{"RepeatedDigestIsConflict", func(t *testing.T, k *kit) {
		pair := k.tokens(clientA, newGrantID())
		pair[1].Digest = pair[0].Digest
		errorIs(t, k.m.SaveTokens(k.ctx, pair...), mcpoauth.ErrConflict)
		k.requireNoToken(t, pair[0].Digest)
	}},
	{"ZeroDigestIsRefused", func(t *testing.T, k *kit) {
		// A zero digest is the digest of no token, and the server never
		// makes one: the save is refused with an error that is no
		// sentinel, and, all or nothing, the valid token saved before it
		// in the call is not stored either.
		pair := k.tokens(clientA, newGrantID())
		pair[1].Digest = mcpoauth.Digest{}
		requireRefused(t, k.m.SaveTokens(k.ctx, pair...), "SaveTokens of a token with a zero digest")
		k.requireNoToken(t, pair[0].Digest, mcpoauth.Digest{})
	}},
	{"SavesMany", func(t *testing.T, k *kit) {
		many := make([]*mcpoauth.Token, 40)
		g := newGrantID()
		for i := range many {
			many[i] = k.token(mcpoauth.AccessToken, clientA, g)
		}
		k.requireTokens(t, k.saveTokens(t, many...))
	}},
}

var getTokenClauses = []clause{
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		k.saveTokens(t, k.tokens(clientA, newGrantID())...)
		k.requireNoToken(t, newDigest())
	}},
}

// rotateClauses is the RotateRefreshToken table, plus the clauses proper to
// refresh tokens.
func rotateClauses() []clause {
	return append(consumeClauses(consumeCases(), prepareRotate(mcpoauth.RefreshToken)),
		clause{"AccessTokenIsNotFound", func(t *testing.T, k *kit) {
			tc := consumeCase{issued: issuedPair, wantErr: mcpoauth.ErrNotFound}
			k.runConsume(t, tc, clientA, prepareRotate(mcpoauth.AccessToken))
		}},
		// The reuse interval: a token rotated at or after reuseSince is
		// rotated again, its first rotation time kept; one rotated before
		// it is a replay.
		clause{"ReuseWithinIntervalRotatesAgain", func(t *testing.T, k *kit) {
			old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, newGrantID()))[0]
			noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}))
			issued := k.tokens(clientA, old.GrantID)
			want := copyTokens(issued)
			noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now.Add(time.Second), k.now.Add(-time.Second), issued...))
			k.requireTokens(t, want)
			k.requireUsedToken(t, old) // still rotated at k.now, not a second later
		}},
		clause{"ReuseAfterIntervalIsAlreadyUsed", func(t *testing.T, k *kit) {
			old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, newGrantID()))[0]
			noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}))
			issued := k.tokens(clientA, old.GrantID)
			errorIs(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now.Add(time.Minute), k.now.Add(time.Second), issued...), mcpoauth.ErrAlreadyUsed)
			k.requireNoToken(t, digests(issued)...)
			k.requireUsedToken(t, old)
		}},
		clause{"ReuseByOtherClientIsNotFound", func(t *testing.T, k *kit) {
			old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, newGrantID()))[0]
			noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}))
			issued := k.tokens(clientB, old.GrantID)
			errorIs(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientB, k.now, k.now.Add(-time.Minute), issued...), mcpoauth.ErrNotFound)
			k.requireNoToken(t, digests(issued)...)
		}},
		clause{"ConcurrentCallsWithinIntervalAllSucceed", func(t *testing.T, k *kit) {
			// Two tabs refreshing at once: every rotation within the reuse
			// interval succeeds, and the first rotation time stands.
			for range ConcurrencyRounds {
				old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, newGrantID()))[0]
				const n = 8
				errs := make(chan error, n)
				var all []mcpoauth.Token
				for range n {
					issued := k.tokens(clientA, old.GrantID)
					all = append(all, copyTokens(issued)...)
					go func() {
						errs <- k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, k.now.Add(-time.Minute), issued...)
					}()
				}
				for range n {
					noError(t, <-errs, "a rotation within the reuse interval")
				}
				k.requireTokens(t, all)
				k.requireUsedToken(t, old)
			}
		}},
		clause{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
			for range ConcurrencyRounds {
				g := newGrantID()
				old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, g))[0]
				k.requireOneRedeems(t, g, mcpoauth.ErrAlreadyUsed, func(issued ...*mcpoauth.Token) error {
					return k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}, issued...)
				})
				k.requireUsedToken(t, old)
			}
		}},
	)
}

// prepareRotate returns the setup of a row of the RotateRefreshToken
// table: a token of kind to rotate, and another token of its grant. A
// rotated token is kept, with every field, so that a replay is detected.
func prepareRotate(kind mcpoauth.TokenKind) prepareFunc {
	return func(t *testing.T, k *kit, tc consumeCase) redemption {
		t.Helper()
		g := newGrantID()
		old := k.token(kind, clientA, g)
		saved := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, g), old)
		want := saved[1]
		if tc.used {
			noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}))
			want.RotatedAt = k.now
		}
		return redemption{
			grantID:  g,
			existing: saved[0],
			key:      old.Digest,
			redeem: func(key mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
				return k.m.RotateRefreshToken(k.ctx, key, clientID, k.now, time.Time{}, issued...)
			},
			requireAsBefore: func(t *testing.T) { t.Helper(); k.requireToken(t, want) },
			requireRedeemed: func(t *testing.T) { t.Helper(); k.requireUsedToken(t, want) },
			replayErr:       mcpoauth.ErrAlreadyUsed,
		}
	}
}

var revokeTokenClauses = []clause{
	{"ReturnsAndDeletes", func(t *testing.T, k *kit) {
		want := k.saveTokens(t, k.tokens(clientA, newGrantID())...)
		for _, w := range want {
			got, err := k.m.RevokeToken(k.ctx, w.Digest, clientA)
			noError(t, err, "revoking a %v", w.Kind)
			requireReadBack(t, w, got)
			k.requireNoToken(t, w.Digest)
		}
	}},
	{"RotatedRefreshTokenIsRevocable", func(t *testing.T, k *kit) {
		old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, newGrantID()))[0]
		noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}))
		got, err := k.m.RevokeToken(k.ctx, old.Digest, clientA)
		noError(t, err)
		old.RotatedAt = k.now
		requireReadBack(t, old, got)
		k.requireNoToken(t, old.Digest)
	}},
	{"OtherClientIsNotFound", func(t *testing.T, k *kit) {
		want := k.saveTokens(t, k.tokens(clientA, newGrantID())...)
		for _, w := range want {
			for _, clientID := range otherClients {
				got, err := k.m.RevokeToken(k.ctx, w.Digest, clientID)
				errorIs(t, err, mcpoauth.ErrNotFound, "client_id %q", clientID)
				isNil(t, got)
			}
		}
		k.requireTokens(t, want)
	}},
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		want := k.saveTokens(t, k.tokens(clientA, newGrantID())...)
		got, err := k.m.RevokeToken(k.ctx, newDigest(), clientA)
		errorIs(t, err, mcpoauth.ErrNotFound)
		isNil(t, got)
		k.requireTokens(t, want)
	}},
	{"SecondRevokeIsNotFound", func(t *testing.T, k *kit) {
		w := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, newGrantID()))[0]
		_, err := k.m.RevokeToken(k.ctx, w.Digest, clientA)
		noError(t, err)
		got, err := k.m.RevokeToken(k.ctx, w.Digest, clientA)
		errorIs(t, err, mcpoauth.ErrNotFound)
		isNil(t, got)
	}},
	{"OtherTokensOfTheGrantStay", func(t *testing.T, k *kit) {
		g := newGrantID()
		want := k.saveTokens(t, k.tokens(clientA, g)...)
		code := k.saveCode(t, k.code(clientA, g))
		_, err := k.m.RevokeToken(k.ctx, want[0].Digest, clientA)
		noError(t, err)
		k.requireToken(t, want[1])
		k.requireCode(t, code)
	}},
}
