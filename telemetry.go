package mcpoauth

import (
	"context"
	"net/http"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/telemetry"
)

// Observability: Config.OnEvent receives audit events, and
// Config.MeterProvider and Config.TracerProvider OpenTelemetry metrics and
// spans (docs/production.md, "Events, metrics and traces", lists them).
// Everything goes through one *telemetry.Telemetry, nil when none of the
// three is set, so that a server that observes nothing pays one nil check
// per place it would report.

// newTelemetry builds the server's telemetry from its settings.
func newTelemetry(s *settings) (*telemetry.Telemetry, error) {
	t, err := telemetry.New(telemetry.Options{
		Now:            s.Now,
		OnEvent:        s.OnEvent,
		MeterProvider:  s.MeterProvider,
		TracerProvider: s.TracerProvider,
		TrustedProxies: s.RateLimits.TrustedProxies,
	})
	if err != nil {
		return nil, configError("MeterProvider", err.Error())
	}
	return t, nil
}

// observeModel hands the telemetry to the grants, which time and trace
// every Model call through wrappers of their own store interfaces; the
// Model itself is not wrapped, so OAuthServer.Model returns it with every
// optional capability it has. It runs once the stores are all set.
func (s *OAuthServer) observeModel() {
	s.grants.Observe(s.telemetry)
	s.env.Registrar = s.grants.ObserveRegistrar(s.env.Registrar)
}

// refusedHook reports the refusals of the rate limit named limit; nil when
// nothing observes them.
func (s *OAuthServer) refusedHook(limit string) func(r *http.Request) {
	if s.telemetry == nil {
		return nil
	}
	return func(r *http.Request) { s.telemetry.RateLimited(r, limit) }
}

// documentLookupHook counts the client ID metadata document cache's hits
// and misses; nil when nothing observes them.
func (s *OAuthServer) documentLookupHook() func(ctx context.Context, hit bool) {
	if s.telemetry == nil {
		return nil
	}
	return s.telemetry.DocumentLookup
}

// emitClientEvent reports a client administration call that succeeded (err
// nil); reason is fixed text or "".
func (s *OAuthServer) emitClientEvent(ctx context.Context, typ audit.Type, clientID, reason string, err error) {
	if err != nil {
		return
	}
	s.telemetry.Emit(ctx, audit.Event{Type: typ, ClientID: clientID, Reason: reason})
}
