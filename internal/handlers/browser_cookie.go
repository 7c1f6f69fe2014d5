package handlers

import (
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/secret"
)

// Browser binding: /authorize sets a random cookie and stores its digest with
// the pending request; the consent decision must present the same cookie and
// a CSRF token derived from it. A decision forged in another browser, or
// posted cross-site (the cookie is SameSite=Lax), fails (spec-checklist 53).

const (
	browserCookie       = "mcpoauth-browser"
	secureBrowserCookie = "__Host-mcpoauth-browser"
)

// BrowserSecret returns the browser-binding secret the request carries, or
// "" if it has none (or a malformed one).
func BrowserSecret(r *http.Request, secure bool) string {
	name := browserCookie
	if secure {
		name = secureBrowserCookie
	}
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	return c.Value
}

// ensureBrowserSecret returns the request's browser secret, setting a new
// cookie when it has none.
func ensureBrowserSecret(w http.ResponseWriter, r *http.Request, secure bool) string {
	if s := BrowserSecret(r, secure); s != "" {
		return s
	}
	s := secret.New()
	name := browserCookie
	if secure {
		name = secureBrowserCookie
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: s, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	return s
}
