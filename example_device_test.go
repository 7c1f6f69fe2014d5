package mcpoauth_test

import (
	"errors"
	"html/template"
	"log"
	"net/http"

	"github.com/mcpoauth/mcpoauth"
)

// ExampleOAuthServer_PendingDeviceAuthorization serves an RFC 8628 device
// verification page: GET shows the code entry form, or, with a user_code
// (verification_uri_complete pre-fills it), which client asks for what;
// the form posts the code, the CSRF token and the user's sign-in to the
// library's approve or deny handler, which answer 303 back to the page with
// result=approved or result=denied.
func ExampleOAuthServer_PendingDeviceAuthorization() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:                 "https://mcp.example.com",
		ResourceServerURL:      "https://mcp.example.com/mcp",
		ScopesSupported:        []string{"mcp:tools"},
		GrantTypes:             []string{mcpoauth.GrantDeviceCode, mcpoauth.GrantRefreshToken},
		DeviceAuthorizationURL: "https://mcp.example.com/activate",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	currentUser := func(r *http.Request) (string, error) { return "alice", nil } // your sign-in

	// html/template escapes the client's self-asserted name.
	page := template.Must(template.New("device").Parse(`<!doctype html>
{{if .Result}}<p>Done: {{.Result}}. You can return to your device.</p>
{{else}}{{with .Pending}}<p>{{.ClientName}} ({{.ClientID}}) asks for {{.Scopes}} on {{.Resource}}.</p>{{end}}
<form method="post">
  <input name="user_code" value="{{with .Pending}}{{.UserCode}}{{end}}">
  <input type="hidden" name="csrf_token" value="{{.CSRFToken}}">
  <button formaction="/activate/approve">Approve</button>
  <button formaction="/activate/deny">Deny</button>
</form>{{end}}`))

	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.HandleFunc("GET /activate", func(w http.ResponseWriter, r *http.Request) {
		data := struct {
			Result, CSRFToken string
			Pending           *mcpoauth.PendingDeviceAuthorization
		}{Result: r.URL.Query().Get(mcpoauth.DeviceResultParam)}
		data.CSRFToken = srv.DeviceFormToken(w, r) // sets the cookie: before the body
		if code := r.URL.Query().Get(mcpoauth.FormUserCode); code != "" && data.Result == "" {
			p, err := srv.PendingDeviceAuthorization(r, code)
			switch {
			case errors.Is(err, mcpoauth.ErrTooManyUserCodeAttempts):
				http.Error(w, "too many attempts, try again later", http.StatusTooManyRequests)
				return
			case errors.Is(err, mcpoauth.ErrNoPendingDeviceAuthorization):
				// Show the empty form again: unknown, expired or decided.
			case err != nil:
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			data.Pending = p
		}
		_ = page.Execute(w, data)
	})
	mux.Handle("POST /activate/approve", srv.ApproveDeviceAuthorizationHandler(currentUser))
	mux.Handle("POST /activate/deny", srv.DenyDeviceAuthorizationHandler(currentUser))
	_ = http.ListenAndServe // http.ListenAndServe("localhost:3000", mux)
}
