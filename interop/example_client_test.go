package interop

import (
	"encoding/json"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/interop/browser"
)

// clientProcess is a run of the example client as its own process, its
// stderr (the prompts) readable line by line.
type clientProcess struct {
	t *testing.T
	*command
}

// startClient runs example/client with args against the example server.
func startClient(t *testing.T, args ...string) *clientProcess {
	t.Helper()
	bin := binary(t, "example/client")
	ctx := testContext(t, flowTimeout)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-no-browser", "-timeout", "60s"}, args...)...)
	return &clientProcess{t: t, command: startCommand(t, "the example client", cmd)}
}

// waitLine returns the first stderr line (trimmed) starting with prefix.
func (p *clientProcess) waitLine(prefix string) string {
	p.t.Helper()
	return p.stderr.WaitLine(p.t, prefix, flowTimeout)
}

// wait waits for the client to exit and returns whoami's answer.
func (p *clientProcess) wait() whoamiResult {
	p.t.Helper()
	p.exited(p.t, testContext(p.t, flowTimeout))
	out := p.stdout.String()
	assert.Contains(p.t, out, "tools:\n")
	assert.Contains(p.t, out, "\n  whoami: ")
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "whoami: "); ok {
			var w whoamiResult
			require.NoError(p.t, json.Unmarshal([]byte(js), &w), line)
			return w
		}
	}
	p.t.Fatal("no whoami answer")
	return whoamiResult{}
}

// toolLine returns what the client printed for a tool it called (after
// wait).
func (p *clientProcess) toolLine(tool string) string {
	p.t.Helper()
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		if answer, ok := strings.CutPrefix(line, tool+": "); ok {
			return answer
		}
	}
	p.t.Fatalf("the client printed no %s answer", tool)
	return ""
}

// TestExampleClient runs example/client against example/server, both as
// their own processes, with each of its sign-ins.
func TestExampleClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-clients", serviceClients(t))

	t.Run("authorization code", func(t *testing.T) {
		t.Parallel()
		p := startClient(t, "-url", s.mcpURL)
		authURL := p.waitLine(s.issuer + "/authorize?")
		ctx := testContext(t, flowTimeout)
		resp, err := newBrowser(t).Consent(ctx, authURL, "example-user", browser.Approve)
		require.NoError(t, err)
		deliver(t, ctx, resp)
		w := p.wait()
		assert.Equal(t, "example-user", w.UserID)
		assert.Equal(t, []string{scopeTools}, w.Scopes)
		u, err := url.Parse(authURL)
		require.NoError(t, err)
		assert.Equal(t, u.Query().Get("client_id"), w.ClientID)
	})

	t.Run("device", func(t *testing.T) {
		t.Parallel()
		p := startClient(t, "-url", s.mcpURL, "-device")
		complete := p.waitLine(s.issuer + "/activate?")
		_, err := newBrowser(t).Device(testContext(t, flowTimeout), complete, "", "device-user", browser.Approve)
		require.NoError(t, err)
		w := p.wait()
		assert.Equal(t, "device-user", w.UserID)
		assert.NotEmpty(t, w.ClientID)
	})

	t.Run("client credentials", func(t *testing.T) {
		t.Parallel()
		p := startClient(t, "-url", s.mcpURL, "-client-id", "interop-svc", "-client-secret", confidentialSecret)
		assert.Equal(t, whoamiResult{UserID: "", ClientID: "interop-svc", Scopes: []string{scopeTools}}, p.wait())
		assert.NotContains(t, p.stderr.String()+p.stdout.String(), confidentialSecret)
	})
}
