package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_description.sql. A released file is never edited: a change to the
// schema is a new file.
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
			return nil, fmt.Errorf("postgres: migration %s: name must be NNNN_description.sql", base)
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
			return nil, fmt.Errorf("postgres: migrations %s and %s have the same version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version that Migrate brings a database to:
// the version of the newest embedded migration (a test keeps them equal).
// Version reports the one a database is at.
const SchemaVersion = 10

// lockClassMigrate is the first key of the advisory lock that serialises
// migrations in a database; lockClassGrant (grants.go) is another.
const lockClassMigrate = 0x6d636f6d // "mcom"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS mcpoauth_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

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
	for _, mig := range ms {
		err := m.inTx(ctx, "migrate", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int4, 0)`, lockClassMigrate); err != nil {
				return errs.Storage(ctx, "migrate: lock", err)
			}
			if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
				return errs.Storage(ctx, "migrate: create mcpoauth_schema_migrations", err)
			}
			var applied bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mcpoauth_schema_migrations WHERE version = $1)`, mig.version).Scan(&applied)
			if err != nil {
				return errs.Storage(ctx, "migrate: read mcpoauth_schema_migrations", err)
			}
			if applied {
				return nil
			}
			// Without arguments pgx sends the file as one simple query,
			// which may hold several statements.
			if _, err := tx.Exec(ctx, mig.sql); err != nil {
				return errs.Storage(ctx, "migrate: apply "+mig.name, err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO mcpoauth_schema_migrations (version, name) VALUES ($1, $2)`, mig.version, mig.name)
			if err != nil {
				return errs.Storage(ctx, "migrate: record "+mig.name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
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
