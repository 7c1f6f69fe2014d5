package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcpsdk/gosdk"
)

// mcpSessionTimeout closes an MCP session after this long without a
// request; the client then gets 404 and starts a new one.
const mcpSessionTimeout = 30 * time.Minute

// mcpEndpoint is the MCP server at <issuer>/mcp: streamable HTTP, built
// with the official MCP Go SDK, behind the library's bearer middleware.
type mcpEndpoint struct {
	handler http.Handler
	// done is cancelled when the HTTP server shuts down, to end the
	// long-lived GET streams that would otherwise hold Shutdown up.
	done       context.Context
	endStreams context.CancelFunc
}

// newMCPEndpoint builds the /mcp handler:
//
//	srv.RequireBearerAuth("mcp:tools")  the token: RFC 6750 / RFC 9728 challenges, audience, scope
//	gosdk.ForwardAuthInfo               the verified AuthInfo handed to the SDK: each session is
//	                                    bound to the user and client of the token that created it
//	streams                             GET streams end with the token and on shutdown
//	mcp.StreamableHTTPHandler           one mcp.Server per session
//
// sdkHostCheck keeps the SDK's own DNS-rebinding check (a loopback
// connection must name a loopback Host); it is off when hostCheck already
// does it, since the SDK's would refuse a non-loopback issuer served
// through a local proxy.
func newMCPEndpoint(srv *mcpoauth.OAuthServer, sdkHostCheck bool, logger *slog.Logger) *mcpEndpoint {
	e := &mcpEndpoint{}
	e.done, e.endStreams = context.WithCancel(context.Background())
	cache := mcp.NewSchemaCache()
	sdkLogger := slog.New(minLevel{logger.Handler(), slog.LevelWarn})
	// The SDK asks getServer on every request, but uses the answer only to
	// create a session; a request that names one is served by that
	// session's server. So those get a shared server that is never
	// connected, and every new session a server of its own (no state
	// shared between clients, peer lesson 28).
	probe := newMCPServer(cache, sdkLogger)
	getServer := func(r *http.Request) *mcp.Server {
		if r.Header.Get("Mcp-Session-Id") != "" {
			return probe
		}
		return newMCPServer(cache, sdkLogger)
	}
	sdk := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Logger:                     sdkLogger,
		SessionTimeout:             mcpSessionTimeout,
		DisableLocalhostProtection: !sdkHostCheck,
	})
	forward := gosdk.ForwardAuthInfo(gosdk.WithSessionKey(gosdk.UserAndClient))
	e.handler = mcpCORS(srv.RequireBearerAuth(scopeTools)(forward(e.streams(sdk))))
	return e
}

// mcpCORS lets browser-based MCP clients (the MCP Inspector, web apps) call
// /mcp: it answers CORS preflights before bearer auth (a preflight carries
// no credentials and must not be challenged) and exposes the headers a
// client reads: the challenge that starts discovery and the session id.
// Any origin is allowed: the credential is a bearer token the page must
// already hold, never a cookie, so a foreign page gains nothing.
func mcpCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (e *mcpEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }

// streams bounds the standalone SSE stream a client opens with GET: it ends
// when the access token that opened it expires (its later requests carry a
// fresh token; the stream would not) or when the server shuts down. The
// HTTP server's read and write timeouts, meant for ordinary requests, are
// lifted to that bound for it.
func (e *mcpEndpoint) streams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := bearer.FromContext(r.Context())
		if r.Method != http.MethodGet || !ok {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithDeadline(r.Context(), info.ExpiresAt)
		defer cancel()
		defer context.AfterFunc(e.done, cancel)()
		rc := http.NewResponseController(w)
		// An error means the writer cannot change deadlines (a test
		// recorder); the server's timeouts then apply.
		_ = rc.SetReadDeadline(info.ExpiresAt)
		_ = rc.SetWriteDeadline(info.ExpiresAt)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// newMCPServer is the MCP server of one session: the whoami and echo
// tools. AuthInfoMiddleware gives each tool call the AuthInfo of the HTTP
// request that carried it (the SDK would give it the session's first).
func newMCPServer(cache *mcp.SchemaCache, logger *slog.Logger) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpoauth-example", Title: "mcpoauth example MCP server", Version: "1.0.0"},
		&mcp.ServerOptions{SchemaCache: cache, Logger: logger})
	s.AddReceivingMiddleware(gosdk.AuthInfoMiddleware)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "whoami",
		Description: "Tells who the access token stands for: the user id (empty for a client acting for itself), the OAuth client id and the granted scopes. Never the token.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false)},
	}, whoami)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "echo",
		Description: "Answers the text it is given, unchanged.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false)},
	}, echo)
	return s
}

// whoamiOutput is the whoami tool's result.
type whoamiOutput struct {
	UserID   string   `json:"user_id" jsonschema:"the user who authorized the token; empty for a client_credentials token"`
	ClientID string   `json:"client_id" jsonschema:"the OAuth client the token was issued to"`
	Scopes   []string `json:"scopes" jsonschema:"the scopes granted to the token"`
}

var errNoCaller = errors.New("no verified caller")

// whoami answers who the bearer token stands for. It never echoes the token
// (the TypeScript example returned it, seed-behaviour §d.7): it has no
// access to it.
func whoami(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOutput, error) {
	info, ok := bearer.FromContext(ctx)
	if !ok {
		return nil, whoamiOutput{}, errNoCaller
	}
	scopes := info.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return nil, whoamiOutput{UserID: info.UserID, ClientID: info.ClientID, Scopes: scopes}, nil
}

// echoInput and echoOutput are the echo tool's argument and result.
type echoInput struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

type echoOutput struct {
	Text string `json:"text" jsonschema:"the text that was sent"`
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, echoOutput, error) {
	return nil, echoOutput(in), nil
}

// minLevel drops the records of a handler below a level: the SDK logs every
// session at Info, which the access log already covers.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
