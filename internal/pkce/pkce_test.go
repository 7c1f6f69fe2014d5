package pkce

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The RFC 7636 Appendix B example.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestVerify(t *testing.T) {
	require.True(t, Verify(rfcVerifier, rfcChallenge))
	require.Equal(t, rfcChallenge, Challenge(rfcVerifier))
	for name, tc := range map[string]struct{ v, c string }{
		"wrong verifier":          {strings.Repeat("a", 43), rfcChallenge},
		"plain (verifier==chal)":  {rfcChallenge, rfcChallenge},
		"empty challenge":         {rfcVerifier, ""},
		"short verifier":          {"abc", Challenge("abc")},
		"long verifier":           {strings.Repeat("a", 129), Challenge(strings.Repeat("a", 129))},
		"verifier with bad chars": {strings.Repeat("a", 42) + "+", Challenge(strings.Repeat("a", 42) + "+")},
		"padded challenge":        {rfcVerifier, rfcChallenge + "="},
	} {
		require.False(t, Verify(tc.v, tc.c), name)
	}
}

func TestValidVerifierBounds(t *testing.T) {
	require.True(t, ValidVerifier(strings.Repeat("a", 43)))
	require.True(t, ValidVerifier(strings.Repeat("~", 128)))
	require.False(t, ValidVerifier(strings.Repeat("a", 42)))
	require.False(t, ValidVerifier(strings.Repeat("a", 129)))
	require.False(t, ValidVerifier(strings.Repeat("a", 42)+" "))
}

func TestValidChallenge(t *testing.T) {
	require.True(t, ValidChallenge(rfcChallenge))
	require.False(t, ValidChallenge(""))
	require.False(t, ValidChallenge(rfcChallenge[:42]))
	require.False(t, ValidChallenge(strings.Repeat("a", 42)+"."))
}

// The RFC 7636 grammars: code-verifier = 43*128unreserved (§4.1), and an
// S256 code-challenge is the unpadded base64url of a SHA-256 digest (§4.2).
var (
	verifierRE  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

// FuzzVerify checks PKCE parsing against the RFC 7636 grammars, and that
// Verify accepts exactly a well-formed verifier with its own S256
// challenge: never plain (the verifier as its own challenge), never an
// empty or malformed challenge.
func FuzzVerify(f *testing.F) {
	f.Add(rfcVerifier, rfcChallenge)
	f.Add("", "")
	f.Add(rfcVerifier, rfcVerifier)
	f.Add(rfcVerifier[:42], Challenge(rfcVerifier[:42]))
	f.Add(strings.Repeat("~", 128), Challenge(strings.Repeat("~", 128)))
	f.Fuzz(func(t *testing.T, v, c string) {
		require.Equal(t, verifierRE.MatchString(v), ValidVerifier(v), "verifier %q", v)
		require.Equal(t, challengeRE.MatchString(c), ValidChallenge(c), "challenge %q", c)
		ok := Verify(v, c)
		require.Equal(t, ValidVerifier(v) && ValidChallenge(c) && Challenge(v) == c, ok)
		if ok {
			require.NotEqual(t, v, c, "plain is never accepted")
		}
	})
}
