package grants

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cyclingReader yields 0, 1, ..., 255, 0, 1, ... : every byte value equally
// often, so a uniform draw must give every letter exactly equally often.
type cyclingReader struct{ next byte }

func (c *cyclingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

// TestNewUserCodeIsUniform: RFC 8628 §6.1 user codes are drawn uniformly.
// Fed consecutive byte values, rejection sampling draws every one of the 20
// letters exactly equally often; a plain byte%20 (the TypeScript original's
// bias) draws the first 16 letters more often (840 times each here instead
// of 768), because 256 is not a multiple of 20.
func TestNewUserCodeIsUniform(t *testing.T) {
	src := &cyclingReader{}
	counts := map[byte]int{}
	for range 30 * 64 {
		code, err := NewUserCode(src)
		require.NoError(t, err)
		for i := 0; i < len(code); i++ {
			counts[code[i]]++
		}
	}
	require.Len(t, counts, len(UserCodeAlphabet))
	for i := 0; i < len(UserCodeAlphabet); i++ {
		require.Equal(t, 12*64, counts[UserCodeAlphabet[i]], "letter %c", UserCodeAlphabet[i])
	}
}

func TestNewUserCodeShape(t *testing.T) {
	shape := regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{8}$`)
	seen := map[string]bool{}
	for range 1000 {
		code, err := NewUserCode(rand.Reader)
		require.NoError(t, err)
		require.Regexp(t, shape, code)
		require.False(t, seen[code])
		seen[code] = true
	}
	require.Equal(t, "BCDF-GHJK", FormatUserCode("BCDFGHJK"))
	_, err := NewUserCode(bytes.NewReader(make([]byte, 3)))
	require.Error(t, err, "a short random source is an error, not a weak code")
}

// TestNormalizeUserCode: RFC 8628 §6.1: case-insensitive, dashes (and
// spaces) ignored; anything outside the alphabet refused.
func TestNormalizeUserCode(t *testing.T) {
	for in, want := range map[string]string{
		"BCDF-GHJK":       "BCDFGHJK",
		"bcdf-ghjk":       "BCDFGHJK",
		"bcdfghjk":        "BCDFGHJK",
		" bCdF ghJk ":     "BCDFGHJK",
		"B-C-D-F-G-H-J-K": "BCDFGHJK",
		"bcdf\tghjk":      "BCDFGHJK",
	} {
		got, ok := NormalizeUserCode(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{
		"", "BCDF-GHJ", "BCDF-GHJKL", "ACDF-GHJK", "BCDF-GHJ1", "BCDF_GHJK",
		"BCDF-GHJſ", // U+017F upper-cases to S outside ASCII: refused
		strings.Repeat("-", 60) + "BCDFGHJK",
	} {
		_, ok := NormalizeUserCode(in)
		require.False(t, ok, "%q", in)
	}
}

func TestDeviceCSRFToken(t *testing.T) {
	a, b := "browser-secret-a", "browser-secret-b"
	require.True(t, CheckDeviceCSRF(a, DeviceCSRFToken(a)))
	require.False(t, CheckDeviceCSRF(b, DeviceCSRFToken(a)), "bound to the browser")
	require.False(t, CheckDeviceCSRF("", DeviceCSRFToken("")), "no cookie, no token")
	require.NotEqual(t, CSRFToken(a, "x"), DeviceCSRFToken(a))
}
