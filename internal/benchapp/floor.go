package benchapp

import (
	"io"
	"net/http"
	"net/url"
)

// The login's HTTP floor: three handlers that answer a login's three
// requests with responses of the same status, headers and sizes as the
// server's (GET /authorize: 302 to the consent page with a browser cookie;
// POST /consent: 303 to the redirect URI with a code; POST /token: the
// token JSON), reading the request bodies but doing no OAuth work. A login
// run against them (loadgen -case login-floor) measures what net/http and
// the kernel cost for those three exchanges, which no change to the
// library can remove; the difference to a real login is the library's.
const (
	floorRequestID = "4wDiv9nWqU_1InTtXLqMzzT3Avw9GPUYn6xoctHA3XE"
	floorCookie    = "mcpoauth-browser=gAM0i3sthKvCfrU0SkQA3Yc06zvZxM7UzdUXDYlByuw; Path=/; HttpOnly; SameSite=Lax"
	floorCode      = "MUK3JQyXuLeyxnhpJa_waBBp4XPro3owKH0nsM7uUHU"
	floorTokenJSON = `{"access_token":"DSy_nqwu47ZSXzJzpY_6q5yywnTcIrtM_nGhu8mcO0A","token_type":"Bearer","expires_in":3600,"refresh_token":"2HPd8wPP6deRsliu-Tj-o-m3sluuaj1rBgcKqPrIqBc","scope":"mcp:tools"}`
)

// floorHeaders sets the headers the server sets on its redirects.
func floorHeaders(h http.Header, location string) {
	h["Cache-Control"] = []string{"no-store"}
	h["Pragma"] = []string{"no-cache"}
	h["Referrer-Policy"] = []string{"no-referrer"}
	h["Location"] = []string{location}
}

func (a *App) floorAuthorize(w http.ResponseWriter, _ *http.Request) {
	floorHeaders(w.Header(), a.Base+"/floor/consent?request_id="+floorRequestID)
	w.Header()["Set-Cookie"] = []string{floorCookie}
	w.WriteHeader(http.StatusFound)
}

func (a *App) floorConsent(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	floorHeaders(w.Header(), RedirectURI+"?code="+floorCode+"&iss="+url.QueryEscape(a.Base)+"&state=bench-state")
	w.WriteHeader(http.StatusSeeOther)
}

func floorToken(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Access-Control-Allow-Origin"] = []string{"*"}
	h["Access-Control-Expose-Headers"] = []string{"DPoP-Nonce, WWW-Authenticate"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Type"] = []string{"application/json"}
	h["Pragma"] = []string{"no-cache"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	_, _ = io.WriteString(w, floorTokenJSON)
}
