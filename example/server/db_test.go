package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
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

// TestRunOnPostgres: -db runs the example on the PostgreSQL model: it
// migrates at start, and a client registered before a restart still
// exists after it.
func TestRunOnPostgres(t *testing.T) {
	dbURL := postgresURL(t)
	start := func() (base string, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		stdout, stderr := &syncBuffer{}, &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-db", dbURL}, stdout, stderr) }()
		re := regexp.MustCompile(`issuer (http://localhost:[0-9]+),`)
		require.Eventually(t, func() bool { return re.MatchString(stdout.String()) }, 20*time.Second, 10*time.Millisecond, "stderr: %s", stderr)
		base = strings.Replace(re.FindStringSubmatch(stdout.String())[1], "localhost", "127.0.0.1", 1)
		return base, func() {
			cancel()
			require.NoError(t, <-done)
		}
	}
	base, stop := start()
	e := &testEnv{t: t, issuer: base}
	clientID := e.register("Durable Client")
	stop()

	base, stop = start()
	defer stop()
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "code_challenge": {strings.Repeat("a", 43)},
		"code_challenge_method": {"S256"}, "resource": {strings.Replace(base, "127.0.0.1", "localhost", 1) + "/mcp"}}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + "/authorize?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "the client survived the restart")
	require.Contains(t, resp.Header.Get("Location"), "/consent?request_id=")
}
