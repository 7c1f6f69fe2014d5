// Package jose wraps github.com/go-jose/go-jose/v4 for what the server
// signs: a key set whose first key signs and whose every key is published
// as a JSON Web Key Set (RFC 7517 §5). No cryptography is written here.
package jose

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// Signature algorithms (RFC 7518 §3.1, RFC 8037 §3.1) the server signs with
// and the verifiers accept: asymmetric only, never none or HMAC.
const (
	ES256 = string(jose.ES256)
	RS256 = string(jose.RS256)
	PS256 = string(jose.PS256)
	EdDSA = string(jose.EdDSA)
)

// Algorithms is the allow-list, in the order of preference.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// minRSABits is the least RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

// Key is one signing key: the private key, its kid ("" for its RFC 7638
// thumbprint) and its algorithm ("" for the key type's default).
type Key struct {
	Signer    crypto.Signer
	KeyID     string
	Algorithm string
}

// KeySet signs with its first key and publishes every key's public half.
type KeySet struct {
	signer jose.Signer
	kid    string
	kids   map[string]bool
	jwks   []byte
}

// NewKeySet checks keys and prepares the signer of the first one, whose
// JWS header carries typ (RFC 7515 §4.1.9) and the kid.
func NewKeySet(keys []Key, typ string) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("no signing key")
	}
	ks := &KeySet{kids: map[string]bool{}}
	var set jose.JSONWebKeySet
	for i, k := range keys {
		if k.Signer == nil {
			return nil, fmt.Errorf("key %d: no private key", i)
		}
		alg, err := algorithm(k.Signer.Public(), k.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		pub := jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.KeyID, Algorithm: alg, Use: "sig"}
		if pub.KeyID == "" {
			tp, err := pub.Thumbprint(crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
			pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
		}
		if ks.kids[pub.KeyID] {
			return nil, fmt.Errorf("key %d: kid %q is used twice", i, pub.KeyID)
		}
		ks.kids[pub.KeyID] = true
		set.Keys = append(set.Keys, pub)
		if i == 0 {
			opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), pub.KeyID)
			ks.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: signingKey(k.Signer)}, opts)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
			ks.kid = pub.KeyID
		}
	}
	var err error
	if ks.jwks, err = json.Marshal(set); err != nil {
		return nil, err
	}
	return ks, nil
}

// signingKey hands go-jose the key itself when it knows the type (the
// faster path), else wraps the crypto.Signer (an HSM or KMS key).
func signingKey(s crypto.Signer) any {
	switch k := s.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
		return k
	case ed25519.PrivateKey:
		return k
	}
	return cryptosigner.Opaque(s)
}

// algorithm settles the algorithm of a public key: ES256 for P-256, RS256
// (or PS256 when asked) for RSA of at least 2048 bits, EdDSA for Ed25519.
func algorithm(pub crypto.PublicKey, want string) (string, error) {
	var def string
	var ok []string
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", errors.New("an ECDSA key must be on P-256 (ES256)")
		}
		def, ok = ES256, []string{ES256}
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return "", fmt.Errorf("an RSA key must have at least %d bits", minRSABits)
		}
		def, ok = RS256, []string{RS256, PS256}
	case ed25519.PublicKey:
		def, ok = EdDSA, []string{EdDSA}
	default:
		return "", fmt.Errorf("unsupported key type %T: use ECDSA P-256, RSA or Ed25519", pub)
	}
	if want == "" {
		return def, nil
	}
	for _, a := range ok {
		if a == want {
			return a, nil
		}
	}
	return "", fmt.Errorf("algorithm %q does not fit the key (use one of %q)", want, ok)
}

// Sign returns the JWS compact serialization of payload signed by the
// first key.
func (ks *KeySet) Sign(payload []byte) (string, error) {
	obj, err := ks.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// SigningKeyID is the kid of the key that signs.
func (ks *KeySet) SigningKeyID() string { return ks.kid }

// Published reports whether kid names a key of the set.
func (ks *KeySet) Published(kid string) bool { return ks.kids[kid] }

// maxHeader bounds the JWS header PublishedKeyOf decodes; the server's
// headers are under 100 bytes.
const maxHeader = 512

// PublishedKeyOf reports whether the kid in the header of compact, a JWS
// whose integrity is already known (the server found its digest among
// those it issued), names a key of the set. It verifies nothing, and does
// not allocate: it is on the path of every protected request.
func (ks *KeySet) PublishedKeyOf(compact string) bool {
	end := strings.IndexByte(compact, '.')
	if end < 0 || base64.RawURLEncoding.DecodedLen(end) > maxHeader {
		return false
	}
	// Decoded a quantum at a time through arrays on the stack: converting
	// the whole header to []byte would allocate.
	var buf [maxHeader]byte
	n := 0
	for i := 0; i < end; i += 4 {
		var in [4]byte
		m := copy(in[:], compact[i:min(i+4, end)])
		k, err := base64.RawURLEncoding.Decode(buf[n:], in[:m])
		if err != nil {
			return false
		}
		n += k
	}
	h := buf[:n]
	const key = `"kid":"`
	i := bytes.Index(h, []byte(key))
	if i < 0 {
		return false
	}
	h = h[i+len(key):]
	j := bytes.IndexByte(h, '"')
	return j >= 0 && ks.kids[string(h[:j])]
}

// JWKS is the RFC 7517 §5 JSON Web Key Set of the public keys.
func (ks *KeySet) JWKS() []byte { return ks.jwks }
