// Command server is the mcpoauth example: an OAuth 2.1 authorization server
// with every grant (authorization code, refresh token, client credentials,
// device authorization), a demo consent page, a device verification page,
// and an MCP server at <issuer>/mcp (streamable HTTP, built with the
// official MCP Go SDK) that admits only bearer tokens holding the scope
// mcp:tools.
//
//	go run ./example/server                  # http://localhost:3000
//	go run ./example/server -addr 127.0.0.1:8080 -clients clients.json
//	go run ./example/server -access-tokens jwt   # RFC 9068 JWT access tokens
//	go run ./example/server -upstream-issuer https://accounts.example.com \
//		-upstream-client-id ID -upstream-client-secret SECRET  # sign in there
//
// The HTTP surface (the routes, pages and flags described here and in
// docs/tour.md) is a contract that outside tools drive: change it only
// with them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/example/internal/cli"
	"github.com/mcpoauth/mcpoauth/postgres"
	"github.com/mcpoauth/mcpoauth/sqlite"
)

const (
	defaultAddr = "127.0.0.1:3000"
	// shutdownTimeout bounds the wait for in-flight requests on SIGINT/SIGTERM.
	shutdownTimeout = 10 * time.Second
)

func main() { cli.Main("server", run) }

// options are the command-line settings newServer builds from.
type options struct {
	// addr is the listen address, host:port.
	addr string
	// issuer is the authorization server's identifier; empty means
	// http://localhost:<port of addr>.
	issuer string
	// clientsFile is a JSON array of static clients to register; optional.
	clientsFile string
	// dbURL selects the persistent model: a PostgreSQL URL, or
	// sqlite:PATH for a SQLite file; empty keeps state in memory.
	dbURL string
	// accessTokens is "opaque" (the default) or "jwt": RFC 9068 access
	// tokens signed with a P-256 key generated at start.
	accessTokens string
	// upstreamIssuer, upstreamClientID and upstreamClientSecret (all or
	// none) make users sign in through that OpenID provider instead of
	// the demo username field.
	upstreamIssuer, upstreamClientID, upstreamClientSecret string
	// trustIDPs are the enterprise identity providers (-trust-idp) whose
	// ID-JAGs the jwt-bearer grant accepts; none leaves that grant off.
	trustIDPs []mcpoauth.IdentityProvider
	// model stores clients, requests, codes and tokens; nil is a new
	// MemoryModel, which the server closes. The caller owns and closes a
	// Model it passes (run sets it from -db).
	model mcpoauth.Model
	// logger receives the access log and the library's logs.
	logger *slog.Logger
	// logFormat is "text" (the default) or "json": the handler of logger.
	logFormat string
	// events receives the audit events (Config.OnEvent), one record
	// each; run gives it a JSON handler. nil: no events.
	events *slog.Logger
	// now is the authorization server's clock; nil is time.Now (tests
	// move it).
	now func() time.Time
}

const usageIntro = `Usage: server [flags]

Runs the mcpoauth example: an OAuth 2.1 authorization server with every
grant (metadata, /authorize, /token, /register, /revoke, and /device for the
RFC 8628 device flow), a demo consent page at <issuer>/consent and a device
page at <issuer>/activate where any non-empty user name signs in, and an MCP
server at <issuer>/mcp (streamable HTTP; tools whoami and echo) that
requires a bearer token with scope mcp:tools. Access tokens are opaque, or
RFC 9068 JWTs with -access-tokens jwt.

State (clients, grants, codes, tokens) is kept in memory and lost on exit
unless -db names a database:
  -db sqlite:PATH        a SQLite file, created if need be: one server that
                         keeps its clients and grants across restarts, with
                         no database to run (the file on a local disk)
  -db postgres://...     PostgreSQL: several server instances sharing state,
                         or a database you already run and back up
Keys generated at start (JWT signing, sign-in sessions) are not stored:
with -access-tokens jwt, tokens issued before a restart stop verifying.

With -upstream-issuer, -upstream-client-id and -upstream-client-secret (all
three or none), users sign in through that OpenID provider instead of
typing a name: the consent and device pages link to <issuer>/login, and the
redirect URI to register at the provider is <issuer>/login/callback.
Sessions are cookies sealed with a key generated at start, so they end
with the process.

<issuer>/account lists the signed-in user's connected apps (their grants)
with a button to revoke each; without -upstream-issuer it has a demo
sign-in of its own (any name, no password). For operators: /metrics serves
the library's metrics as Prometheus text, /healthz answers 200 while the
process runs, and /readyz 200 while the storage answers (else 503). Audit
events go to stderr as JSON lines ("msg":"audit").

With -trust-idp ISSUER=JWKS_URL (repeatable), the server also accepts
enterprise-managed authorization (MCP SEP-990): the RFC 7523 jwt-bearer
grant with an Identity Assertion JWT Authorization Grant (ID-JAG) that
identity provider signed for a confidential client registered (with
-clients) for grant type urn:ietf:params:oauth:grant-type:jwt-bearer. The
user is ISSUER#sub. Without the flag that grant stays off.

Flags:
`

// parseFlags reads args into options. -h prints the usage to stderr and
// returns flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", defaultAddr, "listen address `HOST:PORT`; port 0 picks a free port")
	fs.StringVar(&o.issuer, "issuer", "", "issuer `URL` of the authorization server: https, or http on localhost, 127.0.0.1 or [::1]\n(default http://localhost:PORT, PORT being the port -addr listens on)")
	fs.StringVar(&o.dbURL, "db", "", "keep clients, grants, codes and tokens in `DB`, applying the schema migrations at start:\nsqlite:PATH for a SQLite file (one server), or a PostgreSQL URL postgres://user@host:5432/db\n(several servers) (default: in memory, lost on exit)")
	fs.StringVar(&o.clientsFile, "clients", "", "JSON `FILE` with an array of RFC 7591 client information objects to pre-register:\nclient_id and the client metadata, plus client_secret unless token_endpoint_auth_method is \"none\" or \"private_key_jwt\"\n(which needs jwks or jwks_uri instead)")
	fs.StringVar(&o.accessTokens, "access-tokens", "opaque", "access token `FORMAT`: opaque, or jwt for RFC 9068 JWT access tokens signed (ES256) with a key\ngenerated at start, its public half at the jwks_uri of the metadata (<issuer>/jwks)")
	fs.StringVar(&o.upstreamIssuer, "upstream-issuer", "", "issuer `URL` of an OpenID provider to sign users in through (found by discovery), instead of the\ndemo username field; needs -upstream-client-id and -upstream-client-secret. Register\n<issuer>/login/callback as the redirect URI there")
	fs.StringVar(&o.upstreamClientID, "upstream-client-id", "", "client `ID` of this server at the -upstream-issuer provider")
	fs.StringVar(&o.upstreamClientSecret, "upstream-client-secret", "", "client `SECRET` of this server at the -upstream-issuer provider")
	fs.StringVar(&o.logFormat, "log-format", "text", "`FORMAT` of the log on stderr: text, or json for JSON lines (audit events are JSON lines either way)")
	fs.Func("trust-idp", "trust the enterprise identity provider `ISSUER=JWKS_URL` for ID-JAGs (jwt-bearer grant);\nrepeatable; the JWKS URL is https, or http on a loopback host", func(v string) error {
		iss, jwks, ok := strings.Cut(v, "=")
		if !ok || iss == "" || jwks == "" {
			return errors.New("want ISSUER=JWKS_URL")
		}
		o.trustIDPs = append(o.trustIDPs, mcpoauth.IdentityProvider{Issuer: iss, JWKSURL: jwks})
		return nil
	})
	// Not "return o, cli.Parse(...)": o would be read in no set order.
	err := cli.Parse(fs, usageIntro, args, stderr, func() error {
		if o.dbURL == sqlitePrefix {
			return errors.New("-db sqlite: needs a file path, as in sqlite:oauth.db")
		}
		if o.logFormat != "text" && o.logFormat != "json" {
			return fmt.Errorf("-log-format must be text or json, not %q", o.logFormat)
		}
		if o.accessTokens != "opaque" && o.accessTokens != "jwt" {
			return fmt.Errorf("-access-tokens must be opaque or jwt, not %q", o.accessTokens)
		}
		set := 0
		for _, v := range []string{o.upstreamIssuer, o.upstreamClientID, o.upstreamClientSecret} {
			if v != "" {
				set++
			}
		}
		if set != 0 && set != 3 {
			return errors.New("-upstream-issuer, -upstream-client-id and -upstream-client-secret go together: give all three or none")
		}
		return nil
	})
	return o, err
}

// run parses args, listens, serves until ctx is done, then shuts down
// gracefully. Logs go to stderr; stdout gets one line with the issuer once
// the server is listening, for scripts to wait on.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// Audit events are JSON lines on stderr, whatever -log-format says:
	// {"time":...,"level":"INFO","msg":"audit","event":{"type":...}}.
	jsonLog := slog.NewJSONHandler(stderr, nil)
	opts.events = slog.New(jsonLog)
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if opts.logFormat == "json" {
		logger = opts.events
	}
	opts.logger = logger
	if opts.dbURL != "" {
		model, closeModel, err := openModel(ctx, opts.dbURL, logger)
		if err != nil {
			return err
		}
		defer closeModel() // after srv.Close
		opts.model = model
	}

	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	// Resolve port 0 and host names: the Host check and the default issuer
	// need the address actually bound.
	opts.addr = ln.Addr().String()
	if opts.issuer == "" {
		opts.issuer = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	srv, err := newServer(opts)
	if err != nil {
		return err
	}
	defer srv.Close()

	hs := &http.Server{
		Handler: srv,
		// Slow clients cannot hold connections open: headers within 10s,
		// a whole request within 30s. WriteTimeout bounds each response;
		// the MCP endpoint's GET streams lift both to the token's expiry
		// through http.ResponseController.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for idle connections; the MCP GET streams never are.
	hs.RegisterOnShutdown(srv.endStreams)
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	issuer := srv.oauth.Issuer()
	logger.Info("listening", slog.String("addr", opts.addr), slog.String("issuer", issuer),
		slog.String("mcp", issuer+"/mcp"), slog.String("device_page", issuer+"/activate"))
	fmt.Fprintf(stdout, "mcpoauth example server: issuer %s, MCP endpoint %s/mcp\n", issuer, issuer)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", slog.Duration("timeout", shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// sqlitePrefix starts a -db value that names a SQLite file.
const sqlitePrefix = "sqlite:"

// openModel opens the persistent model -db names (sqlite:PATH, or else a
// PostgreSQL URL or connection string) with its schema migrated, and returns it with the
// function that closes it.
func openModel(ctx context.Context, db string, logger *slog.Logger) (mcpoauth.Model, func(), error) {
	if path, ok := strings.CutPrefix(db, sqlitePrefix); ok {
		// Open applies the migrations; SQLite needs no separate step.
		model, err := sqlite.Open(ctx, path, sqlite.Options{SweepErrorHandler: func(err error) {
			logger.Warn("sqlite sweep failed", slog.Any("error", err))
		}})
		if err != nil {
			return nil, nil, fmt.Errorf("database: %w", err)
		}
		return model, func() {
			if err := model.Close(); err != nil {
				logger.Warn("sqlite close failed", slog.Any("error", err))
			}
		}, nil
	}
	model, err := postgres.Open(ctx, db, postgres.Options{SweepErrorHandler: func(err error) {
		logger.Warn("postgres sweep failed", slog.Any("error", err))
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	if err := model.Migrate(ctx); err != nil {
		model.Close()
		return nil, nil, fmt.Errorf("database: migrate: %w", err)
	}
	return model, model.Close, nil
}
