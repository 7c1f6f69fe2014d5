package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/modelbench"
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

// BenchmarkGetToken measures the verification of one access token on
// PostgreSQL, without and with the verification cache (a hit: the token
// was verified before), the figures docs/performance.md compares with a
// bare request.
func BenchmarkGetToken(b *testing.B) {
	requirePostgres(b)
	for _, bc := range []struct {
		name  string
		cache bool
	}{{"database", false}, {"cache", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := newTestModel(b, Options{VerificationCache: bc.cache, SweepInterval: NoSweep})
			ctx := context.Background()
			now := time.Now()
			tok := &mcpoauth.Token{
				Digest: mcpoauth.Digest{1, 2, 3}, Kind: mcpoauth.AccessToken, ClientID: "c", UserID: "u", GrantID: "g",
				Scopes: []string{"mcp:tools"}, Resource: "https://mcp.example.com/mcp", IssuedAt: now, ExpiresAt: now.Add(time.Hour), GrantExpiresAt: now.Add(time.Hour),
			}
			if err := m.SaveTokens(ctx, tok); err != nil {
				b.Fatal(err)
			}
			if _, err := m.GetToken(ctx, tok.Digest); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.GetToken(ctx, tok.Digest); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
