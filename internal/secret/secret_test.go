package secret

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/record"
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

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := NewID()
		require.Regexp(t, `^[A-Za-z0-9_-]{22}$`, s)
		require.False(t, seen[s], "duplicate id")
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

// TestMACIsHMACSHA256 compares MAC with crypto/hmac for keys and messages
// on both sides of the stack path's bounds.
func TestMACIsHMACSHA256(t *testing.T) {
	for _, kl := range []int{0, 1, 43, 63, 64, 65, 200} {
		for _, ml := range []int{0, 1, 43, 127, 128, 129, 500} {
			key, msg := strings.Repeat("k", kl), strings.Repeat("m", ml)
			m := hmac.New(sha256.New, []byte(key))
			m.Write([]byte(msg))
			got := MAC(key, msg)
			require.Equal(t, m.Sum(nil), got[:], "key %d bytes, message %d bytes", kl, ml)
		}
	}
}

func TestDigestIsSHA256(t *testing.T) {
	for _, l := range []int{0, 43, 128, 129, 1000} {
		s := strings.Repeat("x", l)
		require.Equal(t, record.Digest(sha256.Sum256([]byte(s))), Digest(s))
	}
}

// The verification of every protected request digests the token: it must
// not allocate.
func TestDigestAndMACDoNotAllocate(t *testing.T) {
	tok, key := New(), New()
	var sink record.Digest
	var mac [32]byte
	require.Zero(t, testing.AllocsPerRun(100, func() { sink = Digest(tok) }))
	require.Zero(t, testing.AllocsPerRun(100, func() { mac = MAC(key, tok) }))
	_, _ = sink, mac
}

// Encode must be base64.RawURLEncoding at every length, on both sides of
// its stack buffer's 64-byte limit.
func TestEncodeIsRawURLBase64(t *testing.T) {
	b := make([]byte, 100)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	for n := range len(b) + 1 {
		require.Equal(t, base64.RawURLEncoding.EncodeToString(b[:n]), Encode(b[:n]), "length %d", n)
	}
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = Encode(b[:32]) }))
}
