package modeltest

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

// grantRecords is what a grant accumulates over its life: a redeemed code,
// an unredeemed one, the tokens the code issued, a rotated refresh token and
// the tokens that replaced it.
type grantRecords struct {
	codes  []mcpoauth.AuthorizationCode
	tokens []mcpoauth.Token
}

// liveGrant builds a grant of clientID through the model's own methods and
// returns its records as they are now stored.
func (k *kit) liveGrant(t *testing.T, clientID, grantID string) grantRecords {
	t.Helper()
	redeemed := k.saveCode(t, k.code(clientID, grantID))
	fresh := k.saveCode(t, k.code(clientID, grantID))
	first := k.tokens(clientID, grantID)
	firstWant := copyTokens(first)
	noError(t, k.m.ConsumeAuthorizationCode(k.ctx, redeemed.Digest, clientID, first...))
	redeemed.Used = true
	second := k.tokens(clientID, grantID)
	secondWant := copyTokens(second)
	noError(t, k.m.RotateRefreshToken(k.ctx, first[1].Digest, clientID, k.now, time.Time{}, second...))
	firstWant[1].RotatedAt = k.now
	return grantRecords{
		codes:  []mcpoauth.AuthorizationCode{redeemed, fresh},
		tokens: append(firstWant, secondWant...),
	}
}

func (k *kit) requireGrantIntact(t *testing.T, g grantRecords) {
	t.Helper()
	for _, c := range g.codes {
		k.requireCode(t, c)
	}
	k.requireTokens(t, g.tokens)
}

func (k *kit) requireGrantGone(t *testing.T, g grantRecords) {
	t.Helper()
	for _, c := range g.codes {
		k.requireNoCode(t, c.Digest)
	}
	for _, tok := range g.tokens {
		k.requireNoToken(t, tok.Digest)
	}
}

var revokeGrantClauses = []clause{
	{"DeletesTokensAndCodes", func(t *testing.T, k *kit) {
		revoked, kept := newGrantID(), newGrantID()
		gone := k.liveGrant(t, clientA, revoked)
		stays := k.liveGrant(t, clientA, kept)
		other := k.liveGrant(t, clientB, newGrantID())
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		k.requireGrantGone(t, gone)
		k.requireGrantIntact(t, stays)
		k.requireGrantIntact(t, other)
	}},
	{"EmptyGrantIDMatchesNothing", func(t *testing.T, k *kit) {
		g := k.liveGrant(t, clientA, newGrantID())
		noError(t, k.m.RevokeGrant(k.ctx, ""))
		k.requireGrantIntact(t, g)
	}},
	{"RepeatedAndUnknownAreNoOps", func(t *testing.T, k *kit) {
		revoked := newGrantID()
		k.liveGrant(t, clientA, revoked)
		kept := k.liveGrant(t, clientA, newGrantID())
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		noError(t, k.m.RevokeGrant(k.ctx, newGrantID()))
		k.requireGrantIntact(t, kept)
	}},
	{"LaterSaveTokensIsNotFound", func(t *testing.T, k *kit) {
		revoked, live := newGrantID(), newGrantID()
		k.liveGrant(t, clientA, revoked)
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		// All or nothing, even beside a token of a live grant.
		tokens := append(k.tokens(clientA, live), k.token(mcpoauth.AccessToken, clientA, revoked))
		errorIs(t, k.m.SaveTokens(k.ctx, tokens...), mcpoauth.ErrNotFound)
		k.requireNoToken(t, digests(tokens)...)
		// A grant revoked before it issued anything is remembered too.
		unused := newGrantID()
		noError(t, k.m.RevokeGrant(k.ctx, unused))
		tokens = k.tokens(clientA, unused)
		errorIs(t, k.m.SaveTokens(k.ctx, tokens...), mcpoauth.ErrNotFound)
		k.requireNoToken(t, digests(tokens)...)
	}},
	{"LaterSaveAuthorizationCodeIsNotFound", func(t *testing.T, k *kit) {
		revoked := newGrantID()
		k.liveGrant(t, clientA, revoked)
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		code := k.code(clientA, revoked)
		errorIs(t, k.m.SaveAuthorizationCode(k.ctx, code), mcpoauth.ErrNotFound)
		k.requireNoCode(t, code.Digest)
	}},
	{"LaterConsumeAuthorizationCodeIsNotFound", func(t *testing.T, k *kit) {
		revoked, live := newGrantID(), newGrantID()
		k.liveGrant(t, clientA, revoked)
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		code := k.saveCode(t, k.code(clientA, live))
		issued := k.tokens(clientA, revoked)
		errorIs(t, k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA, issued...), mcpoauth.ErrNotFound)
		k.requireCode(t, code) // not consumed
		k.requireNoToken(t, digests(issued)...)
	}},
	{"LaterRotateRefreshTokenIsNotFound", func(t *testing.T, k *kit) {
		revoked, live := newGrantID(), newGrantID()
		k.liveGrant(t, clientA, revoked)
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, live))[0]
		issued := k.tokens(clientA, revoked)
		errorIs(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}, issued...), mcpoauth.ErrNotFound)
		k.requireToken(t, old) // not rotated
		k.requireNoToken(t, digests(issued)...)
	}},
	{"RacesConsumeAuthorizationCode", func(t *testing.T, k *kit) {
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			code := k.saveCode(t, k.code(clientA, g))
			issued := k.tokens(clientA, g)
			return func() error { return k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA, issued...) }, k.noTokens(issued)
		})
	}},
	{"RacesRotateRefreshToken", func(t *testing.T, k *kit) {
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			old := k.token(mcpoauth.RefreshToken, clientA, g)
			k.saveTokens(t, old)
			issued := k.tokens(clientA, g)
			return func() error { return k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}, issued...) }, k.noTokens(append(issued, old))
		})
	}},
	{"RacesSaveTokens", func(t *testing.T, k *kit) {
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			issued := k.tokens(clientA, g)
			return func() error { return k.m.SaveTokens(k.ctx, issued...) }, k.noTokens(issued)
		})
	}},
	{"RacesSaveAuthorizationCode", func(t *testing.T, k *kit) {
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			code := k.code(clientA, g)
			return func() error { return k.m.SaveAuthorizationCode(k.ctx, code) },
				func(t *testing.T) { t.Helper(); k.requireNoCode(t, code.Digest) }
		})
	}},
}

// raceRevokeGrant runs RaceRounds rounds in which RevokeGrant races an
// operation that saves records of the grant. setup prepares the operation
// for a fresh grant and returns it with an assertion that none of the
// records it may leave behind is visible: the operation either saved them
// before the revocation, which then deleted them, or found the grant
// revoked and saved nothing (ErrNotFound).
func (k *kit) raceRevokeGrant(t *testing.T, setup func(grantID string) (op func() error, requireGone func(t *testing.T))) {
	t.Helper()
	var saved, refused int
	for range RaceRounds {
		g := newGrantID()
		op, requireGone := setup(g)
		errs := together.Run(2, func(i int) error {
			if i == 0 {
				return op()
			}
			return k.m.RevokeGrant(k.ctx, g)
		})
		noError(t, errs[1], "RevokeGrant")
		requireErrorIsOneOf(t, errs[0], mcpoauth.ErrNotFound)
		if errs[0] == nil {
			saved++
		} else {
			refused++
		}
		requireGone(t)
	}
	t.Logf("%d saved before the revocation, %d refused after it", saved, refused)
}

// noTokens returns an assertion that none of tokens can be read.
func (k *kit) noTokens(tokens []*mcpoauth.Token) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		k.requireNoToken(t, digests(tokens)...)
	}
}
