package mcpoauth

import (
	"context"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/stretchr/testify/require"
)

func memDevice(clientID string, exp time.Time) *DeviceAuthorization {
	return &DeviceAuthorization{
		DeviceCodeDigest: newDigest(),
		UserCodeDigest:   newDigest(),
		ClientID:         clientID,
		Scopes:           []string{"read"},
		Resource:         "https://mcp.example/",
		GrantID:          "g-" + newDigest().String()[:8],
		Status:           DevicePending,
		DevicePoll:       DevicePoll{Interval: 5 * time.Second},
		ExpiresAt:        exp,
	}
}

// newModelWithDevice returns a fresh model (newTestMemoryModel) holding one
// pending device authorization of "client" that expires at exp.
func newModelWithDevice(t *testing.T, exp time.Time) (*MemoryModel, *DeviceAuthorization) {
	t.Helper()
	m := newTestMemoryModel(t)
	d := memDevice("client", exp)
	require.NoError(t, m.SaveDeviceAuthorization(t.Context(), d))
	return m, d
}

func approve(user string) DeviceDecision {
	return DeviceDecision{Status: DeviceApproved, UserID: user, GrantExpiresAt: memT0.Add(24 * time.Hour)}
}

// requireDeviceStatus reads the record by both keys and checks its status.
func requireDeviceStatus(t *testing.T, m *MemoryModel, d *DeviceAuthorization, want DeviceStatus) *DeviceAuthorization {
	t.Helper()
	got, err := m.GetDeviceAuthorization(t.Context(), d.DeviceCodeDigest)
	require.NoError(t, err)
	byUser, err := m.GetDeviceAuthorizationByUserCode(t.Context(), d.UserCodeDigest)
	require.NoError(t, err)
	require.Same(t, got, byUser)
	require.Equal(t, want, got.Status)
	return got
}

func requireDeviceAbsent(t *testing.T, m *MemoryModel, d *DeviceAuthorization) {
	t.Helper()
	_, err := m.GetDeviceAuthorization(t.Context(), d.DeviceCodeDigest)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = m.GetDeviceAuthorizationByUserCode(t.Context(), d.UserCodeDigest)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestMemoryModelSaveDeviceAuthorization(t *testing.T) {
	ctx := t.Context()
	exp := memT0.Add(15 * time.Minute)
	m, d := newModelWithDevice(t, exp)
	got := requireDeviceStatus(t, m, d, DevicePending)
	require.Same(t, d, got)

	sameUserCode := memDevice("other", exp)
	sameUserCode.UserCodeDigest = d.UserCodeDigest
	require.ErrorIs(t, m.SaveDeviceAuthorization(ctx, sameUserCode), ErrConflict, "a user code names one authorization")
	sameDeviceCode := memDevice("other", exp)
	sameDeviceCode.DeviceCodeDigest = d.DeviceCodeDigest
	require.ErrorIs(t, m.SaveDeviceAuthorization(ctx, sameDeviceCode), ErrConflict)
	require.Error(t, m.SaveDeviceAuthorization(ctx, nil))
	zero := memDevice("client", exp)
	zero.UserCodeDigest = Digest{}
	require.Error(t, m.SaveDeviceAuthorization(ctx, zero))
	require.Equal(t, 1, m.Stats().DeviceAuthorizations)

	_, err := m.GetDeviceAuthorization(ctx, newDigest())
	require.ErrorIs(t, err, ErrNotFound)
	_, err = m.GetDeviceAuthorizationByUserCode(ctx, newDigest())
	require.ErrorIs(t, err, ErrNotFound)
}

// TestMemoryModelResolveDeviceAuthorization: pending → decided once; the
// record the caller held is not written to.
func TestMemoryModelResolveDeviceAuthorization(t *testing.T) {
	ctx := t.Context()
	m, d := newModelWithDevice(t, memT0.Add(time.Hour))
	require.Error(t, m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, DeviceDecision{Status: DevicePending}), "a decision approves or denies")
	require.NoError(t, m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, approve("alice")))
	got := requireDeviceStatus(t, m, d, DeviceApproved)
	require.Equal(t, "alice", got.UserID)
	require.Equal(t, memT0.Add(24*time.Hour), got.GrantExpiresAt)
	require.Equal(t, DevicePending, d.Status, "stored records are replaced, never mutated")

	require.ErrorIs(t, m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, DeviceDecision{Status: DeviceDenied, UserID: "mallory"}), ErrNotFound, "a decision is final")
	require.ErrorIs(t, m.ResolveDeviceAuthorization(ctx, newDigest(), approve("alice")), ErrNotFound)
	require.Equal(t, "alice", requireDeviceStatus(t, m, d, DeviceApproved).UserID)
}

// TestMemoryModelRecordDevicePoll: the compare-and-set that fixes the
// TypeScript original's lost update (a poll wrote back the record it had
// read, undoing a decision made meanwhile): it applies only to a pending
// record of this client whose bookkeeping is what the caller read.
func TestMemoryModelRecordDevicePoll(t *testing.T) {
	ctx := t.Context()
	m, d := newModelWithDevice(t, memT0.Add(time.Hour))
	first := DevicePoll{LastPolledAt: memT0, Interval: 5 * time.Second}

	require.ErrorIs(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "other", d.DevicePoll, first), ErrNotFound, "another client's")
	require.ErrorIs(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "", d.DevicePoll, first), ErrNotFound)
	require.ErrorIs(t, m.RecordDevicePoll(ctx, newDigest(), "client", d.DevicePoll, first), ErrNotFound)
	require.NoError(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "client", d.DevicePoll, first))
	require.Equal(t, first, requireDeviceStatus(t, m, d, DevicePending).DevicePoll)
	require.True(t, d.LastPolledAt.IsZero(), "stored records are replaced, never mutated")

	// A concurrent poll that read the old bookkeeping loses.
	require.ErrorIs(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "client", d.DevicePoll, first), ErrNotFound)
	stale := DevicePoll{LastPolledAt: memT0, Interval: 10 * time.Second}
	require.ErrorIs(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "client", stale, first), ErrNotFound, "the interval is compared too")
	// Times compare by instant, not representation.
	second := DevicePoll{LastPolledAt: memT0.Add(5 * time.Second), Interval: 5 * time.Second}
	require.NoError(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "client", DevicePoll{LastPolledAt: memT0.In(time.FixedZone("x", 3600)), Interval: 5 * time.Second}, second))

	// A poll that read "pending" before the decision cannot undo it.
	require.NoError(t, m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, DeviceDecision{Status: DeviceDenied, UserID: "alice"}))
	require.ErrorIs(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "client", second, DevicePoll{LastPolledAt: memT0.Add(10 * time.Second), Interval: 5 * time.Second}), ErrNotFound)
	got := requireDeviceStatus(t, m, d, DeviceDenied)
	require.Equal(t, "alice", got.UserID)
	require.Equal(t, second, got.DevicePoll)
}

// TestMemoryModelConsumeDeviceAuthorization: approved → removed with its
// tokens saved, all or nothing, client-scoped, not after expiry, once.
func TestMemoryModelConsumeDeviceAuthorization(t *testing.T) {
	ctx := t.Context()
	exp := memT0.Add(15 * time.Minute)
	m, d := newModelWithDevice(t, exp)
	tok := memToken(AccessToken, "client", d.GrantID, memT0.Add(time.Hour))

	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", memT0, tok), ErrNotFound, "still pending")
	require.NoError(t, m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, approve("alice")))
	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "other", memT0, tok), ErrNotFound, "another client's")
	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", exp, tok), ErrNotFound, "expired (the TypeScript original's consume did not re-check expiry)")

	taken := memToken(AccessToken, "client", "other-grant", memT0.Add(time.Hour))
	require.NoError(t, m.SaveTokens(ctx, taken))
	clash := memToken(RefreshToken, "client", d.GrantID, memT0.Add(time.Hour))
	clash.Digest = taken.Digest
	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", memT0, tok, clash), ErrConflict)
	requireTokenAbsent(t, m, tok)
	requireDeviceStatus(t, m, d, DeviceApproved)

	require.NoError(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", memT0, tok))
	requireTokenPresent(t, m, tok)
	requireDeviceAbsent(t, m, d)
	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", memT0), ErrNotFound, "once")
	requireMemoryInvariants(t, m)

	// The user code is free again once its authorization is gone.
	again := memDevice("client", exp)
	again.UserCodeDigest = d.UserCodeDigest
	require.NoError(t, m.SaveDeviceAuthorization(ctx, again))

	// A revoked grant's tokens are refused, and nothing changes.
	revoked := memDevice("client", exp)
	require.NoError(t, m.SaveDeviceAuthorization(ctx, revoked))
	require.NoError(t, m.ResolveDeviceAuthorization(ctx, revoked.UserCodeDigest, approve("alice")))
	require.NoError(t, m.RevokeGrant(ctx, revoked.GrantID))
	late := memToken(AccessToken, "client", revoked.GrantID, memT0.Add(time.Hour))
	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, revoked.DeviceCodeDigest, "client", memT0, late), ErrNotFound)
	requireTokenAbsent(t, m, late)
	requireDeviceStatus(t, m, revoked, DeviceApproved)
}

func TestMemoryModelDeleteDeviceAuthorization(t *testing.T) {
	ctx := t.Context()
	m, d := newModelWithDevice(t, memT0.Add(time.Hour))
	require.ErrorIs(t, m.DeleteDeviceAuthorization(ctx, d.DeviceCodeDigest, "other"), ErrNotFound)
	requireDeviceStatus(t, m, d, DevicePending)
	require.NoError(t, m.DeleteDeviceAuthorization(ctx, d.DeviceCodeDigest, "client"))
	requireDeviceAbsent(t, m, d)
	require.ErrorIs(t, m.DeleteDeviceAuthorization(ctx, d.DeviceCodeDigest, "client"), ErrNotFound)
	require.Zero(t, m.Stats().DeviceAuthorizations)
}

func TestMemoryModelSweepsDeviceAuthorizations(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	old := memDevice("client", memT0)
	live := memDevice("client", memT0.Add(time.Hour))
	require.NoError(t, m.SaveDeviceAuthorization(ctx, old))
	require.NoError(t, m.SaveDeviceAuthorization(ctx, live))
	require.NoError(t, m.ResolveDeviceAuthorization(ctx, old.UserCodeDigest, approve("alice")))
	m.Sweep(memT0.Add(time.Minute))
	requireDeviceAbsent(t, m, old)
	requireDeviceStatus(t, m, live, DevicePending)
	require.Equal(t, 1, m.Stats().DeviceAuthorizations)
}

// TestMemoryModelConcurrentDeviceDecisions: of concurrent decisions one
// wins; of concurrent consumptions of the approved record one wins and only
// its tokens are saved.
func TestMemoryModelConcurrentDeviceDecisions(t *testing.T) {
	ctx := t.Context()
	m, d := newModelWithDevice(t, memT0.Add(time.Hour))
	errs := together.Run(memConcurrency, func(i int) error {
		status := DeviceApproved
		if i%2 == 1 {
			status = DeviceDenied
		}
		return m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, DeviceDecision{Status: status, UserID: "alice"})
	})
	winner := requireExactlyOneWinner(t, errs, ErrNotFound)
	if winner%2 == 1 {
		requireDeviceStatus(t, m, d, DeviceDenied)
		return
	}
	issued := make([]*Token, memConcurrency)
	for i := range issued {
		issued[i] = memToken(AccessToken, "client", d.GrantID, memT0.Add(time.Hour))
	}
	errs = together.Run(memConcurrency, func(i int) error {
		return m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", memT0, issued[i])
	})
	winner = requireExactlyOneWinner(t, errs, ErrNotFound)
	for i, tok := range issued {
		if i == winner {
			requireTokenPresent(t, m, tok)
		} else {
			requireTokenAbsent(t, m, tok)
		}
	}
	requireMemoryInvariants(t, m)
}

func TestMemoryModelDeviceHonoursDoneContext(t *testing.T) {
	m := newTestMemoryModel(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d := memDevice("client", memT0.Add(time.Hour))
	require.ErrorIs(t, m.SaveDeviceAuthorization(ctx, d), context.Canceled)
	_, err := m.GetDeviceAuthorization(ctx, d.DeviceCodeDigest)
	require.ErrorIs(t, err, context.Canceled)
	_, err = m.GetDeviceAuthorizationByUserCode(ctx, d.UserCodeDigest)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, m.ResolveDeviceAuthorization(ctx, d.UserCodeDigest, approve("a")), context.Canceled)
	require.ErrorIs(t, m.RecordDevicePoll(ctx, d.DeviceCodeDigest, "client", DevicePoll{}, DevicePoll{}), context.Canceled)
	require.ErrorIs(t, m.ConsumeDeviceAuthorization(ctx, d.DeviceCodeDigest, "client", memT0), context.Canceled)
	require.ErrorIs(t, m.DeleteDeviceAuthorization(ctx, d.DeviceCodeDigest, "client"), context.Canceled)
}
