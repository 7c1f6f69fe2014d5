package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_description.sql. A released file is never edited: a change to the
// schema is a new file (a column that GrantStore needs later, say, is an
// ALTER TABLE in 0002).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one version of the schema.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, p := range names {
		base := path.Base(p)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("sqlite: migration %s: name must be NNNN_description.sql", base)
		}
		body, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: strings.TrimSuffix(base, ".sql"), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("sqlite: migrations %s and %s have the same version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version Open brings a file to: the version
// of the newest embedded migration (a test keeps them equal).
const SchemaVersion = 1

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS mcpoauth_schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
)`

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
	for _, mig := range ms {
		if err := applyMigration(ctx, db, mig); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, mig migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return errs.Storage(ctx, "migrate: begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return errs.Storage(ctx, "migrate: create mcpoauth_schema_migrations", err)
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM mcpoauth_schema_migrations WHERE version = ?`, mig.version).Scan(&one)
	if err == nil {
		return nil // applied already
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return errs.Storage(ctx, "migrate: read mcpoauth_schema_migrations", err)
	}
	if _, err := tx.ExecContext(ctx, mig.sql); err != nil {
		return errs.Storage(ctx, "migrate: apply "+mig.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mcpoauth_schema_migrations (version, name, applied_at) VALUES (?, ?, CAST(unixepoch('subsec') * 1000000000 AS INTEGER))`,
		mig.version, mig.name); err != nil {
		return errs.Storage(ctx, "migrate: record "+mig.name, err)
	}
	if err := tx.Commit(); err != nil {
		return errs.Storage(ctx, "migrate: commit "+mig.name, err)
	}
	return nil
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
