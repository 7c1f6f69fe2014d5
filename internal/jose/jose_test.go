package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// hsmKey is a crypto.Signer that is none of the key types go-jose knows,
// as a key in an HSM or a KMS is.
type hsmKey struct{ k *ecdsa.PrivateKey }

func (h hsmKey) Public() crypto.PublicKey { return h.k.Public() }
func (h hsmKey) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return h.k.Sign(r, d, o)
}

func TestKeySetSignsWithTheFirstKeyAndPublishesAll(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	for _, tc := range []struct {
		rule    string
		key     Key
		wantAlg string
		wantErr string
	}{
		{"ES256 is the default for P-256", Key{Signer: p256}, ES256, ""},
		{"RS256 is the default for RSA", Key{Signer: rsaKey}, RS256, ""},
		{"PS256 on request for RSA", Key{Signer: rsaKey, Algorithm: PS256}, PS256, ""},
		{"EdDSA for Ed25519", Key{Signer: edKey}, EdDSA, ""},
		{"an opaque crypto.Signer (HSM) signs", Key{Signer: hsmKey{p256}}, ES256, ""},
		{"RFC 9068 §4 allow-list: no HMAC", Key{Signer: p256, Algorithm: "HS256"}, "", "does not fit"},
		{"RFC 9068 §4 allow-list: no none", Key{Signer: p256, Algorithm: "none"}, "", "does not fit"},
		{"ES384 is outside the allow-list", Key{Signer: p384}, "", "P-256"},
		{"RFC 7518 §3.3: RSA keys of 2048 bits at least", Key{Signer: rsaSmall}, "", "2048"},
		{"RS256 does not fit an EC key", Key{Signer: p256, Algorithm: RS256}, "", "does not fit"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			ks, err := NewKeySet([]Key{tc.key}, "at+jwt")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tok, err := ks.Sign([]byte(`{"sub":"alice"}`))
			require.NoError(t, err)
			obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.wantAlg)})
			require.NoError(t, err)
			h := obj.Signatures[0].Header
			require.Equal(t, ks.SigningKeyID(), h.KeyID)
			require.Equal(t, "at+jwt", h.ExtraHeaders[jose.HeaderType])
			require.True(t, ks.PublishedKeyOf(tok))

			var set jose.JSONWebKeySet
			require.NoError(t, json.Unmarshal(ks.JWKS(), &set))
			require.Len(t, set.Keys, 1)
			require.True(t, set.Keys[0].IsPublic(), "the JWKS must hold public keys only")
			require.Equal(t, tc.wantAlg, set.Keys[0].Algorithm)
			payload, err := obj.Verify(set.Keys[0].Key)
			require.NoError(t, err)
			require.JSONEq(t, `{"sub":"alice"}`, string(payload))
		})
	}
}

func TestKeySetRotation(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	before, err := NewKeySet([]Key{{Signer: k1, KeyID: "k1"}}, "at+jwt")
	require.NoError(t, err)
	old, err := before.Sign([]byte(`{}`))
	require.NoError(t, err)

	rotated, err := NewKeySet([]Key{{Signer: k2, KeyID: "k2"}, {Signer: k1, KeyID: "k1"}}, "at+jwt")
	require.NoError(t, err)
	require.Equal(t, "k2", rotated.SigningKeyID())
	require.True(t, rotated.PublishedKeyOf(old), "the previous key stays published")
	require.Equal(t, 2, strings.Count(string(rotated.JWKS()), `"kid"`))

	removed, err := NewKeySet([]Key{{Signer: k2, KeyID: "k2"}}, "at+jwt")
	require.NoError(t, err)
	require.False(t, removed.PublishedKeyOf(old))
	require.False(t, removed.PublishedKeyOf("not a jws"))

	_, err = NewKeySet([]Key{{Signer: k1, KeyID: "a"}, {Signer: k2, KeyID: "a"}}, "at+jwt")
	require.ErrorContains(t, err, "twice")
	_, err = NewKeySet(nil, "at+jwt")
	require.Error(t, err)
}

func TestPublishedKeyOfDoesNotAllocate(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, err := NewKeySet([]Key{{Signer: k}}, "at+jwt")
	require.NoError(t, err)
	tok, err := ks.Sign([]byte(`{}`))
	require.NoError(t, err)
	require.Zero(t, testing.AllocsPerRun(100, func() { ks.PublishedKeyOf(tok) }))
}
