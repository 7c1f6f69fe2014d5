package httpx

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var queryCases = []string{
	"", "a", "a=", "=", "=b", "&", "&&a=1&&", "a=1&b=2&a=3", "a=1&a=1&a=1",
	"a=%20x+y&b=%2B&c=%zz", "a=%4", "a=%", "a%=1", "%41%42=%43", "a=1;b=2", "a;=1", ";",
	"k+e+y=v+a+l", "client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=mcp%3Atools",
	"a=%e2%80%ae&b=%00&c=%ff%fe", "x=" + strings.Repeat("%41", 100) + "&y=" + strings.Repeat("+", 50),
	strings.Repeat("a=1&", 10001), strings.Repeat("a=1&", 9999) + "a=2",
}

// TestParseQueryMatchesNetURL: parseQuery accepts what url.ParseQuery
// accepts, with the same values, and refuses what it refuses.
func TestParseQueryMatchesNetURL(t *testing.T) {
	for _, q := range queryCases {
		checkQuery(t, q)
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, q := range queryCases {
		f.Add(q)
	}
	f.Fuzz(checkQuery)
}

func checkQuery(t *testing.T, q string) {
	want, wantErr := url.ParseQuery(q)
	got, err := parseQuery(q)
	if wantErr != nil {
		require.Error(t, err, "%.80q", q)
		return
	}
	require.NoError(t, err, "%.80q", q)
	require.Equal(t, want, got, "%.80q", q)
	// The slices are the form's own: appending to one never changes
	// another.
	for k := range got {
		got[k] = append(got[k], "appended")
	}
	for k, vs := range got {
		require.Equal(t, append(want[k], "appended"), vs, "%.80q", q)
	}
}

// sinkQuery keeps the parsed forms on the heap, as ParseForm's are.
var sinkQuery url.Values

func BenchmarkParseQuery(b *testing.B) {
	const q = "client_id=0b8f6b8e-4c1e-4f51-9a0b-5a3b0c1d2e3f&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback" +
		"&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256" +
		"&scope=mcp%3Atools&resource=http%3A%2F%2F127.0.0.1%3A8080%2Fmcp&state=bench-state"
	b.Run("net/url", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkQuery, _ = url.ParseQuery(q)
		}
	})
	b.Run("httpx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkQuery, _ = parseQuery(q)
		}
	})
}

func TestSetPair(t *testing.T) {
	h := http.Header{"Pragma": {"old"}}
	setPair(h, "Cache-Control", "no-store", "Pragma", "no-cache")
	require.Equal(t, http.Header{"Cache-Control": {"no-store"}, "Pragma": {"no-cache"}}, h)
	h.Add("Cache-Control", "private")
	require.Equal(t, []string{"no-cache"}, h["Pragma"], "an Add to one never reaches the other")
	require.Equal(t, []string{"no-store", "private"}, h.Values("Cache-Control"))
	for _, k := range []string{"Cache-Control", "Pragma", "Content-Type", "X-Content-Type-Options", "Location", "Referrer-Policy"} {
		require.Equal(t, http.CanonicalHeaderKey(k), k, "setPair needs canonical names")
	}
}
