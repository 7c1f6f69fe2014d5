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
}

var getCodeClauses = []clause{
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		k.saveCode(t, k.code(clientA, newGrantID()))
		k.requireNoCode(t, newDigest())
	}},
}

// consumeCase is one row of the ConsumeAuthorizationCode and
// RotateRefreshToken tables.
type consumeCase struct {
	name string
	// clientIDs are the client IDs the call is tried with, each on a fresh
	// credential; nil means clientA.
	clientIDs []string
	// unknown: the call names a digest that was never saved.
	unknown bool
	// used: the credential was redeemed once before the call.
	used bool
	// issued returns the tokens the call saves. existing is a token stored
	// before the call; revokedGrant is a grant revoked before the call.
	issued  func(k *kit, grantID string, existing *mcpoauth.Token, revokedGrant string) []*mcpoauth.Token
	wantErr error
}

// consumeCases are the rows shared by ConsumeAuthorizationCode and
// RotateRefreshToken: the same contract, on a code or a refresh token.
func consumeCases() []consumeCase {
	pair := func(k *kit, g string, _ *mcpoauth.Token, _ string) []*mcpoauth.Token { return k.tokens(clientA, g) }
	return []consumeCase{
		{name: "Succeeds", issued: pair},
		{name: "SucceedsWithoutTokens"},
		{name: "UnknownIsNotFound", unknown: true, issued: pair, wantErr: mcpoauth.ErrNotFound},
		{name: "OtherClientIsNotFound", clientIDs: otherClients, issued: pair, wantErr: mcpoauth.ErrNotFound},
		{name: "UsedIsAlreadyUsed", used: true, issued: pair, wantErr: mcpoauth.ErrAlreadyUsed},
		// The client is checked before use: a stranger presenting a used
		// credential must not learn that it was used (nor get its grant
		// revoked by the server).
		{name: "OtherClientsUsedIsNotFound", clientIDs: otherClients, used: true, issued: pair, wantErr: mcpoauth.ErrNotFound},
		{name: "IssuedDigestExistsIsConflict", wantErr: mcpoauth.ErrConflict,
			issued: func(k *kit, g string, existing *mcpoauth.Token, _ string) []*mcpoauth.Token {
				out := k.tokens(clientA, g)
				out[1].Digest = existing.Digest
				return out
			}},
		{name: "IssuedDigestRepeatedIsConflict", wantErr: mcpoauth.ErrConflict,
			issued: func(k *kit, g string, _ *mcpoauth.Token, _ string) []*mcpoauth.Token {
				out := k.tokens(clientA, g)
				out[1].Digest = out[0].Digest
				return out
			}},
		{name: "IssuedTokenOfRevokedGrantIsNotFound", wantErr: mcpoauth.ErrNotFound,
			issued: func(k *kit, g string, _ *mcpoauth.Token, revoked string) []*mcpoauth.Token {
				return []*mcpoauth.Token{k.token(mcpoauth.AccessToken, clientA, g), k.token(mcpoauth.RefreshToken, clientA, revoked)}
			}},
	}
}

// consumeCodeClauses is the ConsumeAuthorizationCode table, plus its
// concurrency clause.
func consumeCodeClauses() []clause {
	var out []clause
	for _, tc := range consumeCases() {
		out = append(out, clause{tc.name, func(t *testing.T, k *kit) {
			clientIDs := tc.clientIDs
			if clientIDs == nil {
				clientIDs = []string{clientA}
			}
			for _, clientID := range clientIDs {
				runConsumeCode(t, k, tc, clientID)
			}
		}})
	}
	return append(out,
		clause{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
			for range ConcurrencyRounds {
				g := newGrantID()
				code := k.saveCode(t, k.code(clientA, g))
				issued := make([][]*mcpoauth.Token, Concurrency)
				for i := range issued {
					issued[i] = k.tokens(clientA, g)
				}
				want := make([][]mcpoauth.Token, Concurrency)
				for i := range issued {
					want[i] = copyTokens(issued[i])
				}
				errs := runConcurrently(Concurrency, func(i int) error {
					return k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA, issued[i]...)
				})
				winner := requireOneWinner(t, errs, mcpoauth.ErrAlreadyUsed)
				for i := range issued {
					if i == winner {
						k.requireTokens(t, want[i])
					} else {
						k.requireNoToken(t, digests(issued[i])...)
					}
				}
				code.Used = true
				k.requireCode(t, code)
			}
		}},
	)
}

func runConsumeCode(t *testing.T, k *kit, tc consumeCase, clientID string) {
	t.Helper()
	g := newGrantID()
	existing := k.token(mcpoauth.AccessToken, clientA, g)
	existingWant := k.saveTokens(t, existing)[0]
	revoked := newGrantID()
	noError(t, k.m.RevokeGrant(k.ctx, revoked))
	code := k.code(clientA, g)
	want := k.saveCode(t, code)
	if tc.used {
		noError(t, k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA))
		want.Used = true
	}
	var issued []*mcpoauth.Token
	if tc.issued != nil {
		issued = tc.issued(k, g, existing, revoked)
	}
	issuedWant := copyTokens(issued)
	key := code.Digest
	if tc.unknown {
		key = newDigest()
	}

	err := k.m.ConsumeAuthorizationCode(k.ctx, key, clientID, issued...)
	k.requireToken(t, existingWant)
	if tc.wantErr != nil {
		errorIs(t, err, tc.wantErr, "client_id %q", clientID)
		// All or nothing: the code is as it was, no token was saved.
		k.requireCode(t, want)
		for _, tok := range issued {
			if tok.Digest != existing.Digest {
				k.requireNoToken(t, tok.Digest)
			}
		}
		return
	}
	noError(t, err)
	// A consumed code is kept, with every field, until it expires.
	want.Used = true
	k.requireCode(t, want)
	k.requireTokens(t, issuedWant)

	// A replay answers ErrAlreadyUsed and saves nothing.
	replay := k.tokens(clientA, g)
	errorIs(t, k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA, replay...), mcpoauth.ErrAlreadyUsed)
	k.requireNoToken(t, digests(replay)...)
	k.requireCode(t, want)
}
