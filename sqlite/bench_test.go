package sqlite

import (
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/modelbench"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// BenchmarkModel measures token verification (GetToken) and issuance
// (SaveTokens of an access and a refresh token) on a SQLite file, the
// same benchmarks the root package runs on the memory model and the
// postgres package on PostgreSQL. Target: GetToken ≤ 10 µs.
func BenchmarkModel(b *testing.B) {
	modeltest.RunBenchmarks(b, func(b *testing.B) mcpoauth.Model { return newTestModel(b, Options{}) })
}

// BenchmarkServerOnModel is the per-call table of docs/performance.md on
// a SQLite file: verification, a client_credentials token and a full
// login, through the server.
func BenchmarkServerOnModel(b *testing.B) {
	modelbench.Run(b, func(b *testing.B) mcpoauth.Model { return newTestModel(b, Options{}) })
}

// BenchmarkServerOnModelSyncNormal is BenchmarkServerOnModel with
// synchronous=NORMAL (DurabilityProcess): what the fsync of every commit
// under the default synchronous=FULL costs the writes.
func BenchmarkServerOnModelSyncNormal(b *testing.B) {
	modelbench.Run(b, func(b *testing.B) mcpoauth.Model {
		return newTestModel(b, Options{Durability: DurabilityProcess})
	})
}
