package postgres

import (
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bench/modelbench"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// BenchmarkModel measures token verification (GetToken) and issuance
// (SaveTokens of an access and a refresh token) on PostgreSQL, the same
// benchmarks the root package runs on the memory model
// (BenchmarkMemoryModel), so the figures compare.
func BenchmarkModel(b *testing.B) {
	requirePostgres(b)
	modeltest.RunBenchmarks(b, func(b *testing.B) mcpoauth.Model { return newTestModel(b, Options{}) })
}

// BenchmarkServerOnModel is the per-call table of docs/performance.md on
// PostgreSQL: verification, a client_credentials token and a full login,
// through the server, as the integration and sqlite packages run them on
// the memory and SQLite models.
func BenchmarkServerOnModel(b *testing.B) {
	requirePostgres(b)
	modelbench.Run(b, func(b *testing.B) mcpoauth.Model { return newTestModel(b, Options{}) })
}
