package postgres

import (
	"testing"

	"github.com/mcpoauth/mcpoauth"
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
