package grants

// Observing the Model: when metrics or spans are on, Observe wraps each
// store the Service holds, so that every Model call the grants and
// handlers make is timed (mcpoauth.model.duration) and, under an endpoint's
// span, gets a child span. The wrappers sit on the Service's narrow store
// interfaces, not on the application's Model: the Model the application
// passed, with all its optional capabilities, stays what OAuthServer.Model
// returns, and no capability is lost in a wrapper.

import (
	"context"
	"errors"
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
	ops := func(names ...string) map[string]*telemetry.Operation {
		m := make(map[string]*telemetry.Operation, len(names))
		for _, n := range names {
			m[n] = t.Operation(n)
		}
		return m
	}
	storeOps := ops("GetClient", "SaveAuthorizationRequest", "GetAuthorizationRequest", "ConsumeAuthorizationRequest", "SaveAuthorizationCode", "GetAuthorizationCode", "ConsumeAuthorizationCode", "SaveTokens", "GetToken", "RotateRefreshToken", "RevokeToken", "RevokeGrant")
	s.Store = observedStore{Store: s.Store, ops: storeOps, getToken: storeOps["GetToken"].Sampled(telemetry.BearerSampling)}
	if s.Devices != nil {
		s.Devices = observedDevices{DeviceStore: s.Devices, ops: ops("SaveDeviceAuthorization", "GetDeviceAuthorization", "GetDeviceAuthorizationByUserCode", "ResolveDeviceAuthorization", "RecordDevicePoll", "ConsumeDeviceAuthorization", "DeleteDeviceAuthorization")}
	}
	if s.Grants != nil {
		s.Grants = observedGrants{GrantStore: s.Grants, ops: ops("SaveGrant", "GetGrant", "ListUserGrants", "ListClientGrants", "RecordGrantUse")}
	}
	if s.Usage != nil {
		s.Usage = observedUsage{ClientUsageRecorder: s.Usage, ops: ops("RecordClientUse")}
	}
	if s.Assertions != nil {
		s.Assertions.Replay = observedReplay{ReplayStore: s.Assertions.Replay, ops: ops("UseAssertionID")}
	}
	s.observeRegistrar = func(r ClientRegistrar) ClientRegistrar {
		return observedRegistrar{ClientRegistrar: r, ops: ops("RegisterClient", "UpdateClient", "DeleteClient")}
	}
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

// end finishes the Model call c with the outcome of its error, and returns
// the error.
func end(ctx context.Context, c telemetry.ModelCall, err error) error {
	c.End(ctx, modelOutcome(err))
	return err
}

// observedStore observes a Store. The interface is embedded, so that a method
// added to it later is forwarded, unobserved, until it is listed here.
type observedStore struct {
	Store
	ops map[string]*telemetry.Operation
	// getToken is ops["GetToken"], without the map lookup: the bearer
	// path calls it on every protected request.
	getToken *telemetry.Operation
}

func (o observedStore) GetClient(ctx context.Context, clientID string) (*record.Client, error) {
	ctx, c := o.ops["GetClient"].Start(ctx)
	v, err := o.Store.GetClient(ctx, clientID)
	return v, end(ctx, c, err)
}

func (o observedStore) SaveAuthorizationRequest(ctx context.Context, req *record.AuthorizationRequest) error {
	ctx, c := o.ops["SaveAuthorizationRequest"].Start(ctx)
	return end(ctx, c, o.Store.SaveAuthorizationRequest(ctx, req))
}

func (o observedStore) GetAuthorizationRequest(ctx context.Context, id record.Digest) (*record.AuthorizationRequest, error) {
	ctx, c := o.ops["GetAuthorizationRequest"].Start(ctx)
	v, err := o.Store.GetAuthorizationRequest(ctx, id)
	return v, end(ctx, c, err)
}

func (o observedStore) ConsumeAuthorizationRequest(ctx context.Context, id record.Digest) (*record.AuthorizationRequest, error) {
	ctx, c := o.ops["ConsumeAuthorizationRequest"].Start(ctx)
	v, err := o.Store.ConsumeAuthorizationRequest(ctx, id)
	return v, end(ctx, c, err)
}

func (o observedStore) SaveAuthorizationCode(ctx context.Context, code *record.AuthorizationCode) error {
	ctx, c := o.ops["SaveAuthorizationCode"].Start(ctx)
	return end(ctx, c, o.Store.SaveAuthorizationCode(ctx, code))
}

func (o observedStore) GetAuthorizationCode(ctx context.Context, code record.Digest) (*record.AuthorizationCode, error) {
	ctx, c := o.ops["GetAuthorizationCode"].Start(ctx)
	v, err := o.Store.GetAuthorizationCode(ctx, code)
	return v, end(ctx, c, err)
}

func (o observedStore) ConsumeAuthorizationCode(ctx context.Context, code record.Digest, clientID string, issued ...*record.Token) error {
	ctx, c := o.ops["ConsumeAuthorizationCode"].Start(ctx)
	return end(ctx, c, o.Store.ConsumeAuthorizationCode(ctx, code, clientID, issued...))
}

func (o observedStore) SaveTokens(ctx context.Context, tokens ...*record.Token) error {
	ctx, c := o.ops["SaveTokens"].Start(ctx)
	return end(ctx, c, o.Store.SaveTokens(ctx, tokens...))
}

func (o observedStore) GetToken(ctx context.Context, token record.Digest) (*record.Token, error) {
	ctx, c := o.getToken.Start(ctx)
	v, err := o.Store.GetToken(ctx, token)
	// Not end, which is not inlined: the bearer path saves the call.
	c.End(ctx, modelOutcome(err))
	return v, err
}

func (o observedStore) RotateRefreshToken(ctx context.Context, token record.Digest, clientID string, at, reuseSince time.Time, issued ...*record.Token) error {
	ctx, c := o.ops["RotateRefreshToken"].Start(ctx)
	return end(ctx, c, o.Store.RotateRefreshToken(ctx, token, clientID, at, reuseSince, issued...))
}

func (o observedStore) RevokeToken(ctx context.Context, token record.Digest, clientID string) (*record.Token, error) {
	ctx, c := o.ops["RevokeToken"].Start(ctx)
	v, err := o.Store.RevokeToken(ctx, token, clientID)
	return v, end(ctx, c, err)
}

func (o observedStore) RevokeGrant(ctx context.Context, grantID string) error {
	ctx, c := o.ops["RevokeGrant"].Start(ctx)
	return end(ctx, c, o.Store.RevokeGrant(ctx, grantID))
}

// observedDevices observes a DeviceStore. The interface is embedded, so that a method
// added to it later is forwarded, unobserved, until it is listed here.
type observedDevices struct {
	DeviceStore
	ops map[string]*telemetry.Operation
}

func (o observedDevices) SaveDeviceAuthorization(ctx context.Context, d *record.DeviceAuthorization) error {
	ctx, c := o.ops["SaveDeviceAuthorization"].Start(ctx)
	return end(ctx, c, o.DeviceStore.SaveDeviceAuthorization(ctx, d))
}

func (o observedDevices) GetDeviceAuthorization(ctx context.Context, deviceCode record.Digest) (*record.DeviceAuthorization, error) {
	ctx, c := o.ops["GetDeviceAuthorization"].Start(ctx)
	v, err := o.DeviceStore.GetDeviceAuthorization(ctx, deviceCode)
	return v, end(ctx, c, err)
}

func (o observedDevices) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode record.Digest) (*record.DeviceAuthorization, error) {
	ctx, c := o.ops["GetDeviceAuthorizationByUserCode"].Start(ctx)
	v, err := o.DeviceStore.GetDeviceAuthorizationByUserCode(ctx, userCode)
	return v, end(ctx, c, err)
}

func (o observedDevices) ResolveDeviceAuthorization(ctx context.Context, userCode record.Digest, decision record.DeviceDecision) error {
	ctx, c := o.ops["ResolveDeviceAuthorization"].Start(ctx)
	return end(ctx, c, o.DeviceStore.ResolveDeviceAuthorization(ctx, userCode, decision))
}

func (o observedDevices) RecordDevicePoll(ctx context.Context, deviceCode record.Digest, clientID string, seen, next record.DevicePoll) error {
	ctx, c := o.ops["RecordDevicePoll"].Start(ctx)
	return end(ctx, c, o.DeviceStore.RecordDevicePoll(ctx, deviceCode, clientID, seen, next))
}

func (o observedDevices) ConsumeDeviceAuthorization(ctx context.Context, deviceCode record.Digest, clientID string, now time.Time, issued ...*record.Token) error {
	ctx, c := o.ops["ConsumeDeviceAuthorization"].Start(ctx)
	return end(ctx, c, o.DeviceStore.ConsumeDeviceAuthorization(ctx, deviceCode, clientID, now, issued...))
}

func (o observedDevices) DeleteDeviceAuthorization(ctx context.Context, deviceCode record.Digest, clientID string) error {
	ctx, c := o.ops["DeleteDeviceAuthorization"].Start(ctx)
	return end(ctx, c, o.DeviceStore.DeleteDeviceAuthorization(ctx, deviceCode, clientID))
}

// observedGrants observes a GrantStore. The interface is embedded, so that a method
// added to it later is forwarded, unobserved, until it is listed here.
type observedGrants struct {
	GrantStore
	ops map[string]*telemetry.Operation
}

func (o observedGrants) SaveGrant(ctx context.Context, g *record.Grant) error {
	ctx, c := o.ops["SaveGrant"].Start(ctx)
	return end(ctx, c, o.GrantStore.SaveGrant(ctx, g))
}

func (o observedGrants) GetGrant(ctx context.Context, grantID string) (*record.Grant, error) {
	ctx, c := o.ops["GetGrant"].Start(ctx)
	v, err := o.GrantStore.GetGrant(ctx, grantID)
	return v, end(ctx, c, err)
}

func (o observedGrants) ListUserGrants(ctx context.Context, userID string) ([]*record.Grant, error) {
	ctx, c := o.ops["ListUserGrants"].Start(ctx)
	v, err := o.GrantStore.ListUserGrants(ctx, userID)
	return v, end(ctx, c, err)
}

func (o observedGrants) ListClientGrants(ctx context.Context, clientID string) ([]*record.Grant, error) {
	ctx, c := o.ops["ListClientGrants"].Start(ctx)
	v, err := o.GrantStore.ListClientGrants(ctx, clientID)
	return v, end(ctx, c, err)
}

func (o observedGrants) RecordGrantUse(ctx context.Context, grantID string, at time.Time) error {
	ctx, c := o.ops["RecordGrantUse"].Start(ctx)
	return end(ctx, c, o.GrantStore.RecordGrantUse(ctx, grantID, at))
}

// observedRegistrar observes a ClientRegistrar. The interface is embedded, so that a method
// added to it later is forwarded, unobserved, until it is listed here.
type observedRegistrar struct {
	ClientRegistrar
	ops map[string]*telemetry.Operation
}

func (o observedRegistrar) RegisterClient(ctx context.Context, client *record.Client) error {
	ctx, c := o.ops["RegisterClient"].Start(ctx)
	return end(ctx, c, o.ClientRegistrar.RegisterClient(ctx, client))
}

func (o observedRegistrar) UpdateClient(ctx context.Context, client *record.Client) error {
	ctx, c := o.ops["UpdateClient"].Start(ctx)
	return end(ctx, c, o.ClientRegistrar.UpdateClient(ctx, client))
}

func (o observedRegistrar) DeleteClient(ctx context.Context, clientID string) error {
	ctx, c := o.ops["DeleteClient"].Start(ctx)
	return end(ctx, c, o.ClientRegistrar.DeleteClient(ctx, clientID))
}

// observedUsage observes a ClientUsageRecorder. The interface is embedded, so that a method
// added to it later is forwarded, unobserved, until it is listed here.
type observedUsage struct {
	ClientUsageRecorder
	ops map[string]*telemetry.Operation
}

func (o observedUsage) RecordClientUse(ctx context.Context, clientID string, at time.Time) error {
	ctx, c := o.ops["RecordClientUse"].Start(ctx)
	return end(ctx, c, o.ClientUsageRecorder.RecordClientUse(ctx, clientID, at))
}

// observedReplay observes a clientjwt.ReplayStore. The interface is embedded, so that a method
// added to it later is forwarded, unobserved, until it is listed here.
type observedReplay struct {
	clientjwt.ReplayStore
	ops map[string]*telemetry.Operation
}

func (o observedReplay) UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	ctx, c := o.ops["UseAssertionID"].Start(ctx)
	return end(ctx, c, o.ReplayStore.UseAssertionID(ctx, clientID, jti, expiresAt))
}
