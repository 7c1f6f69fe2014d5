package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/audit"
)

// What an operator watches: the library's metrics as Prometheus text at
// /metrics, its audit events as JSON lines, and two probes. The library
// itself depends only on the OpenTelemetry API; the SDK and the Prometheus
// exporter are the example's choice, kept out of every embedder's build.

// metrics is the example's OpenTelemetry MeterProvider and the Prometheus
// registry its exporter writes to.
type metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// newMetrics makes a MeterProvider whose reader is the OpenTelemetry
// Prometheus exporter, on a registry of its own rather than
// prometheus.DefaultRegisterer: two servers in one process (the tests) do
// not collide, and nothing registered by another package leaks into
// /metrics. The registry also carries the Go runtime and process metrics.
func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// service.name labels target_info (else "unknown_service:<binary>").
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "mcpoauth-example-server")))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithResource(res)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// close stops the MeterProvider.
func (m *metrics) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return m.provider.Shutdown(ctx)
}

// auditLogger returns the Config.OnEvent that writes each audit event
// through events, which run gives a JSON handler: one JSON line per event,
// {"msg":"audit","event":{"type":...}}. audit.Event implements
// slog.LogValuer and holds no credential, so the line holds none either.
// A nil events logger means no OnEvent.
func auditLogger(events *slog.Logger) func(context.Context, audit.Event) {
	if events == nil {
		return nil
	}
	return func(ctx context.Context, e audit.Event) {
		events.LogAttrs(ctx, slog.LevelInfo, "audit", slog.Any("event", e))
	}
}

// healthz is the liveness probe: the process answers HTTP. It checks
// nothing else, so that a database outage never gets the process
// restarted (which would not help).
func healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probeAnswer(w, http.StatusOK, "ok")
	})
}

// readinessTimeout bounds the Model call of /readyz.
const readinessTimeout = 2 * time.Second

// readinessProbeClient is the client_id /readyz asks the Model for; no
// client has it, so a reachable Model answers ErrNotFound.
const readinessProbeClient = "mcpoauth-example-readiness-probe"

// readyz is the readiness probe: 200 when a cheap Model call (GetClient
// of an id nobody has) answers within readinessTimeout, ErrNotFound
// included; 503 otherwise, so a load balancer sends requests elsewhere
// while the database is unreachable. The cause goes to the log, not to
// the body.
func readyz(model mcpoauth.Model, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		_, err := model.GetClient(ctx, readinessProbeClient)
		if err != nil && !errors.Is(err, mcpoauth.ErrNotFound) {
			logger.LogAttrs(r.Context(), slog.LevelWarn, "not ready: the model did not answer", slog.Any("error", err))
			probeAnswer(w, http.StatusServiceUnavailable, "model unreachable")
			return
		}
		probeAnswer(w, http.StatusOK, "ready")
	})
}

func probeAnswer(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}
