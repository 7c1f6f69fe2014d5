package main

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// testServer is the library behind an in-process HTTP server with every
// grant, a consent page, a device page and an MCP endpoint (the MCP Go
// SDK's streamable handler) behind RequireBearerAuth: the same HTTP contract
// as example/server, built here because that one is package main.
type testServer struct {
	issuer, mcpURL string
	srv            *mcpoauth.OAuthServer

	mu     sync.Mutex
	grants []string // grant_type of each token request
}

// tokenGrants returns the grant types of the token requests so far.
func (s *testServer) tokenGrants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.grants)
}

const testScope = "mcp:tools"

func newTestServer(t *testing.T, modify ...func(*mcpoauth.Config)) *testServer {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg := mcpoauth.Config{
		Issuer:            issuer,
		AuthorizationURL:  issuer + "/consent",
		ResourceServerURL: issuer + "/mcp",
		ScopesSupported:   []string{testScope},
		GrantTypes: []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken,
			mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode},
		DeviceAuthorizationURL: issuer + "/activate",
		DevicePollInterval:     time.Second,
		RateLimits:             mcpoauth.RateLimits{Disabled: true},
		Logger:                 slog.New(slog.DiscardHandler),
	}
	for _, m := range modify {
		m(&cfg)
	}
	srv, err := mcpoauth.New(cfg)
	require.NoError(t, err)
	s := &testServer{issuer: issuer, mcpURL: issuer + "/mcp", srv: srv}

	mux := http.NewServeMux()
	router := srv.Router()
	mux.Handle("/", router)
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if v, err := url.ParseQuery(string(body)); err == nil {
			s.mu.Lock()
			s.grants = append(s.grants, v.Get("grant_type"))
			s.mu.Unlock()
		}
		router.ServeHTTP(w, r)
	})
	mux.Handle("/consent", consentPage(srv))
	mux.Handle("/activate", devicePage(srv))
	mux.Handle("/mcp", srv.RequireBearerAuth(testScope)(sdkTokenInfo(mcpHandler())))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Close()
	})
	return s
}

// registerConfidential pre-registers a client credentials client.
func (s *testServer) registerConfidential(t *testing.T, id, secret string) {
	t.Helper()
	_, err := s.srv.RegisterClient(context.Background(), metadata.ClientInformation{
		ClientID:     id,
		ClientSecret: secret,
		ClientMetadata: metadata.ClientMetadata{
			GrantTypes:              []string{mcpoauth.GrantClientCredentials},
			TokenEndpointAuthMethod: "client_secret_basic",
			ClientName:              "test service",
		},
	})
	require.NoError(t, err)
}

// registerPublic pre-registers a public authorization code client with the
// loopback redirect URI the example client uses.
func (s *testServer) registerPublic(t *testing.T, id string) {
	t.Helper()
	_, err := s.srv.RegisterClient(context.Background(), metadata.ClientInformation{
		ClientID: id,
		ClientMetadata: metadata.ClientMetadata{
			RedirectURIs:            []string{"http://127.0.0.1/callback"},
			GrantTypes:              []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: "none",
		},
	})
	require.NoError(t, err)
}

// username is the demo sign-in of the pages: the form's username field.
func username(r *http.Request) (string, error) {
	name := strings.TrimSpace(r.PostFormValue("username"))
	if name == "" {
		return "", errors.New("no username")
	}
	return name, nil
}

// pageTmpl has the consent and device pages, whose forms end alike: the
// CSRF token, the demo sign-in and the decision.
var pageTmpl = template.Must(template.New("").Parse(`{{define "decide"}}
<input type="hidden" name="csrf_token" value="{{.}}">
<input type="text" name="username">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>{{end}}

{{define "consent"}}<!doctype html>
<title>Authorize</title>
<p>{{.ClientName}} asks for {{.Scopes}} on {{.Resource}}.</p>
<form method="post" action="/consent">
<input type="hidden" name="request_id" value="{{.RequestID}}">
{{- template "decide" .CSRFToken}}{{end}}

{{define "device"}}<!doctype html>
<title>Device</title>
{{if .Result}}<p>Done: {{.Result}}.</p>{{else}}
<form method="post" action="/activate">
<input type="text" name="user_code" value="{{.UserCode}}">
{{- template "decide" .CSRFToken}}{{end}}{{end}}`))

func consentPage(srv *mcpoauth.OAuthServer) http.Handler {
	decide := srv.AuthenticateHandler(username)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			decide.ServeHTTP(w, r)
			return
		}
		p, err := srv.PendingAuthorization(r)
		if err != nil {
			http.Error(w, "no such request", http.StatusBadRequest)
			return
		}
		_ = pageTmpl.ExecuteTemplate(w, "consent", p)
	})
}

func devicePage(srv *mcpoauth.OAuthServer) http.Handler {
	approve := srv.ApproveDeviceAuthorizationHandler(username)
	deny := srv.DenyDeviceAuthorizationHandler(username)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if r.PostFormValue("decision") == "approve" {
				approve.ServeHTTP(w, r)
			} else {
				deny.ServeHTTP(w, r)
			}
			return
		}
		data := struct{ Result, UserCode, CSRFToken string }{
			Result:    r.URL.Query().Get(mcpoauth.DeviceResultParam),
			UserCode:  r.URL.Query().Get(mcpoauth.FormUserCode),
			CSRFToken: srv.DeviceFormToken(w, r),
		}
		_ = pageTmpl.ExecuteTemplate(w, "device", data)
	})
}

// sdkTokenInfo hands the AuthInfo that RequireBearerAuth verified to the
// MCP SDK (whose context key is private), so tools see req.Extra.TokenInfo
// and sessions are bound to their user.
func sdkTokenInfo(next http.Handler) http.Handler {
	verify := func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		info, ok := bearer.FromContext(r.Context())
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Scopes: info.Scopes, Expiration: info.ExpiresAt, UserID: info.UserID,
			Extra: map[string]any{"client_id": info.ClientID}}, nil
	}
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{})(next)
}

type whoamiOut struct {
	UserID   string `json:"user_id"`
	ClientID string `json:"client_id"`
}

type echoIn struct {
	Text string `json:"text"`
}

func mcpHandler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "test server", Version: "0.0.1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Who the token stands for"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
			ti := req.Extra.TokenInfo
			if ti == nil {
				return nil, whoamiOut{}, errors.New("no token info")
			}
			clientID, _ := ti.Extra["client_id"].(string)
			return nil, whoamiOut{UserID: ti.UserID, ClientID: clientID}, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its text\x1b[31m"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoIn, error) {
			return nil, in, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
}

// drain reads a response body to the end and closes it.
func drain(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return string(b)
}
