package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/benchapp"
)

// The crash test re-runs this test binary as a child process: with
// envCrashChild set to a file path, TestCrashChild serves the OAuth server
// on that file and drives logins and refreshes against it until it is
// killed.
const envCrashChild = "MCPOAUTH_SQLITE_CRASH_CHILD"

// Bounds of the crash test: the parent kills the child once it has
// reported crashAfter token responses; the child stops by itself after
// childOps responses or childTime, should the parent not.
const (
	crashAfter   = 120
	crashWorkers = 4
	childOps     = 5000
	childTime    = 60 * time.Second
)

// TestKillDuringLoad SIGKILLs a server in the middle of a load of logins
// and refreshes on a SQLite file, reopens the file, and checks that every
// token response the client received intact is there (both tokens, the
// grant record, a refresh token presented before rotated), and that no
// grant is half-written: each has its grant record and exactly one live
// refresh token, and the file passes SQLite's integrity check.
func TestKillDuringLoad(t *testing.T) {
	if os.Getenv(envCrashChild) != "" {
		t.Skip("in the child")
	}
	path := filepath.Join(t.TempDir(), "oauth.db")
	ctx, cancel := context.WithTimeout(t.Context(), 2*childTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashChild+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	// Read every complete line: one the child wrote before it died was
	// received intact by its client. The test binary's own output ("ok",
	// "PASS") is not a report.
	var reports []crashReport
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		var r crashReport
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		reports = append(reports, r)
		if len(reports) == crashAfter && !killed {
			require.NoError(t, cmd.Process.Kill()) // SIGKILL
			killed = true
		}
	}
	err = cmd.Wait()
	require.True(t, killed, "the child stopped after %d reports: %v", len(reports), err)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, "signal: killed", exit.Error())
	t.Logf("%d token responses received before the kill", len(reports))

	m := openTestModel(t, path, Options{SweepInterval: NoSweep})
	var integrity string
	require.NoError(t, m.r.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&integrity))
	require.Equal(t, "ok", integrity)

	for _, r := range reports {
		for _, d := range []string{r.Access, r.Refresh} {
			tok, err := m.GetToken(t.Context(), digestOf(t, d))
			require.NoError(t, err, "a token of a response received intact (%s)", r.Op)
			_, err = m.GetGrant(t.Context(), tok.GrantID)
			require.NoError(t, err, "the grant record of a token received")
		}
		if r.Op == "refresh" {
			old, err := m.GetToken(t.Context(), digestOf(t, r.Presented))
			require.NoError(t, err)
			require.True(t, old.Rotated(), "a refresh token presented with success is rotated")
		}
	}

	// No grant is half-written: every grant with tokens has its record and
	// exactly one refresh token not rotated (a rotation marks the old one
	// and saves the new pair in one transaction), and at least one access
	// token.
	rows, err := m.r.QueryContext(t.Context(), `SELECT grant_id,
			sum(kind = 1), sum(kind = 2 AND rotated_at IS NULL),
			(SELECT count(*) FROM mcpoauth_grants g WHERE g.id = t.grant_id)
		FROM mcpoauth_tokens t GROUP BY grant_id`)
	require.NoError(t, err)
	defer rows.Close()
	grants := 0
	for rows.Next() {
		var id string
		var access, liveRefresh, record int
		require.NoError(t, rows.Scan(&id, &access, &liveRefresh, &record))
		require.Positive(t, access, "grant %s has no access token", id)
		require.Equal(t, 1, liveRefresh, "grant %s has %d live refresh tokens", id, liveRefresh)
		require.Equal(t, 1, record, "grant %s has no grant record", id)
		grants++
	}
	require.NoError(t, rows.Err())
	require.Positive(t, grants)
	// Every redeemed code issued its tokens.
	var orphans int
	require.NoError(t, m.r.QueryRowContext(t.Context(), `SELECT count(*) FROM mcpoauth_authorization_codes c
		WHERE used = 1 AND NOT EXISTS (SELECT 1 FROM mcpoauth_tokens t WHERE t.grant_id = c.grant_id)`).Scan(&orphans))
	require.Zero(t, orphans, "a code marked used without its tokens")
}

// crashReport is one line of the child's stdout: a token response it
// received intact, with the tokens (this is a test: they are throwaway).
type crashReport struct {
	Op        string `json:"op"` // "login" or "refresh"
	Access    string `json:"access"`
	Refresh   string `json:"refresh"`
	Presented string `json:"presented,omitempty"` // the refresh token a refresh presented
}

func digestOf(t *testing.T, token string) mcpoauth.Digest {
	t.Helper()
	require.NotEmpty(t, token)
	return sha256.Sum256([]byte(token))
}

// TestCrashChild is the child of TestKillDuringLoad: it runs only with
// envCrashChild set.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashChild)
	if path == "" {
		t.Skip("run by TestKillDuringLoad")
	}
	m, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	app, err := benchapp.New(base, m)
	require.NoError(t, err)
	go func() { _ = http.Serve(ln, app.Handler) }()

	c := &crashClient{base: base, app: app, http: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	c.clientID = c.register(t)
	deadline := time.Now().Add(childTime)
	var mu sync.Mutex // one report line at a time
	report := func(r crashReport) {
		b, _ := json.Marshal(r)
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.Write(append(b, '\n'))
	}
	var ops sync.WaitGroup
	var count sync.Mutex
	n := 0
	more := func() bool {
		count.Lock()
		defer count.Unlock()
		n++
		return n <= childOps && time.Now().Before(deadline)
	}
	for range crashWorkers {
		ops.Go(func() {
			for more() {
				access, refresh, err := c.login()
				if err != nil {
					t.Error(err)
					return
				}
				report(crashReport{Op: "login", Access: access, Refresh: refresh})
				for range 2 {
					presented := refresh
					if access, refresh, err = c.refresh(presented); err != nil {
						t.Error(err)
						return
					}
					report(crashReport{Op: "refresh", Access: access, Refresh: refresh, Presented: presented})
				}
			}
		})
	}
	ops.Wait()
}

// crashClient drives the child's server over loopback HTTP.
type crashClient struct {
	base, clientID string
	app            *benchapp.App
	http           *http.Client
}

func (c *crashClient) register(t *testing.T) string {
	resp, err := c.http.Post(c.base+"/register", "application/json", strings.NewReader(benchapp.PublicClientJSON))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.ClientID
}

// login runs authorize → consent (auto-approved) → token.
func (c *crashClient) login() (access, refresh string, err error) {
	resp, err := c.http.Get(c.base + "/authorize?" + c.app.AuthorizeQuery(c.clientID))
	if err != nil {
		return "", "", err
	}
	_ = resp.Body.Close()
	consent, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("authorize: %d %v", resp.StatusCode, err)
	}
	cookie, _, _ := strings.Cut(resp.Header.Get("Set-Cookie"), ";")
	req, _ := http.NewRequest(http.MethodPost, c.base+"/consent", strings.NewReader(consent.RawQuery))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", cookie)
	if resp, err = c.http.Do(req); err != nil {
		return "", "", err
	}
	_ = resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return "", "", fmt.Errorf("consent: %d %v", resp.StatusCode, err)
	}
	return c.token(c.app.ExchangeForm(c.clientID, back.Query().Get("code")))
}

func (c *crashClient) refresh(token string) (access, refresh string, err error) {
	return c.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {c.clientID}, "refresh_token": {token}}.Encode())
}

// token posts a token request and returns the tokens of a complete, valid
// response.
func (c *crashClient) token(form string) (access, refresh string, err error) {
	resp, err := c.http.Post(c.base+"/token", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AccessToken == "" || out.RefreshToken == "" {
		return "", "", errors.New("token: " + resp.Status + ": " + string(body))
	}
	return out.AccessToken, out.RefreshToken, nil
}
