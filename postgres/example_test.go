package postgres_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/postgres"
)

// A server on PostgreSQL: connect a pool, make the Model, bring the schema
// up to date, and hand the Model to the server.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://mcp@db.example.com:5432/mcp")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	model, err := postgres.New(ctx, pool, postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	// Explicit, idempotent and safe to run from every replica at start.
	if err := model.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            "https://example.com",
		AuthorizationURL:  "https://example.com/consent",
		ResourceServerURL: "https://example.com/mcp",
		ScopesSupported:   []string{"mcp:tools"},
		Model:             model,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
}

// Open makes a Model that owns its pool: Close closes both.
func ExampleOpen() {
	ctx := context.Background()
	model, err := postgres.Open(ctx, "postgres://mcp@db.example.com:5432/mcp?pool_max_conns=20", postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	if err := model.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
}
