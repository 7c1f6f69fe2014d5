package mcpoauth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// newConformanceMemoryModel returns a fresh MemoryModel with its default
// background sweeper, as a server runs it, closed when the test ends.
func newConformanceMemoryModel(tb testing.TB) mcpoauth.Model {
	m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
	tb.Cleanup(func() { require.NoError(tb, m.Close()) })
	return m
}

func TestMemoryModelConformance(t *testing.T) {
	modeltest.Run(t, func(t *testing.T) mcpoauth.Model { return newConformanceMemoryModel(t) })
}

// BenchmarkMemoryModel measures token verification and issuance on the
// memory model, to compare with other Models (see postgres.BenchmarkModel).
// Its GetToken and GetTokenParallel are the memory model's lookup
// benchmarks.
func BenchmarkMemoryModel(b *testing.B) {
	modeltest.RunBenchmarks(b, func(b *testing.B) mcpoauth.Model { return newConformanceMemoryModel(b) })
}
