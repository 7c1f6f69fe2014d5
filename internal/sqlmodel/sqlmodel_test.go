package sqlmodel

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

var errNoRows = errors.New("no rows")

var testErrs = NewErrors("db", Driver{NoRows: errNoRows, IsUniqueViolation: func(err error) bool { return err.Error() == "unique" }})

func TestErrorMessages(t *testing.T) {
	require.EqualError(t, testErrs.ClientNotFound, "db: client: "+mcpoauth.ErrNotFound.Error())
	require.ErrorIs(t, testErrs.CodeUsed, mcpoauth.ErrAlreadyUsed)
	require.ErrorIs(t, testErrs.GrantRevoked, mcpoauth.ErrNotFound)
	require.EqualError(t, testErrs.NilRecord, "db: nil record")
	require.Equal(t, "db", testErrs.Name())

	ctx, cancel := context.WithCancel(context.Background())
	cause := errors.New("broken")
	require.EqualError(t, testErrs.Storage(ctx, "get", cause), "db: get: broken")
	cancel()
	err := testErrs.Storage(ctx, "get", cause)
	require.ErrorIs(t, err, context.Canceled, "a done context is reported as itself")
	require.ErrorIs(t, err, cause)

	require.NoError(t, testErrs.Insert(context.Background(), "save", testErrs.CodeConflict, nil))
	require.Equal(t, testErrs.CodeConflict, testErrs.Insert(context.Background(), "save", testErrs.CodeConflict, errors.New("unique")))
	require.EqualError(t, testErrs.Insert(context.Background(), "save", testErrs.CodeConflict, cause), "db: save: broken")

	require.NoError(t, testErrs.Scan(context.Background(), "get", testErrs.CodeNotFound, nil))
	require.Equal(t, testErrs.CodeNotFound, testErrs.Scan(context.Background(), "get", testErrs.CodeNotFound, errNoRows))
	require.Equal(t, testErrs.CodeNotFound, testErrs.Scan(context.Background(), "get", testErrs.CodeNotFound, fmt.Errorf("wrapped: %w", errNoRows)))
	require.EqualError(t, testErrs.Scan(context.Background(), "get", testErrs.CodeNotFound, cause), "db: get: broken")
}

func TestChecks(t *testing.T) {
	require.True(t, ValidClientID("c"))
	require.False(t, ValidClientID(""), "no record belongs to no client")
	require.False(t, ValidClientID("a\x00b"), "NUL is not storable text")
	require.False(t, IsStorableText("\xff"), "invalid UTF-8 is not storable text")

	ctx := context.Background()
	zero := func(c *mcpoauth.AuthorizationCode) bool { return c.Digest.IsZero() }
	require.Equal(t, testErrs.NilRecord, CheckSave(ctx, testErrs, (*mcpoauth.AuthorizationCode)(nil), zero))
	require.Equal(t, testErrs.ZeroDigest, CheckSave(ctx, testErrs, &mcpoauth.AuthorizationCode{}, zero))
	require.NoError(t, CheckSave(ctx, testErrs, &mcpoauth.AuthorizationCode{Digest: mcpoauth.Digest{1}}, zero))
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, CheckSave(done, testErrs, &mcpoauth.AuthorizationCode{}, zero), context.Canceled, "the context first")

	ok := &mcpoauth.Token{Digest: mcpoauth.Digest{1}, Kind: mcpoauth.AccessToken}
	require.NoError(t, testErrs.CheckTokens([]*mcpoauth.Token{ok}))
	require.Equal(t, testErrs.NilRecord, testErrs.CheckTokens([]*mcpoauth.Token{ok, nil}))
	require.Equal(t, testErrs.ZeroDigest, testErrs.CheckTokens([]*mcpoauth.Token{{Kind: mcpoauth.RefreshToken}}))
	require.Equal(t, testErrs.BadTokenKind, testErrs.CheckTokens([]*mcpoauth.Token{{Digest: mcpoauth.Digest{1}, Kind: 9}}))
}

func TestRecordColumns(t *testing.T) {
	ctx := context.Background()
	var d mcpoauth.Digest
	require.Equal(t, testErrs.UnexpectedResult, testErrs.Digest([]byte{1, 2}, &d), "a digest column has 32 bytes")

	public := &mcpoauth.Client{ID: "c", Metadata: metadata.ClientMetadata{ClientName: "n"}}
	_, _, err := testErrs.ClientColumns(ctx, "save", nil, false)
	require.Equal(t, testErrs.NilRecord, err)
	_, _, err = testErrs.ClientColumns(ctx, "save", &mcpoauth.Client{}, false)
	require.Equal(t, testErrs.EmptyClientID, err, "a registration needs an ID")
	for _, id := range []string{"a\x00b", "\xff"} {
		_, _, err = testErrs.ClientColumns(ctx, "save", &mcpoauth.Client{ID: id}, false)
		require.Equal(t, testErrs.EmptyClientID, err, "a registration needs an ID that text columns store: %q", id)
	}
	_, _, err = testErrs.ClientColumns(ctx, "save", &mcpoauth.Client{ID: "\xff"}, true)
	require.Equal(t, testErrs.ClientNotFound, err, "an update of what no record can be finds nothing")
	meta, secret, err := testErrs.ClientColumns(ctx, "save", public, false)
	require.NoError(t, err)
	require.Nil(t, secret, "a public client's secret is NULL")
	back := &mcpoauth.Client{}
	require.NoError(t, testErrs.SetClientColumns(ctx, "get", back, meta, secret))
	require.Equal(t, public.Metadata, back.Metadata)

	confidential := &mcpoauth.Client{ID: "c", SecretDigest: mcpoauth.Digest{7}}
	meta, secret, err = testErrs.ClientColumns(ctx, "save", confidential, true)
	require.NoError(t, err)
	require.NoError(t, testErrs.SetClientColumns(ctx, "get", back, meta, secret))
	require.Equal(t, confidential.SecretDigest, back.SecretDigest)
	require.ErrorContains(t, testErrs.SetClientColumns(ctx, "get", back, []byte("{"), nil), "db: get: metadata: ")

	col, err := testErrs.IdentityColumn(ctx, "save", nil)
	require.NoError(t, err)
	require.Nil(t, col, "no identity is NULL")
	id, err := ParseIdentity(nil)
	require.NoError(t, err)
	require.Nil(t, id)
	col, err = testErrs.IdentityColumn(ctx, "save", &mcpoauth.Identity{Subject: "s"})
	require.NoError(t, err)
	id, err = ParseIdentity(col)
	require.NoError(t, err)
	require.Equal(t, "s", id.Subject)
	_, err = ParseIdentity([]byte("{"))
	require.ErrorContains(t, err, "identity: ")
}

func TestLoadMigrations(t *testing.T) {
	ms, err := LoadMigrations(fstest.MapFS{
		"migrations/0002_more.sql":    {Data: []byte("B")},
		"migrations/0001_initial.sql": {Data: []byte("A")},
		"migrations/README":           {Data: []byte("not a migration")},
	}, "db")
	require.NoError(t, err)
	require.Equal(t, []Migration{{1, "0001_initial", "A"}, {2, "0002_more", "B"}}, ms, "in version order")

	_, err = LoadMigrations(fstest.MapFS{"migrations/first.sql": {}}, "db")
	require.EqualError(t, err, "db: migration first.sql: name must be NNNN_description.sql")
	_, err = LoadMigrations(fstest.MapFS{"migrations/0000_zero.sql": {}}, "db")
	require.Error(t, err, "versions start at 1")
	_, err = LoadMigrations(fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/001_b.sql": {}}, "db")
	require.EqualError(t, err, "db: migrations 0001_a and 001_b have the same version")
}

// fakeTx records the statements run in it; QueryRow answers row.
type fakeTx struct {
	execs []string
	fail  map[string]error
	row   fakeRow
}

type fakeRow struct {
	val bool
	err error
}

func (r fakeRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*bool) = r.val
	return nil
}

func (tx *fakeTx) Exec(_ context.Context, sql string, _ ...any) error {
	tx.execs = append(tx.execs, sql)
	return tx.fail[sql]
}

func (tx *fakeTx) QueryRow(_ context.Context, sql string, _ ...any) Row {
	tx.execs = append(tx.execs, sql)
	return tx.row
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	s := MigrationSQL{CreateTable: "create", Applied: "applied", Record: "record"}
	ms := []Migration{{1, "0001_a", "A"}, {2, "0002_b", "B"}}
	run := func(tx *fakeTx) (int, error) {
		txs := 0
		err := Migrate(ctx, testErrs, s, ms, func(_ Migration, apply func(Tx) error) error {
			txs++
			return apply(tx)
		})
		return txs, err
	}

	tx := &fakeTx{}
	txs, err := run(tx)
	require.NoError(t, err)
	require.Equal(t, 2, txs, "a transaction per migration")
	require.Equal(t, []string{"create", "applied", "A", "record", "create", "applied", "B", "record"}, tx.execs)

	tx = &fakeTx{row: fakeRow{val: true}}
	_, err = run(tx)
	require.NoError(t, err)
	require.Equal(t, []string{"create", "applied", "create", "applied"}, tx.execs, "an applied migration is not run again")

	tx = &fakeTx{fail: map[string]error{"A": errors.New("syntax")}}
	txs, err = run(tx)
	require.EqualError(t, err, "db: migrate: apply 0001_a: syntax")
	require.Equal(t, 1, txs, "a failure stops the run")
}

func TestSweeper(t *testing.T) {
	s := NewSweeper("db", 0, time.Minute, 0, 10, nil, nil)
	require.Equal(t, time.Minute, s.Interval)
	require.Equal(t, 10, s.Batch)
	require.NotNil(t, s.Clock)
	require.NotNil(t, s.OnError)
	require.Equal(t, 3, NewSweeper("db", -1, time.Minute, 3, 10, nil, nil).Batch)

	// A target is swept again while a statement deletes a whole batch.
	backlog := map[string]int64{"mcpoauth_tokens": 25, "mcpoauth_grants": 10}
	calls := 0
	total, err := s.Sweep(context.Background(), func(target SweepTarget) (int64, error) {
		calls++
		n := min(backlog[target.Table], int64(s.Batch))
		backlog[target.Table] -= n
		return n, nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(35), total)
	require.Equal(t, len(SweepTargets)+2+1, calls, "one call a target, and again: tokens 10, 10, 5; grants 10, 0")

	failure := errors.New("down")
	total, err = s.Sweep(context.Background(), func(SweepTarget) (int64, error) { return 0, failure })
	require.Equal(t, failure, err)
	require.Zero(t, total)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Sweep(ctx, func(SweepTarget) (int64, error) { panic("swept after the context ended") })
	require.ErrorIs(t, err, context.Canceled)
}

func TestSweeperStart(t *testing.T) {
	stop, done := NewSweeper("db", -1, time.Minute, 0, 10, nil, nil).Start(nil)
	<-done // none runs
	stop()

	errs := make(chan error, 1)
	s := NewSweeper("db", time.Millisecond, time.Minute, 0, 10, nil, func(err error) {
		select {
		case errs <- err:
		default:
		}
	})
	failure := errors.New("down")
	stop, done = s.Start(func(context.Context, time.Time) (int64, error) { return 0, failure })
	require.Equal(t, failure, <-errs, "the failures of the background sweeps go to OnError")
	stop()
	<-done
}

func TestWhyNotRedeemed(t *testing.T) {
	ctx := context.Background()
	r := Redemption{Op: "redeem", ClientID: "c", NotFound: testErrs.CodeNotFound, Used: testErrs.CodeUsed}
	require.Equal(t, testErrs.CodeNotFound, r.WhyNotRedeemed(ctx, testErrs, &fakeTx{}), "without UsedQuery: not found")
	r.UsedQuery = "used"
	for _, tc := range []struct {
		name string
		row  fakeRow
		want string
	}{
		{"absent is not found", fakeRow{err: errNoRows}, testErrs.CodeNotFound.Error()},
		{"used is used", fakeRow{val: true}, testErrs.CodeUsed.Error()},
		{"unused now was saved since: not found", fakeRow{val: false}, testErrs.CodeNotFound.Error()},
		{"a failed read is a storage error", fakeRow{err: errors.New("down")}, "db: redeem: down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, r.WhyNotRedeemed(ctx, testErrs, &fakeTx{row: tc.row}), tc.want)
		})
	}

	require.NoError(t, r.Refused(ctx))
	require.Equal(t, testErrs.CodeNotFound, (&Redemption{ClientID: "", NotFound: testErrs.CodeNotFound}).Refused(ctx))
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, r.Refused(done), context.Canceled)
}

func TestCheckKeys(t *testing.T) {
	ctx := context.Background()
	notFound := testErrs.GrantNotFound
	require.NoError(t, CheckKey(ctx, "", notFound), "an empty key can name a record")
	require.Equal(t, notFound, CheckKey(ctx, "\xff", notFound))
	require.NoError(t, CheckClientID(ctx, "c", notFound))
	require.Equal(t, notFound, CheckClientID(ctx, "", notFound), "an empty client ID names no record")
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, CheckKey(done, "\xff", notFound), context.Canceled, "the context first")
	require.ErrorIs(t, CheckClientID(done, "", notFound), context.Canceled, "the context first")
}
