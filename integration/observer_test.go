package integration_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/audit"
)

// observer is the recording hook every harness and live server installs:
// it keeps the audit events, spans and metrics the server reports and
// every credential that crossed the wire (tapped from requests and
// responses), and at the end of the test checks that no record carries a
// credential. Running it under the whole integration suite searches every
// flow's records for every credential the flow used.
type observer struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader

	mu     sync.Mutex
	events []audit.Event
	creds  map[string]bool
}

func newObserver() *observer {
	return &observer{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), creds: map[string]bool{}}
}

// install records c's events, metrics and spans, keeping a hook or provider
// a test set (a test that installs its own provider reads it itself).
func (o *observer) install(c *mcpoauth.Config) {
	next := c.OnEvent
	c.OnEvent = func(ctx context.Context, e audit.Event) {
		o.mu.Lock()
		o.events = append(o.events, e)
		o.mu.Unlock()
		if next != nil {
			next(ctx, e)
		}
	}
	if c.MeterProvider == nil {
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))
	}
	if c.TracerProvider == nil {
		c.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
	}
}

// eventsOf returns the recorded events of type typ.
func (o *observer) eventsOf(typ audit.Type) []audit.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []audit.Event
	for _, e := range o.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// credentialParams are the request and response members that carry a
// credential (or a value as secret: the pending request id, the CSRF
// token).
var credentialParams = []string{
	"code", "code_verifier", "refresh_token", "access_token", "client_secret", "client_assertion", "assertion",
	"device_code", "user_code", "token", "csrf_token", "request_id", "registration_access_token",
}

// credential notes v as a credential. Short values (a test's "bogus") are
// skipped: they would match by chance.
func (o *observer) credential(v string) {
	if len(v) < 8 {
		return
	}
	o.mu.Lock()
	o.creds[v] = true
	o.mu.Unlock()
}

func (o *observer) values(v url.Values) {
	for _, k := range credentialParams {
		for _, x := range v[k] {
			o.credential(x)
			if n, err := url.QueryUnescape(x); err == nil {
				o.credential(n)
			}
		}
	}
}

// tap notes the credentials of every request and response through h.
func (o *observer) tap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.values(r.URL.Query())
		if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if v, err := url.ParseQuery(string(body)); err == nil {
				o.values(v)
			}
		}
		for _, a := range r.Header.Values("Authorization") {
			scheme, cred, _ := strings.Cut(a, " ")
			o.credential(cred)
			if strings.EqualFold(scheme, "Basic") {
				if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
					_, sec, _ := strings.Cut(string(raw), ":")
					o.credential(sec)
					if s, err := url.QueryUnescape(sec); err == nil {
						o.credential(s)
					}
				}
			}
		}
		for _, c := range r.Cookies() {
			if strings.Contains(c.Name, "mcpoauth") {
				o.credential(c.Value)
			}
		}
		tw := &tapWriter{ResponseWriter: w}
		h.ServeHTTP(tw, r)
		var body map[string]any
		if json.Unmarshal(tw.body.Bytes(), &body) == nil {
			for _, k := range credentialParams {
				if s, ok := body[k].(string); ok {
					o.credential(s)
				}
			}
		}
		if loc, err := url.Parse(w.Header().Get("Location")); err == nil {
			o.values(loc.Query())
		}
		for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
			o.credential(c.Value)
		}
	})
}

type tapWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *tapWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

// records renders every event, span and metric data point as text.
func (o *observer) records(t *testing.T) []string {
	t.Helper()
	var out []string
	o.mu.Lock()
	for _, e := range o.events {
		out = append(out, fmt.Sprintf("event %+v", e))
	}
	o.mu.Unlock()
	for _, s := range o.spans.Ended() {
		out = append(out, "span "+s.Name()+" "+attrsString(s.Attributes())+" "+s.Status().Description)
		for _, ev := range s.Events() {
			out = append(out, "span event "+ev.Name+" "+attrsString(ev.Attributes))
		}
	}
	for _, s := range o.spans.Started() {
		out = append(out, "span "+s.Name())
	}
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(context.Background(), &rm); err != nil {
		t.Errorf("collect metrics: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range dataPointAttributes(m.Data) {
				out = append(out, "metric "+m.Name+" "+attrsString(set.ToSlice()))
			}
		}
	}
	return out
}

// dataPointAttributes are the attribute sets of a metric's data points.
func dataPointAttributes(d metricdata.Aggregation) []attribute.Set {
	var out []attribute.Set
	switch d := d.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	}
	return out
}

func attrsString(kvs []attribute.KeyValue) string {
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(string(kv.Key) + "=" + kv.Value.String() + " ")
	}
	return b.String()
}

// checkNoCredentials fails the test if any event, span or metric carries
// a credential the test's requests and responses carried.
func (o *observer) checkNoCredentials(t *testing.T) {
	t.Helper()
	records := o.records(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range leaks(records, o.creds) {
		t.Errorf("a credential reached telemetry: %s", l)
	}
}

// leaks names each record that contains one of creds.
func leaks(records []string, creds map[string]bool) []string {
	sorted := make([]string, 0, len(creds))
	for c := range creds {
		sorted = append(sorted, c)
	}
	slices.Sort(sorted)
	var out []string
	for _, rec := range records {
		for _, c := range sorted {
			if strings.Contains(rec, c) {
				out = append(out, fmt.Sprintf("%q in %q", c, rec))
			}
		}
	}
	return out
}
