package modeltest

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

// benchTokens is how many tokens the GetToken benchmarks look up, round
// robin; a power of two.
const benchTokens = 1 << 10

// RunBenchmarks measures the two operations on the path of every request
// that uses the Model most, as sub-benchmarks of b:
//
//   - GetToken: token verification, one lookup of a stored access token
//     (as RequireBearerAuth does on every protected request);
//   - GetTokenParallel: the same from GOMAXPROCS goroutines;
//   - SaveTokens: token issuance, one access and one refresh token saved
//     in one call (as every token response does).
//
// newModel must return a fresh, empty model, as for Run; it is called once
// per sub-benchmark run.
func RunBenchmarks(b *testing.B, newModel func(b *testing.B) mcpoauth.Model) {
	b.Run("GetToken", func(b *testing.B) {
		m, ds := benchModel(b, newModel)
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := m.GetToken(ctx, ds[i&(benchTokens-1)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetTokenParallel", func(b *testing.B) {
		m, ds := benchModel(b, newModel)
		ctx := context.Background()
		var seed atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				if _, err := m.GetToken(ctx, ds[i&(benchTokens-1)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("SaveTokens", func(b *testing.B) {
		m := newModel(b)
		ctx := context.Background()
		f := newBenchFactory()
		b.ReportAllocs()
		for b.Loop() {
			g := f.grantID()
			if err := m.SaveTokens(ctx, f.token(mcpoauth.AccessToken, g), f.token(mcpoauth.RefreshToken, g)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchModel returns a fresh model holding benchTokens access tokens, and
// their digests.
func benchModel(b *testing.B, newModel func(b *testing.B) mcpoauth.Model) (mcpoauth.Model, []mcpoauth.Digest) {
	b.Helper()
	m := newModel(b)
	f := newBenchFactory()
	ds := make([]mcpoauth.Digest, 0, benchTokens)
	batch := make([]*mcpoauth.Token, 0, 64)
	for len(ds) < benchTokens {
		batch = batch[:0]
		for range cap(batch) {
			tok := f.token(mcpoauth.AccessToken, f.grantID())
			batch = append(batch, tok)
			ds = append(ds, tok.Digest)
		}
		if err := m.SaveTokens(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	return m, ds
}

// benchFactory makes distinct tokens cheaply: a random prefix and a
// counter, so that the cost measured is the Model's, not crypto/rand's.
type benchFactory struct {
	prefix mcpoauth.Digest
	n      uint64
	now    time.Time
}

func newBenchFactory() *benchFactory {
	return &benchFactory{prefix: newDigest(), now: time.Now().Round(0)}
}

func (f *benchFactory) digest() mcpoauth.Digest {
	f.n++
	d := f.prefix
	binary.BigEndian.PutUint64(d[:8], f.n)
	return d
}

func (f *benchFactory) grantID() string {
	d := f.digest()
	return d.String()[:32]
}

func (f *benchFactory) token(kind mcpoauth.TokenKind, grantID string) *mcpoauth.Token {
	return &mcpoauth.Token{
		Digest:         f.digest(),
		Kind:           kind,
		ClientID:       clientA,
		UserID:         "user-1",
		GrantID:        grantID,
		Scopes:         []string{"mcp:tools"},
		Resource:       "https://mcp.example.com/mcp",
		IssuedAt:       f.now,
		ExpiresAt:      f.now.Add(time.Hour),
		GrantExpiresAt: f.now.Add(30 * 24 * time.Hour),
	}
}
