package handlers

import (
	"html/template"
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// errorPage is the plain page DefaultErrorPage renders. The description is
// the server's own fixed text (oautherr never echoes request input); it is
// escaped all the same.
var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Authorization failed</title></head>
<body><h1>Authorization failed</h1>
<p>The application that sent you here made a request this server cannot accept. You can close this page.</p>
<p>Error: <code id="error">{{.Code}}</code></p>
{{with .Description}}<p id="error_description">{{.}}</p>{{end}}
</body></html>
`))

// DefaultErrorPage shows an OAuth error to the person in the browser: a
// plain HTML page with the error's status, code and description, which
// cannot be framed, cached or scripted.
func DefaultErrorPage(w http.ResponseWriter, _ *http.Request, oerr *oautherr.Error) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	status := oerr.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_ = errorPage.Execute(w, oerr)
}

// showError reports an error of a browser-facing step (authorization,
// consent, device verification) to OnError and renders it with the error
// page: a person reads it, and it must not send the browser anywhere.
func (e *Env) showError(w http.ResponseWriter, r *http.Request, step string, oerr *oautherr.Error) {
	if e.OnError != nil {
		e.OnError(r.Context(), step, oerr)
	}
	page := e.ErrorPage
	if page == nil {
		page = DefaultErrorPage
	}
	page(w, r, oerr)
}
