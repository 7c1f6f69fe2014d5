package postgres

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

// A revoked grant is remembered until its grant record or vault entries
// would have expired, past RevokedGrantRetention, so that a late save
// cannot bring back a record that would still be live.
func TestRevokedGrantOutlivesItsRecords(t *testing.T) {
	end := t0.Add(90 * 24 * time.Hour)
	tests := []struct {
		name string
		save func(m *Model, grantID string) error
	}{
		{"grant record", func(m *Model, grantID string) error {
			return m.SaveGrant(t.Context(), testGrant(grantID, end))
		}},
		{"vault entry", func(m *Model, grantID string) error {
			return m.SaveUpstreamToken(t.Context(), testUpstreamToken("v-"+grantID, grantID, end))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			m := newTestModel(t, Options{SweepInterval: NoSweep, Now: testclock.New(t0).Now})
			require.NoError(t, tt.save(m, "g"))
			require.NoError(t, m.RevokeGrant(ctx, "g"))

			_, err := m.Sweep(ctx, end.Add(-time.Second))
			require.NoError(t, err)
			require.ErrorIs(t, tt.save(m, "g"), mcpoauth.ErrNotFound)
			require.Equal(t, 1, count(t, m, "mcpoauth_revoked_grants"))
			_, err = m.Sweep(ctx, end.Add(time.Second))
			require.NoError(t, err)
			require.Zero(t, count(t, m, "mcpoauth_revoked_grants"))
		})
	}
}

// Identity claims are stored as jsonb and come back as json.Unmarshal
// makes them; an identity-less grant stores NULL, not a JSON null.
func TestGrantIdentityColumn(t *testing.T) {
	ctx := t.Context()
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	with := testGrant("g-with", t0)
	with.Identity = &mcpoauth.Identity{Issuer: "https://idp.example", Subject: "s", Claims: map[string]any{"n": float64(3), "l": []any{"x"}}}
	require.NoError(t, m.SaveGrant(ctx, with))
	require.NoError(t, m.SaveGrant(ctx, testGrant("g-without", t0)))

	var nulls int
	require.NoError(t, m.pool.QueryRow(ctx, `SELECT count(*) FROM mcpoauth_grants WHERE identity IS NULL`).Scan(&nulls))
	require.Equal(t, 1, nulls)
	got, err := m.GetGrant(ctx, "g-with")
	require.NoError(t, err)
	require.Equal(t, with.Identity, got.Identity)
	got, err = m.GetGrant(ctx, "g-without")
	require.NoError(t, err)
	require.Nil(t, got.Identity)
}
