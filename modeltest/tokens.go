package modeltest

import (
	"testing"

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
		many := k.token(mcpoauth.RefreshToken, clientA, g)
		many.Scopes = []string{"z", "a", "mcp:tools", "a"}
		want := k.saveTokens(t, append(pair, machine, many)...)
		for _, w := range want {
			if w.Used {
				t.Fatalf("a fresh token has Used set: %+v", w)
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
		clause{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
			for range ConcurrencyRounds {
				g := newGrantID()
				old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, g))[0]
				k.requireOneRedeems(t, g, mcpoauth.ErrAlreadyUsed, func(issued ...*mcpoauth.Token) error {
					return k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, issued...)
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
			noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA))
			want.Used = true
		}
		return redemption{
			grantID:  g,
			existing: saved[0],
			key:      old.Digest,
			redeem: func(key mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
				return k.m.RotateRefreshToken(k.ctx, key, clientID, issued...)
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
		noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA))
		got, err := k.m.RevokeToken(k.ctx, old.Digest, clientA)
		noError(t, err)
		old.Used = true
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
