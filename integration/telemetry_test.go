package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Audit events, metrics and spans (issue 16, items 3-5). Every harness
// records them (observer_test.go) and checks, at the end of each test of
// the package, that no record carries a credential; these tests check what
// is recorded.

// harnessIP is the client address httptest requests come from.
var harnessIP = netip.MustParseAddr("192.0.2.1")

// TestAuditEvents: each event type is emitted where it happens, with the
// client, user, grant and IP it concerns.
func TestAuditEvents(t *testing.T) {
	for _, tc := range []struct {
		typ    audit.Type
		mutate []func(*mcpoauth.Config)
		// run causes the event and returns what it must carry.
		run func(t *testing.T, h *harness) audit.Event
	}{
		{typ: audit.AuthorizationApproved, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			h.code(id)
			return audit.Event{ClientID: id, UserID: "alice", GrantType: "authorization_code", IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.AuthorizationDenied, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			b := &browser{}
			p := h.pending(b, h.authorize(b, authorizeParams(id)))
			w := h.decide(b, url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"deny"}})
			require.Equal(t, http.StatusSeeOther, w.Code)
			return audit.Event{ClientID: id, GrantType: "authorization_code", IP: harnessIP, Outcome: audit.Failure, Reason: "access_denied"}
		}},
		{typ: audit.TokenIssued, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			h.tokens(id)
			return audit.Event{ClientID: id, UserID: "alice", GrantType: "authorization_code", IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.TokenRefreshed, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			w := h.postForm("/token", refreshForm(id, h.tokens(id).RefreshToken))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			return audit.Event{ClientID: id, UserID: "alice", GrantType: "refresh_token", IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.ReplayDetected, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			code := h.code(id)
			require.Equal(t, http.StatusOK, h.postForm("/token", exchangeForm(id, code)).Code)
			require.Equal(t, http.StatusBadRequest, h.postForm("/token", exchangeForm(id, code)).Code)
			return audit.Event{ClientID: id, UserID: "alice", GrantType: "authorization_code", IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.TokenRevoked, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			w := h.postForm("/revoke", url.Values{"token": {h.tokens(id).AccessToken}, "client_id": {id}})
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			return audit.Event{ClientID: id, UserID: "alice", IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.GrantRevoked, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			w := h.postForm("/revoke", url.Values{"token": {h.tokens(id).RefreshToken}, "client_id": {id}})
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			return audit.Event{ClientID: id, UserID: "alice", IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.ClientRegistered, run: func(t *testing.T, h *harness) audit.Event {
			return audit.Event{ClientID: h.dynamicPublicClient(), IP: harnessIP, Outcome: audit.Success}
		}},
		{typ: audit.ClientUpdated, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			_, err := h.srv.UpdateClient(context.Background(), metadata.ClientInformation{ClientID: id, ClientMetadata: metadata.ClientMetadata{
				RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "none", ClientName: "Renamed",
			}})
			require.NoError(t, err)
			return audit.Event{ClientID: id, Outcome: audit.Success}
		}},
		{typ: audit.ClientDeleted, run: func(t *testing.T, h *harness) audit.Event {
			id := h.publicClient()
			require.NoError(t, h.srv.DeleteClient(context.Background(), id))
			return audit.Event{ClientID: id, Outcome: audit.Success}
		}},
		{typ: audit.ClientsSwept, run: func(t *testing.T, h *harness) audit.Event {
			h.dynamicPublicClient()
			h.clock.Advance(mcpoauth.DefaultClientIdleLifetime + 48*time.Hour)
			n, err := h.srv.SweepIdleClients(context.Background())
			require.NoError(t, err)
			require.Equal(t, 1, n)
			return audit.Event{Count: 1, Outcome: audit.Success}
		}},
		{typ: audit.ClientAuthenticationFailed, run: func(t *testing.T, h *harness) audit.Event {
			id, _ := h.confidentialClient()
			w := h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-refresh-token"}}, id, "wrong-secret-value")
			require.Equal(t, http.StatusUnauthorized, w.Code)
			return audit.Event{ClientID: id, IP: harnessIP, Outcome: audit.Failure, Reason: "client authentication failed"}
		}},
		{typ: audit.RateLimited, mutate: []func(*mcpoauth.Config){func(c *mcpoauth.Config) {
			c.RateLimits = mcpoauth.RateLimits{Register: mcpoauth.RateLimit{Requests: 1, Window: time.Hour}}
		}}, run: func(t *testing.T, h *harness) audit.Event {
			h.dynamicPublicClient()
			require.Equal(t, http.StatusTooManyRequests, h.register(`{"redirect_uris":["`+testRedirect+`"]}`).Code)
			return audit.Event{IP: harnessIP, Outcome: audit.Failure, Reason: "register"}
		}},
		{typ: audit.MetadataDocumentFetchFailed, run: func(t *testing.T, h *harness) audit.Event {
			missing := "https://app.example.com/oauth/missing.json"
			requireShownError(t, h.authorize(&browser{}, authorizeParams(missing)), "invalid_client")
			return audit.Event{ClientID: missing, IP: harnessIP, Outcome: audit.Failure, Reason: "fetch_failed"}
		}},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			var h *harness
			if tc.typ == audit.MetadataDocumentFetchFailed {
				h, _ = newCIMDHarness(t, tc.mutate...)
			} else {
				h = newHarness(t, tc.mutate...)
			}
			want := tc.run(t, h)
			got := h.obs.eventsOf(tc.typ)
			require.NotEmpty(t, got, "no %s event", tc.typ)
			e := got[len(got)-1]
			require.Equal(t, h.clock.Now(), e.Time)
			if want.UserID != "" && e.GrantID == "" && tc.typ != audit.AuthorizationDenied {
				t.Errorf("%s has no grant id: %+v", tc.typ, e)
			}
			want.Type, want.Time, want.GrantID = tc.typ, e.Time, e.GrantID
			require.Equal(t, want, e)
		})
	}
}

// TestAuditEventsCoverEveryType: the table above has a case per type.
func TestAuditEventsCoverEveryType(t *testing.T) {
	require.Len(t, audit.Types, 14)
}

// TestAuditEventIPBehindProxy: behind a trusted proxy, the event's IP is
// the client's from X-Forwarded-For, as the rate limiter sees it.
func TestAuditEventIPBehindProxy(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/register", strings.NewReader(`{"redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	require.Equal(t, http.StatusCreated, h.do(r).Code)
	got := h.obs.eventsOf(audit.ClientRegistered)
	require.Len(t, got, 1)
	require.Equal(t, netip.MustParseAddr("203.0.113.9"), got[0].IP)
}

// TestTelemetrySpans: each endpoint request is a span with the Model calls
// it made as children; a protected request under the application's span
// gets a verification span with the token lookup below it.
func TestTelemetrySpans(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	tr := h.tokens(id)

	spans := h.obs.spans.Ended()
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	names := func(parent string) []string {
		var out []string
		for _, s := range spans {
			if p, ok := byID[s.Parent().SpanID().String()]; ok && p.Name() == parent {
				out = append(out, s.Name())
			}
		}
		return out
	}
	var roots []string
	for _, s := range spans {
		if !s.Parent().IsValid() {
			roots = append(roots, s.Name())
		}
	}
	require.Subset(t, roots, []string{"mcpoauth.authorize", "mcpoauth.authenticate", "mcpoauth.token"})
	require.Subset(t, names("mcpoauth.authorize"), []string{"mcpoauth.model.SaveAuthorizationRequest"})
	require.Subset(t, names("mcpoauth.authenticate"), []string{"mcpoauth.model.ConsumeAuthorizationRequest", "mcpoauth.model.SaveAuthorizationCode"})
	require.Subset(t, names("mcpoauth.token"), []string{"mcpoauth.model.GetAuthorizationCode", "mcpoauth.model.ConsumeAuthorizationCode"})
	for _, s := range spans {
		if s.Name() == "mcpoauth.token" {
			require.Contains(t, s.Attributes(), attribute.String("outcome", "ok"))
			require.Contains(t, s.Attributes(), attribute.Int("http.response.status_code", 200))
		}
	}

	// The bearer path starts no trace of its own...
	before := len(h.obs.spans.Ended())
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	require.Len(t, h.obs.spans.Ended(), before)
	// ...and details the application's.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.obs.spans))
	ctx, app := tp.Tracer("app").Start(context.Background(), "app.request")
	_, err := h.srv.VerifyAccessToken(ctx, tr.AccessToken)
	require.NoError(t, err)
	app.End()
	spans = h.obs.spans.Ended()
	byID = map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	require.Equal(t, []string{"mcpoauth.verify_access_token"}, names("app.request"))
	require.Equal(t, []string{"mcpoauth.model.GetToken"}, names("mcpoauth.verify_access_token"))
}

// TestTelemetryMetrics: after a flow, the counters moved, with the grant
// type as grant_type.
func TestTelemetryMetrics(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{Token: mcpoauth.RateLimit{Requests: 4, Window: time.Hour}}
	})
	id := h.publicClient()
	code := h.code(id)
	w := h.postForm("/token", exchangeForm(id, code))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	tr := decodeTokens(t, w)
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	require.Equal(t, http.StatusUnauthorized, h.callMCP("not-a-token-at-all").Code)
	require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, tr.RefreshToken)).Code)
	require.Equal(t, http.StatusBadRequest, h.postForm("/token", exchangeForm(id, code)).Code) // replay
	require.Equal(t, http.StatusBadRequest, h.postForm("/token", url.Values{"grant_type": {"password"}, "client_id": {id}}).Code)
	require.Equal(t, http.StatusTooManyRequests, h.postForm("/token", exchangeForm(id, code)).Code)

	m := collect(t, h)
	for _, c := range []struct {
		metric string
		attrs  []attribute.KeyValue
		want   int64
	}{
		{"mcpoauth.tokens.issued", []attribute.KeyValue{attribute.String("grant_type", "authorization_code"), attribute.String("token_type", "access_token")}, 1},
		{"mcpoauth.tokens.issued", []attribute.KeyValue{attribute.String("grant_type", "authorization_code"), attribute.String("token_type", "refresh_token")}, 1},
		{"mcpoauth.tokens.issued", []attribute.KeyValue{attribute.String("grant_type", "refresh_token"), attribute.String("token_type", "access_token")}, 1},
		{"mcpoauth.replays.detected", []attribute.KeyValue{attribute.String("grant_type", "authorization_code")}, 1},
		{"mcpoauth.token.verifications", []attribute.KeyValue{attribute.String("outcome", "valid")}, 1},
		{"mcpoauth.token.verifications", []attribute.KeyValue{attribute.String("outcome", "invalid")}, 1},
		{"mcpoauth.rate_limit.refusals", []attribute.KeyValue{attribute.String("endpoint", "token")}, 1},
		{"mcpoauth.request.duration", []attribute.KeyValue{attribute.String("endpoint", "token"), attribute.String("outcome", "ok")}, 2},
		{"mcpoauth.request.duration", []attribute.KeyValue{attribute.String("endpoint", "token"), attribute.String("outcome", "invalid_grant")}, 1},
		{"mcpoauth.request.duration", []attribute.KeyValue{attribute.String("endpoint", "token"), attribute.String("outcome", "unsupported_grant_type")}, 1},
		{"mcpoauth.request.duration", []attribute.KeyValue{attribute.String("endpoint", "token"), attribute.String("outcome", "too_many_requests")}, 1},
		{"mcpoauth.request.duration", []attribute.KeyValue{attribute.String("endpoint", "authenticate"), attribute.String("outcome", "ok")}, 1},
		{"mcpoauth.token.verifications", []attribute.KeyValue{attribute.String("outcome", "error")}, 0},
		{"mcpoauth.model.duration", []attribute.KeyValue{attribute.String("operation", "ConsumeAuthorizationCode"), attribute.String("outcome", "ok")}, 1},
		{"mcpoauth.model.duration", []attribute.KeyValue{attribute.String("operation", "RotateRefreshToken"), attribute.String("outcome", "ok")}, 1},
		{"mcpoauth.model.duration", []attribute.KeyValue{attribute.String("operation", "GetAuthorizationCode"), attribute.String("outcome", "ok")}, 2},
	} {
		require.Equal(t, c.want, m.count(c.metric, attribute.NewSet(c.attrs...)), "%s %v", c.metric, c.attrs)
	}
}

// TestTelemetryDocumentCache: metadata document lookups count cache hits
// and misses.
func TestTelemetryDocumentCache(t *testing.T) {
	h, _ := newCIMDHarness(t)
	for range 2 {
		w := h.authorize(&browser{}, authorizeParams(cimdClientID))
		require.Equal(t, http.StatusFound, w.Code, w.Body.String())
	}
	m := collect(t, h)
	require.Equal(t, int64(1), m.count("mcpoauth.client_metadata_document.lookups", attribute.NewSet(attribute.String("cache", "miss"))))
	require.Positive(t, m.count("mcpoauth.client_metadata_document.lookups", attribute.NewSet(attribute.String("cache", "hit"))))
}

// TestTelemetryKeepsModelCapabilities: observing the Model wraps the
// server's internal view of it only; the application's Model keeps every
// optional capability, and flows that need them work.
func TestTelemetryKeepsModelCapabilities(t *testing.T) {
	h := newDeviceHarness(t)
	m := h.srv.Model()
	require.Same(t, h.model, m)
	for name, ok := range map[string]bool{
		"ClientRegistrar":      implements[mcpoauth.ClientRegistrar](m),
		"DeviceStore":          implements[mcpoauth.DeviceStore](m),
		"GrantStore":           implements[mcpoauth.GrantStore](m),
		"UpstreamTokenStore":   implements[mcpoauth.UpstreamTokenStore](m),
		"AssertionReplayStore": implements[mcpoauth.AssertionReplayStore](m),
		"ClientUsageRecorder":  implements[mcpoauth.ClientUsageRecorder](m),
	} {
		require.True(t, ok, name)
	}
	// The device grant runs through the observed DeviceStore.
	id := h.deviceClient()
	da := h.decidedDevice(id, "approve", "alice")
	require.Equal(t, http.StatusOK, h.pollDevice(id, da.DeviceCode).Code)
	require.Equal(t, int64(1), collect(t, h).count("mcpoauth.tokens.issued", attribute.NewSet(attribute.String("grant_type", mcpoauth.GrantDeviceCode), attribute.String("token_type", "access_token"))))
	require.Len(t, h.obs.eventsOf(audit.TokenIssued), 1)
}

func implements[T any](v any) bool { _, ok := v.(T); return ok }

// TestTelemetryCarriesNoCredential: a whole flow's records hold none of
// the credentials it used. Every test of the package runs the same check
// at its end; this one also makes sure the check is not vacuous.
func TestTelemetryCarriesNoCredential(t *testing.T) {
	h := newHarness(t)
	id, secret := h.confidentialClient()
	code := h.code(id)
	w := h.postForm("/token", basicExchangeForm(id, code), id, secret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	tr := decodeTokens(t, w)
	require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, tr.RefreshToken), id, secret).Code)
	require.Equal(t, http.StatusOK, h.postForm("/revoke", url.Values{"token": {tr.AccessToken}}, id, secret).Code)
	require.Equal(t, http.StatusUnauthorized, h.postForm("/token", refreshForm(id, tr.RefreshToken), id, secret+"x").Code)

	h.obs.mu.Lock()
	for _, c := range []string{code, testVerifier, secret, tr.AccessToken, tr.RefreshToken} {
		require.True(t, h.obs.creds[c], "the tap missed a credential")
	}
	h.obs.mu.Unlock()
	records := h.obs.records(t)
	require.NotEmpty(t, records)
	for _, typ := range []audit.Type{audit.AuthorizationApproved, audit.TokenIssued, audit.TokenRefreshed, audit.TokenRevoked, audit.ClientAuthenticationFailed} {
		require.NotEmpty(t, h.obs.eventsOf(typ), typ)
	}
	require.Empty(t, leaks(records, h.obs.creds))
	// A record that carried one would be caught.
	require.Len(t, leaks(append(records, "event {ClientID:"+tr.RefreshToken+"}"), h.obs.creds), 1)
}

// metricData are the collected data points, by metric name.
type metricData map[string]metricdata.Aggregation

func collect(t *testing.T, h *harness) metricData {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.obs.reader.Collect(context.Background(), &rm))
	out := metricData{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// count is a counter's value, or a histogram's count, at attrs.
func (m metricData) count(name string, attrs attribute.Set) int64 {
	switch d := m[name].(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if p.Attributes.Equals(&attrs) {
				return p.Value
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if p.Attributes.Equals(&attrs) {
				return int64(p.Count)
			}
		}
	}
	return 0
}
