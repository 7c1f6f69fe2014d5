package main

import (
	"encoding/json"
	"html/template"
	"log"
	"net/http"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
)

// consent is your consent page; html/template escapes what the client chose.
var consent = template.Must(template.New("consent").Parse(`<form method="post" action="/consent">
<p>{{.ClientName}} (self-asserted) asks for {{.Scopes}}; you will return to {{.RedirectHost}}.</p>
<input type="hidden" name="request_id" value="{{.RequestID}}">
<input type="hidden" name="csrf_token" value="{{.CSRFToken}}">
<button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button>
</form>`))

func main() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            "http://localhost:8080",
		AuthorizationURL:  "http://localhost:8080/consent",
		ResourceServerURL: "http://localhost:8080/mcp",
		ScopesSupported:   []string{"mcp:tools"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	mux := http.NewServeMux()
	mux.Handle("/", srv.Router()) // metadata, /authorize, /token, /register, /revoke, /introspect
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		p, err := srv.PendingAuthorization(r)
		if err != nil {
			http.Error(w, "unknown or expired authorization request", http.StatusBadRequest)
			return
		}
		_ = consent.Execute(w, p)
	})
	mux.Handle("POST /consent", srv.AuthenticateHandler(currentUser))
	mux.Handle("/mcp", srv.RequireBearerAuth("mcp:tools")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context()) // who, for which client, with which scopes
		_ = json.NewEncoder(w).Encode(map[string]string{"user": info.UserID, "client": info.ClientID})
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

// currentUser tells who approves: look the user up in your own session.
func currentUser(r *http.Request) (string, error) {
	return "alice", nil
}
