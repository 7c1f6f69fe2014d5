package modeltest_test

import (
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// A Model's author runs the kit from a test of their package, with a
// function that returns a fresh, empty model for each subtest. Here the
// model is the MemoryModel; substitute your own, and your own Close.
func Example() {
	// In mystore_test.go:
	testConformance := func(t *testing.T) {
		modeltest.Run(t, func(t *testing.T) mcpoauth.Model {
			m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
			t.Cleanup(func() { _ = m.Close() })
			return m
		})
	}
	benchmarkModel := func(b *testing.B) {
		modeltest.RunBenchmarks(b, func(b *testing.B) mcpoauth.Model {
			m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
			b.Cleanup(func() { _ = m.Close() })
			return m
		})
	}
	_, _ = testConformance, benchmarkModel
}
