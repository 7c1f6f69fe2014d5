package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// metricSample is one line of the Prometheus text format.
var metricSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)

var metricLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// metricValue sums the samples of metric name in Prometheus text whose
// labels include labels; found is false when there is none.
func metricValue(t *testing.T, text, name string, labels map[string]string) (sum float64, found bool) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := metricSample.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		have := map[string]string{}
		for _, l := range metricLabel.FindAllStringSubmatch(m[2], -1) {
			have[l[1]] = l[2]
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		require.NoError(t, err, sc.Text())
		sum += v
		found = true
	}
	return sum, found
}

// scrape reads /metrics.
func (e *testEnv) scrape() string {
	e.t.Helper()
	resp, body := e.get(http.DefaultClient, e.issuer+"/metrics")
	require.Equal(e.t, http.StatusOK, resp.StatusCode, body)
	require.True(e.t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	return body
}

// connect has user approve a new public client named name and redeems the
// code; it returns the client id and the tokens.
func (e *testEnv) connect(name, user string) (string, tokenResponse) {
	e.t.Helper()
	clientID := e.register(name)
	verifier, challenge := pkcePair()
	return clientID, e.redeem(clientID, e.approve(clientID, challenge, user), verifier)
}

// TestMetricsAfterSignIn: /metrics serves the library's OpenTelemetry
// metrics as Prometheus text, and a sign-in (consent, code exchange,
// refresh, a call to /mcp) moves the counters.
func TestMetricsAfterSignIn(t *testing.T) {
	e := newTestEnv(t, "")
	before := e.scrape()
	issued := map[string]string{"grant_type": "authorization_code", "token_type": "access_token"}
	n, _ := metricValue(t, before, "mcpoauth_tokens_issued_total", issued)
	assert.Zero(t, n)

	clientID, tr := e.connect("Metrics Client", "alice")
	e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tr.RefreshToken}})
	e.whoami(e.mcpSession(tr.AccessToken), tr.AccessToken, tr.RefreshToken)

	after := e.scrape()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mcpoauth_tokens_issued_total", issued, 1},
		{"mcpoauth_tokens_issued_total", map[string]string{"grant_type": "authorization_code", "token_type": "refresh_token"}, 1},
		{"mcpoauth_tokens_issued_total", map[string]string{"grant_type": "refresh_token", "token_type": "access_token"}, 1},
		{"mcpoauth_request_duration_seconds_count", map[string]string{"endpoint": "token", "outcome": "ok"}, 2},
		{"mcpoauth_request_duration_seconds_count", map[string]string{"endpoint": "authorize", "outcome": "ok"}, 1},
		{"mcpoauth_request_duration_seconds_count", map[string]string{"endpoint": "authenticate", "outcome": "ok"}, 1},
		{"mcpoauth_request_duration_seconds_count", map[string]string{"endpoint": "register", "outcome": "ok"}, 1},
	} {
		got, found := metricValue(t, after, c.name, c.labels)
		assert.True(t, found, "%s %v in\n%s", c.name, c.labels, after)
		assert.Equal(t, c.want, got, "%s %v", c.name, c.labels)
	}
	valid, _ := metricValue(t, after, "mcpoauth_token_verifications_total", map[string]string{"outcome": "valid"})
	assert.GreaterOrEqual(t, valid, 1.0, "the MCP calls verified the token")
	_, found := metricValue(t, after, "mcpoauth_model_duration_seconds_count", map[string]string{"operation": "ConsumeAuthorizationCode"})
	assert.True(t, found, "Model calls are timed")
	_, found = metricValue(t, after, "go_goroutines", nil)
	assert.True(t, found, "the Go runtime metrics")
	assert.Contains(t, after, `service_name="mcpoauth-example-server"`)
	// Metrics carry no user, client or grant: none of their ids is a label.
	assert.NotContains(t, after, "alice")
	assert.NotContains(t, after, clientID)
}

// downModel is a MemoryModel whose GetClient fails while down is set: the
// database behind a Model gone.
type downModel struct {
	*mcpoauth.MemoryModel
	down atomic.Bool
}

func (m *downModel) GetClient(ctx context.Context, id string) (*mcpoauth.Client, error) {
	if m.down.Load() {
		return nil, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	return m.MemoryModel.GetClient(ctx, id)
}

// TestHealthAndReadiness: /healthz answers while the process runs;
// /readyz answers 503 while the Model does not, and 200 again once it
// does, without telling why in the body.
func TestHealthAndReadiness(t *testing.T) {
	m := &downModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{})}
	t.Cleanup(func() { _ = m.Close() })
	e := newTestEnvWith(t, options{model: m})

	probe := func(path string) (int, string) {
		resp, body := e.get(http.DefaultClient, e.issuer+path)
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
		return resp.StatusCode, body
	}
	code, body := probe("/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = probe("/readyz")
	assert.Equal(t, http.StatusOK, code, body)

	m.down.Store(true)
	code, body = probe("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.NotContains(t, body, "10.0.0.5", "the cause goes to the log only")
	assert.Contains(t, e.logs.String(), "connection refused")
	code, _ = probe("/healthz")
	assert.Equal(t, http.StatusOK, code, "liveness does not depend on the Model")

	m.down.Store(false)
	code, body = probe("/readyz")
	assert.Equal(t, http.StatusOK, code, body)
}

// TestAuditEventsAsJSONLines: the example started as a user would start it
// writes every audit event to stderr as one JSON line, with no token,
// code, verifier or secret in it, beside its text log; -log-format json
// makes the whole log JSON lines.
func TestAuditEventsAsJSONLines(t *testing.T) {
	r := launch(t, "-clients", serviceClientsFile(t))
	// The default issuer names localhost; the pages redirect there.
	e := &testEnv{t: t, issuer: strings.Replace(r.listening(), "127.0.0.1", "localhost", 1)}

	clientID := e.register("Audit Client")
	verifier, challenge := pkcePair()
	code := e.approve(clientID, challenge, "alice")
	tr := e.redeem(clientID, code, verifier)
	tr2 := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tr.RefreshToken}})
	service := e.token(url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret)
	resp, body := e.postForm(http.DefaultClient, e.issuer+"/token", url.Values{"grant_type": {"client_credentials"}}, "service", "wrong-secret")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	r.stop()

	type line struct {
		Msg   string         `json:"msg"`
		Event map[string]any `json:"event"`
	}
	var events []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.stderr.String()), "\n") {
		if !strings.HasPrefix(l, "{") {
			assert.True(t, strings.HasPrefix(l, "time="), "a text log line: %s", l)
			continue
		}
		var got line
		require.NoError(t, json.Unmarshal([]byte(l), &got), l)
		require.Equal(t, "audit", got.Msg, l)
		events = append(events, got.Event)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev["type"].(string))
	}
	assert.Equal(t, []string{"client.registered", "client.registered", "authorization.approved", "token.issued",
		"token.refreshed", "token.issued", "client.authentication_failed"}, types)
	approved := events[2]
	assert.Equal(t, clientID, approved["client_id"])
	assert.Equal(t, "alice", approved["user_id"])
	assert.Equal(t, "authorization_code", approved["grant_type"])
	assert.Equal(t, "success", approved["outcome"])
	assert.NotEmpty(t, approved["grant_id"])
	assert.Equal(t, "127.0.0.1", events[3]["ip"])
	assert.Equal(t, "failure", events[6]["outcome"])

	logs := r.stderr.String()
	for _, secret := range []string{code, verifier, challenge, tr.AccessToken, tr.RefreshToken, tr2.AccessToken,
		tr2.RefreshToken, service.AccessToken, serviceSecret, "wrong-secret"} {
		assert.NotContains(t, logs, secret)
	}

	// -log-format json: every line of the log is JSON.
	j := launch(t, "-log-format", "json")
	require.Eventually(t, func() bool { return strings.Contains(j.stderr.String(), `"msg":"listening"`) },
		20*time.Second, 10*time.Millisecond, "stderr: %s", j.stderr)
	j.stop()
	for _, l := range strings.Split(strings.TrimSpace(j.stderr.String()), "\n") {
		assert.True(t, json.Valid([]byte(l)), l)
	}
}
