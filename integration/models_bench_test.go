package integration_test

import (
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/modelbench"
)

// BenchmarkServerOnModel is the per-call table of docs/performance.md on
// the memory model: verification, a client_credentials token and a full
// login. The sqlite and postgres packages run the same benchmarks
// (BenchmarkServerOnModel there), so the three compare.
func BenchmarkServerOnModel(b *testing.B) {
	modelbench.Run(b, func(b *testing.B) mcpoauth.Model {
		m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
		b.Cleanup(func() { _ = m.Close() })
		return m
	})
}
