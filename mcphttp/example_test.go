package mcphttp_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcphttp"
)

// Example mounts the MCP transport's rules around an MCP endpoint protected
// by the authorization server: the Host check around the whole server, the
// Origin check and CORS before bearer auth, and the stream bound after it.
func Example() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            "https://mcp.example.com",
		AuthorizationURL:  "https://mcp.example.com/consent",
		ResourceServerURL: "https://mcp.example.com/mcp",
		ScopesSupported:   []string{"mcp:tools"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// Your MCP SDK's streamable HTTP handler.
	sdkHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s\n", info.ClientID)
	})

	// Cancelled from http.Server.RegisterOnShutdown: ends the GET streams.
	shutdown, endStreams := context.WithCancel(context.Background())
	defer endStreams()

	mcp := mcphttp.CORS(mcphttp.OriginOptions{
		Origins:       []string{"https://app.example.com"}, // your web client
		AllowLoopback: true,                                // the MCP Inspector, http://localhost:6274
	})(srv.RequireBearerAuth("mcp:tools")(
		mcphttp.BoundStreams(mcphttp.StreamOptions{Verifier: srv, Shutdown: shutdown})(sdkHandler)))

	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.Handle("/mcp", mcp)
	handler := mcphttp.CheckHost(mcphttp.HostOptions{URLs: []string{srv.Issuer()}})(mux)

	hs := &http.Server{Handler: handler}
	hs.RegisterOnShutdown(endStreams)

	send := func(method, origin, host string) *http.Response {
		r := httptest.NewRequest(method, "https://mcp.example.com/mcp", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		if host != "" {
			r.Host = host
		}
		w := httptest.NewRecorder()
		hs.Handler.ServeHTTP(w, r)
		return w.Result()
	}
	// The Inspector's preflight is answered before bearer auth.
	resp := send(http.MethodOptions, "http://localhost:6274", "")
	fmt.Println(resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	// A page of another origin is refused.
	fmt.Println(send(http.MethodPost, "https://attacker.example", "").StatusCode)
	// So is a DNS rebinding page, by its Host.
	fmt.Println(send(http.MethodPost, "http://attacker.example", "attacker.example").StatusCode)

	// Output:
	// 204 http://localhost:6274
	// 403
	// 421
}
