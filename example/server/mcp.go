package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcphttp"
	"github.com/mcpoauth/mcpoauth/mcpsdk/gosdk"
	"github.com/mcpoauth/mcpoauth/upstream"
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
//	mcphttp.CORS                        browser clients: the Origin check (403 for a foreign page),
//	                                    preflights answered before bearer auth, headers exposed
//	srv.RequireBearerAuth("mcp:tools")  the token: RFC 6750 / RFC 9728 challenges, audience, scope
//	gosdk.ForwardAuthInfo               the verified AuthInfo handed to the SDK: each session is
//	                                    bound to the user and client of the token that created it
//	mcphttp.BoundStreams                GET streams end when the token expires or is revoked, and
//	                                    on shutdown
//	mcp.StreamableHTTPHandler           one mcp.Server per session
//
// Browser pages of the issuer's origin and of loopback origins (the MCP
// Inspector at http://localhost:6274) may call it.
//
// sdkHostCheck keeps the SDK's own DNS-rebinding check (a loopback
// connection must name a loopback Host); it is off when the server's Host
// check already does it, since the SDK's would refuse a non-loopback issuer
// served through a local proxy.
func newMCPEndpoint(srv *mcpoauth.OAuthServer, issuerOrigin string, sdkHostCheck bool, signIn *upstreamSignIn, logger *slog.Logger) *mcpEndpoint {
	e := &mcpEndpoint{}
	e.done, e.endStreams = context.WithCancel(context.Background())
	cache := mcp.NewSchemaCache()
	sdkLogger := slog.New(minLevel{logger.Handler(), slog.LevelWarn})
	// The SDK asks getServer on every request, but uses the answer only to
	// create a session; a request that names one is served by that
	// session's server. So those get a shared server that is never
	// connected, and every new session a server of its own (no state
	// shared between clients).
	probe := newMCPServer(cache, signIn, sdkLogger)
	getServer := func(r *http.Request) *mcp.Server {
		if r.Header.Get("Mcp-Session-Id") != "" {
			return probe
		}
		return newMCPServer(cache, signIn, sdkLogger)
	}
	sdk := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Logger:                     sdkLogger,
		SessionTimeout:             mcpSessionTimeout,
		DisableLocalhostProtection: !sdkHostCheck,
	})
	forward := gosdk.ForwardAuthInfo(gosdk.Options{SessionKey: gosdk.UserAndClient})
	cors := mcphttp.CORS(mcphttp.OriginOptions{
		Origins:       []string{issuerOrigin},
		AllowLoopback: true,
		ErrorHandler: func(r *http.Request, _ error) {
			logger.LogAttrs(r.Context(), slog.LevelWarn, "refused request from a foreign origin",
				slog.String("origin", printable(r.Header.Get("Origin"))))
		},
	})
	streams := mcphttp.BoundStreams(mcphttp.StreamOptions{
		Verifier: srv, // revoking a grant ends its streams within a minute
		Shutdown: e.done,
		ErrorHandler: func(r *http.Request, err error) {
			logger.LogAttrs(r.Context(), slog.LevelError, "MCP stream", slog.String("error", err.Error()))
		},
	})
	e.handler = cors(srv.RequireBearerAuth(scopeTools)(forward(streams(sdk))))
	return e
}

func (e *mcpEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }

// newMCPServer is the MCP server of one session: the whoami and echo
// tools, and upstream_userinfo when users sign in upstream (signIn not
// nil). AuthInfoMiddleware gives each tool call the AuthInfo of the HTTP
// request that carried it (the SDK would give it the session's first).
func newMCPServer(cache *mcp.SchemaCache, signIn *upstreamSignIn, logger *slog.Logger) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpoauth-example", Title: "mcpoauth example MCP server", Version: "1.0.0"},
		&mcp.ServerOptions{SchemaCache: cache, Logger: logger})
	s.AddReceivingMiddleware(gosdk.AuthInfoMiddleware)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "whoami",
		Description: "Tells who the access token stands for: the user id (empty for a client acting for itself), the OAuth client id, the granted scopes, and who the user is at the upstream identity provider they signed in with. Never a token.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false)},
	}, whoami)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "echo",
		Description: "Answers the text it is given, unchanged.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false)},
	}, echo)
	if signIn != nil {
		mcp.AddTool(s, &mcp.Tool{
			Name: "upstream_userinfo",
			Description: "Asks the identity provider the user signed in with who they are (its user-info endpoint), " +
				"with the user's own upstream access token from the server's token vault. Neither that token nor the MCP token is shown.",
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(true)},
		}, signIn.userInfoTool)
	}
	return s
}

// userInfoOutput is the upstream_userinfo tool's result.
type userInfoOutput struct {
	Claims map[string]any `json:"claims" jsonschema:"the identity provider's user-info claims about the user"`
}

// userInfoTool calls the provider's user-info endpoint with the grant's
// upstream token (refreshed upstream when it has expired). The MCP client
// never sees that token, and the provider never sees the MCP token.
func (s *upstreamSignIn) userInfoTool(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, userInfoOutput, error) {
	info, ok := bearer.FromContext(ctx)
	if !ok {
		return nil, userInfoOutput{}, errNoCaller
	}
	claims, err := s.UserInfo(ctx, info.GrantID)
	switch {
	case errors.Is(err, upstream.ErrNoUpstreamToken):
		return nil, userInfoOutput{}, errors.New("no upstream token for this grant: sign in again through the identity provider")
	case err != nil:
		// The error names no token (package upstream keeps them out).
		return nil, userInfoOutput{}, fmt.Errorf("user-info request failed: %w", err)
	}
	return nil, userInfoOutput{Claims: claims}, nil
}

// whoamiOutput is the whoami tool's result.
type whoamiOutput struct {
	UserID   string   `json:"user_id" jsonschema:"the user who authorized the token; empty for a client_credentials token"`
	ClientID string   `json:"client_id" jsonschema:"the OAuth client the token was issued to"`
	Scopes   []string `json:"scopes" jsonschema:"the scopes granted to the token"`
	// Upstream is who the user is at the identity provider they signed in
	// with (-upstream-issuer); absent for the demo username.
	Upstream *upstreamIdentity `json:"upstream,omitempty" jsonschema:"who the user is at the upstream identity provider they signed in with; absent when they did not"`
}

// upstreamIdentity is the user's upstream identity as whoami tells it.
type upstreamIdentity struct {
	Issuer  string `json:"iss" jsonschema:"the identity provider"`
	Subject string `json:"sub" jsonschema:"the user's id at the identity provider"`
	Email   string `json:"email,omitempty" jsonschema:"the user's email address, as the provider tells it"`
	Name    string `json:"name,omitempty" jsonschema:"the user's name, as the provider tells it"`
}

var errNoCaller = errors.New("no verified caller")

// whoami answers who the bearer token stands for. It never echoes the token
// (the TypeScript original's example returned it): it has no
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
	out := whoamiOutput{UserID: info.UserID, ClientID: info.ClientID, Scopes: scopes}
	if id := info.Identity; id != nil {
		out.Upstream = &upstreamIdentity{Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, Name: id.Name}
	}
	return nil, out, nil
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
