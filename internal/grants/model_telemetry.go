package grants

// Observing the Model: when metrics or spans are on, Observe wraps each
// store the Service holds, so that every Model call the grants and
// handlers make is timed (mcpoauth.model.duration) and, under an endpoint's
// span, gets a child span. The wrappers sit on the Service's narrow store
// interfaces, not on the application's Model: the Model the application
// passed, with all its optional capabilities, stays what OAuthServer.Model
// returns, and no capability is lost in a wrapper.
//
// Each wrapper embeds the interface it observes and overrides every method
// with one call of observe or observeErr (GetToken, on the bearer path,
// writes that call out). A method added to an interface later is forwarded
// unobserved by the embedding, and
// TestObservedMethodsRecordUnderTheirOwnName fails until it is overridden.

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/telemetry"
	"github.com/mcpoauth/mcpoauth/record"
)

// Observe installs t: events and metrics of the grants, and the Model
// wrappers. Call it once, after the stores are set and before use. A nil t
// changes nothing.
func (s *Service) Observe(t *telemetry.Telemetry) {
	s.Telemetry = t
	if t == nil || t.Operation("GetToken") == nil {
		return
	}
	storeOps := operations[Store](t)
	s.Store = observedStore{Store: s.Store, ops: storeOps, getToken: storeOps["GetToken"].Sampled(telemetry.BearerSampling)}
	if s.Devices != nil {
		s.Devices = observedDevices{DeviceStore: s.Devices, ops: operations[DeviceStore](t)}
	}
	if s.Grants != nil {
		s.Grants = observedGrants{GrantStore: s.Grants, ops: operations[GrantStore](t)}
	}
	if s.Usage != nil {
		s.Usage = observedUsage{ClientUsageRecorder: s.Usage, ops: operations[ClientUsageRecorder](t)}
	}
	if s.Assertions != nil {
		s.Assertions.Replay = observedReplay{ReplayStore: s.Assertions.Replay, ops: operations[clientjwt.ReplayStore](t)}
	}
	registrarOps := operations[ClientRegistrar](t)
	s.observeRegistrar = func(r ClientRegistrar) ClientRegistrar {
		return observedRegistrar{ClientRegistrar: r, ops: registrarOps}
	}
}

// operations returns the Operation of each method of the interface S, by
// method name: the names come from the interface, so that none is
// misspelt or left out.
func operations[S any](t *telemetry.Telemetry) map[string]*telemetry.Operation {
	st := reflect.TypeFor[S]()
	m := make(map[string]*telemetry.Operation, st.NumMethod())
	for i := range st.NumMethod() {
		name := st.Method(i).Name
		m[name] = t.Operation(name)
	}
	return m
}

// ObserveRegistrar returns reg observed as the Service's stores are (see
// Observe), for the handlers' registration endpoint.
func (s *Service) ObserveRegistrar(reg ClientRegistrar) ClientRegistrar {
	if s.observeRegistrar == nil || reg == nil {
		return reg
	}
	return s.observeRegistrar(reg)
}

// modelOutcome classifies a Model call's error.
func modelOutcome(err error) telemetry.ModelOutcome {
	switch {
	case err == nil:
		return telemetry.ModelOK
	case errors.Is(err, record.ErrNotFound):
		return telemetry.ModelNotFound
	case errors.Is(err, record.ErrAlreadyUsed), errors.Is(err, record.ErrConflict):
		return telemetry.ModelConflict
	}
	return telemetry.ModelError
}

// observe makes call, the Model method op names, under op: timed, and in
// a child span when ctx carries a recording one (telemetry.Operation.Start);
// the outcome is its error's. call is passed the span's context.
func observe[T any](ctx context.Context, op *telemetry.Operation, call func(context.Context) (T, error)) (T, error) {
	ctx, c := op.Start(ctx)
	v, err := call(ctx)
	c.End(ctx, modelOutcome(err))
	return v, err
}

// observeErr is observe for a Model method that returns only an error.
func observeErr(ctx context.Context, op *telemetry.Operation, call func(context.Context) error) error {
	ctx, c := op.Start(ctx)
	err := call(ctx)
	c.End(ctx, modelOutcome(err))
	return err
}

// observedStore observes a Store.
type observedStore struct {
	Store
	ops map[string]*telemetry.Operation
	// getToken is ops["GetToken"], without the map lookup: the bearer
	// path calls it on every protected request.
	getToken *telemetry.Operation
}

func (o observedStore) GetClient(ctx context.Context, clientID string) (*record.Client, error) {
	return observe(ctx, o.ops["GetClient"], func(ctx context.Context) (*record.Client, error) { return o.Store.GetClient(ctx, clientID) })
}

func (o observedStore) SaveAuthorizationRequest(ctx context.Context, req *record.AuthorizationRequest) error {
	return observeErr(ctx, o.ops["SaveAuthorizationRequest"], func(ctx context.Context) error { return o.Store.SaveAuthorizationRequest(ctx, req) })
}

func (o observedStore) GetAuthorizationRequest(ctx context.Context, id record.Digest) (*record.AuthorizationRequest, error) {
	return observe(ctx, o.ops["GetAuthorizationRequest"], func(ctx context.Context) (*record.AuthorizationRequest, error) {
		return o.Store.GetAuthorizationRequest(ctx, id)
	})
}

func (o observedStore) ConsumeAuthorizationRequest(ctx context.Context, id record.Digest) (*record.AuthorizationRequest, error) {
	return observe(ctx, o.ops["ConsumeAuthorizationRequest"], func(ctx context.Context) (*record.AuthorizationRequest, error) {
		return o.Store.ConsumeAuthorizationRequest(ctx, id)
	})
}

func (o observedStore) SaveAuthorizationCode(ctx context.Context, code *record.AuthorizationCode) error {
	return observeErr(ctx, o.ops["SaveAuthorizationCode"], func(ctx context.Context) error { return o.Store.SaveAuthorizationCode(ctx, code) })
}

func (o observedStore) GetAuthorizationCode(ctx context.Context, code record.Digest) (*record.AuthorizationCode, error) {
	return observe(ctx, o.ops["GetAuthorizationCode"], func(ctx context.Context) (*record.AuthorizationCode, error) {
		return o.Store.GetAuthorizationCode(ctx, code)
	})
}

func (o observedStore) ConsumeAuthorizationCode(ctx context.Context, code record.Digest, clientID string, issued ...*record.Token) error {
	return observeErr(ctx, o.ops["ConsumeAuthorizationCode"], func(ctx context.Context) error {
		return o.Store.ConsumeAuthorizationCode(ctx, code, clientID, issued...)
	})
}

func (o observedStore) SaveTokens(ctx context.Context, tokens ...*record.Token) error {
	return observeErr(ctx, o.ops["SaveTokens"], func(ctx context.Context) error { return o.Store.SaveTokens(ctx, tokens...) })
}

func (o observedStore) GetToken(ctx context.Context, token record.Digest) (*record.Token, error) {
	// Written out, not observe, which is not inlined: the bearer path
	// saves the call (BenchmarkObservedGetToken).
	ctx, c := o.getToken.Start(ctx)
	v, err := o.Store.GetToken(ctx, token)
	c.End(ctx, modelOutcome(err))
	return v, err
}

func (o observedStore) RotateRefreshToken(ctx context.Context, token record.Digest, clientID string, at, reuseSince time.Time, issued ...*record.Token) error {
	return observeErr(ctx, o.ops["RotateRefreshToken"], func(ctx context.Context) error {
		return o.Store.RotateRefreshToken(ctx, token, clientID, at, reuseSince, issued...)
	})
}

func (o observedStore) RevokeToken(ctx context.Context, token record.Digest, clientID string) (*record.Token, error) {
	return observe(ctx, o.ops["RevokeToken"], func(ctx context.Context) (*record.Token, error) { return o.Store.RevokeToken(ctx, token, clientID) })
}

func (o observedStore) RevokeGrant(ctx context.Context, grantID string) error {
	return observeErr(ctx, o.ops["RevokeGrant"], func(ctx context.Context) error { return o.Store.RevokeGrant(ctx, grantID) })
}

// observedDevices observes a DeviceStore.
type observedDevices struct {
	DeviceStore
	ops map[string]*telemetry.Operation
}

func (o observedDevices) SaveDeviceAuthorization(ctx context.Context, d *record.DeviceAuthorization) error {
	return observeErr(ctx, o.ops["SaveDeviceAuthorization"], func(ctx context.Context) error { return o.DeviceStore.SaveDeviceAuthorization(ctx, d) })
}

func (o observedDevices) GetDeviceAuthorization(ctx context.Context, deviceCode record.Digest) (*record.DeviceAuthorization, error) {
	return observe(ctx, o.ops["GetDeviceAuthorization"], func(ctx context.Context) (*record.DeviceAuthorization, error) {
		return o.DeviceStore.GetDeviceAuthorization(ctx, deviceCode)
	})
}

func (o observedDevices) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode record.Digest) (*record.DeviceAuthorization, error) {
	return observe(ctx, o.ops["GetDeviceAuthorizationByUserCode"], func(ctx context.Context) (*record.DeviceAuthorization, error) {
		return o.DeviceStore.GetDeviceAuthorizationByUserCode(ctx, userCode)
	})
}

func (o observedDevices) ResolveDeviceAuthorization(ctx context.Context, userCode record.Digest, decision record.DeviceDecision) error {
	return observeErr(ctx, o.ops["ResolveDeviceAuthorization"], func(ctx context.Context) error {
		return o.DeviceStore.ResolveDeviceAuthorization(ctx, userCode, decision)
	})
}

func (o observedDevices) RecordDevicePoll(ctx context.Context, deviceCode record.Digest, clientID string, seen, next record.DevicePoll) error {
	return observeErr(ctx, o.ops["RecordDevicePoll"], func(ctx context.Context) error {
		return o.DeviceStore.RecordDevicePoll(ctx, deviceCode, clientID, seen, next)
	})
}

func (o observedDevices) ConsumeDeviceAuthorization(ctx context.Context, deviceCode record.Digest, clientID string, now time.Time, issued ...*record.Token) error {
	return observeErr(ctx, o.ops["ConsumeDeviceAuthorization"], func(ctx context.Context) error {
		return o.DeviceStore.ConsumeDeviceAuthorization(ctx, deviceCode, clientID, now, issued...)
	})
}

func (o observedDevices) DeleteDeviceAuthorization(ctx context.Context, deviceCode record.Digest, clientID string) error {
	return observeErr(ctx, o.ops["DeleteDeviceAuthorization"], func(ctx context.Context) error {
		return o.DeviceStore.DeleteDeviceAuthorization(ctx, deviceCode, clientID)
	})
}

// observedGrants observes a GrantStore.
type observedGrants struct {
	GrantStore
	ops map[string]*telemetry.Operation
}

func (o observedGrants) SaveGrant(ctx context.Context, g *record.Grant) error {
	return observeErr(ctx, o.ops["SaveGrant"], func(ctx context.Context) error { return o.GrantStore.SaveGrant(ctx, g) })
}

func (o observedGrants) GetGrant(ctx context.Context, grantID string) (*record.Grant, error) {
	return observe(ctx, o.ops["GetGrant"], func(ctx context.Context) (*record.Grant, error) { return o.GrantStore.GetGrant(ctx, grantID) })
}

func (o observedGrants) ListUserGrants(ctx context.Context, userID string) ([]*record.Grant, error) {
	return observe(ctx, o.ops["ListUserGrants"], func(ctx context.Context) ([]*record.Grant, error) { return o.GrantStore.ListUserGrants(ctx, userID) })
}

func (o observedGrants) ListClientGrants(ctx context.Context, clientID string) ([]*record.Grant, error) {
	return observe(ctx, o.ops["ListClientGrants"], func(ctx context.Context) ([]*record.Grant, error) {
		return o.GrantStore.ListClientGrants(ctx, clientID)
	})
}

func (o observedGrants) RecordGrantUse(ctx context.Context, grantID string, at time.Time) error {
	return observeErr(ctx, o.ops["RecordGrantUse"], func(ctx context.Context) error { return o.GrantStore.RecordGrantUse(ctx, grantID, at) })
}

// observedRegistrar observes a ClientRegistrar.
type observedRegistrar struct {
	ClientRegistrar
	ops map[string]*telemetry.Operation
}

func (o observedRegistrar) RegisterClient(ctx context.Context, client *record.Client) error {
	return observeErr(ctx, o.ops["RegisterClient"], func(ctx context.Context) error { return o.ClientRegistrar.RegisterClient(ctx, client) })
}

func (o observedRegistrar) UpdateClient(ctx context.Context, client *record.Client) error {
	return observeErr(ctx, o.ops["UpdateClient"], func(ctx context.Context) error { return o.ClientRegistrar.UpdateClient(ctx, client) })
}

func (o observedRegistrar) DeleteClient(ctx context.Context, clientID string) error {
	return observeErr(ctx, o.ops["DeleteClient"], func(ctx context.Context) error { return o.ClientRegistrar.DeleteClient(ctx, clientID) })
}

// observedUsage observes a ClientUsageRecorder.
type observedUsage struct {
	ClientUsageRecorder
	ops map[string]*telemetry.Operation
}

func (o observedUsage) RecordClientUse(ctx context.Context, clientID string, at time.Time) error {
	return observeErr(ctx, o.ops["RecordClientUse"], func(ctx context.Context) error { return o.ClientUsageRecorder.RecordClientUse(ctx, clientID, at) })
}

// observedReplay observes a clientjwt.ReplayStore.
type observedReplay struct {
	clientjwt.ReplayStore
	ops map[string]*telemetry.Operation
}

func (o observedReplay) UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	return observeErr(ctx, o.ops["UseAssertionID"], func(ctx context.Context) error { return o.ReplayStore.UseAssertionID(ctx, clientID, jti, expiresAt) })
}
