// Package dpop checks RFC 9449 DPoP proofs: the JWTs a client sends in the
// DPoP header to prove it holds the private key an access token is bound to.
// The authorization server checks them at its token endpoint and binds the
// tokens it issues to the key's RFC 7638 thumbprint (cnf.jkt); a resource
// server checks them on every request that presents a DPoP-bound token
// (bearer.Options.DPoP). A Verifier also issues the server nonces of RFC
// 9449 §8 and §9, stateless, so that replicas sharing Options.NonceKey accept
// each other's.
//
// The package is a leaf: it imports go-jose for the JSON Web Key and JWS
// work, and writes no cryptography of its own.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Names of RFC 9449.
const (
	// Scheme is the authorization scheme of a DPoP-bound access token
	// (RFC 9449 §7.1), and the token_type of a token response that issued
	// one (§5.1).
	Scheme = "DPoP"
	// Header is the request header that carries the proof (§4.1).
	Header = "DPoP"
	// NonceHeader carries a server nonce in responses (§8.1).
	NonceHeader = "DPoP-Nonce"
	// ProofType is the typ header of a proof (§4.2).
	ProofType = "dpop+jwt"
	// ErrorInvalidProof and ErrorUseNonce are the error codes of §5.4, §7.1
	// and §8.
	ErrorInvalidProof = "invalid_dpop_proof"
	ErrorUseNonce     = "use_dpop_nonce"
)

// Defaults of Options.
const (
	// DefaultMaxAge is how old a proof's iat may be: proofs are made for
	// one request, just before it (RFC 9449 §11.1).
	DefaultMaxAge = time.Minute
	// DefaultClockSkew is how far in the future iat may be.
	DefaultClockSkew = 5 * time.Second
	// DefaultNonceLifetime is how long a server nonce is accepted; a new
	// one is handed out each NonceLifetime/4.
	DefaultNonceLifetime = 5 * time.Minute
	// DefaultReplayCacheSize bounds the proof ids remembered per Verifier.
	DefaultReplayCacheSize = 100_000
)

// DefaultAlgorithms are the signature algorithms accepted by default:
// asymmetric only (RFC 9449 §4.3 forbids none and MACs).
var DefaultAlgorithms = []string{"ES256", "RS256", "PS256", "EdDSA"}

// supportedAlgorithms are the algorithms Options.Algorithms may name.
var supportedAlgorithms = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

// Limits on what a proof may carry.
const (
	maxProofLength = 8 << 10
	maxJTILength   = 256
	minRSABits     = 2048
)

// ErrInvalidProof is wrapped by every error about a proof that is missing,
// malformed, signed wrongly, stale, replayed or made for another request:
// the token endpoint answers it 400 invalid_dpop_proof, a resource server
// 401 with a DPoP challenge of that error (RFC 9449 §5.4, §7.1).
var ErrInvalidProof = errors.New("dpop: invalid DPoP proof")

// ErrUseNonce is returned for a proof without the server's current nonce
// while nonces are required: the server answers use_dpop_nonce with a fresh
// nonce in the DPoP-Nonce header (RFC 9449 §8, §9), and the client retries.
var ErrUseNonce = errors.New("dpop: a server nonce is required")

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidProof, reason) }

// Options configures NewVerifier. The zero value is the default: every
// algorithm of DefaultAlgorithms, proofs up to a minute old, nonces required
// with a key of this process.
type Options struct {
	// Algorithms are the JWS algorithms a proof may be signed with
	// (dpop_signing_alg_values_supported). Default DefaultAlgorithms.
	Algorithms []string
	// MaxAge bounds how old a proof's iat may be; DefaultMaxAge by default.
	MaxAge time.Duration
	// ClockSkew is how far in the future iat may be; DefaultClockSkew.
	ClockSkew time.Duration
	// DisableNonces accepts proofs without a server nonce. By default a
	// proof must carry a nonce this Verifier (or one with the same
	// NonceKey) issued within NonceLifetime: the nonce bounds a proof's
	// lifetime by the server's clock, across replicas whose replay caches
	// are each their own.
	DisableNonces bool
	// NonceKey is the HMAC key nonces are made with, at least 32 bytes.
	// Replicas behind one load balancer share it, so a nonce one issued is
	// accepted by all. Default: random, this process only.
	NonceKey []byte
	// NonceLifetime is how long a nonce is accepted; DefaultNonceLifetime.
	NonceLifetime time.Duration
	// ReplayCacheSize bounds the proofs remembered to refuse a replay
	// (RFC 9449 §11.1), in this process; DefaultReplayCacheSize. When it is
	// full the oldest are forgotten, and every proof not newer than one
	// forgotten is refused: a replay is never accepted for lack of room.
	ReplayCacheSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs and issues nonces. It is safe for concurrent
// use; each Verifier has its own replay cache.
type Verifier struct {
	algs          []jose.SignatureAlgorithm
	algNames      []string
	maxAge, skew  time.Duration
	nonces        bool
	nonceKey      []byte
	nonceLifetime time.Duration
	now           func() time.Time
	replay        replayCache

	nonceMu   sync.Mutex
	nonceSlot int64
	nonce     string
}

// NewVerifier checks opts and returns a Verifier.
func NewVerifier(opts Options) (*Verifier, error) {
	v := &Verifier{
		maxAge:        or(opts.MaxAge, DefaultMaxAge),
		skew:          or(opts.ClockSkew, DefaultClockSkew),
		nonces:        !opts.DisableNonces,
		nonceLifetime: or(opts.NonceLifetime, DefaultNonceLifetime),
		now:           opts.Now,
	}
	if v.maxAge < 0 || v.skew < 0 || v.nonceLifetime < 4*time.Second {
		return nil, errors.New("dpop: MaxAge and ClockSkew must not be negative, NonceLifetime at least 4s")
	}
	if v.now == nil {
		v.now = time.Now
	}
	names := opts.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	for _, a := range names {
		if !contains(supportedAlgorithms, a) {
			return nil, fmt.Errorf("dpop: unsupported algorithm %q (use %s)", a, strings.Join(supportedAlgorithms, ", "))
		}
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
		v.algNames = append(v.algNames, a)
	}
	switch {
	case opts.NonceKey == nil:
		v.nonceKey = make([]byte, 32)
		_, _ = rand.Read(v.nonceKey)
	case len(opts.NonceKey) < 32:
		return nil, errors.New("dpop: NonceKey must be at least 32 bytes")
	default:
		v.nonceKey = append([]byte(nil), opts.NonceKey...)
	}
	size := opts.ReplayCacheSize
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	v.replay.init(size)
	return v, nil
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Algorithms returns the accepted algorithms, for
// dpop_signing_alg_values_supported and the algs of a DPoP challenge.
func (v *Verifier) Algorithms() []string { return append([]string(nil), v.algNames...) }

// NoncesRequired reports whether proofs must carry a server nonce.
func (v *Verifier) NoncesRequired() bool { return v.nonces }

// Request is what a proof must match: the request it came with.
type Request struct {
	// Method is the HTTP method (htm).
	Method string
	// URL is the request's target URI (htu), absolute; its query and
	// fragment are ignored (RFC 9449 §4.3).
	URL string
	// AccessToken, when the request presents one (to a resource server),
	// must hash to the proof's ath (RFC 9449 §4.3, §7.1). Empty at the
	// token endpoint, where a proof must carry no ath.
	AccessToken string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: what a token is bound to (cnf.jkt, RFC 9449 §6.1).
	JKT string
	// ID is the proof's jti.
	ID string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// NewNonce, when not empty, is a fresher nonce than the proof's, for
	// the response's DPoP-Nonce header (RFC 9449 §8.2).
	NewNonce string
}

// proofClaims are the claims of RFC 9449 §4.2.
type proofClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	Nonce *string         `json:"nonce"`
	ATH   *string         `json:"ath"`
}

// Verify checks one proof against the request it came with, as RFC 9449
// §4.3 lists: one well-formed JWS whose typ is dpop+jwt, signed with an
// allowed algorithm by the public key in its jwk header (never a private
// key), whose htm and htu name this request, whose iat is recent, whose jti
// was not seen before (per key), whose nonce is one this server issued (while
// nonces are required), and whose ath is the hash of the access token
// presented (or absent when none is). Errors wrap ErrInvalidProof, or are
// ErrUseNonce; they never contain the proof.
func (v *Verifier) Verify(proof string, req Request) (*Proof, error) {
	if proof == "" {
		return nil, invalid("the DPoP header is missing")
	}
	if len(proof) > maxProofLength {
		return nil, invalid("the proof is too long")
	}
	jws, err := jose.ParseSignedCompact(proof, v.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalid("not a JWS signed with an allowed algorithm")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, ProofType) {
		return nil, invalid("typ must be dpop+jwt")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		// go-jose refuses a private jwk as it parses; this says why anyway.
		return nil, invalid("the jwk header must be a public key")
	}
	if err := checkKey(jwk.Key, h.Algorithm); err != nil {
		return nil, err
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalid("bad signature")
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("the claims are not a JSON object")
	}
	now := v.now()
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTILength:
		return nil, invalid("jti is missing or too long")
	case c.HTM != req.Method:
		return nil, invalid("htm does not match the request method")
	case !SameTarget(c.HTU, req.URL):
		return nil, invalid("htu does not match the request URL")
	}
	var iat float64
	if len(c.IAT) == 0 || c.IAT[0] == '"' || json.Unmarshal(c.IAT, &iat) != nil {
		return nil, invalid("iat is missing or not a number")
	}
	issued := time.Unix(int64(iat), 0)
	if issued.Before(now.Add(-v.maxAge)) || issued.After(now.Add(v.skew)) {
		return nil, invalid("iat is outside the acceptable window")
	}
	switch {
	case req.AccessToken == "" && c.ATH != nil:
		return nil, invalid("ath is present but no access token is")
	case req.AccessToken != "":
		if c.ATH == nil {
			return nil, invalid("ath is missing")
		}
		sum := sha256.Sum256([]byte(req.AccessToken))
		var want [43]byte // base64url of 32 bytes, unpadded: no allocation
		base64.RawURLEncoding.Encode(want[:], sum[:])
		if subtle.ConstantTimeCompare([]byte(*c.ATH), want[:]) != 1 {
			return nil, invalid("ath does not match the access token")
		}
	}
	p := &Proof{ID: c.JTI, IssuedAt: issued}
	if v.nonces {
		if c.Nonce == nil {
			return nil, ErrUseNonce
		}
		slot, ok := v.checkNonce(*c.Nonce, now)
		if !ok {
			return nil, ErrUseNonce
		}
		if slot != v.slot(now) {
			p.NewNonce = v.Nonce()
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalid("the key has no thumbprint")
	}
	p.JKT = base64.RawURLEncoding.EncodeToString(tp)
	// Last, so that a proof refused for another reason is not remembered.
	if !v.replay.add(p.JKT, c.JTI, issued, issued.Add(v.maxAge+v.skew), now) {
		return nil, invalid("the proof was used before")
	}
	return p, nil
}

// checkKey refuses keys too weak for their algorithm.
func checkKey(key any, alg string) error {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return invalid("the key does not fit the algorithm")
		}
	case *rsa.PublicKey:
		if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return invalid("the key does not fit the algorithm")
		}
		if k.N.BitLen() < minRSABits {
			return invalid("the RSA key is shorter than 2048 bits")
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return invalid("the key does not fit the algorithm")
		}
	default:
		return invalid("unsupported key type")
	}
	return nil
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a public key,
// base64url, as cnf.jkt carries it: *ecdsa.PublicKey, *rsa.PublicKey or
// ed25519.PublicKey.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// AccessTokenHash returns the ath of an access token (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SameTarget reports whether a proof's htu names target, both absolute
// URIs, ignoring query and fragment (RFC 9449 §4.3) after RFC 3986 §6.2.2
// and §6.2.3 normalisation: case of scheme and host, default port, empty
// path.
func SameTarget(htu, target string) bool {
	a, ok := normalize(htu)
	if !ok {
		return false
	}
	b, ok := normalize(target)
	return ok && a == b
}

func normalize(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host += ":" + port
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}

// Nonce returns the current server nonce, for a DPoP-Nonce header. It
// changes each NonceLifetime/4 and is accepted for NonceLifetime.
func (v *Verifier) Nonce() string {
	slot := v.slot(v.now())
	v.nonceMu.Lock()
	defer v.nonceMu.Unlock()
	if slot != v.nonceSlot || v.nonce == "" {
		v.nonceSlot, v.nonce = slot, v.makeNonce(slot)
	}
	return v.nonce
}

// slot numbers the period a nonce is issued in.
func (v *Verifier) slot(now time.Time) int64 { return now.UnixNano() / int64(v.nonceLifetime/4) }

// makeNonce is the slot and an HMAC of it under the nonce key: a nonce
// needs no storage, and replicas with the same key accept each other's.
func (v *Verifier) makeNonce(slot int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(slot))
	mac := hmac.New(sha256.New, v.nonceKey)
	mac.Write([]byte("dpop-nonce\x00"))
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether nonce was issued by this key within the
// nonce lifetime, and its slot.
func (v *Verifier) checkNonce(nonce string, now time.Time) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return 0, false
	}
	slot := int64(binary.BigEndian.Uint64(b[:8]))
	cur := v.slot(now)
	// Four slots make a lifetime; one slot ahead covers replicas whose
	// clocks differ a little.
	if slot > cur+1 || slot <= cur-4 {
		return 0, false
	}
	return slot, hmac.Equal([]byte(v.makeNonce(slot)), []byte(nonce))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
