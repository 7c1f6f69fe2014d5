package integration_test

import (
	"context"
	"net/http"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/audit"
)

// withTelemetry turns everything on: an audit hook, and SDK meter and
// tracer providers that sample every span (their data is read by nobody,
// as between two scrapes).
func withTelemetry(c *mcpoauth.Config) {
	c.OnEvent = func(context.Context, audit.Event) {}
	c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	c.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
}

// BenchmarkBearerTelemetry is the bearer path (GET /mcp behind
// RequireBearerAuth, and VerifyAccessToken alone) with telemetry off and
// on, the two run in turn so that the machine's drift hits both:
//
//	go test -run '^$' -bench BearerTelemetry -benchmem -count 5 ./integration
//
// For a fair pair run each case in its own process (docs/performance.md,
// "Telemetry on beside off"): in one process the second pays for the
// first one's heap.
//
// Budget (issue 16, item 5): on costs at most 5% more than off; off costs
// what BenchmarkBearer does.
func BenchmarkBearerTelemetry(b *testing.B) {
	for _, mode := range []struct {
		name    string
		options []func(*mcpoauth.Config)
	}{{"off", nil}, {"on", []func(*mcpoauth.Config){withTelemetry}}} {
		d := newBenchDriver(b, nil, mode.options...)
		token := d.issueTokens(1)[0]
		b.Run("mcp/"+mode.name, func(b *testing.B) {
			d.serveLoop(b, benchRequest(http.MethodGet, "/mcp", http.Header{"Authorization": {"Bearer " + token}}, ""))
		})
		b.Run("verify/"+mode.name, func(b *testing.B) {
			verifyLoop(b, d.app.Server, []string{token})
		})
	}
}
