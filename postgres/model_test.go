package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

// t0 is the fixed "now" of the tests that control the clock.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func newDigest() mcpoauth.Digest {
	var d mcpoauth.Digest
	_, _ = rand.Read(d[:])
	return d
}

func testToken(kind mcpoauth.TokenKind, grantID string, exp time.Time) *mcpoauth.Token {
	return &mcpoauth.Token{
		Digest: newDigest(), Kind: kind, ClientID: "client", UserID: "user", GrantID: grantID,
		Scopes: []string{"read"}, Resource: "https://mcp.example/", IssuedAt: exp.Add(-time.Hour),
		ExpiresAt: exp, GrantExpiresAt: exp.Add(24 * time.Hour),
	}
}

func testCode(grantID string, exp time.Time) *mcpoauth.AuthorizationCode {
	return &mcpoauth.AuthorizationCode{
		Digest: newDigest(), ClientID: "client", UserID: "user", GrantID: grantID,
		RedirectURI: "https://client.example/cb", Scopes: []string{"read"}, Resource: "https://mcp.example/",
		CodeChallenge: "challenge", ExpiresAt: exp, GrantExpiresAt: exp.Add(24 * time.Hour),
	}
}

func testRequest(exp time.Time) *mcpoauth.AuthorizationRequest {
	return &mcpoauth.AuthorizationRequest{
		ID: newDigest(), BrowserDigest: newDigest(), ClientID: "client", RedirectURI: "https://client.example/cb",
		Scopes: []string{"read"}, State: "state", CodeChallenge: "challenge", ExpiresAt: exp,
	}
}

func testDevice(exp time.Time) *mcpoauth.DeviceAuthorization {
	return &mcpoauth.DeviceAuthorization{
		DeviceCodeDigest: newDigest(), UserCodeDigest: newDigest(), ClientID: "client", Scopes: []string{"read"},
		GrantID: "g-device", Status: mcpoauth.DevicePending, DevicePoll: mcpoauth.DevicePoll{Interval: 5 * time.Second}, ExpiresAt: exp,
	}
}

func testGrant(id string, exp time.Time) *mcpoauth.Grant {
	return &mcpoauth.Grant{
		ID: id, ClientID: "client", UserID: "user", Scopes: []string{"read"}, Resource: "https://mcp.example/",
		CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp,
	}
}

func testUpstreamToken(id, grantID string, exp time.Time) *mcpoauth.UpstreamToken {
	t := &mcpoauth.UpstreamToken{ID: id, GrantID: grantID, Sealed: []byte{0, 1, 2}, Version: 1, ExpiresAt: exp}
	if grantID != "" {
		t.ClientID = "client"
	}
	return t
}

// count returns the number of rows of table.
func count(t *testing.T, m *Model, table string) int {
	t.Helper()
	var n int
	require.NoError(t, m.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	pool := newTestPool(t)
	m, err := New(ctx, pool, Options{SweepInterval: NoSweep})
	require.NoError(t, err)
	t.Cleanup(m.Close)

	v, err := m.Version(ctx)
	require.NoError(t, err)
	require.Zero(t, v, "a fresh schema has no version")
	_, err = m.GetToken(ctx, newDigest())
	require.Error(t, err, "New must not create the tables")
	require.NotErrorIs(t, err, mcpoauth.ErrNotFound)

	require.NoError(t, m.Migrate(ctx))
	v, err = m.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, SchemaVersion, v)
	tok := testToken(mcpoauth.AccessToken, "g", t0)
	require.NoError(t, m.SaveTokens(ctx, tok))

	// Idempotent: a second run changes nothing and keeps the data.
	require.NoError(t, m.Migrate(ctx))
	ms, err := migrations()
	require.NoError(t, err)
	require.Equal(t, len(ms), count(t, m, "mcpoauth_schema_migrations"))
	_, err = m.GetToken(ctx, tok.Digest)
	require.NoError(t, err)
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := t.Context()
	pool := newTestPool(t)
	const replicas = 4
	models := make([]*Model, replicas)
	for i := range models {
		m, err := New(ctx, pool, Options{SweepInterval: NoSweep})
		require.NoError(t, err)
		t.Cleanup(m.Close)
		models[i] = m
	}
	errs := together.Run(replicas, func(i int) error { return models[i].Migrate(ctx) })
	for _, err := range errs {
		require.NoError(t, err)
	}
	ms, err := migrations()
	require.NoError(t, err)
	require.Equal(t, len(ms), count(t, models[0], "mcpoauth_schema_migrations"))
	v, err := models[0].Version(ctx)
	require.NoError(t, err)
	require.Equal(t, SchemaVersion, v)
}

func TestMigrationsAreWellFormed(t *testing.T) {
	ms, err := migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	require.Equal(t, SchemaVersion, ms[len(ms)-1].Version, "SchemaVersion must name the newest migration")
	for i, mig := range ms {
		require.Equal(t, i+1, mig.Version, "migration versions must be 1, 2, 3, ... without gaps")
		require.NotContains(t, strings.ToUpper(mig.SQL), "BEGIN;", "a migration runs in Migrate's transaction")
		require.NotContains(t, strings.ToUpper(mig.SQL), "COMMIT;", "a migration runs in Migrate's transaction")
	}
}

// TestLookupsUseIndexes plans every query that finds rows by a key with
// sequential scans disabled: a plan that still has one has no index to use.
func TestLookupsUseIndexes(t *testing.T) {
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	lookups := []struct {
		name, sql string
		args      []any
	}{
		{"GetClient", `SELECT * FROM mcpoauth_clients WHERE id = $1`, []any{"c"}},
		{"GetAuthorizationRequest", `SELECT * FROM mcpoauth_authorization_requests WHERE id = $1`, []any{[]byte("x")}},
		{"GetAuthorizationCode", `SELECT * FROM mcpoauth_authorization_codes WHERE digest = $1`, []any{[]byte("x")}},
		{"GetToken", `SELECT * FROM mcpoauth_tokens WHERE digest = $1`, []any{[]byte("x")}},
		{"RevokeGrant tokens", `SELECT * FROM mcpoauth_tokens WHERE grant_id = $1`, []any{"g"}},
		{"RevokeGrant codes", `SELECT * FROM mcpoauth_authorization_codes WHERE grant_id = $1`, []any{"g"}},
		{"GetDeviceAuthorization", `SELECT * FROM mcpoauth_device_authorizations WHERE device_code_digest = $1`, []any{[]byte("x")}},
		{"GetDeviceAuthorizationByUserCode", `SELECT * FROM mcpoauth_device_authorizations WHERE user_code_digest = $1`, []any{[]byte("x")}},
		{"revoked grant check", `SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = ANY($1::text[])`, []any{[]string{"g"}}},
		{"GetGrant", `SELECT * FROM mcpoauth_grants WHERE id = $1`, []any{"g"}},
		{"ListUserGrants", `SELECT * FROM mcpoauth_grants WHERE user_id = $1`, []any{"u"}},
		{"DeleteClient grants", `SELECT * FROM mcpoauth_grants WHERE client_id = ANY($1::text[])`, []any{[]string{"c"}}},
		{"GetUpstreamToken", `SELECT * FROM mcpoauth_upstream_tokens WHERE id = $1`, []any{"v"}},
		{"RevokeGrant upstream tokens", `SELECT * FROM mcpoauth_upstream_tokens WHERE grant_id = $1`, []any{"g"}},
		{"DeleteClient upstream tokens", `SELECT * FROM mcpoauth_upstream_tokens WHERE client_id = ANY($1::text[])`, []any{[]string{"c"}}},
	}
	for _, target := range sqlmodel.SweepTargets {
		lookups = append(lookups, struct {
			name, sql string
			args      []any
		}{"sweep " + target.Table, `SELECT * FROM ` + target.Table + ` WHERE ` + target.Until + ` < $1 LIMIT 10`, []any{t0}})
	}
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			ctx := t.Context()
			err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, "EXPLAIN "+l.sql, l.args...)
				if err != nil {
					return err
				}
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				plan := strings.Join(lines, "\n")
				require.NotContains(t, plan, "Seq Scan", plan)
				require.Contains(t, plan, "Index", plan)
				return nil
			})
			require.NoError(t, err)
		})
	}
}

func TestDigestColumnsHoldOnly32Bytes(t *testing.T) {
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	// A random 32-byte value, without the pgcrypto extension.
	_, err := m.pool.Exec(t.Context(), `CREATE FUNCTION gen_random_bytes_32() RETURNS bytea LANGUAGE sql VOLATILE
		AS $$ SELECT decode(md5(random()::text) || md5(random()::text), 'hex') $$`)
	require.NoError(t, err)
	inserts := map[string]string{
		"token":   `INSERT INTO mcpoauth_tokens (digest, kind, client_id, user_id, grant_id, scopes, resource, issued_at, expires_at, grant_expires_at) VALUES ($1, 1, 'c', 'u', 'g', '{}', 'r', now(), now(), now())`,
		"code":    `INSERT INTO mcpoauth_authorization_codes (digest, client_id, user_id, grant_id, redirect_uri, redirect_uri_provided, scopes, resource, code_challenge, expires_at, grant_expires_at) VALUES ($1, 'c', 'u', 'g', 'r', false, '{}', 'r', 'c', now(), now())`,
		"request": `INSERT INTO mcpoauth_authorization_requests (id, browser_digest, client_id, redirect_uri, redirect_uri_provided, scopes, resource, state, code_challenge, expires_at) VALUES ($1, $1, 'c', 'r', false, '{}', 'r', '', 'c', now())`,
		"client":  `INSERT INTO mcpoauth_clients (id, secret_digest, metadata) VALUES (encode($1, 'hex'), $1, '{}')`,
		"device code": `INSERT INTO mcpoauth_device_authorizations (device_code_digest, user_code_digest, client_id, scopes, resource, grant_id, status, user_id, poll_interval_ns, expires_at)
			VALUES ($1, gen_random_bytes_32(), 'c', '{}', 'r', 'g', 1, '', 5, now())`,
		"user code": `INSERT INTO mcpoauth_device_authorizations (device_code_digest, user_code_digest, client_id, scopes, resource, grant_id, status, user_id, poll_interval_ns, expires_at)
			VALUES (gen_random_bytes_32(), $1, 'c', '{}', 'r', 'g', 1, '', 5, now())`,
	}
	for name, sql := range inserts {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{0, 31, 33, 64} {
				_, err := m.pool.Exec(t.Context(), sql, make([]byte, n))
				require.Error(t, err, "a %d-byte digest was accepted", n)
			}
			_, err := m.pool.Exec(t.Context(), sql, newDigest().String())
			require.Error(t, err, "a hex digest was accepted")
			d := newDigest()
			_, err = m.pool.Exec(t.Context(), sql, d[:])
			require.NoError(t, err)
		})
	}
}

// sweepTracer records the rows each sweep statement deleted.
type sweepTracer struct {
	mu      sync.Mutex
	deleted map[string][]int64 // table → rows deleted by each statement
}

type sweepQueryKey struct{}

func (s *sweepTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sweepQueryKey{}, data.SQL)
}

func (s *sweepTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	sql, _ := ctx.Value(sweepQueryKey{}).(string)
	for _, target := range sqlmodel.SweepTargets {
		if data.Err == nil && sql == sweepSQL(target) {
			s.mu.Lock()
			s.deleted[target.Table] = append(s.deleted[target.Table], data.CommandTag.RowsAffected())
			s.mu.Unlock()
		}
	}
}

func TestSweep(t *testing.T) {
	ctx := t.Context()
	tracer := &sweepTracer{deleted: map[string][]int64{}}
	pool := newTestPool(t, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer })
	const batch = 10
	m, err := New(ctx, pool, Options{SweepInterval: NoSweep, SweepBatch: batch, Now: testclock.New(t0).Now})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	require.NoError(t, m.Migrate(ctx))
	past, future := t0.Add(-time.Second), t0.Add(time.Second)

	// 25 expired tokens take three statements of at most 10 rows.
	var expired, live []*mcpoauth.Token
	for range 25 {
		expired = append(expired, testToken(mcpoauth.AccessToken, "g1", past))
	}
	live = append(live, testToken(mcpoauth.RefreshToken, "g1", future), testToken(mcpoauth.AccessToken, "g1", t0))
	require.NoError(t, m.SaveTokens(ctx, append(expired, live...)...))
	oldCode, liveCode := testCode("g1", past), testCode("g1", future)
	require.NoError(t, m.SaveAuthorizationCode(ctx, oldCode))
	require.NoError(t, m.SaveAuthorizationCode(ctx, liveCode))
	require.NoError(t, m.ConsumeAuthorizationCode(ctx, oldCode.Digest, "client"))
	oldDevice, liveDevice := testDevice(past), testDevice(future)
	require.NoError(t, m.SaveDeviceAuthorization(ctx, oldDevice))
	require.NoError(t, m.SaveDeviceAuthorization(ctx, liveDevice))
	oldReq, liveReq := testRequest(past), testRequest(future)
	require.NoError(t, m.SaveAuthorizationRequest(ctx, oldReq))
	require.NoError(t, m.SaveAuthorizationRequest(ctx, liveReq))
	require.NoError(t, m.RegisterClient(ctx, &mcpoauth.Client{ID: "client", IssuedAt: past, SecretExpiresAt: past}))
	require.NoError(t, m.UseAssertionID(ctx, "client", "old-jti", past))
	require.NoError(t, m.UseAssertionID(ctx, "client", "live-jti", future))
	oldGrant, liveGrant := testGrant("g-old", past), testGrant("g-live", future)
	require.NoError(t, m.SaveGrant(ctx, oldGrant))
	require.NoError(t, m.SaveGrant(ctx, liveGrant))
	oldVault, liveVault := testUpstreamToken("v-old", "g-old", past), testUpstreamToken("v-live", "", future)
	require.NoError(t, m.SaveUpstreamToken(ctx, oldVault))
	require.NoError(t, m.SaveUpstreamToken(ctx, liveVault))

	n, err := m.Sweep(ctx, t0)
	require.NoError(t, err)
	require.EqualValues(t, 25+1+1+1+1+1+1, n)
	require.Equal(t, []int64{10, 10, 5}, tracer.deleted["mcpoauth_tokens"])
	for table, counts := range tracer.deleted {
		for _, c := range counts {
			require.LessOrEqual(t, c, int64(batch), table)
		}
	}
	for _, tok := range expired {
		_, err := m.GetToken(ctx, tok.Digest)
		require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	}
	for _, tok := range live {
		_, err := m.GetToken(ctx, tok.Digest)
		require.NoError(t, err, "a token expiring at or after now was swept")
	}
	_, err = m.GetAuthorizationCode(ctx, oldCode.Digest)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetAuthorizationCode(ctx, liveCode.Digest)
	require.NoError(t, err)
	_, err = m.GetAuthorizationRequest(ctx, oldReq.ID)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetAuthorizationRequest(ctx, liveReq.ID)
	require.NoError(t, err)
	_, err = m.GetDeviceAuthorization(ctx, oldDevice.DeviceCodeDigest)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetDeviceAuthorization(ctx, liveDevice.DeviceCodeDigest)
	require.NoError(t, err)
	_, err = m.GetClient(ctx, "client")
	require.NoError(t, err, "a client was swept")
	require.NoError(t, m.UseAssertionID(ctx, "client", "old-jti", future), "an expired assertion id was not swept")
	require.ErrorIs(t, m.UseAssertionID(ctx, "client", "live-jti", future), mcpoauth.ErrAlreadyUsed, "a live assertion id was swept")
	_, err = m.GetGrant(ctx, oldGrant.ID)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetGrant(ctx, liveGrant.ID)
	require.NoError(t, err, "a live grant record was swept")
	_, err = m.GetUpstreamToken(ctx, oldVault.ID)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetUpstreamToken(ctx, liveVault.ID)
	require.NoError(t, err, "a live vault entry was swept")

	n, err = m.Sweep(ctx, t0)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestSweepSkipsLockedRows(t *testing.T) {
	ctx := t.Context()
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	held, free := testToken(mcpoauth.AccessToken, "g", t0), testToken(mcpoauth.AccessToken, "g", t0)
	require.NoError(t, m.SaveTokens(ctx, held, free))

	// Another transaction is working on one row: the sweep deletes the
	// other and does not wait.
	tx, err := m.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM mcpoauth_tokens WHERE digest = $1 FOR UPDATE`, held.Digest[:])
	require.NoError(t, err)
	sweepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := m.Sweep(sweepCtx, t0.Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.NoError(t, tx.Rollback(ctx))
	n, err = m.Sweep(ctx, t0.Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestRevokedGrantRetention(t *testing.T) {
	ctx := t.Context()
	m := newTestModel(t, Options{SweepInterval: NoSweep, Now: testclock.New(t0).Now})
	short := testToken(mcpoauth.AccessToken, "short", t0.Add(time.Hour))
	long := testToken(mcpoauth.RefreshToken, "long", t0.Add(60*24*time.Hour))
	long.GrantExpiresAt = t0.Add(90 * 24 * time.Hour)
	require.NoError(t, m.SaveTokens(ctx, short, long))
	require.NoError(t, m.RevokeGrant(ctx, "short"))
	require.NoError(t, m.RevokeGrant(ctx, "long"))

	tests := []struct {
		name          string
		sweepAt       time.Time
		short, longOK bool // whether a token of the grant can be saved again
	}{
		{"within the retention", t0.Add(RevokedGrantRetention - time.Second), false, false},
		{"after the retention, before the long grant would have ended", t0.Add(RevokedGrantRetention + time.Second), true, false},
		{"after the long grant would have ended", long.GrantExpiresAt.Add(time.Second), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Sweep(ctx, tt.sweepAt)
			require.NoError(t, err)
			for grant, ok := range map[string]bool{"short": tt.short, "long": tt.longOK} {
				err := m.SaveTokens(ctx, testToken(mcpoauth.AccessToken, grant, tt.sweepAt.Add(time.Hour)))
				if ok {
					require.NoError(t, err, grant)
				} else {
					require.ErrorIs(t, err, mcpoauth.ErrNotFound, grant)
				}
			}
		})
	}
}

func TestSweeperRuns(t *testing.T) {
	ctx := t.Context()
	pool := newTestPool(t)
	calls := make(chan struct{}, 1)
	clock := func() time.Time {
		select {
		case calls <- struct{}{}:
		default:
		}
		return t0
	}
	setup, err := New(ctx, pool, Options{SweepInterval: NoSweep})
	require.NoError(t, err)
	require.NoError(t, setup.Migrate(ctx))
	old, live := testToken(mcpoauth.AccessToken, "g", t0.Add(-time.Second)), testToken(mcpoauth.AccessToken, "g", t0.Add(time.Second))
	require.NoError(t, setup.SaveTokens(ctx, old, live))

	errs := make(chan error, 10)
	m, err := New(ctx, pool, Options{SweepInterval: time.Millisecond, Now: clock, SweepErrorHandler: func(err error) { errs <- err }})
	require.NoError(t, err)
	defer m.Close()
	// The sweeper reads the clock, then sweeps; once it has read the clock
	// a second time, the first sweep is complete.
	<-calls
	<-calls
	_, err = m.GetToken(ctx, old.Digest)
	require.ErrorIs(t, err, mcpoauth.ErrNotFound)
	_, err = m.GetToken(ctx, live.Digest)
	require.NoError(t, err)
	m.Close()
	require.Empty(t, errs)
}

func TestSweeperReportsErrors(t *testing.T) {
	ctx := t.Context()
	pool := newTestPool(t) // never migrated: every sweep fails
	errs := make(chan error, 1)
	m, err := New(ctx, pool, Options{SweepInterval: time.Millisecond, SweepErrorHandler: func(err error) {
		select {
		case errs <- err:
		default:
		}
	}})
	require.NoError(t, err)
	defer m.Close()
	err = <-errs
	require.ErrorContains(t, err, "postgres: sweep mcpoauth_authorization_requests")
}

// TestDeadlineHonoured blocks each kind of operation behind a lock held by
// another connection and checks that it gives up when its context's
// deadline passes, with an error that says so, and changes nothing.
func TestDeadlineHonoured(t *testing.T) {
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	ctx := t.Context()
	code := testCode("g", t0)
	require.NoError(t, m.SaveAuthorizationCode(ctx, code))
	access := testToken(mcpoauth.AccessToken, "g", t0)
	refresh := testToken(mcpoauth.RefreshToken, "g", t0)
	require.NoError(t, m.SaveTokens(ctx, access, refresh))

	grantLock := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`, lockClassGrant, lockKey("g"))
		return err
	}
	tableLock := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `LOCK TABLE mcpoauth_tokens IN ACCESS EXCLUSIVE MODE`)
		return err
	}
	codeRowLock := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT 1 FROM mcpoauth_authorization_codes WHERE digest = $1 FOR UPDATE`, code.Digest[:])
		return err
	}
	tests := []struct {
		name string
		lock func(pgx.Tx) error
		call func(ctx context.Context) error
	}{
		{"GetToken", tableLock, func(ctx context.Context) error { _, err := m.GetToken(ctx, access.Digest); return err }},
		{"SaveTokens", grantLock, func(ctx context.Context) error {
			return m.SaveTokens(ctx, testToken(mcpoauth.AccessToken, "g", t0))
		}},
		{"ConsumeAuthorizationCode", codeRowLock, func(ctx context.Context) error {
			return m.ConsumeAuthorizationCode(ctx, code.Digest, "client")
		}},
		{"RotateRefreshToken", grantLock, func(ctx context.Context) error {
			return m.RotateRefreshToken(ctx, refresh.Digest, "client", t0, time.Time{}, testToken(mcpoauth.RefreshToken, "g", t0))
		}},
		{"RevokeGrant", grantLock, func(ctx context.Context) error { return m.RevokeGrant(ctx, "g") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			holder, err := m.pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = holder.Rollback(ctx) }()
			require.NoError(t, tt.lock(holder))

			callCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = tt.call(callCtx)
			elapsed := time.Since(start)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, elapsed, 10*time.Second, "the call outlived its deadline")
			require.NoError(t, holder.Rollback(ctx))

			// Nothing changed, and the pool still works.
			c, err := m.GetAuthorizationCode(ctx, code.Digest)
			require.NoError(t, err)
			require.False(t, c.Used)
			for _, d := range []mcpoauth.Digest{access.Digest, refresh.Digest} {
				tok, err := m.GetToken(ctx, d)
				require.NoError(t, err)
				require.False(t, tok.Rotated())
			}
		})
	}
}

func TestNew(t *testing.T) {
	ctx := t.Context()
	_, err := New(ctx, nil, Options{})
	require.Error(t, err)

	// A server that does not answer: New fails, Open too.
	unreachable := "postgres://postgres@127.0.0.1:1/none?connect_timeout=5"
	pool, err := pgxpool.New(ctx, unreachable)
	require.NoError(t, err)
	defer pool.Close()
	_, err = New(ctx, pool, Options{})
	require.ErrorContains(t, err, "postgres: ping")
	_, err = Open(ctx, unreachable, Options{})
	require.ErrorContains(t, err, "postgres: ping")
	_, err = Open(ctx, "postgres://%zz", Options{})
	require.ErrorContains(t, err, "postgres: open")
}

func TestClose(t *testing.T) {
	ctx := t.Context()
	t.Run("New leaves the pool open", func(t *testing.T) {
		pool := newTestPool(t)
		m, err := New(ctx, pool, Options{SweepInterval: time.Millisecond})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(m.Close)
		}
		wg.Wait()
		m.Close()
		require.NoError(t, pool.Ping(ctx))
		require.NoError(t, m.Migrate(ctx), "the model stays usable after Close")
	})
	t.Run("Open closes its pool", func(t *testing.T) {
		requirePostgres(t)
		m, err := Open(ctx, testDB.admin, Options{})
		require.NoError(t, err)
		require.NoError(t, m.Pool().Ping(ctx))
		m.Close()
		m.Close()
		require.Error(t, m.Pool().Ping(ctx))
	})
}

// TestErrorsWrapContext checks that a context done before a call is
// reported as itself, before the database is asked.
func TestErrorsWrapContext(t *testing.T) {
	m := newTestModel(t, Options{SweepInterval: NoSweep})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := m.GetToken(ctx, newDigest())
	require.True(t, errors.Is(err, context.Canceled))
	_, err = m.Sweep(ctx, t0)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, m.Migrate(ctx), context.Canceled)
}
