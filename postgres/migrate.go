package postgres

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_description.sql. A released file is never edited: a change to the
// schema is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]sqlmodel.Migration, error) {
	return sqlmodel.LoadMigrations(migrationFiles, "postgres")
}

// SchemaVersion is the schema version that Migrate brings a database to:
// the version of the newest embedded migration (a test keeps them equal).
// Version reports the one a database is at.
const SchemaVersion = 10

// lockClassMigrate is the first key of the advisory lock that serialises
// migrations in a database; lockClassGrant (grants.go) is another.
const lockClassMigrate = 0x6d636f6d // "mcom"

// migrationSQL is the migration runner's SQL on PostgreSQL.
var migrationSQL = sqlmodel.MigrationSQL{
	CreateTable: `CREATE TABLE IF NOT EXISTS mcpoauth_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`,
	Applied: `SELECT EXISTS (SELECT 1 FROM mcpoauth_schema_migrations WHERE version = $1)`,
	Record:  `INSERT INTO mcpoauth_schema_migrations (version, name) VALUES ($1, $2)`,
}

// Migrate brings the schema in the current schema of the pool's connections
// up to SchemaVersion, applying each embedded migration that the table
// mcpoauth_schema_migrations does not list, in version order. Each
// migration runs in its own transaction, together with its row in that
// table, so a failure leaves the schema at the previous version.
//
// It is idempotent: at SchemaVersion already, it changes nothing. It is safe
// to call from several processes at once: each migration transaction first
// takes a transaction-level advisory lock, so one replica applies a
// migration and the others find it applied. A database migrated by newer
// code (a version this package does not know) is left as it is.
func (m *Model) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return sqlmodel.Migrate(ctx, errs, migrationSQL, ms, func(_ sqlmodel.Migration, apply func(sqlmodel.Tx) error) error {
		return m.inTx(ctx, "migrate", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int4, 0)`, lockClassMigrate); err != nil {
				return errs.Storage(ctx, "migrate: lock", err)
			}
			return apply(txOf(tx))
		})
	})
}

// Version returns the newest schema version applied to the database, or 0
// if Migrate never ran there.
func (m *Model) Version(ctx context.Context) (int, error) {
	var exists bool
	err := m.pool.QueryRow(ctx, `SELECT to_regclass('mcpoauth_schema_migrations') IS NOT NULL`).Scan(&exists)
	if err != nil {
		return 0, errs.Storage(ctx, "schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	err = m.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM mcpoauth_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, errs.Storage(ctx, "schema version", err)
	}
	return v, nil
}

// pgxTx is a pgx transaction as the shared code runs statements in it.
type pgxTx struct{ tx pgx.Tx }

func txOf(tx pgx.Tx) sqlmodel.Tx { return pgxTx{tx} }

func (t pgxTx) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := t.tx.Exec(ctx, sql, args...)
	return err
}

func (t pgxTx) QueryRow(ctx context.Context, sql string, args ...any) sqlmodel.Row {
	return t.tx.QueryRow(ctx, sql, args...)
}
