package secret

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewIsUnreservedAnd256Bits(t *testing.T) {
	unreserved := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 1000 {
		s := New()
		require.Regexp(t, unreserved, s)
		require.False(t, seen[s], "duplicate credential")
		seen[s] = true
	}
}

func TestDigestAndEqual(t *testing.T) {
	a, b := Digest("one"), Digest("two")
	require.True(t, Equal(a, Digest("one")))
	require.False(t, Equal(a, b))
	require.NotEqual(t, "one", a.String())
	require.Len(t, a.String(), 64)
}
