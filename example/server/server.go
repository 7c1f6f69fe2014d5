package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/mcphttp"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// scopeTools is the scope the MCP endpoint requires.
const scopeTools = "mcp:tools"

// exampleServer is what newServer builds: the HTTP handler of the whole
// example and the authorization server behind it.
type exampleServer struct {
	handler http.Handler
	oauth   *mcpoauth.OAuthServer
	mcp     *mcpEndpoint
	// metrics is the MeterProvider behind /metrics.
	metrics *metrics
	// closeModel closes the MemoryModel newServer made; nil when the
	// caller passed the Model.
	closeModel func() error
}

// ServeHTTP serves the example.
func (s *exampleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// endStreams ends the MCP GET streams, which would otherwise keep the HTTP
// server's Shutdown waiting; run registers it with RegisterOnShutdown.
func (s *exampleServer) endStreams() { s.mcp.endStreams() }

// Close ends the MCP streams and closes the authorization server (and the
// Model, if the server created it).
func (s *exampleServer) Close() error {
	s.endStreams()
	err := errors.Join(s.oauth.Close(), s.metrics.close())
	if s.closeModel != nil {
		err = errors.Join(err, s.closeModel())
	}
	return err
}

// newServer builds the example from opts without listening, so tests can
// serve it with httptest. The caller closes the returned server.
func newServer(opts options) (_ *exampleServer, err error) {
	// closeModel closes the MemoryModel made here when opts has none.
	var closeModel func() error
	logger := opts.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	issuer := strings.TrimSuffix(opts.issuer, "/")
	iu, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("-issuer: %w", err)
	}
	// Everything is served under the issuer's path ("" for the usual issuer
	// at the root of its origin); Router serves the well-known documents at
	// the origin's root itself.
	consentPath := iu.Path + "/consent"
	devicePath := iu.Path + "/activate"
	mcpPath := iu.Path + "/mcp"

	tokenFormat, signingKeys, err := accessTokenFormat(opts.accessTokens)
	if err != nil {
		return nil, err
	}
	model := opts.model
	if model == nil {
		m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})
		model, closeModel = m, m.Close
	}
	defer func() {
		if err != nil && closeModel != nil {
			_ = closeModel()
		}
	}()
	// The library's metrics, served as Prometheus text at /metrics.
	meters, err := newMetrics()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = meters.close()
		}
	}()
	var signIn *upstreamSignIn
	var onApproval func(*http.Request, *mcpoauth.Grant) (*mcpoauth.Identity, error)
	if opts.upstreamIssuer != "" {
		vault, ok := model.(mcpoauth.UpstreamTokenStore)
		if !ok {
			return nil, errors.New("-upstream-issuer: the model cannot keep upstream tokens (mcpoauth.UpstreamTokenStore)")
		}
		signIn, err = newUpstreamSignIn(context.Background(), opts, vault, issuer, iu.Path, logger)
		if err != nil {
			return nil, err
		}
		// The grant remembers who the user is upstream, and takes the
		// session's upstream tokens into the vault.
		onApproval = signIn.OnApproval
	}
	srv, err := mcpoauth.New(mcpoauth.Config{
		OnApproval:        onApproval,
		AccessTokenFormat: tokenFormat,
		SigningKeys:       signingKeys,
		Model:             model,
		Issuer:            issuer,
		AuthorizationURL:  issuer + "/consent",
		ResourceServerURL: issuer + "/mcp",
		ResourceName:      "mcpoauth example MCP server",
		ScopesSupported:   []string{scopeTools},
		// Every grant this build supports.
		GrantTypes: grantTypes(opts),
		// The device page; /device (inside Router) is the RFC 8628 device
		// authorization endpoint the device itself calls.
		DeviceAuthorizationURL: issuer + "/activate",
		// Clients may use the https URL of their client ID metadata
		// document as client_id (MCP 2025-11-25); it is fetched from
		// public addresses only.
		ClientIDMetadataDocuments: mcpoauth.CIMDConfig{Enabled: true},
		// -trust-idp: enterprise-managed authorization (jwt-bearer grant).
		TrustedIdentityProviders: opts.trustIDPs,
		Logger:                   logger,
		Now:                      opts.now,
		// Audit events as JSON lines, metrics for /metrics. No
		// TracerProvider: the example exports no traces.
		OnEvent:       auditLogger(opts.events),
		MeterProvider: meters.provider,
		// RFC 9449 DPoP: a client that sends a proof gets tokens bound to
		// its key, which /mcp then accepts only with proofs of that key;
		// a client that sends none gets bearer tokens as before.
		DPoP: mcpoauth.DPoPConfig{Enabled: true},
	})
	if err != nil {
		return nil, err
	}
	if opts.clientsFile != "" {
		if err := loadClients(context.Background(), srv, opts.clientsFile, logger); err != nil {
			_ = srv.Close()
			return nil, err
		}
	}
	hosts, err := hostCheck(issuer, opts.addr, logger)
	if err != nil {
		_ = srv.Close()
		return nil, err
	}

	router := srv.Router()
	consent := newConsentHandler(srv, consentPath, signIn, logger)
	device := newDeviceHandler(srv, devicePath, signIn, logger)
	mcpHandler := newMCPEndpoint(srv, iu.Scheme+"://"+iu.Host, hosts == nil, signIn, logger)
	account := newAccountHandler(srv, iu.Path+"/account", iu.Scheme == "https", signIn, logger)
	// Exact paths, not ServeMux patterns: the issuer's path is data, and
	// must not be read as pattern syntax.
	paths := map[string]http.Handler{consentPath: consent, devicePath: device, mcpPath: mcpHandler,
		iu.Path + "/account": account,
		// For the operator: Prometheus text and the two probes. A
		// deployment serves these on an internal port, not to the
		// internet.
		iu.Path + "/metrics": meters.handler,
		iu.Path + "/healthz": healthz(),
		iu.Path + "/readyz":  readyz(model, logger),
	}
	if signIn != nil {
		paths[iu.Path+"/login"] = signIn.Login()
		paths[iu.Path+"/login/callback"] = signIn.Callback()
		paths[signIn.logoutPath] = signIn.Logout()
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := paths[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		router.ServeHTTP(w, r)
	})
	var handler http.Handler = app
	if hosts != nil {
		handler = hosts(app)
	}
	return &exampleServer{
		handler:    accessLog(logger, handler),
		oauth:      srv,
		mcp:        mcpHandler,
		metrics:    meters,
		closeModel: closeModel,
	}, nil
}

// grantTypes are every grant this build supports, the jwt-bearer grant
// only when -trust-idp names an identity provider to trust.
func grantTypes(opts options) []string {
	g := []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken,
		mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode}
	if len(opts.trustIDPs) > 0 {
		g = append(g, mcpoauth.GrantJWTBearer)
	}
	return g
}

// loadClients registers the static clients of a JSON file: an array of RFC
// 7591 client information objects. The file is decoded strictly (an unknown
// member is an error) because a misspelt member, such as "scpoe", would
// otherwise register a client with more than was meant.
func loadClients(ctx context.Context, srv *mcpoauth.OAuthServer, path string, logger *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var clients []metadata.ClientInformation
	if err := dec.Decode(&clients); err != nil {
		return fmt.Errorf("-clients %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("-clients %s: unexpected data after the array", path)
	}
	// RegisterClient updates a client registered before (the previous
	// start's, or another replica's), so a client_id listed twice would
	// quietly end as its second entry: refuse it.
	seen := make(map[string]bool, len(clients))
	for i, c := range clients {
		public := c.TokenEndpointAuthMethod == "none"
		// A private_key_jwt client authenticates with its keys (jwks or
		// jwks_uri), never a secret.
		keys := c.TokenEndpointAuthMethod == "private_key_jwt"
		switch {
		case c.ClientID == "":
			return fmt.Errorf("-clients %s: client %d: client_id is required", path, i)
		case seen[c.ClientID]:
			return fmt.Errorf("-clients %s: client %q is listed twice", path, c.ClientID)
		case !public && !keys && c.ClientSecret == "":
			// The library would mint a secret and return it once; a
			// static client's secret belongs in the file, not in a log.
			return fmt.Errorf("-clients %s: client %q: client_secret is required unless token_endpoint_auth_method is \"none\" or \"private_key_jwt\"", path, c.ClientID)
		case public && c.ClientSecret != "":
			return fmt.Errorf("-clients %s: client %q: a public client (token_endpoint_auth_method \"none\") has no client_secret", path, c.ClientID)
		case keys && c.ClientSecret != "":
			return fmt.Errorf("-clients %s: client %q: a private_key_jwt client has no client_secret", path, c.ClientID)
		}
		seen[c.ClientID] = true
		out, err := srv.RegisterClient(ctx, c)
		if err != nil {
			return fmt.Errorf("-clients %s: %w", path, err)
		}
		logger.Info("registered static client", slog.String("client_id", out.ClientID),
			slog.String("token_endpoint_auth_method", out.TokenEndpointAuthMethod))
	}
	return nil
}

// hostCheck returns the Host check of a server at issuer listening on addr,
// or nil when addr is not a loopback address. A server on loopback is
// reachable from any web page through DNS rebinding (attacker.example
// resolving to 127.0.0.1), and the browser then sends Host:
// attacker.example; a public listener is reached through its real host
// names and proxies, so it gets no check.
func hostCheck(issuer, addr string, logger *slog.Logger) (func(http.Handler) http.Handler, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", addr, err)
	}
	if !mcphttp.IsLoopback(host) {
		return nil, nil
	}
	return mcphttp.CheckHost(mcphttp.HostOptions{
		URLs:         []string{issuer},
		LoopbackPort: port,
		ErrorHandler: func(r *http.Request, _ error) {
			logger.LogAttrs(r.Context(), slog.LevelWarn, "refused request for a foreign host", slog.String("host", printable(r.Host)))
		},
	}), nil
}

// accessLog logs one line per request: method, path, status, duration. Never
// the query string, which carries authorization codes and request ids.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", printable(r.URL.Path)),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)))
	})
}

// printable bounds a client-chosen string for a log line.
func printable(s string) string {
	const maxLen = 256
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// statusWriter records the status code of a response. Unwrap lets
// http.ResponseController reach the underlying writer (Flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// username is the demo sign-in: the trimmed "username" form field, any
// non-empty printable name of at most 64 characters. A real server asks its
// session here.
func username(r *http.Request) (string, error) {
	name := strings.TrimSpace(r.PostFormValue("username"))
	switch {
	case name == "":
		return "", errors.New("no username")
	case utf8.RuneCountInString(name) > 64:
		return "", errors.New("username too long")
	case strings.IndexFunc(name, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		return "", errors.New("username has unprintable characters")
	}
	return name, nil
}

// accessTokenFormat maps -access-tokens to the Config. For jwt it generates
// a P-256 key: tokens it signed stop verifying when the process exits,
// which suits a demo whose memory model forgets them anyway. A deployment
// loads its keys from a secret store and rotates them (Config.SigningKeys).
func accessTokenFormat(flag string) (mcpoauth.AccessTokenFormat, []mcpoauth.SigningKey, error) {
	switch flag {
	case "", "opaque":
		return mcpoauth.AccessTokenOpaque, nil, nil
	case "jwt":
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", nil, fmt.Errorf("-access-tokens jwt: %w", err)
		}
		return mcpoauth.AccessTokenJWT, []mcpoauth.SigningKey{{Key: key}}, nil
	}
	return "", nil, fmt.Errorf("-access-tokens must be opaque or jwt, not %q", flag)
}
