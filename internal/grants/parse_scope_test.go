package grants

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
)

// splitScope is ParseScope as it was written first, with strings.Split: the
// reference the allocation-light version must agree with.
func splitScope(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	var out []string
	for _, p := range strings.Split(s, " ") {
		if p == "" || !validScopeToken(p) {
			return nil, false
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, true
}

var scopeCases = []string{
	"", " ", "a", "a b", "a  b", " a", "a ", "a b a c b", "mcp:tools offline_access",
	"a\tb", "a\"b", `a\b`, "a\x7fb", "é", "!#[]~", "a b c d e f g h i j",
	"a b c d e f g h i j k l m n o p q r a s b t", "a b c d e f g h i j k l m n o p q a q p",
}

func TestParseScope(t *testing.T) {
	for _, s := range scopeCases {
		checkParseScope(t, s)
	}
	got, ok := ParseScope("b a b")
	require.True(t, ok)
	require.Equal(t, []string{"b", "a"}, got)
}

// TestParseScopeLarge: a scope of many distinct tokens, the most a form
// body can carry, is parsed in linear time.
func TestParseScopeLarge(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 64<<10; i++ {
		b.WriteString(strconv.Itoa(i % 10000))
		b.WriteByte(' ')
	}
	s := strings.TrimSpace(b.String())
	start := time.Now()
	got, ok := ParseScope(s)
	elapsed := time.Since(start)
	require.True(t, ok)
	require.Len(t, got, 10000)
	require.Equal(t, []string{"0", "1"}, got[:2])
	require.Equal(t, "9999", got[9999])
	// Pairwise comparison took about 250 ms here without the race
	// detector; a set takes about a millisecond.
	require.Less(t, elapsed, 100*time.Millisecond)
}

func FuzzParseScope(f *testing.F) {
	for _, s := range scopeCases {
		f.Add(s)
	}
	f.Fuzz(checkParseScope)
}

func checkParseScope(t *testing.T, s string) {
	want, wantOK := splitScope(s)
	got, ok := ParseScope(s)
	require.Equal(t, wantOK, ok, "%q", s)
	if ok {
		require.Equal(t, want, got, "%q", s)
	}
}

func TestSupportsAuthMethod(t *testing.T) {
	for _, s := range []*Service{{}, {Assertions: &clientjwt.Verifier{}}} {
		for _, m := range []string{"", "none", "client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth", "None"} {
			require.Equal(t, slices.Contains(s.AuthMethods(), m), s.supportsAuthMethod(m), m)
		}
	}
}
