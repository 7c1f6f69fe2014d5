// Package telemetry carries the server's audit events, OpenTelemetry
// metrics and spans to the application's hook and providers. A nil
// *Telemetry is valid and does nothing, at the cost of one nil check: that
// is the server with neither Config.OnEvent nor a provider, and keeps the
// bearer path as it was.
//
// Nothing here takes a credential as an argument: events, attributes and
// span names are built from client, user and grant ids, grant types,
// endpoint and operation names and OAuth error codes only.
package telemetry

import (
	"context"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/ratelimit"
)

// ScopeName is the instrumentation scope of the server's meter and tracer.
const ScopeName = "github.com/mcpoauth/mcpoauth"

// Metric names (OpenTelemetry form; a Prometheus exporter writes
// mcpoauth_request_duration_seconds and so on).
const (
	MetricRequestDuration = "mcpoauth.request.duration"
	MetricTokensIssued    = "mcpoauth.tokens.issued"
	MetricReplays         = "mcpoauth.replays.detected"
	MetricVerifications   = "mcpoauth.token.verifications"
	MetricModelDuration   = "mcpoauth.model.duration"
	MetricRateLimited     = "mcpoauth.rate_limit.refusals"
	MetricDocumentLookups = "mcpoauth.client_metadata_document.lookups"
)

// Attribute keys.
const (
	AttrEndpoint  = attribute.Key("endpoint")
	AttrOutcome   = attribute.Key("outcome")
	AttrGrantType = attribute.Key("grant_type")
	AttrTokenType = attribute.Key("token_type")
	AttrOperation = attribute.Key("operation")
	AttrCache     = attribute.Key("cache")
)

// durationBuckets suit calls from a few microseconds (a memory Model) to
// seconds (a slow database or a document fetch); the SDK's default buckets
// are meant for milliseconds.
var durationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Options are what Config gives the server to observe with.
type Options struct {
	// Now is the server's clock, for the events' Time.
	Now func() time.Time
	// OnEvent receives audit events; nil: none.
	OnEvent func(ctx context.Context, e audit.Event)
	// MeterProvider and TracerProvider: nil turns metrics, or spans, off.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// TrustedProxies are those of the rate limits, for the events' IP.
	TrustedProxies []netip.Prefix
}

// Telemetry observes one server.
type Telemetry struct {
	now     func() time.Time
	onEvent func(ctx context.Context, e audit.Event)
	trusted []netip.Prefix
	tracer  trace.Tracer // nil: no spans

	metrics         bool
	requestDuration metric.Float64Histogram
	tokensIssued    metric.Int64Counter
	replays         metric.Int64Counter
	verifications   metric.Int64ObservableCounter
	modelDuration   metric.Float64Histogram
	rateLimited     metric.Int64Counter
	documentLookups metric.Int64Counter

	// verified counts verifications by outcome. The bearer path adds to
	// an atomic counter, which the SDK reads at collection time, rather
	// than call the SDK on every protected request: an SDK Add costs a few
	// hundred nanoseconds, an atomic add a few (item 5's budget is 5%).
	verified [numVerificationOutcomes]atomic.Int64
	// hit holds the attribute sets of the document lookups, built once;
	// one-element slices passed with ..., since a new variadic slice
	// would escape to the heap through the instrument's interface.
	hit [2][]metric.AddOption
}

// New returns the Telemetry of opts, or nil when there is nothing to
// observe with.
func New(opts Options) (*Telemetry, error) {
	if opts.OnEvent == nil && opts.MeterProvider == nil && opts.TracerProvider == nil {
		return nil, nil
	}
	t := &Telemetry{now: opts.Now, onEvent: opts.OnEvent, trusted: opts.TrustedProxies}
	if t.now == nil {
		t.now = time.Now
	}
	if opts.TracerProvider != nil {
		t.tracer = opts.TracerProvider.Tracer(ScopeName)
	}
	if opts.MeterProvider != nil {
		if err := t.newInstruments(opts.MeterProvider.Meter(ScopeName)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Telemetry) newInstruments(m metric.Meter) error {
	var err error
	hist := func(name, desc string) metric.Float64Histogram {
		h, e := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(durationBuckets...))
		if err == nil {
			err = e
		}
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err == nil {
			err = e
		}
		return c
	}
	t.requestDuration = hist(MetricRequestDuration, "Duration of the authorization server's endpoint requests, by endpoint and outcome.")
	t.tokensIssued = counter(MetricTokensIssued, "{token}", "Tokens issued at the token endpoint, by grant type and token type.")
	t.replays = counter(MetricReplays, "{replay}", "Authorization codes and rotated refresh tokens presented again; each revoked its grant.")
	var verifiedAttrs [numVerificationOutcomes]metric.ObserveOption
	for o := range numVerificationOutcomes {
		verifiedAttrs[o] = metric.WithAttributeSet(attribute.NewSet(AttrOutcome.String(o.String())))
	}
	t.verifications, err = m.Int64ObservableCounter(MetricVerifications, metric.WithUnit("{verification}"),
		metric.WithDescription("Access token verifications on the bearer path, by outcome."),
		metric.WithInt64Callback(func(_ context.Context, obs metric.Int64Observer) error {
			for o := range numVerificationOutcomes {
				obs.Observe(t.verified[o].Load(), verifiedAttrs[o])
			}
			return nil
		}))
	t.modelDuration = hist(MetricModelDuration, "Duration of Model calls, by operation and outcome.")
	t.rateLimited = counter(MetricRateLimited, "{request}", "Requests refused by a per-IP rate limit, by limit.")
	t.documentLookups = counter(MetricDocumentLookups, "{lookup}", "Client ID metadata document lookups, by cache hit or miss.")
	if err != nil {
		return err
	}
	t.hit[0] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrCache.String("miss")))}
	t.hit[1] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrCache.String("hit")))}
	t.metrics = true
	return nil
}

// Emit hands e to OnEvent, with Time and, when a request carries it (see
// Endpoint), IP filled in. OnEvent runs synchronously, on the request's
// goroutine.
func (t *Telemetry) Emit(ctx context.Context, e audit.Event) {
	if t == nil || t.onEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = t.now()
	}
	if ri := requestOf(ctx); ri != nil && !e.IP.IsValid() {
		e.IP = ri.ip
	}
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	t.onEvent(ctx, e)
}

// EmitsEvents reports whether Emit reaches a hook, so that callers skip
// building an event nobody receives.
func (t *Telemetry) EmitsEvents() bool { return t != nil && t.onEvent != nil }

// TokensIssued counts the tokens of one token response.
func (t *Telemetry) TokensIssued(ctx context.Context, grantType string, refresh bool) {
	if t == nil || !t.metrics {
		return
	}
	t.tokensIssued.Add(ctx, 1, metric.WithAttributes(AttrGrantType.String(grantType), AttrTokenType.String("access_token")))
	if refresh {
		t.tokensIssued.Add(ctx, 1, metric.WithAttributes(AttrGrantType.String(grantType), AttrTokenType.String("refresh_token")))
	}
}

// Replayed counts a replay of a credential of grantType.
func (t *Telemetry) Replayed(ctx context.Context, grantType string) {
	if t == nil || !t.metrics {
		return
	}
	t.replays.Add(ctx, 1, metric.WithAttributes(AttrGrantType.String(grantType)))
}

// RateLimited counts a refusal of r by the limit named limit, and marks
// the request's outcome.
func (t *Telemetry) RateLimited(r *http.Request, limit string) {
	if t == nil {
		return
	}
	ctx := r.Context()
	SetOutcome(ctx, "too_many_requests")
	if t.metrics {
		t.rateLimited.Add(ctx, 1, metric.WithAttributes(AttrEndpoint.String(limit)))
	}
	e := audit.Event{Type: audit.RateLimited, Outcome: audit.Failure, Reason: limit}
	if requestOf(ctx) == nil {
		// A limit outside an endpoint (PendingDeviceAuthorization, called
		// by the application's page).
		e.IP = ratelimit.ClientIP(r, t.trusted)
	}
	t.Emit(ctx, e)
}

// DocumentLookup counts a client ID metadata document lookup that the cache
// answered (hit) or that needed a fetch.
func (t *Telemetry) DocumentLookup(ctx context.Context, hit bool) {
	if t == nil || !t.metrics {
		return
	}
	i := 0
	if hit {
		i = 1
	}
	t.documentLookups.Add(ctx, 1, t.hit[i]...)
}

// VerificationOutcome is how an access token verification ended.
type VerificationOutcome int

// Verification outcomes.
const (
	Valid   VerificationOutcome = iota // the token is valid
	Invalid                            // unknown, expired, revoked, not an access token
	Failed                             // the Model failed
	numVerificationOutcomes
)

func (o VerificationOutcome) String() string {
	switch o {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	}
	return "error"
}

// Verified counts an access token verification: one atomic add.
func (t *Telemetry) Verified(o VerificationOutcome) {
	if t == nil || !t.metrics {
		return
	}
	t.verified[o].Add(1)
}

// Span starts a child span named name when ctx carries a recording span,
// and returns ctx unchanged and a no-op span otherwise: the server adds
// detail to traces the application or an endpoint started, and starts no
// trace of its own below endpoint level (the bearer path's verification
// is a child of the application's request span, or nothing).
func (t *Telemetry) Span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noSpan
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// noSpan is the non-recording span Span returns when it starts none.
var noSpan = trace.SpanFromContext(context.Background())

// Operation is one Model method, its attribute sets built once.
type Operation struct {
	t        *Telemetry
	name     string
	span     string
	outcomes [numModelOutcomes][]metric.RecordOption
	// sampleEvery > 1 times only one call in sampleEvery (see Sampled);
	// calls counts the calls for it.
	sampleEvery uint32
	calls       atomic.Uint32
}

// BearerSampling is how many calls of a bearer-path Model method (GetToken)
// share one timing: reading the clock twice and recording a histogram
// cost several times the budget of item 5 on every protected request, so
// one call in BearerSampling is timed. The latency distribution stays
// representative; the histogram's count is then a sample, and
// mcpoauth.token.verifications counts the calls.
const BearerSampling = 64

// Sampled makes op time one call in every n (n > 1) instead of each.
func (op *Operation) Sampled(n uint32) *Operation {
	if op != nil {
		op.sampleEvery = n
	}
	return op
}

// ModelOutcome classifies what a Model call returned.
type ModelOutcome int

// Model call outcomes.
const (
	ModelOK       ModelOutcome = iota // no error
	ModelNotFound                     // record.ErrNotFound
	ModelConflict                     // record.ErrAlreadyUsed, record.ErrConflict
	ModelError                        // any other error: a storage failure
	numModelOutcomes
)

func (o ModelOutcome) String() string {
	return [...]string{"ok", "not_found", "conflict", "error"}[o]
}

// Operation returns the Operation of the Model method name, or nil when
// neither metrics nor spans are on (a nil *Operation does nothing).
func (t *Telemetry) Operation(name string) *Operation {
	if t == nil || !t.metrics && t.tracer == nil {
		return nil
	}
	op := &Operation{t: t, name: name, span: "mcpoauth.model." + name}
	for o := range numModelOutcomes {
		op.outcomes[o] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(AttrOperation.String(name), AttrOutcome.String(o.String())))}
	}
	return op
}

// ModelCall is a Model call under way; End finishes it.
type ModelCall struct {
	op    *Operation
	start time.Time
	span  trace.Span
}

// Start begins a call of op: its clock, and a child span when ctx carries
// a recording span.
func (op *Operation) Start(ctx context.Context) (context.Context, ModelCall) {
	if op == nil {
		return ctx, ModelCall{}
	}
	c := ModelCall{op: op}
	if op.t.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		ctx, c.span = op.t.tracer.Start(ctx, op.span, trace.WithSpanKind(trace.SpanKindClient))
	}
	if op.t.metrics && (op.sampleEvery <= 1 || op.calls.Add(1)%op.sampleEvery == 0) {
		c.start = time.Now()
	}
	return ctx, c
}

// End records the call's duration and outcome and ends its span. A
// storage failure marks the span as an error, with no message: a Model's
// error may quote what it was given.
func (c ModelCall) End(ctx context.Context, o ModelOutcome) {
	if c.op == nil {
		return
	}
	if !c.start.IsZero() {
		c.op.t.modelDuration.Record(ctx, time.Since(c.start).Seconds(), c.op.outcomes[o]...)
	}
	if c.span != nil {
		c.span.SetAttributes(AttrOutcome.String(o.String()))
		if o == ModelError {
			c.span.SetStatus(codes.Error, "model error")
		}
		c.span.End()
	}
}

// requestInfo is what Endpoint puts in a request's context: the client IP
// for events, and the OAuth error the request ended with, for its outcome.
type requestInfo struct {
	ip      netip.Addr
	outcome string
}

type requestKey struct{}

func requestOf(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestKey{}).(*requestInfo)
	return ri
}

// SetOutcome records the OAuth error code a request is answered with (the
// server's error funnel calls it), for its metric and span.
func SetOutcome(ctx context.Context, code string) {
	if ri := requestOf(ctx); ri != nil && ri.outcome == "" {
		ri.outcome = code
	}
}

// Endpoint wraps the handler of the endpoint named name: it gives the
// request the client IP its events carry, starts the endpoint's span
// (mcpoauth.<name>) and records its duration with its outcome: ok, or the
// OAuth error code it was answered with (too_many_requests for a rate
// limit), or error for another failing status.
func (t *Telemetry) Endpoint(name string, h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	spanName := "mcpoauth." + name
	endpoint := AttrEndpoint.String(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{}
		if t.onEvent != nil {
			// Only events carry the IP.
			ri.ip = ratelimit.ClientIP(r, t.trusted)
		}
		ctx := context.WithValue(r.Context(), requestKey{}, ri)
		if !t.metrics && t.tracer == nil {
			h.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		start := time.Now()
		var span trace.Span
		if t.tracer != nil {
			ctx, span = t.tracer.Start(ctx, spanName, trace.WithAttributes(endpoint, attribute.String("http.request.method", r.Method)))
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		outcome := ri.outcome
		switch {
		case outcome != "":
		case status < 400:
			outcome = "ok"
		default:
			outcome = "error"
		}
		if t.metrics {
			t.requestDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(endpoint, AttrOutcome.String(outcome)))
		}
		if span != nil {
			span.SetAttributes(AttrOutcome.String(outcome), attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, outcome)
			}
			span.End()
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
