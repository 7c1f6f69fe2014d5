package sqlmodel

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one version of a schema.
type Migration struct {
	Version int
	Name    string // the file's name without .sql
	SQL     string
}

// LoadMigrations returns the migrations of fsys, the files
// migrations/NNNN_description.sql, in version order. name starts the
// messages of its errors: a file named otherwise, two of one version.
func LoadMigrations(fsys fs.FS, name string) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, p := range names {
		base := path.Base(p)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("%s: migration %s: name must be NNNN_description.sql", name, base)
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: version, Name: strings.TrimSuffix(base, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("%s: migrations %s and %s have the same version", name, out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Row is one row a query returned, as both drivers give it.
type Row interface {
	Scan(dest ...any) error
}

// Tx is a transaction of a Model's driver, as the shared code runs
// statements in it.
type Tx interface {
	Exec(ctx context.Context, sql string, args ...any) error
	QueryRow(ctx context.Context, sql string, args ...any) Row
}

// MigrationSQL is a dialect's statements of the migration runner, on the
// table mcpoauth_schema_migrations.
type MigrationSQL struct {
	// CreateTable creates the table if it does not exist.
	CreateTable string
	// Applied reads whether the table lists the version (the parameter).
	Applied string
	// Record lists a version and its name (the parameters).
	Record string
}

// Migrate applies each migration of ms that the table
// mcpoauth_schema_migrations does not list, in order, each together with
// its row in that table in a transaction of its own: inTx begins it,
// taking first the lock that serialises migrations (of concurrent
// runners one applies a migration and the others find it applied), runs
// apply in it, and commits it if apply returns nil. A failure leaves the
// schema at the previous version.
func Migrate(ctx context.Context, e *Errors, s MigrationSQL, ms []Migration, inTx func(mig Migration, apply func(Tx) error) error) error {
	for _, mig := range ms {
		err := inTx(mig, func(tx Tx) error {
			if err := tx.Exec(ctx, s.CreateTable); err != nil {
				return e.Storage(ctx, "migrate: create mcpoauth_schema_migrations", err)
			}
			var applied bool
			if err := tx.QueryRow(ctx, s.Applied, mig.Version).Scan(&applied); err != nil {
				return e.Storage(ctx, "migrate: read mcpoauth_schema_migrations", err)
			}
			if applied {
				return nil
			}
			// Without arguments a driver sends the file as one query,
			// which may hold several statements.
			if err := tx.Exec(ctx, mig.SQL); err != nil {
				return e.Storage(ctx, "migrate: apply "+mig.Name, err)
			}
			if err := tx.Exec(ctx, s.Record, mig.Version, mig.Name); err != nil {
				return e.Storage(ctx, "migrate: record "+mig.Name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
