package main

import (
	"context"
	"encoding/json"
	"html/template"
	"log"
	"net/http"
	"os"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/upstream"
)

// consent is your consent page; html/template escapes what the client chose.
var consent = template.Must(template.New("consent").Parse(`<form method="post" action="/consent">
<p>{{.ClientName}} (self-asserted) asks for {{.Scopes}}; you will return to {{.RedirectHost}}.</p>
<input type="hidden" name="request_id" value="{{.RequestID}}">
<input type="hidden" name="csrf_token" value="{{.CSRFToken}}">
<button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button>
</form>`))

func main() {
	model := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
	defer model.Close()
	signIn, err := upstream.NewOIDC(context.Background(), upstream.Options{
		Issuer:       os.Getenv("OIDC_ISSUER"), // e.g. https://accounts.google.com
		ClientID:     os.Getenv("OIDC_CLIENT_ID"),
		ClientSecret: os.Getenv("OIDC_CLIENT_SECRET"),
		RedirectURL:  "http://localhost:8080/login/callback",
		CookieKey:    []byte(os.Getenv("COOKIE_KEY")), // 32 random bytes, from your secret store
		TokenStore:   model,                           // the upstream token vault, sealed with TokenKeys
		TokenKeys:    []upstream.TokenKey{{ID: "2026-12", Key: []byte(os.Getenv("VAULT_KEY"))}},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := mcpoauth.New(mcpoauth.Config{
		Model:             model,
		Issuer:            "http://localhost:8080",
		AuthorizationURL:  "http://localhost:8080/consent",
		ResourceServerURL: "http://localhost:8080/mcp",
		ScopesSupported:   []string{"mcp:tools"},
		OnApproval:        signIn.OnApproval, // the grant keeps who the user is upstream, and their tokens
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.Handle("/login", signIn.Login())
	mux.Handle("/login/callback", signIn.Callback())
	mux.Handle("POST /logout", signIn.Logout())
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		if srv.ApproveRemembered(w, r, signIn.GetUser) { // approved this client before: no page
			return
		}
		if user, _ := signIn.GetUser(r); user == "" {
			http.Redirect(w, r, "/login?"+upstream.ReturnToParam+"="+template.URLQueryEscaper(r.URL.RequestURI()), http.StatusFound)
			return
		}
		p, err := srv.PendingAuthorization(r)
		if err != nil {
			http.Error(w, "unknown or expired authorization request", http.StatusBadRequest)
			return
		}
		_ = consent.Execute(w, p)
	})
	mux.Handle("POST /consent", srv.AuthenticateHandler(signIn.GetUser))
	mux.Handle("/mcp", srv.RequireBearerAuth("mcp:tools")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		upstreamToken, err := signIn.Token(r.Context(), info.GrantID) // the user's token at the provider, refreshed as needed
		_ = json.NewEncoder(w).Encode(map[string]any{"user": info.Identity, "upstream_token_ready": err == nil && upstreamToken.Valid()})
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
