package sqlite

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// t0 is the fixed "now" of the tests that control the clock.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func newDigest() mcpoauth.Digest {
	var d mcpoauth.Digest
	_, _ = rand.Read(d[:])
	return d
}

func testToken(kind mcpoauth.TokenKind, clientID, grantID string, exp time.Time) *mcpoauth.Token {
	return &mcpoauth.Token{
		Digest: newDigest(), Kind: kind, ClientID: clientID, UserID: "user", GrantID: grantID,
		Scopes: []string{"read"}, Resource: "https://mcp.example/", IssuedAt: exp.Add(-time.Hour),
		ExpiresAt: exp, GrantExpiresAt: exp.Add(24 * time.Hour),
	}
}

func testGrant(id, clientID, userID string, exp time.Time) *mcpoauth.Grant {
	return &mcpoauth.Grant{
		ID: id, ClientID: clientID, UserID: userID, Scopes: []string{"mcp:tools", "read"},
		Resource: "https://mcp.example/mcp", CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp,
		Identity: &mcpoauth.Identity{Issuer: "https://idp.example", Subject: "s-1", Email: "a@example.com",
			Claims: map[string]any{"groups": []any{"a", "b"}, "n": 1.5}},
	}
}

// count returns the number of rows of table.
func count(t *testing.T, m *Model, table string) int {
	t.Helper()
	var n int
	require.NoError(t, m.r.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// pragma reads a PRAGMA on one connection of db.
func pragma(t *testing.T, m *Model, write bool, name string) string {
	t.Helper()
	db := m.r
	if write {
		db = m.w
	}
	var v string
	require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v))
	return v
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        Options
		synchronous string
	}{
		{"default is FULL", Options{}, "2"},
		{"DurabilityProcess is NORMAL", Options{Durability: DurabilityProcess}, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestModel(t, tc.opts)
			for _, write := range []bool{true, false} {
				require.Equal(t, "wal", pragma(t, m, write, "journal_mode"))
				require.Equal(t, tc.synchronous, pragma(t, m, write, "synchronous"))
				require.Equal(t, "1", pragma(t, m, write, "foreign_keys"))
				require.Equal(t, "5000", pragma(t, m, write, "busy_timeout"))
			}
			require.Equal(t, "0", pragma(t, m, true, "query_only"))
			require.Equal(t, "1", pragma(t, m, false, "query_only"), "readers must not write")
			require.Equal(t, 1, m.w.Stats().MaxOpenConnections, "one writer connection")
			require.Equal(t, DefaultReaders, m.r.Stats().MaxOpenConnections)
		})
	}
}

func TestOpenRefusesWhatIsNotAFile(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", "x.db#frag"} {
		_, err := Open(t.Context(), path, Options{})
		require.Error(t, err, "%q", path)
	}
}

func TestMigrationsAreWellFormed(t *testing.T) {
	ms, err := migrations()
	require.NoError(t, err)
	require.Equal(t, SchemaVersion, ms[len(ms)-1].Version, "SchemaVersion must be the newest migration")
	for i, m := range ms {
		require.Equal(t, i+1, m.Version, "versions are consecutive from 1")
	}
}

// TestOpenConcurrently opens one fresh file from several Models at once, as
// processes starting together do: each migration is applied once and every
// Open succeeds.
func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	const n = 6
	models := make([]*Model, n)
	errs := together.Run(n, func(i int) (err error) {
		models[i], err = Open(t.Context(), path, Options{SweepInterval: NoSweep})
		return err
	})
	for i, err := range errs {
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, models[i].Close()) })
	}
	ms, err := migrations()
	require.NoError(t, err)
	require.Equal(t, len(ms), count(t, models[0], "mcpoauth_schema_migrations"))
	v, err := models[0].Version(t.Context())
	require.NoError(t, err)
	require.Equal(t, SchemaVersion, v)

	// A token saved through one is read through the others.
	tok := testToken(mcpoauth.AccessToken, "c", "g", t0)
	require.NoError(t, models[0].SaveTokens(t.Context(), tok))
	for _, m := range models {
		_, err := m.GetToken(t.Context(), tok.Digest)
		require.NoError(t, err)
	}
}

// TestConformanceSharedFile runs the kit with every model on one file,
// as several processes sharing it would: each subtest's records live
// beside the others'.
func TestConformanceSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.db")
	modeltest.Run(t, func(t *testing.T) mcpoauth.Model {
		m := openTestModel(t, path, Options{SweepInterval: NoSweep})
		// The kit's client IDs and grant IDs repeat across subtests: start
		// each from an empty file, as the kit requires.
		for _, table := range append([]string{"mcpoauth_clients", "mcpoauth_revoked_grants", "mcpoauth_assertion_ids"}, clientTables...) {
			_, err := m.w.ExecContext(t.Context(), "DELETE FROM "+table)
			require.NoError(t, err)
		}
		return m
	})
}

func TestReopenKeepsRecords(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oauth.db")
	m, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	client := &mcpoauth.Client{ID: "dyn-1", IssuedAt: t0, LastUsedAt: t0, SecretDigest: newDigest()}
	client.Metadata.RedirectURIs = []string{"http://127.0.0.1/cb"}
	require.NoError(t, m.RegisterClient(ctx, client))
	tok := testToken(mcpoauth.AccessToken, "dyn-1", "g-1", t0)
	require.NoError(t, m.SaveTokens(ctx, tok))
	g := testGrant("g-1", "dyn-1", "alice", t0)
	require.NoError(t, m.SaveGrant(ctx, g))
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")

	m = openTestModel(t, path, Options{})
	gotClient, err := m.GetClient(ctx, "dyn-1")
	require.NoError(t, err)
	require.Equal(t, client.SecretDigest, gotClient.SecretDigest)
	require.Equal(t, client.Metadata.RedirectURIs, gotClient.Metadata.RedirectURIs)
	gotTok, err := m.GetToken(ctx, tok.Digest)
	require.NoError(t, err)
	require.True(t, tok.ExpiresAt.Equal(gotTok.ExpiresAt))
	gotGrant, err := m.GetGrant(ctx, "g-1")
	require.NoError(t, err)
	require.Equal(t, g.Identity, gotGrant.Identity)
}

func TestGrantStore(t *testing.T) {
	ctx := t.Context()
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	g := testGrant("g-1", "c-1", "alice", t0)
	require.NoError(t, m.SaveGrant(ctx, g))
	require.ErrorIs(t, m.SaveGrant(ctx, testGrant("g-1", "c-2", "bob", t0)), mcpoauth.ErrConflict)
	plain := testGrant("g-2", "c-2", "alice", t0)
	plain.Identity, plain.Scopes = nil, nil
	require.NoError(t, m.SaveGrant(ctx, plain))
	require.NoError(t, m.SaveGrant(ctx, testGrant("g-3", "c-1", "bob", t0)))

	got, err := m.GetGrant(ctx, "g-1")
	require.NoError(t, err)
	require.Equal(t, g, got)
	got, err = m.GetGrant(ctx, "g-2")
	require.NoError(t, err)
	require.Nil(t, got.Identity)
	require.Nil(t, got.Scopes)

	list, err := m.ListUserGrants(ctx, "alice")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"g-1", "g-2"}, []string{list[0].ID, list[1].ID})
	list, err = m.ListUserGrants(ctx, "nobody")
	require.NoError(t, err)
	require.Empty(t, list)

	// RevokeGrant deletes the record and refuses it later.
	require.NoError(t, m.RevokeGrant(ctx, "g-1"))
	_, err = m.GetGrant(ctx, "g-1")
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	require.ErrorIs(t, m.SaveGrant(ctx, testGrant("g-1", "c-1", "alice", t0)), mcpoauth.ErrNotFound)

	// DeleteClient deletes its grants, and only its.
	require.NoError(t, m.RegisterClient(ctx, &mcpoauth.Client{ID: "c-2"}))
	require.NoError(t, m.DeleteClient(ctx, "c-2"))
	_, err = m.GetGrant(ctx, "g-2")
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetGrant(ctx, "g-3")
	require.NoError(t, err)

	// The sweep deletes expired grants.
	_, err = m.Sweep(ctx, t0.Add(time.Second))
	require.NoError(t, err)
	_, err = m.GetGrant(ctx, "g-3")
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
}

func TestUpstreamTokenStore(t *testing.T) {
	ctx := t.Context()
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	entry := func(id, grantID, clientID string, sealed []byte) *mcpoauth.UpstreamToken {
		return &mcpoauth.UpstreamToken{ID: id, GrantID: grantID, ClientID: clientID, Sealed: sealed, Version: 1,
			LeaseUntil: t0.Add(-time.Minute), ExpiresAt: t0}
	}
	for _, tc := range []struct {
		name   string
		sealed []byte
	}{{"bytes", []byte{0, 1, 0xff}}, {"empty", []byte{}}, {"nil", nil}} {
		t.Run("RoundTrip/"+tc.name, func(t *testing.T) {
			e := entry("rt-"+tc.name, "", "", tc.sealed)
			require.NoError(t, m.SaveUpstreamToken(ctx, e))
			got, err := m.GetUpstreamToken(ctx, e.ID)
			require.NoError(t, err)
			require.Equal(t, e, got)
		})
	}
	require.ErrorIs(t, m.SaveUpstreamToken(ctx, entry("rt-bytes", "", "", nil)), mcpoauth.ErrConflict)

	// Replace is a compare-and-set on Version.
	next := entry("rt-bytes", "g-1", "c-1", []byte("v2"))
	next.Version = 2
	require.ErrorIs(t, m.ReplaceUpstreamToken(ctx, next, 7), mcpoauth.ErrConflict)
	require.NoError(t, m.ReplaceUpstreamToken(ctx, next, 1))
	require.ErrorIs(t, m.ReplaceUpstreamToken(ctx, next, 1), mcpoauth.ErrConflict)
	require.ErrorIs(t, m.ReplaceUpstreamToken(ctx, entry("none", "", "", nil), 1), mcpoauth.ErrNotFound)
	got, err := m.GetUpstreamToken(ctx, "rt-bytes")
	require.NoError(t, err)
	require.Equal(t, next, got)

	// Of concurrent consumptions exactly one gets the entry.
	require.NoError(t, m.SaveUpstreamToken(ctx, entry("once", "", "", []byte("x"))))
	const racers = 20
	var wg sync.WaitGroup
	wins := make(chan *mcpoauth.UpstreamToken, racers)
	for range racers {
		wg.Go(func() {
			if got, err := m.ConsumeUpstreamToken(ctx, "once"); err == nil {
				wins <- got
			} else {
				require.ErrorIs(t, err, mcpoauth.ErrNotFound)
			}
		})
	}
	wg.Wait()
	close(wins)
	require.Len(t, wins, 1)

	// RevokeGrant deletes the grant's entries and refuses new ones;
	// DeleteClient deletes the client's.
	require.NoError(t, m.RevokeGrant(ctx, "g-1"))
	_, err = m.GetUpstreamToken(ctx, "rt-bytes")
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	require.ErrorIs(t, m.SaveUpstreamToken(ctx, entry("late", "g-1", "c-1", nil)), mcpoauth.ErrNotFound)
	bound := entry("rt-nil", "g-2", "c-2", nil)
	bound.Version = 2
	require.ErrorIs(t, m.ReplaceUpstreamToken(ctx, entry("rt-nil", "g-1", "c-1", nil), 1), mcpoauth.ErrNotFound,
		"binding an entry to a revoked grant")
	require.NoError(t, m.ReplaceUpstreamToken(ctx, bound, 1))
	require.NoError(t, m.RegisterClient(ctx, &mcpoauth.Client{ID: "c-2"}))
	require.NoError(t, m.DeleteClient(ctx, "c-2"))
	_, err = m.GetUpstreamToken(ctx, "rt-nil")
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetUpstreamToken(ctx, "rt-empty")
	require.NoError(t, err, "an entry of no grant and no client stays")
}

func TestSweep(t *testing.T) {
	ctx := t.Context()
	clock := testclock.New(t0)
	dir := t.TempDir()
	m := openTestModel(t, filepath.Join(dir, "oauth.db"), Options{SweepInterval: NoSweep, SweepBatch: 3, Now: clock.Now})
	var live []*mcpoauth.Token
	for i := range 10 {
		require.NoError(t, m.SaveTokens(ctx, testToken(mcpoauth.AccessToken, "c", "g-dead", t0.Add(-time.Duration(i+1)*time.Minute))))
		tok := testToken(mcpoauth.AccessToken, "c", "g-live", t0.Add(time.Hour))
		require.NoError(t, m.SaveTokens(ctx, tok))
		live = append(live, tok)
	}
	require.NoError(t, m.RevokeGrant(ctx, "g-revoked"))
	require.NoError(t, m.UseAssertionID(ctx, "c", "jti", t0.Add(-time.Second)))

	n, err := m.Sweep(ctx, t0)
	require.NoError(t, err)
	require.EqualValues(t, 11, n, "ten tokens (in batches of three) and one assertion id")
	for _, tok := range live {
		_, err := m.GetToken(ctx, tok.Digest)
		require.NoError(t, err)
	}
	require.Equal(t, 1, count(t, m, "mcpoauth_revoked_grants"), "a revoked grant is remembered for its retention")
	n, err = m.Sweep(ctx, t0.Add(RevokedGrantRetention+time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 11, n, "the live tokens and the revoked grant, once past")

	// The sweep ends with a checkpoint that empties the WAL.
	fi, err := os.Stat(filepath.Join(dir, "oauth.db-wal"))
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "the WAL is truncated after a sweep")
}

func TestSweeperReportsErrors(t *testing.T) {
	errs := make(chan error, 1)
	m, err := Open(t.Context(), filepath.Join(t.TempDir(), "oauth.db"), Options{
		SweepInterval: time.Millisecond,
		SweepErrorHandler: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	// Break the writer's view of one table, so that the next sweep fails.
	_, err = m.w.ExecContext(t.Context(), `DROP TABLE mcpoauth_assertion_ids`)
	require.NoError(t, err)
	require.ErrorContains(t, <-errs, "mcpoauth_assertion_ids")
}

func TestDoneContext(t *testing.T) {
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, m.SaveGrant(ctx, testGrant("g", "c", "u", t0)), context.Canceled)
	_, err := m.GetGrant(ctx, "g")
	require.ErrorIs(t, err, context.Canceled)
	_, err = m.ListUserGrants(ctx, "u")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, m.SaveUpstreamToken(ctx, &mcpoauth.UpstreamToken{ID: "x"}), context.Canceled)
	_, err = m.ConsumeUpstreamToken(ctx, "x")
	require.ErrorIs(t, err, context.Canceled)
	_, err = m.Sweep(ctx, t0)
	require.ErrorIs(t, err, context.Canceled)
}
