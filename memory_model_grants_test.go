package mcpoauth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A revoked grant is remembered until its grant record or vault entries
// would have expired, past the 30 days, so that a late save cannot bring
// back a record that would still be live.
func TestMemoryModelRevokedGrantOutlivesItsRecords(t *testing.T) {
	end := memT0.Add(90 * 24 * time.Hour)
	tests := []struct {
		name string
		save func(m *MemoryModel) error
	}{
		{"grant record", func(m *MemoryModel) error {
			return m.SaveGrant(t.Context(), &Grant{ID: "g", ClientID: "client", UserID: "user", CreatedAt: memT0, ExpiresAt: end})
		}},
		{"vault entry", func(m *MemoryModel) error {
			return m.SaveUpstreamToken(t.Context(), &UpstreamToken{ID: "v", GrantID: "g", ClientID: "client", Sealed: []byte{1}, Version: 1, ExpiresAt: end})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMemoryModel(t)
			require.NoError(t, tt.save(m))
			require.NoError(t, m.RevokeGrant(t.Context(), "g"))

			m.Sweep(end.Add(-time.Second))
			require.ErrorIs(t, tt.save(m), ErrNotFound)
			require.Equal(t, 1, m.Stats().RevokedGrants)
			m.Sweep(end.Add(time.Second))
			require.Zero(t, m.Stats().RevokedGrants)
		})
	}
}

// TestMemoryModelGrantSavesRefuseNil: a nil grant record or vault entry is
// an error, as in the SQL Models, not a nil-pointer panic.
func TestMemoryModelGrantSavesRefuseNil(t *testing.T) {
	m := NewMemoryModel(MemoryModelOptions{SweepInterval: NoSweep})
	t.Cleanup(func() { _ = m.Close() })
	ctx := t.Context()
	require.ErrorIs(t, m.SaveGrant(ctx, nil), errMemNilRecord)
	require.ErrorIs(t, m.SaveUpstreamToken(ctx, nil), errMemNilRecord)
	require.ErrorIs(t, m.ReplaceUpstreamToken(ctx, nil, 1), errMemNilRecord)
}
