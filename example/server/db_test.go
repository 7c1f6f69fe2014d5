package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/interop/output"
)

// postgresURL returns a URL to an empty schema of the test database, or
// skips (fails under MCPOAUTH_REQUIRE_POSTGRES=1) without one.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MCPOAUTH_POSTGRES_URL")
	if base == "" {
		if os.Getenv("MCPOAUTH_REQUIRE_POSTGRES") == "1" {
			t.Fatal("MCPOAUTH_REQUIRE_POSTGRES=1 but MCPOAUTH_POSTGRES_URL is not set")
		}
		t.Skip("PostgreSQL not configured: set MCPOAUTH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test to run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	defer conn.Close(ctx)
	schema := fmt.Sprintf("example_db_test_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			_ = c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// exampleRun is the example's run in the background, as a process of a
// deployment is.
type exampleRun struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned err
	err    error
	stderr *output.Buffer
}

// launch starts run with args on a free loopback port and returns at once;
// listening waits until it serves. A run the test did not stop is stopped,
// and waited for, when the test ends.
func launch(t *testing.T, args ...string) *exampleRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &exampleRun{t: t, cancel: cancel, done: make(chan struct{}), stderr: &output.Buffer{}}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() {
		defer close(r.done)
		r.err = run(ctx, args, io.Discard, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// listenAddr finds the bound address in the "listening" log line.
var listenAddr = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:[0-9]+)`)

// listening waits until the run serves and returns its base URL; it fails
// the test if run returns first, with its error and log.
func (r *exampleRun) listening() string {
	r.t.Helper()
	var exited bool
	require.Eventually(r.t, func() bool {
		select {
		case <-r.done:
			exited = true
			return true
		default:
			return listenAddr.MatchString(r.stderr.String())
		}
	}, 20*time.Second, 10*time.Millisecond, "stderr: %s", r.stderr)
	if exited {
		r.t.Fatalf("run returned before it listened: %v\nstderr: %s", r.err, r.stderr)
	}
	return "http://" + listenAddr.FindStringSubmatch(r.stderr.String())[1]
}

// stop cancels the run and requires a clean shutdown. It first closes the
// test's idle client connections: the HTTP transport may have dialled one
// it never sent a request on, which Shutdown would wait five seconds for.
func (r *exampleRun) stop() {
	r.t.Helper()
	http.DefaultClient.CloseIdleConnections()
	r.cancel()
	<-r.done
	require.NoError(r.t, r.err)
}

// TestRunOnPostgres: -db runs the example on the PostgreSQL model: it
// migrates at start, and a client registered before a restart still
// exists after it.
func TestRunOnPostgres(t *testing.T) {
	dbURL := postgresURL(t)
	first := launch(t, "-db", dbURL)
	e := &testEnv{t: t, issuer: first.listening()}
	clientID := e.register("Durable Client")
	first.stop()

	second := launch(t, "-db", dbURL)
	base := second.listening()
	defer second.stop()
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "code_challenge": {strings.Repeat("a", 43)},
		"code_challenge_method": {"S256"}, "resource": {strings.Replace(base, "127.0.0.1", "localhost", 1) + "/mcp"}}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + "/authorize?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "the client survived the restart")
	require.Contains(t, resp.Header.Get("Location"), "/consent?request_id=")
}

// sharedIssuer is the issuer of the runs that must accept each other's
// tokens: with the default issuer each run's would name its own port.
const sharedIssuer = "http://localhost:3999"

// serviceToken gets a client_credentials token of the static client of
// serviceClientsFile from the run at base.
func serviceToken(t *testing.T, base string) string {
	t.Helper()
	e := &testEnv{t: t, issuer: base}
	return e.token(url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret).AccessToken
}

// requireMCPAccepts requires the run at base to admit token to its MCP
// endpoint.
func requireMCPAccepts(t *testing.T, base, token string) {
	t.Helper()
	e := &testEnv{t: t, issuer: base}
	require.NoError(t, e.mcpSession(token).Close())
}

// TestRunOnPostgresRestartsWithStaticClients: the example started again
// with -db and the same -clients file comes up (the second start used to
// fail: "record already exists"), its static client still authenticates
// with the file's secret, and a token issued before the restart still
// works after it.
func TestRunOnPostgresRestartsWithStaticClients(t *testing.T) {
	args := []string{"-db", postgresURL(t), "-clients", serviceClientsFile(t), "-issuer", sharedIssuer}
	first := launch(t, args...)
	before := serviceToken(t, first.listening())
	first.stop()

	second := launch(t, args...)
	base := second.listening()
	defer second.stop()
	requireMCPAccepts(t, base, before)
	requireMCPAccepts(t, base, serviceToken(t, base))
}

// TestRunOnPostgresReplicasStartTogether: two replicas started at once on
// one database with the same -clients file both come up, migrating and
// registering the static clients at the same time, and each accepts the
// tokens the other issues.
func TestRunOnPostgresReplicasStartTogether(t *testing.T) {
	args := []string{"-db", postgresURL(t), "-clients", serviceClientsFile(t), "-issuer", sharedIssuer}
	a, b := launch(t, args...), launch(t, args...)
	baseA, baseB := a.listening(), b.listening()
	defer a.stop()
	defer b.stop()
	requireMCPAccepts(t, baseB, serviceToken(t, baseA))
	requireMCPAccepts(t, baseA, serviceToken(t, baseB))
}
