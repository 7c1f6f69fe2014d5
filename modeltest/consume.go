package modeltest

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

// ConsumeAuthorizationCode, RotateRefreshToken and ConsumeDeviceAuthorization
// share one contract: redeem a credential once, for its own client only, and
// save the tokens it issues with it, all or nothing. Their tables share the
// row type, the runner and the concurrency check below; each method brings
// only how to set its credential up and read it back.

// consumeCase is one row of a consume table.
type consumeCase struct {
	name string
	// clientIDs are the client IDs the call is tried with, each on a fresh
	// credential; nil means clientA.
	clientIDs []string
	// unknown: the call names a digest that was never saved.
	unknown bool
	// used: the credential was redeemed once before the call (a code or a
	// refresh token).
	used bool
	// status is the state of a device authorization before the call.
	status mcpoauth.DeviceStatus
	// at returns the now the call passes, given the device authorization's
	// expiry; nil means the kit's now.
	at func(k *kit, expires time.Time) time.Time
	// issued returns the tokens the call saves. existing is a token stored
	// before the call; revokedGrant is a grant revoked before the call.
	issued  func(k *kit, grantID string, existing *mcpoauth.Token, revokedGrant string) []*mcpoauth.Token
	wantErr error
	// refused: the call fails with an error that is no sentinel (a
	// record no Model stores among the issued tokens).
	refused bool
}

// The issued functions of the rows: a grant's pair of tokens, a pair whose
// refresh token takes a stored token's digest, a pair that repeats one
// digest, a pair whose refresh token is of a revoked grant, and a pair
// whose refresh token has a zero digest.

func issuedPair(k *kit, g string, _ *mcpoauth.Token, _ string) []*mcpoauth.Token {
	return k.tokens(clientA, g)
}

func issuedOverExisting(k *kit, g string, existing *mcpoauth.Token, _ string) []*mcpoauth.Token {
	out := k.tokens(clientA, g)
	out[1].Digest = existing.Digest
	return out
}

func issuedRepeated(k *kit, g string, _ *mcpoauth.Token, _ string) []*mcpoauth.Token {
	out := k.tokens(clientA, g)
	out[1].Digest = out[0].Digest
	return out
}

func issuedInRevokedGrant(k *kit, g string, _ *mcpoauth.Token, revoked string) []*mcpoauth.Token {
	return []*mcpoauth.Token{k.token(mcpoauth.AccessToken, clientA, g), k.token(mcpoauth.RefreshToken, clientA, revoked)}
}

func issuedZeroDigest(k *kit, g string, _ *mcpoauth.Token, _ string) []*mcpoauth.Token {
	out := k.tokens(clientA, g)
	out[1].Digest = mcpoauth.Digest{}
	return out
}

// consumeCases are the rows shared by ConsumeAuthorizationCode and
// RotateRefreshToken: the same contract, on a code or a refresh token.
func consumeCases() []consumeCase {
	return []consumeCase{
		{name: "Succeeds", issued: issuedPair},
		{name: "SucceedsWithoutTokens"},
		{name: "UnknownIsNotFound", unknown: true, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		{name: "OtherClientIsNotFound", clientIDs: otherClients, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		{name: "UsedIsAlreadyUsed", used: true, issued: issuedPair, wantErr: mcpoauth.ErrAlreadyUsed},
		// The client is checked before use: a stranger presenting a used
		// credential must not learn that it was used (nor get its grant
		// revoked by the server).
		{name: "OtherClientsUsedIsNotFound", clientIDs: otherClients, used: true, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		{name: "IssuedDigestExistsIsConflict", issued: issuedOverExisting, wantErr: mcpoauth.ErrConflict},
		{name: "IssuedDigestRepeatedIsConflict", issued: issuedRepeated, wantErr: mcpoauth.ErrConflict},
		{name: "IssuedTokenOfRevokedGrantIsNotFound", issued: issuedInRevokedGrant, wantErr: mcpoauth.ErrNotFound},
		// An issued token with a zero digest is refused as SaveTokens
		// refuses it, and the credential is not redeemed.
		{name: "IssuedZeroDigestIsRefused", issued: issuedZeroDigest, refused: true},
	}
}

// redemption is a credential set up for one row of a consume table: what
// the call redeems, and how to read the credential back.
type redemption struct {
	grantID string // the grant the call issues tokens of
	// existing is a token stored before the call, which the call must leave
	// as it is.
	existing mcpoauth.Token
	key      mcpoauth.Digest
	redeem   func(key mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error
	// requireAsBefore asserts the credential is as it was before the call;
	// requireRedeemed, as a successful call leaves it.
	requireAsBefore, requireRedeemed func(t *testing.T)
	replayErr                        error // what redeeming it again answers
}

// prepareFunc sets up the credential of a row of a consume table.
type prepareFunc func(t *testing.T, k *kit, tc consumeCase) redemption

// consumeClauses turns a consume table into clauses: each runs its row once
// per client ID, on a credential prepare sets up afresh.
func consumeClauses(cases []consumeCase, prepare prepareFunc) []clause {
	out := make([]clause, 0, len(cases)+1)
	for _, tc := range cases {
		out = append(out, clause{tc.name, func(t *testing.T, k *kit) {
			clientIDs := tc.clientIDs
			if clientIDs == nil {
				clientIDs = []string{clientA}
			}
			for _, clientID := range clientIDs {
				k.runConsume(t, tc, clientID, prepare)
			}
		}})
	}
	return out
}

// runConsume runs one row of a consume table as clientID.
func (k *kit) runConsume(t *testing.T, tc consumeCase, clientID string, prepare prepareFunc) {
	t.Helper()
	r := prepare(t, k, tc)
	revoked := newGrantID()
	noError(t, k.m.RevokeGrant(k.ctx, revoked))
	var issued []*mcpoauth.Token
	if tc.issued != nil {
		issued = tc.issued(k, r.grantID, &r.existing, revoked)
	}
	issuedWant := copyTokens(issued)
	key := r.key
	if tc.unknown {
		key = newDigest()
	}

	err := r.redeem(key, clientID, issued...)
	k.requireToken(t, r.existing)
	if tc.wantErr != nil || tc.refused {
		if tc.refused {
			requireRefused(t, err, "client_id %q", clientID)
		} else {
			errorIs(t, err, tc.wantErr, "client_id %q", clientID)
		}
		// All or nothing: the credential is as it was, no token was saved.
		r.requireAsBefore(t)
		for _, tok := range issued {
			if tok.Digest != r.existing.Digest {
				k.requireNoToken(t, tok.Digest)
			}
		}
		return
	}
	noError(t, err)
	r.requireRedeemed(t)
	k.requireTokens(t, issuedWant)

	// A replay fails and saves nothing.
	replay := k.tokens(clientA, r.grantID)
	errorIs(t, r.redeem(r.key, clientA, replay...), r.replayErr)
	k.requireNoToken(t, digests(replay)...)
	r.requireRedeemed(t)
}

// requireOneRedeems races Concurrency calls of redeem on one credential of
// grant g, each issuing tokens of its own, and asserts that exactly one
// succeeds and saves its tokens, and that the others fail with loser and
// save none.
func (k *kit) requireOneRedeems(t *testing.T, g string, loser error, redeem func(issued ...*mcpoauth.Token) error) {
	t.Helper()
	issued := make([][]*mcpoauth.Token, Concurrency)
	want := make([][]mcpoauth.Token, Concurrency)
	for i := range issued {
		issued[i] = k.tokens(clientA, g)
		want[i] = copyTokens(issued[i])
	}
	errs := together.Run(Concurrency, func(i int) error { return redeem(issued[i]...) })
	winner := requireOneWinner(t, errs, loser)
	for i := range issued {
		if i == winner {
			k.requireTokens(t, want[i])
		} else {
			k.requireNoToken(t, digests(issued[i])...)
		}
	}
}
