package modeltest

import (
	"context"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

var expiryClauses = []clause{
	{"ExpiredRecordsMayBeReturned", func(t *testing.T, k *kit) {
		// Expiry is the server's business: a Model accepts records that
		// have expired already, and may return them (unchanged) or have
		// deleted them (ErrNotFound).
		req := k.request(clientA)
		req.ExpiresAt = k.now.Add(-time.Hour)
		reqWant := k.saveRequest(t, req)
		code := k.code(clientA, newGrantID())
		code.ExpiresAt, code.GrantExpiresAt = k.now.Add(-time.Hour), k.now.Add(-time.Minute)
		codeWant := k.saveCode(t, code)
		tok := k.token(mcpoauth.RefreshToken, clientA, newGrantID())
		tok.IssuedAt, tok.ExpiresAt, tok.GrantExpiresAt = k.now.Add(-2*time.Hour), k.now.Add(-time.Hour), k.now.Add(-time.Minute)
		tokWant := k.saveTokens(t, tok)[0]

		if got, err := k.m.GetAuthorizationRequest(k.ctx, req.ID); err == nil {
			requireReadBack(t, reqWant, got)
		} else {
			errorIs(t, err, mcpoauth.ErrNotFound)
		}
		if got, err := k.m.GetAuthorizationCode(k.ctx, code.Digest); err == nil {
			requireReadBack(t, codeWant, got)
		} else {
			errorIs(t, err, mcpoauth.ErrNotFound)
		}
		if got, err := k.m.GetToken(k.ctx, tok.Digest); err == nil {
			requireReadBack(t, tokWant, got)
		} else {
			errorIs(t, err, mcpoauth.ErrNotFound)
		}
	}},
	{"ExpiredCredentialsAreConsumedOrNotFound", func(t *testing.T, k *kit) {
		req := k.request(clientA)
		req.ExpiresAt = k.now.Add(-time.Hour)
		k.saveRequest(t, req)
		g := newGrantID()
		code := k.code(clientA, g)
		code.ExpiresAt = k.now.Add(-time.Hour)
		k.saveCode(t, code)
		old := k.token(mcpoauth.RefreshToken, clientA, g)
		old.ExpiresAt = k.now.Add(-time.Hour)
		k.saveTokens(t, old)

		_, err := k.m.ConsumeAuthorizationRequest(k.ctx, req.ID)
		requireErrorIsOneOf(t, err, mcpoauth.ErrNotFound)
		requireErrorIsOneOf(t, k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA, k.tokens(clientA, g)...), mcpoauth.ErrNotFound)
		requireErrorIsOneOf(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}, k.tokens(clientA, g)...), mcpoauth.ErrNotFound)
	}},
}

var contextClauses = []clause{
	{"CanceledIsAnError", func(t *testing.T, k *kit) {
		ctx, cancel := context.WithCancel(k.ctx)
		cancel()
		k.requireDoneContextChangesNothing(t, ctx)
	}},
	{"DeadlineExceededIsAnError", func(t *testing.T, k *kit) {
		ctx, cancel := context.WithDeadline(k.ctx, time.Unix(0, 0))
		defer cancel()
		k.requireDoneContextChangesNothing(t, ctx)
	}},
}

// requireDoneContextChangesNothing calls every method with a done context
// and checks that each one fails with an error wrapping the context's
// error, and that nothing changed.
func (k *kit) requireDoneContextChangesNothing(t *testing.T, done context.Context) {
	t.Helper()
	g := newGrantID()
	req := k.saveRequest(t, k.request(clientA))
	code := k.saveCode(t, k.code(clientA, g))
	tokens := k.saveTokens(t, k.tokens(clientA, g)...)
	access, refresh := tokens[0], tokens[1]
	newReq, newCode, newTokens := k.request(clientA), k.code(clientA, g), k.tokens(clientA, g)
	r, registers := k.m.(mcpoauth.ClientRegistrar)
	var client mcpoauth.Client
	if registers {
		client = copyClient(publicClient(clientA))
		noError(t, r.RegisterClient(k.ctx, publicClient(clientA)))
	}

	calls := []call{
		{"GetClient", func() error { _, err := k.m.GetClient(done, clientA); return err }},
		{"SaveAuthorizationRequest", func() error { return k.m.SaveAuthorizationRequest(done, newReq) }},
		{"GetAuthorizationRequest", func() error { _, err := k.m.GetAuthorizationRequest(done, req.ID); return err }},
		{"ConsumeAuthorizationRequest", func() error { _, err := k.m.ConsumeAuthorizationRequest(done, req.ID); return err }},
		{"SaveAuthorizationCode", func() error { return k.m.SaveAuthorizationCode(done, newCode) }},
		{"GetAuthorizationCode", func() error { _, err := k.m.GetAuthorizationCode(done, code.Digest); return err }},
		{"ConsumeAuthorizationCode", func() error {
			return k.m.ConsumeAuthorizationCode(done, code.Digest, clientA, newTokens[0])
		}},
		{"SaveTokens", func() error { return k.m.SaveTokens(done, newTokens[1]) }},
		{"GetToken", func() error { _, err := k.m.GetToken(done, access.Digest); return err }},
		{"RotateRefreshToken", func() error {
			return k.m.RotateRefreshToken(done, refresh.Digest, clientA, k.now, time.Time{}, newTokens[0])
		}},
		{"RevokeToken", func() error { _, err := k.m.RevokeToken(done, access.Digest, clientA); return err }},
		{"RevokeGrant", func() error { return k.m.RevokeGrant(done, g) }},
	}
	if registers {
		calls = append(calls, []call{
			{"RegisterClient", func() error { return r.RegisterClient(done, publicClient(clientB)) }},
			{"UpdateClient", func() error { return r.UpdateClient(done, confidentialClient(k, clientA)) }},
			{"DeleteClient", func() error { return r.DeleteClient(done, clientA) }},
		}...)
	}
	for _, c := range calls {
		errorIs(t, c.call(), done.Err(), "%s with a done context", c.name)
	}

	// Nothing changed: nothing consumed, rotated, revoked or saved.
	k.requireRequest(t, req)
	k.requireNoRequest(t, newReq.ID)
	k.requireCode(t, code)
	k.requireNoCode(t, newCode.Digest)
	k.requireTokens(t, tokens)
	k.requireNoToken(t, digests(newTokens)...)
	if registers {
		k.requireClient(t, client)
		_, err := k.m.GetClient(k.ctx, clientB)
		errorIs(t, err, mcpoauth.ErrNotFound)
	}
	// The grant was not revoked: it can still issue tokens.
	k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, g))
}

// call is a call of a Model method, named for failure messages.
type call struct {
	name string
	call func() error
}

// runNoPanic makes the call and returns its error; a panic fails the test
// there, so that the clauses after it still run.
func (c call) runNoPanic(t *testing.T) error {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked: %v", c.name, p)
		}
	}()
	return c.call()
}

var digestClauses = []clause{
	{"AllBytesCount", func(t *testing.T, k *kit) {
		// A record is found under its whole digest only: a Model that
		// keys by a prefix, or by a text form that loses bytes, fails.
		tok := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, newGrantID()))[0]
		code := k.saveCode(t, k.code(clientA, newGrantID()))
		req := k.saveRequest(t, k.request(clientA))
		for _, i := range []int{0, 1, 15, 16, 30, 31} {
			flip := func(d mcpoauth.Digest) mcpoauth.Digest { d[i] ^= 0x01; return d }
			k.requireNoToken(t, flip(tok.Digest))
			k.requireNoCode(t, flip(code.Digest))
			k.requireNoRequest(t, flip(req.ID))
		}
		k.requireToken(t, tok)
		k.requireCode(t, code)
		k.requireRequest(t, req)
	}},
	{"AnyBytesAreAKey", func(t *testing.T, k *kit) {
		// Digests are bytes, not text: NUL, 0xff and invalid UTF-8 are
		// ordinary values, and digests that differ only there are
		// different keys.
		var ones, lastOne, firstOne, nulMiddle mcpoauth.Digest
		for i := range ones {
			ones[i] = 0xff
		}
		lastOne[31] = 1
		firstOne[0] = 1
		nulMiddle = newDigest()
		nulMiddle[16] = 0
		for _, d := range []mcpoauth.Digest{ones, lastOne, firstOne, nulMiddle} {
			tok := k.token(mcpoauth.AccessToken, clientA, newGrantID())
			tok.Digest = d
			code := k.code(clientA, newGrantID())
			code.Digest = d
			req := k.request(clientA)
			req.ID = d
			req.BrowserDigest = d
			k.requireToken(t, k.saveTokens(t, tok)[0])
			k.requireCode(t, k.saveCode(t, code))
			k.requireRequest(t, k.saveRequest(t, req))
		}
	}},
}

var recordClauses = []clause{
	{"ReturnedRecordsAreNotChangedLater", func(t *testing.T, k *kit) {
		// The server reads a record, then consumes it, while other requests
		// may hold the same record: a Model replaces a stored record and
		// never writes to one it has returned.
		g := newGrantID()
		code := k.saveCode(t, k.code(clientA, g))
		old := k.saveTokens(t, k.token(mcpoauth.RefreshToken, clientA, g))[0]
		gotCode, err := k.m.GetAuthorizationCode(k.ctx, code.Digest)
		noError(t, err)
		gotToken, err := k.m.GetToken(k.ctx, old.Digest)
		noError(t, err)

		noError(t, k.m.ConsumeAuthorizationCode(k.ctx, code.Digest, clientA))
		noError(t, k.m.RotateRefreshToken(k.ctx, old.Digest, clientA, k.now, time.Time{}))
		requireReadBack(t, code, gotCode)
		requireReadBack(t, old, gotToken)
	}},
	{"NilIsRefused", func(t *testing.T, k *kit) {
		// A nil record is a caller's mistake: every method that stores a
		// record refuses it with an error that is no sentinel, without
		// panicking, and a batch with a nil token stores none of it.
		fresh := k.token(mcpoauth.AccessToken, clientA, newGrantID())
		saves := []call{
			{"SaveAuthorizationRequest", func() error { return k.m.SaveAuthorizationRequest(k.ctx, nil) }},
			{"SaveAuthorizationCode", func() error { return k.m.SaveAuthorizationCode(k.ctx, nil) }},
			{"SaveTokens", func() error { return k.m.SaveTokens(k.ctx, fresh, nil) }},
		}
		if r, ok := k.m.(mcpoauth.ClientRegistrar); ok {
			saves = append(saves,
				call{"RegisterClient", func() error { return r.RegisterClient(k.ctx, nil) }},
				call{"UpdateClient", func() error { return r.UpdateClient(k.ctx, nil) }})
		}
		if ds, ok := k.m.(mcpoauth.DeviceStore); ok {
			saves = append(saves, call{"SaveDeviceAuthorization", func() error { return ds.SaveDeviceAuthorization(k.ctx, nil) }})
		}
		if s, ok := k.m.(mcpoauth.GrantStore); ok {
			saves = append(saves, call{"SaveGrant", func() error { return s.SaveGrant(k.ctx, nil) }})
		}
		if s, ok := k.m.(mcpoauth.UpstreamTokenStore); ok {
			saves = append(saves,
				call{"SaveUpstreamToken", func() error { return s.SaveUpstreamToken(k.ctx, nil) }},
				call{"ReplaceUpstreamToken", func() error { return s.ReplaceUpstreamToken(k.ctx, nil, 1) }})
		}
		for _, c := range saves {
			requireRefused(t, c.runNoPanic(t), "%s of a nil record", c.name)
		}
		k.requireNoToken(t, fresh.Digest)
	}},
}
