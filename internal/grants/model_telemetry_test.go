package grants

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/telemetry"
	"github.com/mcpoauth/mcpoauth/record"
)

// TestObservedMethodsRecordUnderTheirOwnName: every method of every store
// interface Observe wraps starts the span of its own Operation,
// mcpoauth.model.<method> (the name the duration metric carries too), so a
// wrapper cannot time one method under another's name, and no method is
// forwarded unobserved by the embedded interface.
//
// The stores behind the wrappers are empty: each call starts its span, then
// panics on the missing store, and the panic is recovered. What is checked
// is that the call reached the store's method of the same name (read off
// the panicking stack), and the span the wrapper started, which is all the
// name depends on.
func TestObservedMethodsRecordUnderTheirOwnName(t *testing.T) {
	tp := &spanNames{}
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp})
	require.NoError(t, err)
	s := &Service{
		Store:      struct{ Store }{},
		Devices:    struct{ DeviceStore }{},
		Grants:     struct{ GrantStore }{},
		Usage:      struct{ ClientUsageRecorder }{},
		Assertions: &clientjwt.Verifier{Replay: struct{ clientjwt.ReplayStore }{}},
	}
	s.Observe(tel)

	for _, store := range []struct {
		iface   reflect.Type
		wrapper any
	}{
		{reflect.TypeFor[Store](), s.Store},
		{reflect.TypeFor[DeviceStore](), s.Devices},
		{reflect.TypeFor[GrantStore](), s.Grants},
		{reflect.TypeFor[ClientUsageRecorder](), s.Usage},
		{reflect.TypeFor[clientjwt.ReplayStore](), s.Assertions.Replay},
		{reflect.TypeFor[ClientRegistrar](), s.ObserveRegistrar(struct{ ClientRegistrar }{})},
	} {
		for m := range store.iface.Methods() {
			t.Run(store.iface.Name()+"."+m.Name, func(t *testing.T) {
				ctx := trace.ContextWithSpan(context.Background(), recordingSpan{})
				before := len(tp.started)
				require.Equal(t, m.Name, call(reflect.ValueOf(store.wrapper).MethodByName(m.Name), ctx), "the method of the store the call reached")
				require.Equal(t, []string{"mcpoauth.model." + m.Name}, tp.started[before:])
			})
		}
	}
}

// spanNames is a TracerProvider that keeps the name of every span started
// (the tests run one call at a time). Its spans record, as a request's
// does, so that a Model call under one starts a child.
type spanNames struct {
	tracenoop.TracerProvider
	started []string
}

func (p *spanNames) Tracer(string, ...trace.TracerOption) trace.Tracer { return spanNameTracer{p: p} }

type spanNameTracer struct {
	tracenoop.Tracer
	p *spanNames
}

func (t spanNameTracer) Start(ctx context.Context, name string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	t.p.started = append(t.p.started, name)
	return trace.ContextWithSpan(ctx, recordingSpan{}), recordingSpan{}
}

// recordingSpan is a span that says it records and keeps nothing.
type recordingSpan struct{ tracenoop.Span }

func (recordingSpan) IsRecording() bool { return true }

// call calls method with ctx and the zero value of each other parameter (a
// variadic one left empty), and returns the name of the method of the
// empty store it reached: the one whose nil interface panicked, found on
// the panicking stack ("" if none did).
func call(method reflect.Value, ctx context.Context) (reached string) {
	defer func() {
		if recover() == nil {
			return
		}
		pcs := make([]uintptr, 64)
		frames := runtime.CallersFrames(pcs[:runtime.Callers(0, pcs)])
		for {
			f, more := frames.Next()
			// The method M that struct{ X } promotes from its nil X,
			// named as "go:(*struct { …X }).M".
			if strings.Contains(f.Function, "struct {") {
				reached = f.Function[strings.LastIndex(f.Function, ".")+1:]
				return
			}
			if !more {
				return
			}
		}
	}()
	mt := method.Type()
	n := mt.NumIn()
	if mt.IsVariadic() {
		n--
	}
	args := []reflect.Value{reflect.ValueOf(ctx)}
	for i := 1; i < n; i++ {
		args = append(args, reflect.Zero(mt.In(i)))
	}
	method.Call(args)
	return ""
}

// tokenStore answers every GetToken with tok; it holds nothing else.
type tokenStore struct {
	Store
	tok *record.Token
}

func (s tokenStore) GetToken(context.Context, record.Digest) (*record.Token, error) {
	return s.tok, nil
}

// observedTokenStore is a tokenStore observed with metrics and spans on, as
// the bearer path sees it. The providers are the API's no-op ones (the
// root module does not depend on the OpenTelemetry SDK): what is measured
// is the wrapper and the telemetry package, not an SDK's recording;
// integration's BenchmarkBearerTelemetry measures the whole path with the
// SDK.
func observedTokenStore(t testing.TB) Store {
	tel, err := telemetry.New(telemetry.Options{
		MeterProvider:  metricnoop.NewMeterProvider(),
		TracerProvider: tracenoop.NewTracerProvider(),
	})
	require.NoError(t, err)
	s := &Service{Store: tokenStore{tok: &record.Token{ClientID: "c"}}}
	s.Observe(tel)
	return s.Store
}

// TestObservedGetTokenAllocatesNothing: observing GetToken, which every
// protected request calls, allocates nothing per call: the call observe
// takes stays on the stack.
func TestObservedGetTokenAllocatesNothing(t *testing.T) {
	store, ctx := observedTokenStore(t), context.Background()
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		if tok, err := store.GetToken(ctx, record.Digest{}); err != nil || tok.ClientID != "c" {
			panic("GetToken did not forward")
		}
	}))
}

// BenchmarkObservedGetToken is what the Model wrapper costs the bearer
// path's GetToken with telemetry on (no request span, metrics sampled):
//
//	go test -run '^$' -bench ObservedGetToken -count 6 ./internal/grants
func BenchmarkObservedGetToken(b *testing.B) {
	store, ctx := observedTokenStore(b), context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.GetToken(ctx, record.Digest{}); err != nil {
			b.Fatal(err)
		}
	}
}
