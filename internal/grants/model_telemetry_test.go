package grants

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
// is that the call reached the store, and the span the wrapper started,
// which is all the name depends on.
func TestObservedMethodsRecordUnderTheirOwnName(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
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
				ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
				defer parent.End()
				before := len(spans.Started())
				require.NotNil(t, call(reflect.ValueOf(store.wrapper).MethodByName(m.Name), ctx), "the call did not reach the store")
				var started []string
				for _, sp := range spans.Started()[before:] {
					started = append(started, sp.Name())
				}
				require.Equal(t, []string{"mcpoauth.model." + m.Name}, started)
			})
		}
	}
}

// call calls method with ctx and the zero value of each other parameter (a
// variadic one left empty), and returns what it panicked with: the empty
// store's panic when the call reached it.
func call(method reflect.Value, ctx context.Context) (panicked any) {
	defer func() { panicked = recover() }()
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
	return nil
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
// the bearer path sees it.
func observedTokenStore(t testing.TB) Store {
	tel, err := telemetry.New(telemetry.Options{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())),
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
