package upstream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// errNoCookie says the cookie is absent, unreadable, tampered with or
// expired: all of them mean the same to a caller, nobody is signed in (or
// no sign-in is under way).
var errNoCookie = errors.New("upstream: no valid cookie")

// maxCookieSize bounds a cookie's name and value: browsers keep at least
// 4096 bytes of a cookie (RFC 6265 §6.1), attributes included.
const maxCookieSize = 3900

// sealer encrypts and authenticates cookie values with AES-256-GCM. The
// cookie's name is the additional data, so that a value sealed for one
// cookie (the login state) is refused as another (the session).
type sealer struct {
	aead   cipher.AEAD
	secure bool
}

func newSealer(key []byte, secure bool) (*sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("upstream: the cookie key %w", err)
	}
	return &sealer{aead: aead, secure: secure}, nil
}

// newAEAD returns AES-256-GCM under key, which must be 32 bytes. Its error
// completes a sentence whose subject names the key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("must be 32 bytes (AES-256), not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("is not an AES key: %w", err)
	}
	return cipher.NewGCM(block)
}

// name is the cookie's name: with the __Host- prefix when secure, which
// makes browsers refuse it unless Secure, host-only and Path=/ (RFC 6265bis
// §4.1.3.2), so a sibling subdomain cannot plant or shadow it.
func (s *sealer) name(base string) string {
	if s.secure {
		return "__Host-" + base
	}
	return base
}

// set seals v (JSON) into the cookie base, which the browser keeps until
// expires; the expiry is also inside the sealed value, where it cannot be
// extended.
func (s *sealer) set(w http.ResponseWriter, base string, v any, expires time.Time) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	name := s.name(base)
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(name))
	value := base64.RawURLEncoding.EncodeToString(sealed)
	if len(name)+len(value) > maxCookieSize {
		// A browser would drop it without a word, and the user would
		// sign in again and again.
		return fmt.Errorf("upstream: the %s cookie would be %d bytes, more than browsers keep (%d); keep Options.Claims small", base, len(name)+len(value), maxCookieSize)
	}
	http.SetCookie(w, s.cookie(name, value, expires))
	return nil
}

// open reads the cookie base into v.
func (s *sealer) open(r *http.Request, base string, v any) error {
	name := s.name(base)
	c, err := r.Cookie(name)
	if err != nil {
		return errNoCookie
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(sealed) < s.aead.NonceSize() {
		return errNoCookie
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return errNoCookie
	}
	if json.Unmarshal(plain, v) != nil {
		return errNoCookie
	}
	return nil
}

// clear tells the browser to drop the cookie base.
func (s *sealer) clear(w http.ResponseWriter, base string) {
	c := s.cookie(s.name(base), "", time.Unix(0, 0))
	c.MaxAge = -1
	http.SetCookie(w, c)
}

func (s *sealer) cookie(name, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   s.secure,
		// Lax: the cookie rides the top-level GET back from the provider
		// (the callback) and from the MCP client (the consent page).
		SameSite: http.SameSiteLaxMode,
	}
}
