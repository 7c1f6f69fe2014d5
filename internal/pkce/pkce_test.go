package pkce

import (
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

func FuzzVerify(f *testing.F) {
	f.Add(rfcVerifier, rfcChallenge)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, v, c string) {
		if Verify(v, c) {
			require.True(t, ValidVerifier(v))
			require.Equal(t, Challenge(v), c)
		}
	})
}
