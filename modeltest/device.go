package modeltest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

// deviceGroups are the subtests of the optional DeviceStore capability
// (RFC 8628 device authorization grant). Each skips when the model does not
// implement it.
func deviceGroups() []group {
	return []group{
		{"SaveDeviceAuthorization", saveDeviceClauses},
		{"GetDeviceAuthorization", getDeviceClauses},
		{"ResolveDeviceAuthorization", resolveDeviceClauses},
		{"RecordDevicePoll", recordPollClauses},
		{"ConsumeDeviceAuthorization", consumeDeviceClauses()},
		{"DeleteDeviceAuthorization", deleteDeviceClauses},
		{"DeviceStore", deviceStoreClauses},
	}
}

// devices returns the model as a DeviceStore, or skips the test.
var devices = capability[mcpoauth.DeviceStore]

// device returns a pending device authorization of clientID, as the device
// authorization endpoint saves it, that expires in ten minutes.
func (k *kit) device(clientID string) *mcpoauth.DeviceAuthorization {
	return &mcpoauth.DeviceAuthorization{
		DeviceCodeDigest: newDigest(),
		UserCodeDigest:   newDigest(),
		ClientID:         clientID,
		Scopes:           []string{"mcp:tools", "read"},
		Resource:         "https://mcp.example.com/mcp",
		GrantID:          newGrantID(),
		Status:           mcpoauth.DevicePending,
		DevicePoll:       mcpoauth.DevicePoll{Interval: 5 * time.Second},
		ExpiresAt:        k.now.Add(10 * time.Minute),
	}
}

// saveDevice stores d, which must be accepted, and returns a copy taken
// before.
func (k *kit) saveDevice(t *testing.T, ds mcpoauth.DeviceStore, d *mcpoauth.DeviceAuthorization) mcpoauth.DeviceAuthorization {
	t.Helper()
	want := *d
	want.Scopes = slices.Clone(d.Scopes)
	noError(t, ds.SaveDeviceAuthorization(k.ctx, d))
	return want
}

// approve approves want as userID and returns it as it is now stored.
func (k *kit) approve(t *testing.T, ds mcpoauth.DeviceStore, want mcpoauth.DeviceAuthorization, userID string) mcpoauth.DeviceAuthorization {
	t.Helper()
	dec := mcpoauth.DeviceDecision{Status: mcpoauth.DeviceApproved, UserID: userID, GrantExpiresAt: k.now.Add(30 * 24 * time.Hour)}
	noError(t, ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest, dec))
	want.Status, want.UserID, want.GrantExpiresAt = dec.Status, dec.UserID, dec.GrantExpiresAt
	return want
}

// requireDevice asserts that the authorization is found, equal to want, by
// its device code and by its user code.
func (k *kit) requireDevice(t *testing.T, ds mcpoauth.DeviceStore, want mcpoauth.DeviceAuthorization) {
	t.Helper()
	requireFound(t, k.ctx, "GetDeviceAuthorization of a stored authorization", ds.GetDeviceAuthorization, want.DeviceCodeDigest, want)
	requireFound(t, k.ctx, "GetDeviceAuthorizationByUserCode of a stored authorization", ds.GetDeviceAuthorizationByUserCode, want.UserCodeDigest, want)
}

// requireNoDevice asserts that neither code finds an authorization.
func (k *kit) requireNoDevice(t *testing.T, ds mcpoauth.DeviceStore, d mcpoauth.DeviceAuthorization) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetDeviceAuthorization of an authorization", ds.GetDeviceAuthorization, d.DeviceCodeDigest)
	requireNotFound(t, k.ctx, "GetDeviceAuthorizationByUserCode of an authorization", ds.GetDeviceAuthorizationByUserCode, d.UserCodeDigest)
}

// requireCodeTakenIsConflict saves an authorization of clientA, then one of
// clientB that shares one of its codes (share copies it over), and asserts
// that the second save is ErrConflict: the first is unchanged, and the
// second is not found by its own other code either.
func (k *kit) requireCodeTakenIsConflict(t *testing.T, share func(dup, orig *mcpoauth.DeviceAuthorization)) {
	t.Helper()
	ds := devices(t, k)
	orig := k.device(clientA)
	want := k.saveDevice(t, ds, orig)
	dup := k.device(clientB)
	share(dup, orig)
	errorIs(t, ds.SaveDeviceAuthorization(k.ctx, dup), mcpoauth.ErrConflict)
	k.requireDevice(t, ds, want)
	if dup.DeviceCodeDigest != orig.DeviceCodeDigest {
		requireNotFound(t, k.ctx, "GetDeviceAuthorization of the refused authorization", ds.GetDeviceAuthorization, dup.DeviceCodeDigest)
	}
	if dup.UserCodeDigest != orig.UserCodeDigest {
		requireNotFound(t, k.ctx, "GetDeviceAuthorizationByUserCode of the refused authorization", ds.GetDeviceAuthorizationByUserCode, dup.UserCodeDigest)
	}
}

// currentPoll returns the poll bookkeeping as the model returns it: the
// server passes that back as seen.
func (k *kit) currentPoll(t *testing.T, ds mcpoauth.DeviceStore, deviceCode mcpoauth.Digest) mcpoauth.DevicePoll {
	t.Helper()
	got, err := ds.GetDeviceAuthorization(k.ctx, deviceCode)
	noError(t, err)
	return got.DevicePoll
}

var saveDeviceClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		full := k.device(clientA)
		minimal := k.device(clientB)
		minimal.Scopes, minimal.Resource = nil, ""
		for _, d := range []*mcpoauth.DeviceAuthorization{full, minimal} {
			k.requireDevice(t, ds, k.saveDevice(t, ds, d))
		}
	}},
	{"DeviceCodeTakenIsConflict", func(t *testing.T, k *kit) {
		k.requireCodeTakenIsConflict(t, func(dup, orig *mcpoauth.DeviceAuthorization) {
			dup.DeviceCodeDigest = orig.DeviceCodeDigest
		})
	}},
	{"UserCodeTakenIsConflict", func(t *testing.T, k *kit) {
		// A user code names one authorization: whoever types it approves
		// that one and no other.
		k.requireCodeTakenIsConflict(t, func(dup, orig *mcpoauth.DeviceAuthorization) {
			dup.UserCodeDigest = orig.UserCodeDigest
		})
	}},
	{"ZeroDigestIsRefused", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		// A zero digest is the digest of no code, and the server never
		// makes one: an authorization with a zero device code or user
		// code digest is refused with an error that is no sentinel, and
		// neither of its codes finds it.
		for _, tc := range []struct {
			which string
			zero  func(d *mcpoauth.DeviceAuthorization)
		}{
			{"device code", func(d *mcpoauth.DeviceAuthorization) { d.DeviceCodeDigest = mcpoauth.Digest{} }},
			{"user code", func(d *mcpoauth.DeviceAuthorization) { d.UserCodeDigest = mcpoauth.Digest{} }},
		} {
			d := k.device(clientA)
			tc.zero(d)
			requireRefused(t, ds.SaveDeviceAuthorization(k.ctx, d), "SaveDeviceAuthorization of an authorization with a zero %s digest", tc.which)
			k.requireNoDevice(t, ds, *d)
		}
	}},
}

var getDeviceClauses = []clause{
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		d := k.saveDevice(t, ds, k.device(clientA))
		// The two digests are two keys: neither finds the record by the
		// other.
		requireNotFound(t, k.ctx, "GetDeviceAuthorization of an authorization", ds.GetDeviceAuthorization, newDigest(), d.UserCodeDigest)
		requireNotFound(t, k.ctx, "GetDeviceAuthorizationByUserCode of an authorization", ds.GetDeviceAuthorizationByUserCode, newDigest(), d.DeviceCodeDigest)
	}},
	{"AllBytesCount", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		d := k.saveDevice(t, ds, k.device(clientA))
		for _, i := range []int{0, 15, 31} {
			flip := func(x mcpoauth.Digest) mcpoauth.Digest { x[i] ^= 0x80; return x }
			_, err := ds.GetDeviceAuthorization(k.ctx, flip(d.DeviceCodeDigest))
			errorIs(t, err, mcpoauth.ErrNotFound)
			_, err = ds.GetDeviceAuthorizationByUserCode(k.ctx, flip(d.UserCodeDigest))
			errorIs(t, err, mcpoauth.ErrNotFound)
		}
	}},
	{"ExpiredMayBeReturned", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		d := k.device(clientA)
		d.ExpiresAt = k.now.Add(-time.Hour)
		want := k.saveDevice(t, ds, d)
		if got, err := ds.GetDeviceAuthorization(k.ctx, d.DeviceCodeDigest); err == nil {
			requireReadBack(t, want, got)
		} else {
			errorIs(t, err, mcpoauth.ErrNotFound)
		}
	}},
}

var resolveDeviceClauses = []clause{
	{"Approves", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.approve(t, ds, k.saveDevice(t, ds, k.device(clientA)), "user-1")
		k.requireDevice(t, ds, want)
	}},
	{"Denies", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.saveDevice(t, ds, k.device(clientA))
		noError(t, ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest,
			mcpoauth.DeviceDecision{Status: mcpoauth.DeviceDenied, UserID: "user-1"}))
		want.Status, want.UserID = mcpoauth.DeviceDenied, "user-1"
		k.requireDevice(t, ds, want)
	}},
	{"DecidedIsNotFound", func(t *testing.T, k *kit) {
		// A decision is final: neither a second approval (by another user)
		// nor a denial changes it.
		ds := devices(t, k)
		want := k.approve(t, ds, k.saveDevice(t, ds, k.device(clientA)), "user-1")
		for _, dec := range []mcpoauth.DeviceDecision{
			{Status: mcpoauth.DeviceDenied, UserID: "user-2"},
			{Status: mcpoauth.DeviceApproved, UserID: "user-2", GrantExpiresAt: k.now.Add(time.Hour)},
		} {
			errorIs(t, ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest, dec), mcpoauth.ErrNotFound)
		}
		k.requireDevice(t, ds, want)
	}},
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.saveDevice(t, ds, k.device(clientA))
		dec := mcpoauth.DeviceDecision{Status: mcpoauth.DeviceApproved, UserID: "user-1", GrantExpiresAt: k.now.Add(time.Hour)}
		// Resolution is by user code: the device code is not one.
		for _, digest := range []mcpoauth.Digest{newDigest(), want.DeviceCodeDigest} {
			errorIs(t, ds.ResolveDeviceAuthorization(k.ctx, digest, dec), mcpoauth.ErrNotFound)
		}
		k.requireDevice(t, ds, want)
	}},
	{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		for range ConcurrencyRounds {
			want := k.saveDevice(t, ds, k.device(clientA))
			decisions := make([]mcpoauth.DeviceDecision, Concurrency)
			for i := range decisions {
				decisions[i] = mcpoauth.DeviceDecision{Status: mcpoauth.DeviceDenied, UserID: newGrantID()}
				if i%2 == 0 {
					decisions[i].Status, decisions[i].GrantExpiresAt = mcpoauth.DeviceApproved, k.now.Add(time.Duration(i+1)*time.Hour)
				}
			}
			errs := together.Run(Concurrency, func(i int) error {
				return ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest, decisions[i])
			})
			winner := requireOneWinner(t, errs, mcpoauth.ErrNotFound)
			dec := decisions[winner]
			want.Status, want.UserID, want.GrantExpiresAt = dec.Status, dec.UserID, dec.GrantExpiresAt
			k.requireDevice(t, ds, want)
		}
	}},
}

var recordPollClauses = []clause{
	{"Succeeds", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.saveDevice(t, ds, k.device(clientA))
		for i, next := range []mcpoauth.DevicePoll{
			{LastPolledAt: k.now, Interval: 5 * time.Second},
			{LastPolledAt: k.now.Add(6 * time.Second), Interval: 10 * time.Second}, // slow_down
		} {
			seen := k.currentPoll(t, ds, want.DeviceCodeDigest)
			noError(t, ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientA, seen, next), "poll %d", i)
			want.DevicePoll = next
			k.requireDevice(t, ds, want)
		}
	}},
	{"StaleSeenIsNotFound", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.saveDevice(t, ds, k.device(clientA))
		first := mcpoauth.DevicePoll{LastPolledAt: k.now, Interval: 5 * time.Second}
		noError(t, ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientA, k.currentPoll(t, ds, want.DeviceCodeDigest), first))
		want.DevicePoll = first
		seen := k.currentPoll(t, ds, want.DeviceCodeDigest)
		next := mcpoauth.DevicePoll{LastPolledAt: k.now.Add(time.Minute), Interval: 5 * time.Second}
		for _, stale := range []mcpoauth.DevicePoll{
			{Interval: 5 * time.Second}, // the bookkeeping before the first poll
			{LastPolledAt: seen.LastPolledAt.Add(-time.Second), Interval: seen.Interval},
			{LastPolledAt: seen.LastPolledAt, Interval: seen.Interval + time.Second},
			{LastPolledAt: seen.LastPolledAt, Interval: seen.Interval - time.Nanosecond},
		} {
			errorIs(t, ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientA, stale, next), mcpoauth.ErrNotFound, "seen %+v", stale)
		}
		k.requireDevice(t, ds, want)
	}},
	{"OtherClientIsNotFound", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.saveDevice(t, ds, k.device(clientA))
		seen := k.currentPoll(t, ds, want.DeviceCodeDigest)
		next := mcpoauth.DevicePoll{LastPolledAt: k.now, Interval: time.Hour}
		for _, clientID := range otherClients {
			errorIs(t, ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientID, seen, next), mcpoauth.ErrNotFound, "client_id %q", clientID)
		}
		errorIs(t, ds.RecordDevicePoll(k.ctx, newDigest(), clientA, seen, next), mcpoauth.ErrNotFound)
		k.requireDevice(t, ds, want)
	}},
	{"DecidedIsNotFound", func(t *testing.T, k *kit) {
		// A poll that read "pending" before the user decided must not
		// write anything back over the decision.
		ds := devices(t, k)
		for _, status := range []mcpoauth.DeviceStatus{mcpoauth.DeviceApproved, mcpoauth.DeviceDenied} {
			want := k.saveDevice(t, ds, k.device(clientA))
			seen := k.currentPoll(t, ds, want.DeviceCodeDigest)
			dec := mcpoauth.DeviceDecision{Status: status, UserID: "user-1"}
			if status == mcpoauth.DeviceApproved {
				dec.GrantExpiresAt = k.now.Add(time.Hour)
			}
			noError(t, ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest, dec))
			want.Status, want.UserID, want.GrantExpiresAt = dec.Status, dec.UserID, dec.GrantExpiresAt
			next := mcpoauth.DevicePoll{LastPolledAt: k.now, Interval: seen.Interval}
			errorIs(t, ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientA, seen, next), mcpoauth.ErrNotFound)
			k.requireDevice(t, ds, want)
		}
	}},
	{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		for range ConcurrencyRounds {
			want := k.saveDevice(t, ds, k.device(clientA))
			seen := k.currentPoll(t, ds, want.DeviceCodeDigest)
			nexts := make([]mcpoauth.DevicePoll, Concurrency)
			for i := range nexts {
				nexts[i] = mcpoauth.DevicePoll{LastPolledAt: k.now.Add(time.Duration(i) * time.Second), Interval: time.Duration(i+1) * time.Second}
			}
			errs := together.Run(Concurrency, func(i int) error {
				return ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientA, seen, nexts[i])
			})
			winner := requireOneWinner(t, errs, mcpoauth.ErrNotFound)
			want.DevicePoll = nexts[winner]
			k.requireDevice(t, ds, want)
		}
	}},
	{"RacesResolve", func(t *testing.T, k *kit) {
		// The lost update: a poll racing the user's decision never brings
		// back "pending". The decision always lands; the poll may or may
		// not.
		ds := devices(t, k)
		for round := range RaceRounds {
			want := k.saveDevice(t, ds, k.device(clientA))
			seen := k.currentPoll(t, ds, want.DeviceCodeDigest)
			dec := mcpoauth.DeviceDecision{Status: mcpoauth.DeviceDenied, UserID: "user-1"}
			if round%2 == 0 {
				dec = mcpoauth.DeviceDecision{Status: mcpoauth.DeviceApproved, UserID: "user-1", GrantExpiresAt: k.now.Add(time.Hour)}
			}
			next := mcpoauth.DevicePoll{LastPolledAt: k.now.Add(time.Second), Interval: 5 * time.Second}
			errs := together.Run(2, func(i int) error {
				if i == 0 {
					return ds.RecordDevicePoll(k.ctx, want.DeviceCodeDigest, clientA, seen, next)
				}
				return ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest, dec)
			})
			noError(t, errs[1], "the decision was lost")
			requireErrorIsOneOf(t, errs[0], mcpoauth.ErrNotFound)
			if errs[0] == nil {
				want.DevicePoll = next
			}
			want.Status, want.UserID, want.GrantExpiresAt = dec.Status, dec.UserID, dec.GrantExpiresAt
			k.requireDevice(t, ds, want)
		}
	}},
}

// consumeDeviceClauses is the ConsumeDeviceAuthorization table, plus its
// concurrency clause.
func consumeDeviceClauses() []clause {
	approved := mcpoauth.DeviceApproved
	cases := []consumeCase{
		{name: "Succeeds", status: approved, issued: issuedPair},
		{name: "SucceedsJustBeforeExpiry", status: approved, issued: issuedPair,
			at: func(_ *kit, exp time.Time) time.Time { return exp.Add(-time.Millisecond) }},
		{name: "UnknownIsNotFound", unknown: true, status: approved, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		{name: "OtherClientIsNotFound", clientIDs: otherClients, status: approved, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		{name: "PendingIsNotFound", status: mcpoauth.DevicePending, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		{name: "DeniedIsNotFound", status: mcpoauth.DeviceDenied, issued: issuedPair, wantErr: mcpoauth.ErrNotFound},
		// The one method that compares times: an authorization read just
		// before its expiry cannot be redeemed after it.
		{name: "ExpiredIsNotFound", status: approved, issued: issuedPair, wantErr: mcpoauth.ErrNotFound,
			at: func(_ *kit, exp time.Time) time.Time { return exp.Add(time.Second) }},
		{name: "AtExpiryIsNotFound", status: approved, issued: issuedPair, wantErr: mcpoauth.ErrNotFound,
			at: func(_ *kit, exp time.Time) time.Time { return exp }},
		{name: "IssuedDigestExistsIsConflict", status: approved, issued: issuedOverExisting, wantErr: mcpoauth.ErrConflict},
		{name: "IssuedDigestRepeatedIsConflict", status: approved, issued: issuedRepeated, wantErr: mcpoauth.ErrConflict},
		{name: "IssuedTokenOfRevokedGrantIsNotFound", status: approved, issued: issuedInRevokedGrant, wantErr: mcpoauth.ErrNotFound},
		{name: "IssuedZeroDigestIsRefused", status: approved, issued: issuedZeroDigest, refused: true},
	}
	return append(consumeClauses(cases, prepareDevice), clause{"ConcurrentCallsOneWins", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		for range ConcurrencyRounds {
			d := k.approve(t, ds, k.saveDevice(t, ds, k.device(clientA)), "user-1")
			k.requireOneRedeems(t, d.GrantID, mcpoauth.ErrNotFound, func(issued ...*mcpoauth.Token) error {
				return ds.ConsumeDeviceAuthorization(k.ctx, d.DeviceCodeDigest, clientA, k.now, issued...)
			})
			k.requireNoDevice(t, ds, d)
		}
	}})
}

// prepareDevice saves a device authorization in the row's status, and a
// token of another grant, for a row of the ConsumeDeviceAuthorization
// table. A consumed authorization is gone: a replay is not found.
func prepareDevice(t *testing.T, k *kit, tc consumeCase) redemption {
	t.Helper()
	ds := devices(t, k)
	want := k.saveDevice(t, ds, k.device(clientA))
	existing := k.saveTokens(t, k.token(mcpoauth.AccessToken, clientA, newGrantID()))[0]
	switch tc.status {
	case mcpoauth.DeviceApproved:
		want = k.approve(t, ds, want, "user-1")
	case mcpoauth.DeviceDenied:
		noError(t, ds.ResolveDeviceAuthorization(k.ctx, want.UserCodeDigest, mcpoauth.DeviceDecision{Status: mcpoauth.DeviceDenied, UserID: "user-1"}))
		want.Status, want.UserID = mcpoauth.DeviceDenied, "user-1"
	}
	now := k.now
	if tc.at != nil {
		now = tc.at(k, want.ExpiresAt)
	}
	return redemption{
		grantID:  want.GrantID,
		existing: existing,
		key:      want.DeviceCodeDigest,
		redeem: func(key mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
			return ds.ConsumeDeviceAuthorization(k.ctx, key, clientID, now, issued...)
		},
		requireAsBefore: func(t *testing.T) { t.Helper(); k.requireDevice(t, ds, want) },
		requireRedeemed: func(t *testing.T) { t.Helper(); k.requireNoDevice(t, ds, want) },
		replayErr:       mcpoauth.ErrNotFound,
	}
}

var deleteDeviceClauses = []clause{
	{"DeletesWhateverTheStatus", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		pending := k.saveDevice(t, ds, k.device(clientA))
		approved := k.approve(t, ds, k.saveDevice(t, ds, k.device(clientA)), "user-1")
		denied := k.saveDevice(t, ds, k.device(clientA))
		noError(t, ds.ResolveDeviceAuthorization(k.ctx, denied.UserCodeDigest, mcpoauth.DeviceDecision{Status: mcpoauth.DeviceDenied, UserID: "u"}))
		kept := k.saveDevice(t, ds, k.device(clientA))
		for _, d := range []mcpoauth.DeviceAuthorization{pending, approved, denied} {
			noError(t, ds.DeleteDeviceAuthorization(k.ctx, d.DeviceCodeDigest, clientA))
			k.requireNoDevice(t, ds, d)
			errorIs(t, ds.DeleteDeviceAuthorization(k.ctx, d.DeviceCodeDigest, clientA), mcpoauth.ErrNotFound)
		}
		k.requireDevice(t, ds, kept)
	}},
	{"FreesTheCodes", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		old := k.saveDevice(t, ds, k.device(clientA))
		noError(t, ds.DeleteDeviceAuthorization(k.ctx, old.DeviceCodeDigest, clientA))
		again := k.device(clientA)
		again.DeviceCodeDigest, again.UserCodeDigest = old.DeviceCodeDigest, old.UserCodeDigest
		k.requireDevice(t, ds, k.saveDevice(t, ds, again))
	}},
	{"OtherClientIsNotFound", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		want := k.saveDevice(t, ds, k.device(clientA))
		for _, clientID := range otherClients {
			errorIs(t, ds.DeleteDeviceAuthorization(k.ctx, want.DeviceCodeDigest, clientID), mcpoauth.ErrNotFound, "client_id %q", clientID)
		}
		// By device code only: the user code is not a device code.
		errorIs(t, ds.DeleteDeviceAuthorization(k.ctx, want.UserCodeDigest, clientA), mcpoauth.ErrNotFound)
		errorIs(t, ds.DeleteDeviceAuthorization(k.ctx, newDigest(), clientA), mcpoauth.ErrNotFound)
		k.requireDevice(t, ds, want)
	}},
}

var deviceStoreClauses = []clause{
	{"DoneContextIsAnError", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		approved := k.approve(t, ds, k.saveDevice(t, ds, k.device(clientA)), "user-1")
		pending := k.saveDevice(t, ds, k.device(clientA))
		fresh := k.device(clientA)
		issued := k.tokens(clientA, approved.GrantID)
		canceled, cancel := context.WithCancel(k.ctx)
		cancel()
		expired, cancel2 := context.WithDeadline(k.ctx, time.Unix(0, 0))
		defer cancel2()
		for _, done := range []context.Context{canceled, expired} {
			calls := map[string]func() error{
				"SaveDeviceAuthorization": func() error { return ds.SaveDeviceAuthorization(done, fresh) },
				"GetDeviceAuthorization": func() error {
					_, err := ds.GetDeviceAuthorization(done, pending.DeviceCodeDigest)
					return err
				},
				"GetDeviceAuthorizationByUserCode": func() error {
					_, err := ds.GetDeviceAuthorizationByUserCode(done, pending.UserCodeDigest)
					return err
				},
				"ResolveDeviceAuthorization": func() error {
					return ds.ResolveDeviceAuthorization(done, pending.UserCodeDigest, mcpoauth.DeviceDecision{Status: mcpoauth.DeviceDenied, UserID: "u"})
				},
				"RecordDevicePoll": func() error {
					return ds.RecordDevicePoll(done, pending.DeviceCodeDigest, clientA, pending.DevicePoll, mcpoauth.DevicePoll{LastPolledAt: k.now, Interval: time.Hour})
				},
				"ConsumeDeviceAuthorization": func() error {
					return ds.ConsumeDeviceAuthorization(done, approved.DeviceCodeDigest, clientA, k.now, issued...)
				},
				"DeleteDeviceAuthorization": func() error { return ds.DeleteDeviceAuthorization(done, pending.DeviceCodeDigest, clientA) },
			}
			for name, call := range calls {
				errorIs(t, call(), done.Err(), "%s with a done context", name)
			}
		}
		k.requireDevice(t, ds, approved)
		k.requireDevice(t, ds, pending)
		k.requireNoDevice(t, ds, *fresh)
		k.requireNoToken(t, digests(issued)...)
	}},
	{"RevokeGrantRacesConsume", func(t *testing.T, k *kit) {
		ds := devices(t, k)
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			dev := k.device(clientA)
			dev.GrantID = g
			d := k.approve(t, ds, k.saveDevice(t, ds, dev), "user-1")
			issued := k.tokens(clientA, g)
			return func() error {
				return ds.ConsumeDeviceAuthorization(k.ctx, d.DeviceCodeDigest, clientA, k.now, issued...)
			}, k.noTokens(issued)
		})
	}},
}
