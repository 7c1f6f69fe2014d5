package gosdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcpsdk/gosdk"
	"github.com/mcpoauth/mcpoauth/mcpsdk/internal/sdktest"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

func TestTokenVerifier(t *testing.T) {
	errStorage := errors.New("database down")
	valid := sdktest.User("alice", "app", "mcp:tools", "extra")
	tests := []struct {
		name      string
		resource  string
		info      *bearer.AuthInfo
		err       error
		wantMsg   string // "" for success
		wantInval bool
		wantCause error
	}{
		{name: "valid", resource: sdktest.Resource, info: valid},
		{name: "resource in another spelling", resource: "https://MCP.example.com:443/mcp/", info: valid},
		{name: "no resource check", info: &bearer.AuthInfo{UserID: "u", ClientID: "c", Resource: "https://other.example/mcp", ExpiresAt: time.Now().Add(time.Minute)}},
		{name: "client credentials token", resource: sdktest.Resource, info: sdktest.User("", "service")},
		{name: "a user with an upstream identity", resource: sdktest.Resource, info: &bearer.AuthInfo{
			UserID: "u", ClientID: "c", Resource: sdktest.Resource, ExpiresAt: time.Now().Add(time.Minute),
			Identity: &record.Identity{Issuer: "https://idp.example.com", Subject: "u-1", Email: "u@example.com"},
		}},
		{name: "invalid token", resource: sdktest.Resource, err: bearer.ErrInvalidToken, wantMsg: "invalid token", wantInval: true, wantCause: bearer.ErrInvalidToken},
		{name: "invalid token with a chatty error", resource: sdktest.Resource, err: errors.Join(bearer.ErrInvalidToken, errors.New("token secret-token revoked")), wantMsg: "invalid token", wantInval: true, wantCause: bearer.ErrInvalidToken},
		{name: "storage failure", resource: sdktest.Resource, err: errStorage, wantMsg: "token verification failed", wantCause: errStorage},
		{name: "no AuthInfo", resource: sdktest.Resource, wantMsg: "token verification failed"},
		{name: "no expiry", resource: sdktest.Resource, info: &bearer.AuthInfo{UserID: "u", ClientID: "c", Resource: sdktest.Resource}, wantMsg: "invalid token", wantInval: true},
		{name: "expired", resource: sdktest.Resource, info: &bearer.AuthInfo{UserID: "u", ClientID: "c", Resource: sdktest.Resource, ExpiresAt: time.Now().Add(-time.Second)}, wantMsg: "invalid token", wantInval: true},
		{name: "another resource", resource: sdktest.Resource, info: &bearer.AuthInfo{UserID: "u", ClientID: "c", Resource: "https://mcp.example.com/other", ExpiresAt: time.Now().Add(time.Minute)}, wantMsg: "invalid token", wantInval: true},
		{name: "no resource in the token", resource: sdktest.Resource, info: &bearer.AuthInfo{UserID: "u", ClientID: "c", ExpiresAt: time.Now().Add(time.Minute)}, wantMsg: "invalid token", wantInval: true},
		// RFC 9449 §7.2: the SDK passes Bearer tokens, with no proof.
		{name: "DPoP-bound token", resource: sdktest.Resource, info: &bearer.AuthInfo{UserID: "u", ClientID: "c", Resource: sdktest.Resource, ExpiresAt: time.Now().Add(time.Minute), JKT: "thumbprint"}, wantMsg: "invalid token", wantInval: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bearer.VerifierFunc(func(_ context.Context, token string) (*bearer.AuthInfo, error) {
				require.Equal(t, "secret-token", token)
				return tt.info, tt.err
			})
			ti, err := gosdk.TokenVerifier(v, tt.resource, gosdk.Options{})(context.Background(), "secret-token", nil)
			if tt.wantMsg != "" {
				require.Nil(t, ti)
				require.EqualError(t, err, tt.wantMsg, "a fixed message: the SDK writes it into the body")
				require.Equal(t, tt.wantInval, errors.Is(err, auth.ErrInvalidToken), "auth.ErrInvalidToken makes the SDK answer 401, anything else 500")
				if tt.wantCause != nil {
					require.ErrorIs(t, err, tt.wantCause)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.info.Scopes, ti.Scopes)
			require.Equal(t, tt.info.ExpiresAt, ti.Expiration)
			require.False(t, ti.Expiration.IsZero())
			require.Equal(t, gosdk.SessionKey(tt.info), ti.UserID)
			require.Equal(t, tt.info.ClientID, ti.Extra[gosdk.ExtraClientID])
			got, ok := gosdk.AuthInfo(ti)
			require.True(t, ok)
			require.Same(t, tt.info, got)
			require.Equal(t, tt.info.Identity, got.Identity, "tools read the upstream identity through AuthInfo")
			if len(ti.Scopes) > 0 {
				ti.Scopes[0] = "changed"
				require.NotEqual(t, "changed", tt.info.Scopes[0], "the scopes are copied")
			}
		})
	}
}

func TestTokenVerifierPanics(t *testing.T) {
	require.PanicsWithValue(t, "gosdk: TokenVerifier: nil verifier", func() { gosdk.TokenVerifier(nil, sdktest.Resource, gosdk.Options{}) })
	require.Panics(t, func() { gosdk.TokenVerifier(sdktest.Verifier{}, "/mcp", gosdk.Options{}) })
	require.Panics(t, func() { gosdk.TokenVerifier(sdktest.Verifier{}, "https://h/mcp#x", gosdk.Options{}) })
	require.PanicsWithValue(t, "gosdk: WithRFC6750Errors: nil handler", func() { gosdk.WithRFC6750Errors(nil) })
}

func TestSessionKeys(t *testing.T) {
	tests := []struct {
		name                string
		info                *bearer.AuthInfo
		wantKey, wantUAndC  string
		wantDefaultIsUserID bool
	}{
		{"user token", &bearer.AuthInfo{UserID: "alice", ClientID: "app"}, "alice", `"alice" "app"`, true},
		{"client credentials token", &bearer.AuthInfo{ClientID: "svc"}, "client:svc", `"" "svc"`, false},
		{"quotes and spaces", &bearer.AuthInfo{UserID: `a" "b`, ClientID: "c"}, `a" "b`, `"a\" \"b" "c"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.wantKey, gosdk.SessionKey(tt.info))
			require.Equal(t, tt.wantUAndC, gosdk.UserAndClient(tt.info))
		})
	}
	// UserAndClient is unambiguous where concatenation would not be.
	require.NotEqual(t,
		gosdk.UserAndClient(&bearer.AuthInfo{UserID: "a b", ClientID: "c"}),
		gosdk.UserAndClient(&bearer.AuthInfo{UserID: "a", ClientID: "b c"}))
	require.NotEqual(t,
		gosdk.UserAndClient(&bearer.AuthInfo{UserID: `a" "b`, ClientID: "c"}),
		gosdk.UserAndClient(&bearer.AuthInfo{UserID: "a", ClientID: `b" "c`}))

	ti, err := gosdk.TokenVerifier(sdktest.Verifier{"t": sdktest.User("alice", "app")}, sdktest.Resource, gosdk.Options{SessionKey: gosdk.UserAndClient})(context.Background(), "t", nil)
	require.NoError(t, err)
	require.Equal(t, `"alice" "app"`, ti.UserID)
	ti, err = gosdk.TokenVerifier(sdktest.Verifier{"t": sdktest.User("alice", "app")}, sdktest.Resource, gosdk.Options{})(context.Background(), "t", nil)
	require.NoError(t, err)
	require.Equal(t, "alice", ti.UserID, "a nil key keeps the default")
}

func TestAuthInfo(t *testing.T) {
	info, ok := gosdk.AuthInfo(nil)
	require.False(t, ok)
	require.Nil(t, info)
	info, ok = gosdk.AuthInfo(&auth.TokenInfo{UserID: "made elsewhere"})
	require.False(t, ok)
	require.Nil(t, info)
	info, ok = gosdk.AuthInfo(&auth.TokenInfo{Extra: map[string]any{"github.com/mcpoauth/mcpoauth/bearer.AuthInfo": (*bearer.AuthInfo)(nil)}})
	require.False(t, ok)
	require.Nil(t, info)
}

func TestWithRFC6750Errors(t *testing.T) {
	const sdkChallenge = `Bearer resource_metadata="https://rs/prm", scope="mcp:tools"`
	tests := []struct {
		name          string
		authorization string
		status        int
		challenges    []string // what the wrapped handler sets
		want          []string
	}{
		{"no credentials: no error code", "", 401, []string{sdkChallenge}, []string{sdkChallenge}},
		{"another scheme: no error code", "Basic dXNlcjpwYXNz", 401, []string{sdkChallenge}, []string{sdkChallenge}},
		{"invalid token", "Bearer abc", 401, []string{sdkChallenge}, []string{`Bearer error="invalid_token", resource_metadata="https://rs/prm", scope="mcp:tools"`}},
		{"lower-case scheme", "bearer abc", 401, []string{`bearer scope="x"`}, []string{`Bearer error="invalid_token", scope="x"`}},
		{"malformed bearer header", "Bearer a b", 401, []string{sdkChallenge}, []string{`Bearer error="invalid_request", resource_metadata="https://rs/prm", scope="mcp:tools"`}},
		{"insufficient scope", "Bearer abc", 403, []string{sdkChallenge}, []string{`Bearer error="insufficient_scope", resource_metadata="https://rs/prm", scope="mcp:tools"`}},
		{"no challenge set (nil SDK options)", "Bearer abc", 401, nil, []string{`Bearer error="invalid_token"`}},
		{"bare Bearer challenge", "Bearer abc", 401, []string{"Bearer"}, []string{`Bearer error="invalid_token"`}},
		{"already has an error", "Bearer abc", 401, []string{`Bearer error="invalid_token", scope="x"`}, []string{`Bearer error="invalid_token", scope="x"`}},
		{"error inside a quoted value is no error param", "Bearer abc", 401, []string{`Bearer scope="a, error=b"`}, []string{`Bearer error="invalid_token", scope="a, error=b"`}},
		{"escaped quote in a value", "Bearer abc", 401, []string{`Bearer realm="a\", error=b", scope="x"`}, []string{`Bearer error="invalid_token", realm="a\", error=b", scope="x"`}},
		{"another scheme's challenge kept", "Bearer abc", 401, []string{`Basic realm="x"`}, []string{`Basic realm="x"`, `Bearer error="invalid_token"`}},
		{"not a Bearer challenge", "Bearer abc", 401, []string{`Bearerx a="b"`}, []string{`Bearerx a="b"`, `Bearer error="invalid_token"`}},
		{"success untouched", "Bearer abc", 200, nil, nil},
		{"other errors untouched", "Bearer abc", 404, []string{sdkChallenge}, []string{sdkChallenge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := gosdk.WithRFC6750Errors(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for _, c := range tt.challenges {
					w.Header().Add("WWW-Authenticate", c)
				}
				http.Error(w, "body", tt.status)
			}))
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.status, rec.Code)
			require.Equal(t, tt.want, rec.Header().Values("WWW-Authenticate"))
			require.Equal(t, "body\n", rec.Body.String())
		})
	}
}

func TestWithRFC6750ErrorsStreams(t *testing.T) {
	h := gosdk.WithRFC6750Errors(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("event"))
		require.NoError(t, http.NewResponseController(w).Flush())
		w.(http.Flusher).Flush()
		// A status after the body is no status: nothing changes.
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
	}))
	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer abc")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.True(t, rec.Flushed)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "Bearer", rec.Header().Get("WWW-Authenticate"))
}

// mcpEnv serves an MCP server with the whoami tools behind a middleware
// chain, and records what each tool call saw.
type mcpEnv struct {
	url string
	mu  sync.Mutex
	saw []*bearer.AuthInfo // what bearer.FromContext gave the tool
}

// newMCPEnv builds one server per session; withMiddleware adds
// AuthInfoMiddleware to it.
func newMCPEnv(t *testing.T, withMiddleware bool, protect func(http.Handler) http.Handler) *mcpEnv {
	t.Helper()
	e := &mcpEnv{}
	getServer := func(*http.Request) *mcp.Server {
		s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "v1"}, nil)
		if withMiddleware {
			s.AddReceivingMiddleware(gosdk.AuthInfoMiddleware)
		}
		mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, map[string]any, error) {
			info, _ := bearer.FromContext(ctx)
			e.mu.Lock()
			e.saw = append(e.saw, info)
			e.mu.Unlock()
			out := map[string]any{}
			if info != nil {
				out["user_id"], out["client_id"], out["scopes"] = info.UserID, info.ClientID, info.Scopes
			}
			if ti := req.Extra.TokenInfo; ti != nil {
				out["token_info_user_id"] = ti.UserID
			}
			return nil, out, nil
		})
		return s
	}
	ts := httptest.NewServer(protect(mcp.NewStreamableHTTPHandler(getServer, nil)))
	t.Cleanup(ts.Close)
	e.url = ts.URL + "/mcp"
	return e
}

func (e *mcpEnv) lastSeen() *bearer.AuthInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.saw[len(e.saw)-1]
}

// connect opens an MCP session with the SDK's client.
func connect(t *testing.T, url string, tokens *sdktest.Bearer) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           &http.Client{Transport: tokens, Timeout: 10 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	require.NotEmpty(t, cs.ID(), "a stateful session")
	return cs
}

// whoami calls the whoami tool and returns its structured output.
func whoami(t *testing.T, cs *mcp.ClientSession) map[string]any {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	out, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok, "%T", res.StructuredContent)
	return out
}

// chains are the two supported ways to put a verifier in front of the SDK.
func chains(v bearer.Verifier, opts gosdk.Options) map[string]func(http.Handler) http.Handler {
	return map[string]func(http.Handler) http.Handler{
		"SDK middleware with TokenVerifier": func(h http.Handler) http.Handler {
			return gosdk.WithRFC6750Errors(auth.RequireBearerToken(gosdk.TokenVerifier(v, sdktest.Resource, opts),
				&auth.RequireBearerTokenOptions{ResourceMetadataURL: sdktest.ResourceMetadataURL, Scopes: []string{"mcp:tools"}})(h))
		},
		"bearer middleware with ForwardAuthInfo": func(h http.Handler) http.Handler {
			return bearer.RequireBearerAuth(bearer.Options{Verifier: v, RequiredScopes: []string{"mcp:tools"},
				Resource: sdktest.Resource, ResourceMetadataURL: sdktest.ResourceMetadataURL})(gosdk.ForwardAuthInfo(opts)(h))
		},
	}
}

func TestRoundTrip(t *testing.T) {
	v := sdktest.Verifier{
		"alice-1":       sdktest.User("alice", "app", "mcp:tools"),
		"alice-2":       sdktest.User("alice", "app", "mcp:tools", "more"),
		"alice-other":   sdktest.User("alice", "other-app", "mcp:tools"),
		"bob":           sdktest.User("bob", "app", "mcp:tools"),
		"alice-noscope": sdktest.User("alice", "app", "read"),
		"foreign":       {UserID: "alice", ClientID: "app", Scopes: []string{"mcp:tools"}, Resource: "https://elsewhere.example/mcp", ExpiresAt: time.Now().Add(time.Hour)},
	}
	for name, protect := range chains(v, gosdk.Options{}) {
		t.Run(name, func(t *testing.T) {
			e := newMCPEnv(t, true, protect)
			tokens := sdktest.NewBearer("alice-1")
			cs := connect(t, e.url, tokens)

			// The tool sees the user, the client and the scopes, from the
			// request it answers.
			out := whoami(t, cs)
			require.Equal(t, "alice", out["user_id"])
			require.Equal(t, "app", out["client_id"])
			require.Equal(t, []any{"mcp:tools"}, out["scopes"])
			require.Equal(t, "alice", out["token_info_user_id"], "req.Extra.TokenInfo is filled")
			require.Equal(t, "grant-alice-app", e.lastSeen().GrantID)

			// A new token of the same user (a refresh) keeps the session, and
			// the tool sees the new token, not the one that opened the session.
			tokens.Set("alice-2")
			out = whoami(t, cs)
			require.Equal(t, []any{"mcp:tools", "more"}, out["scopes"])

			// The session is bound to its user: another user's token is
			// refused, the session survives.
			resp, body := sdktest.Request(t, http.MethodPost, e.url, "bob", cs.ID())
			require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
			require.Contains(t, body, "session user mismatch")
			resp, body = sdktest.Request(t, http.MethodPost, e.url, "alice-1", cs.ID())
			require.Equal(t, http.StatusOK, resp.StatusCode, body)

			// The default key binds the user only.
			resp, body = sdktest.Request(t, http.MethodPost, e.url, "alice-other", cs.ID())
			require.Equal(t, http.StatusOK, resp.StatusCode, body)

			for _, tc := range []struct {
				token     string
				status    int
				challenge string
			}{
				{"", 401, ""},
				{"unknown", 401, `error="invalid_token"`},
				{"foreign", 401, `error="invalid_token"`},
				{"alice-noscope", 403, `error="insufficient_scope"`},
			} {
				resp, body = sdktest.Request(t, http.MethodPost, e.url, tc.token, cs.ID())
				require.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.token, body)
				c := resp.Header.Get("WWW-Authenticate")
				require.Contains(t, c, `resource_metadata="`+sdktest.ResourceMetadataURL+`"`, tc.token)
				require.Contains(t, c, `scope="mcp:tools"`, tc.token)
				if tc.challenge == "" {
					require.NotContains(t, c, "error=", "RFC 6750 §3: no error code without credentials")
				} else {
					require.Contains(t, c, tc.challenge, tc.token)
				}
				if tc.token != "" {
					require.NotContains(t, body, tc.token)
				}
			}
		})
	}
}

func TestRoundTripUserAndClient(t *testing.T) {
	v := sdktest.Verifier{
		"alice":       sdktest.User("alice", "app", "mcp:tools"),
		"alice-other": sdktest.User("alice", "other-app", "mcp:tools"),
		"service":     sdktest.User("", "app", "mcp:tools"),
	}
	for name, protect := range chains(v, gosdk.Options{SessionKey: gosdk.UserAndClient}) {
		t.Run(name, func(t *testing.T) {
			e := newMCPEnv(t, true, protect)
			cs := connect(t, e.url, sdktest.NewBearer("alice"))
			out := whoami(t, cs)
			require.Equal(t, "alice", out["user_id"])
			require.Equal(t, `"alice" "app"`, out["token_info_user_id"])

			for _, token := range []string{"alice-other", "service"} {
				resp, body := sdktest.Request(t, http.MethodPost, e.url, token, cs.ID())
				require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s: %s", token, body)
			}
			resp, body := sdktest.Request(t, http.MethodPost, e.url, "alice", cs.ID())
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
		})
	}
}

// TestSDKHandsToolsTheSessionContext pins the SDK behaviour that
// AuthInfoMiddleware exists for: without it, a tool behind
// bearer.RequireBearerAuth sees the AuthInfo of the request that created
// the session. If this test fails, the SDK changed and the middleware may
// have become unnecessary.
func TestSDKHandsToolsTheSessionContext(t *testing.T) {
	v := sdktest.Verifier{
		"alice-1": sdktest.User("alice", "app", "mcp:tools"),
		"alice-2": sdktest.User("alice", "app", "mcp:tools", "more"),
	}
	e := newMCPEnv(t, false, chains(v, gosdk.Options{})["bearer middleware with ForwardAuthInfo"])
	tokens := sdktest.NewBearer("alice-1")
	cs := connect(t, e.url, tokens)
	tokens.Set("alice-2")
	out := whoami(t, cs)
	require.Equal(t, []any{"mcp:tools"}, out["scopes"], "the SDK gives the tool the context of the session's first request")
	require.Equal(t, "alice", out["token_info_user_id"])
}

func TestAuthInfoMiddlewareHidesStaleAuthInfo(t *testing.T) {
	// The SDK's middleware with a TokenInfo not made by this package: the
	// tool must not see an AuthInfo left in the session's context.
	protect := func(h http.Handler) http.Handler {
		verify := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
			return &auth.TokenInfo{UserID: "someone", Expiration: time.Now().Add(time.Hour)}, nil
		}
		inner := auth.RequireBearerToken(verify, nil)(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stale := sdktest.User("stale", "stale", "mcp:tools")
			inner.ServeHTTP(w, r.WithContext(bearer.ContextWithAuthInfo(r.Context(), stale)))
		})
	}
	e := newMCPEnv(t, true, protect)
	cs := connect(t, e.url, sdktest.NewBearer("x"))
	out := whoami(t, cs)
	require.Nil(t, out["user_id"])
	require.Nil(t, e.lastSeen())
	require.Equal(t, "someone", out["token_info_user_id"])
}

func TestForwardAuthInfoWithoutBearerMiddleware(t *testing.T) {
	h := gosdk.ForwardAuthInfo(gosdk.Options{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Fatal("reached the handler")
	}))
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer abc")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Equal(t, "token verification failed\n", rec.Body.String())
}

// TestWithOAuthServer is the round trip with the real verifier: an
// OAuthServer issues a client_credentials token, the SDK's middleware
// accepts it through TokenVerifier, and refuses it once revoked.
func TestWithOAuthServer(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            issuer,
		ResourceServerURL: issuer + "/mcp",
		ScopesSupported:   []string{"mcp:tools"},
		GrantTypes:        []string{mcpoauth.GrantClientCredentials},
		RateLimits:        mcpoauth.RateLimits{Disabled: true},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	const secret = "service-secret-0123456789abcdefghijklmnop"
	_, err = srv.RegisterClient(context.Background(), mcpClientInfo("service", secret))
	require.NoError(t, err)

	e := &mcpEnv{}
	getServer := func(*http.Request) *mcp.Server {
		s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "v1"}, nil)
		s.AddReceivingMiddleware(gosdk.AuthInfoMiddleware)
		mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, map[string]any, error) {
			info, ok := bearer.FromContext(ctx)
			require.True(t, ok)
			return nil, map[string]any{"user_id": info.UserID, "client_id": info.ClientID, "scopes": info.Scopes}, nil
		})
		return s
	}
	protect := auth.RequireBearerToken(gosdk.TokenVerifier(srv, issuer+"/mcp", gosdk.Options{}), &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: mcpoauth.ProtectedResourceMetadataURL(issuer + "/mcp"),
		Scopes:              []string{"mcp:tools"},
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", gosdk.WithRFC6750Errors(protect(mcp.NewStreamableHTTPHandler(getServer, nil))))
	mux.Handle("/", srv.Router())
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	e.url = issuer + "/mcp"

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:tools"}}
	req, err := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("service", secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, tr.AccessToken)

	cs := connect(t, e.url, sdktest.NewBearer(tr.AccessToken))
	out := whoami(t, cs)
	require.Equal(t, map[string]any{"user_id": "", "client_id": "service", "scopes": []any{"mcp:tools"}}, out)

	resp, body := sdktest.Request(t, http.MethodPost, e.url, tr.AccessToken+"x", cs.ID())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	require.Equal(t, "invalid token\n", body)

	form = url.Values{"token": {tr.AccessToken}}
	req, err = http.NewRequest(http.MethodPost, issuer+"/revoke", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("service", secret)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, body = sdktest.Request(t, http.MethodPost, e.url, tr.AccessToken, cs.ID())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	require.NotContains(t, body, tr.AccessToken)
}

// mcpClientInfo is a confidential client_credentials client.
func mcpClientInfo(id, secret string) metadata.ClientInformation {
	return metadata.ClientInformation{
		ClientID:     id,
		ClientSecret: secret,
		ClientMetadata: metadata.ClientMetadata{
			GrantTypes:              []string{mcpoauth.GrantClientCredentials},
			TokenEndpointAuthMethod: "client_secret_basic",
			Scope:                   "mcp:tools",
		},
	}
}

// TestForwardAuthInfoDPoP: behind bearer.RequireBearerAuth, which checked a
// DPoP-bound token and its proof, the SDK's middleware (Bearer only) lets
// the request through with the AuthInfo, binding included.
func TestForwardAuthInfoDPoP(t *testing.T) {
	info := &bearer.AuthInfo{UserID: "u", ClientID: "c", Resource: sdktest.Resource, ExpiresAt: time.Now().Add(time.Minute), JKT: "thumbprint"}
	reached := false
	h := gosdk.ForwardAuthInfo(gosdk.Options{})(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		reached = true
		got, ok := bearer.FromContext(r.Context())
		require.True(t, ok)
		require.Equal(t, "thumbprint", got.JKT)
	}))
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "DPoP abc")
	req = req.WithContext(bearer.ContextWithAuthInfo(req.Context(), info))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.True(t, reached)
	require.Equal(t, "DPoP abc", req.Header.Get("Authorization"), "the caller's request is not changed")
}
