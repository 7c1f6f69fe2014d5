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
	var out []clause
	for _, tc := range consumeCases() {
		out = append(out, clause{tc.name, func(t *testing.T, k *kit) {
			clientIDs := tc.clientIDs
			if clientIDs == nil {
				clientIDs = []string{clientA}
			}
			for _, clientID := range clientIDs {
				runRotate(t, k, tc, clientID, mcpoauth.RefreshToken)
			}
		}})
	}
	return append(out,
		clause{"AccessTokenIsNotFound", func(t *testing.T, k *kit) {
			pair := func(k *kit, g string, _ *mcpoauth.Token, _ string) []*mcpoauth.Token { return k.tokens(clientA, g) }
			runRotate(t, k, consumeCase{issued: pair, wantErr: mcpoauth.ErrNotFound}, clientA, mcpoauth.AccessToken)
		}},
		clause{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
			for range ConcurrencyRounds {
				g := newGrantID()
				old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, g))[0]
				issued := make([][]*mcpoauth.Token, Concurrency)
				want := make([][]mcpoauth.Token, Concurrency)
				for i := range issued {
					issued[i] = k.tokens(clientA, g)
					want[i] = copyTokens(issued[i])
				}
				errs := runConcurrently(Concurrency, func(i int) error {
					return k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, issued[i]...)
				})
				winner := requireOneWinner(t, errs, mcpoauth.ErrAlreadyUsed)
				for i := range issued {
					if i == winner {
						k.requireTokens(t, want[i])
					} else {
						k.requireNoToken(t, digests(issued[i])...)
					}
				}
				k.requireUsedToken(t, old)
			}
		}},
	)
}

func runRotate(t *testing.T, k *kit, tc consumeCase, clientID string, kind mcpoauth.TokenKind) {
	t.Helper()
	g := newGrantID()
	existing := k.token(mcpoauth.AccessToken, clientA, g)
	old := k.token(kind, clientA, g)
	saved := k.saveTokens(t, existing, old)
	existingWant, want := saved[0], saved[1]
	revoked := newGrantID()
	noError(t, k.m.RevokeGrant(k.ctx, revoked))
	if tc.used {
		noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA))
		want.Used = true
	}
	var issued []*mcpoauth.Token
	if tc.issued != nil {
		issued = tc.issued(k, g, existing, revoked)
	}
	issuedWant := copyTokens(issued)
	key := old.Digest
	if tc.unknown {
		key = newDigest()
	}

	err := k.m.RotateRefreshToken(k.ctx, key, clientID, issued...)
	k.requireToken(t, existingWant)
	if tc.wantErr != nil {
		errorIs(t, err, tc.wantErr, "client_id %q", clientID)
		// All or nothing: the token is as it was, no token was saved.
		k.requireToken(t, want)
		for _, tok := range issued {
			if tok.Digest != existing.Digest {
				k.requireNoToken(t, tok.Digest)
			}
		}
		return
	}
	noError(t, err)
	// A rotated token is kept, with every field, so a replay is detected.
	k.requireUsedToken(t, want)
	k.requireTokens(t, issuedWant)

	replay := k.tokens(clientA, g)
	errorIs(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, replay...), mcpoauth.ErrAlreadyUsed)
	k.requireNoToken(t, digests(replay)...)
	k.requireUsedToken(t, want)
}

var revokeTokenClauses = []clause{
	{"ReturnsAndDeletes", func(t *testing.T, k *kit) {
		want := k.saveTokens(t, k.tokens(clientA, newGrantID())...)
		for _, w := range want {
			got, err := k.m.RevokeToken(k.ctx, w.Digest, clientA)
			noError(t, err, "revoking a %v", w.Kind)
			requireTokenEqual(t, w, got)
			k.requireNoToken(t, w.Digest)
		}
	}},
	{"RotatedRefreshTokenIsRevocable", func(t *testing.T, k *kit) {
		old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, newGrantID()))[0]
		noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA))
		got, err := k.m.RevokeToken(k.ctx, old.Digest, clientA)
		noError(t, err)
		old.Used = true
		requireTokenEqual(t, old, got)
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
