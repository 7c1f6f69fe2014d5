package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// newTestModel returns a Model on a fresh file in the test's temporary
// directory, closed when tb ends.
func newTestModel(tb testing.TB, opts Options) *Model {
	tb.Helper()
	return openTestModel(tb, filepath.Join(tb.TempDir(), "oauth.db"), opts)
}

// openTestModel returns a Model on path, closed when tb ends.
func openTestModel(tb testing.TB, path string, opts Options) *Model {
	tb.Helper()
	m, err := Open(tb.Context(), path, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, m.Close()) })
	return m
}

func TestConformance(t *testing.T) {
	modeltest.Run(t, func(t *testing.T) mcpoauth.Model { return newTestModel(t, Options{}) })
}
