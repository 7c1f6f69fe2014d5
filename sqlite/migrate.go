package sqlite

import (
	"context"
	"database/sql"
	"embed"

	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_description.sql. A released file is never edited: a change to the
// schema is a new file (a column that GrantStore needs later, say, is an
// ALTER TABLE in 0002).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]sqlmodel.Migration, error) {
	return sqlmodel.LoadMigrations(migrationFiles, "sqlite")
}

// SchemaVersion is the schema version Open brings a file to: the version
// of the newest embedded migration (a test keeps them equal).
const SchemaVersion = 1

// migrationSQL is the migration runner's SQL on SQLite.
var migrationSQL = sqlmodel.MigrationSQL{
	CreateTable: `CREATE TABLE IF NOT EXISTS mcpoauth_schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
)`,
	Applied: `SELECT EXISTS (SELECT 1 FROM mcpoauth_schema_migrations WHERE version = ?)`,
	Record: `INSERT INTO mcpoauth_schema_migrations (version, name, applied_at)
		VALUES (?, ?, CAST(unixepoch('subsec') * 1000000000 AS INTEGER))`,
}

// migrate brings the schema of db, the writer pool, up to SchemaVersion,
// applying each embedded migration that mcpoauth_schema_migrations does not
// list, in version order. Each migration runs in its own write
// transaction (BEGIN IMMEDIATE, so it holds the file's write lock from its
// start), together with its row in that table: a failure leaves the schema
// at the previous version, and of two processes opening the file at once,
// one applies a migration and the other finds it applied. A file migrated
// by newer code (a version this package does not know) is left as it is.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return sqlmodel.Migrate(ctx, errs, migrationSQL, ms, func(mig sqlmodel.Migration, apply func(sqlmodel.Tx) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return errs.Storage(ctx, "migrate: begin", err)
		}
		defer func() { _ = tx.Rollback() }()
		if err := apply(txOf(tx)); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return errs.Storage(ctx, "migrate: commit "+mig.Name, err)
		}
		return nil
	})
}

// Version returns the newest schema version applied to the file.
func (m *Model) Version(ctx context.Context) (int, error) {
	var v int
	err := m.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM mcpoauth_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, errs.Storage(ctx, "schema version", err)
	}
	return v, nil
}

// sqlTx is a database/sql transaction as the shared code runs statements
// in it.
type sqlTx struct{ tx *sql.Tx }

func txOf(tx *sql.Tx) sqlmodel.Tx { return sqlTx{tx} }

func (t sqlTx) Exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, query, args...)
	return err
}

func (t sqlTx) QueryRow(ctx context.Context, query string, args ...any) sqlmodel.Row {
	return t.tx.QueryRowContext(ctx, query, args...)
}
