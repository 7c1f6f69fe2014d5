package httpx

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// parseQuery must agree with url.ParseQuery on every input: values, their
// order, and the error.
func requireSameAsParseQuery(t *testing.T, q string) {
	t.Helper()
	want, wantErr := url.ParseQuery(q)
	got, gotErr := parseQuery(q)
	require.Equal(t, want, got, "query %q", q)
	if wantErr == nil {
		require.NoError(t, gotErr, "query %q", q)
	} else {
		require.EqualError(t, gotErr, wantErr.Error(), "query %q", q)
	}
}

// QueryValue must agree with url.ParseQuery's Get for every query and name.
func requireSameValue(t *testing.T, q string) {
	t.Helper()
	want, _ := url.ParseQuery(q)
	for _, name := range []string{"a", "b", "a b", "", "é"} {
		require.Equal(t, want.Get(name), QueryValue(q, name), "query %q, name %q", q, name)
	}
}

func TestParseQueryMatchesURL(t *testing.T) {
	for _, q := range []string{
		"", "&", "&&", "a", "a=", "=b", "=", "a=1", "a=1&b=2", "a=1&a=2&b=3&a=4",
		"grant_type=client_credentials&scope=mcp%3Atools",
		"a=%zz", "%zz=1", "a=1&b=%", "a=1;b=2", "a;=1", "a=+b+c", "a+b=c%20d",
		"a==b", "a=1&&b=2&", "&a=1", "x=%E2%82%AC&y=\u20ac",
		strings.Repeat("a=1&", maxFastParams-1) + "a=2",
		strings.Repeat("a=1&", maxFastParams) + "a=2",
		strings.Repeat("k=v&", 20000),
	} {
		requireSameAsParseQuery(t, q)
		requireSameValue(t, q)
	}
	// Random queries over an alphabet rich in separators and escapes.
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "ab=&;%2+0fzé"
	for range 20_000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		requireSameAsParseQuery(t, string(b))
		requireSameValue(t, string(b))
	}
}

// Appending to a parsed value must not change another key's.
func TestParseQueryValuesAreIndependent(t *testing.T) {
	m, err := parseQuery("a=1&b=2")
	require.NoError(t, err)
	m["a"] = append(m["a"], "x")
	require.Equal(t, []string{"2"}, m["b"])
	require.Equal(t, []string{"1", "x"}, m["a"])
}

func FuzzParseQueryMatchesURL(f *testing.F) {
	for _, q := range []string{"a=1&b=2", "a=%zz", "a;b", "grant_type=x&scope=a+b"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		requireSameAsParseQuery(t, q)
		requireSameValue(t, q)
	})
}
