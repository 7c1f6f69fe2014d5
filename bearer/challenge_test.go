package bearer

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// b64tokenRE is RFC 6750 §2.1 b64token, anchored.
var b64tokenRE = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

func TestParseAuthorization(t *testing.T) {
	long := "Bearer " + strings.Repeat("a", MaxAuthorizationLength-len("Bearer "))
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr error
	}{
		{"canonical", "Bearer abc", "abc", nil},
		{"scheme lower case", "bearer abc", "abc", nil},               // RFC 9110 §11.1
		{"scheme mixed case", "BeArEr abc", "abc", nil},               // RFC 9110 §11.1
		{"several spaces", "Bearer    abc", "abc", nil},               // 1*SP
		{"full alphabet", "Bearer aZ09-._~+/==", "aZ09-._~+/==", nil}, // b64token
		{"exactly max length", long, long[len("Bearer "):], nil},

		{"empty", "", "", ErrNoBearerToken},
		{"basic scheme", "Basic dXNlcjpwYXNz", "", ErrNoBearerToken},
		{"dpop scheme", "DPoP abc", "", ErrNoBearerToken},
		{"longer scheme name", "Bearerx abc", "", ErrNoBearerToken},
		{"scheme only other", "Negotiate", "", ErrNoBearerToken},

		{"scheme alone", "Bearer", "", ErrMalformedAuthorization},
		{"scheme and space", "Bearer ", "", ErrMalformedAuthorization},
		{"the TypeScript original accepted trailing junk", "Bearer a junk", "", ErrMalformedAuthorization},
		{"trailing space", "Bearer abc ", "", ErrMalformedAuthorization},
		{"tab separator", "Bearer\tabc", "", ErrMalformedAuthorization},
		{"comma separator", "Bearer,abc", "", ErrMalformedAuthorization},
		{"leading space", " Bearer abc", "", ErrMalformedAuthorization},
		{"only padding", "Bearer ==", "", ErrMalformedAuthorization},
		{"padding inside", "Bearer a=b", "", ErrMalformedAuthorization},
		{"quoted token", `Bearer "abc"`, "", ErrMalformedAuthorization},
		{"two credentials", "Bearer a, Bearer b", "", ErrMalformedAuthorization},
		{"auth-param syntax", "Bearer token=abc,x=y", "", ErrMalformedAuthorization},
		{"non-ascii", "Bearer abcé", "", ErrMalformedAuthorization},
		{"nul", "Bearer ab\x00c", "", ErrMalformedAuthorization},
		{"crlf", "Bearer abc\r\nX: y", "", ErrMalformedAuthorization},
		{"too long", long + "a", "", ErrAuthorizationTooLarge},
		{"too long other scheme", "Basic " + strings.Repeat("a", MaxAuthorizationLength), "", ErrAuthorizationTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.header)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Empty(t, got)
				require.NotContains(t, err.Error(), "abc", "errors never echo the header")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	require.ErrorIs(t, ErrAuthorizationTooLarge, ErrMalformedAuthorization)
}

func TestParseAuthorizationDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseAuthorization("Bearer abc.def-ghi_jkl"); err != nil {
			t.Fatal(err)
		}
		_, _ = ParseAuthorization("Bearer a junk")
		_, _ = ParseAuthorization("Basic abc")
	})
	require.Zero(t, allocs)
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"", "Bearer abc", "bearer  a.b-c_d~e+f/g==", "Bearer", "Bearer ", "Bearer a junk",
		"Basic dXNlcjpwYXNz", "Bearer\tabc", "Bearer ==", "Bearer a=b", "BEARER x=",
		"Bearer " + strings.Repeat("x", MaxAuthorizationLength),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := ParseAuthorization(header)
		if err != nil {
			require.Empty(t, token)
			require.True(t, errors.Is(err, ErrNoBearerToken) || errors.Is(err, ErrMalformedAuthorization), "unexpected error %v", err)
			return
		}
		require.LessOrEqual(t, len(header), MaxAuthorizationLength)
		require.Regexp(t, b64tokenRE, token)
		require.True(t, strings.EqualFold(header[:6], "bearer"))
		require.Equal(t, token, strings.TrimLeft(header[6:], " "))
		require.Equal(t, byte(' '), header[6])
	})
}

// parseChallenge parses a Bearer challenge as RFC 9110 §11.2 defines
// auth-params with quoted-string values, to check Challenge from the other
// side. It refuses anything else, including duplicate parameters.
func parseChallenge(s string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(s, "Bearer")
	if !ok {
		return nil, errors.New("not a Bearer challenge")
	}
	params := map[string]string{}
	if rest == "" {
		return params, nil
	}
	rest, ok = strings.CutPrefix(rest, " ")
	if !ok {
		return nil, errors.New("no SP after scheme")
	}
	for {
		n := 0
		for n < len(rest) && isTchar[rest[n]] {
			n++
		}
		if n == 0 {
			return nil, errors.New("empty parameter name")
		}
		name := rest[:n]
		rest, ok = strings.CutPrefix(rest[n:], `="`)
		if !ok {
			return nil, errors.New("value is not a quoted-string")
		}
		var v strings.Builder
		closed := false
		for !closed {
			if rest == "" {
				return nil, errors.New("unterminated quoted-string")
			}
			c := rest[0]
			rest = rest[1:]
			switch {
			case c == '"':
				closed = true
			case c == '\\':
				if rest == "" {
					return nil, errors.New("dangling backslash")
				}
				v.WriteByte(rest[0])
				rest = rest[1:]
			case c < 0x20 && c != '\t' || c == 0x7f:
				return nil, errors.New("control character in quoted-string")
			default:
				v.WriteByte(c)
			}
		}
		if _, dup := params[name]; dup {
			return nil, errors.New("duplicate parameter " + name)
		}
		params[name] = v.String()
		if rest == "" {
			return params, nil
		}
		rest, ok = strings.CutPrefix(rest, ", ")
		if !ok {
			return nil, errors.New("parameters not separated by comma")
		}
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		name   string
		params ChallengeParams
		want   string
	}{
		{"empty", ChallengeParams{}, "Bearer"},
		{
			"no credentials: no error code (RFC 6750 §3)",
			ChallengeParams{Scope: "a b", ResourceMetadata: "https://rs/.well-known/oauth-protected-resource"},
			`Bearer resource_metadata="https://rs/.well-known/oauth-protected-resource", scope="a b"`,
		},
		{
			"all parameters",
			ChallengeParams{Error: "insufficient_scope", ErrorDescription: "need more", Scope: "a b", ResourceMetadata: "https://rs/prm"},
			`Bearer error="insufficient_scope", error_description="need more", resource_metadata="https://rs/prm", scope="a b"`,
		},
		{"error only", ChallengeParams{Error: "invalid_token"}, `Bearer error="invalid_token"`},
		{
			"quote and backslash escaped (RFC 9110 §5.6.4)",
			ChallengeParams{ResourceMetadata: `https://rs/a"b\c`},
			`Bearer resource_metadata="https://rs/a\"b\\c"`,
		},
		{
			"escaped quote cannot end the value and smuggle a parameter",
			ChallengeParams{Scope: `x", error="invalid_token`},
			`Bearer scope="x\", error=\"invalid_token"`,
		},
		{
			"control characters dropped, tab kept",
			ChallengeParams{ErrorDescription: "a\r\nWWW-Authenticate: x\x00\x7f\tb"},
			"Bearer error_description=\"aWWW-Authenticate: x\tb\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Challenge(tt.params)
			require.Equal(t, tt.want, got)
			_, err := parseChallenge(got)
			require.NoError(t, err)
		})
	}
}

// dropCTL is what Challenge does to control characters.
func dropCTL(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f || c == '\t' {
			b = append(b, c)
		}
	}
	return string(b)
}

func FuzzChallenge(f *testing.F) {
	f.Add("invalid_token", "The access token is invalid", "mcp:tools", "https://rs/prm")
	f.Add("", "", `a"b\c`, "\r\n")
	f.Add(`\`, `"`, `\"`, `", x="`)
	f.Fuzz(func(t *testing.T, e, desc, scope, prm string) {
		p := ChallengeParams{Error: e, ErrorDescription: desc, Scope: scope, ResourceMetadata: prm}
		got := Challenge(p)
		require.NotContains(t, got, "\r")
		require.NotContains(t, got, "\n")
		require.NotContains(t, got, "\x00")
		params, err := parseChallenge(got)
		require.NoError(t, err, "challenge %q", got)
		want := map[string]string{}
		for name, v := range map[string]string{"error": e, "error_description": desc, "scope": scope, "resource_metadata": prm} {
			if v != "" {
				want[name] = dropCTL(v)
			}
		}
		require.Equal(t, want, params)
	})
}
