package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

const deviceColumns = `device_code_digest, user_code_digest, client_id, scopes, resource, grant_id, status, user_id, last_polled_at, poll_interval_ns, expires_at, grant_expires_at`

// SaveDeviceAuthorization stores a new device authorization; ErrConflict if
// its device code or user code digest is taken by a stored authorization.
func (m *Model) SaveDeviceAuthorization(ctx context.Context, d *mcpoauth.DeviceAuthorization) error {
	if err := sqlmodel.CheckSave(ctx, errs, d, func(d *mcpoauth.DeviceAuthorization) bool {
		return d.DeviceCodeDigest.IsZero() || d.UserCodeDigest.IsZero()
	}); err != nil {
		return err
	}
	return m.insert(ctx, "save device authorization", errs.DeviceConflict,
		`INSERT INTO mcpoauth_device_authorizations (`+deviceColumns+`) VALUES (`+placeholders(12)+`)`,
		d.DeviceCodeDigest[:], d.UserCodeDigest[:], d.ClientID, encodeStrings(d.Scopes), d.Resource, d.GrantID,
		int64(d.Status), d.UserID, toNanos(d.LastPolledAt), int64(d.Interval), toNanos(d.ExpiresAt), toNanos(d.GrantExpiresAt))
}

// GetDeviceAuthorization returns the device authorization with this device
// code digest, whatever its status, or ErrNotFound.
func (m *Model) GetDeviceAuthorization(ctx context.Context, deviceCode mcpoauth.Digest) (*mcpoauth.DeviceAuthorization, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return scanDevice(ctx, "get device authorization", m.r.QueryRowContext(ctx,
		`SELECT `+deviceColumns+` FROM mcpoauth_device_authorizations WHERE device_code_digest = ?`, deviceCode[:]))
}

// GetDeviceAuthorizationByUserCode returns the device authorization with
// this user code digest, whatever its status, or ErrNotFound.
func (m *Model) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode mcpoauth.Digest) (*mcpoauth.DeviceAuthorization, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return scanDevice(ctx, "get device authorization", m.r.QueryRowContext(ctx,
		`SELECT `+deviceColumns+` FROM mcpoauth_device_authorizations WHERE user_code_digest = ?`, userCode[:]))
}

func scanDevice(ctx context.Context, op string, row rowScanner) (*mcpoauth.DeviceAuthorization, error) {
	d := &mcpoauth.DeviceAuthorization{}
	var (
		deviceCode, userCode  []byte
		scopes                string
		status, interval      int64
		polled, exp, grantExp sql.NullInt64
	)
	err := row.Scan(&deviceCode, &userCode, &d.ClientID, &scopes, &d.Resource, &d.GrantID, &status, &d.UserID, &polled, &interval, &exp, &grantExp)
	if err = errs.Scan(ctx, op, errs.DeviceNotFound, err); err != nil {
		return nil, err
	}
	if err := errors.Join(errs.Digest(deviceCode, &d.DeviceCodeDigest), errs.Digest(userCode, &d.UserCodeDigest)); err != nil {
		return nil, errs.UnexpectedResult
	}
	if d.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, errs.Storage(ctx, op+": scopes", err)
	}
	d.Status = mcpoauth.DeviceStatus(status)
	d.LastPolledAt, d.Interval = fromNanos(polled), time.Duration(interval)
	d.ExpiresAt, d.GrantExpiresAt = fromNanos(exp), fromNanos(grantExp)
	return d, nil
}

// ResolveDeviceAuthorization atomically decides the pending authorization
// with this user code digest, with one conditional UPDATE ... WHERE
// status = pending; ErrNotFound if there is none (unknown, or decided
// before).
func (m *Model) ResolveDeviceAuthorization(ctx context.Context, userCode mcpoauth.Digest, decision mcpoauth.DeviceDecision) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if decision.Status != mcpoauth.DeviceApproved && decision.Status != mcpoauth.DeviceDenied {
		return errs.DeviceBadStatus
	}
	return m.execOne(ctx, "resolve device authorization", errs.DeviceNotFound,
		`UPDATE mcpoauth_device_authorizations SET status = ?2, user_id = ?3, grant_expires_at = ?4
		WHERE user_code_digest = ?1 AND status = ?5`,
		userCode[:], int64(decision.Status), decision.UserID, toNanos(decision.GrantExpiresAt), int64(mcpoauth.DevicePending))
}

// RecordDevicePoll replaces the poll bookkeeping with next if the
// authorization belongs to clientID, is pending, and still has the
// bookkeeping seen, with one conditional UPDATE (a compare-and-set, so a
// poll never writes over the user's decision); ErrNotFound, and no change,
// otherwise.
func (m *Model) RecordDevicePoll(ctx context.Context, deviceCode mcpoauth.Digest, clientID string, seen, next mcpoauth.DevicePoll) error {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.DeviceNotFound); err != nil {
		return err
	}
	// IS compares NULL with NULL as equal: SQL's IS NOT DISTINCT FROM.
	return m.execOne(ctx, "record device poll", errs.DeviceNotFound,
		`UPDATE mcpoauth_device_authorizations SET last_polled_at = ?3, poll_interval_ns = ?4
		WHERE device_code_digest = ?1 AND client_id = ?2 AND status = ?5 AND last_polled_at IS ?6 AND poll_interval_ns = ?7`,
		deviceCode[:], clientID, toNanos(next.LastPolledAt), int64(next.Interval),
		int64(mcpoauth.DevicePending), toNanos(seen.LastPolledAt), int64(seen.Interval))
}

// ConsumeDeviceAuthorization atomically removes the approved authorization
// of clientID that has not expired at now, and saves the tokens issued for
// it, all or nothing, in one transaction whose conditional DELETE redeems
// the device code, so of concurrent calls exactly one succeeds. It answers
// ErrNotFound if there is no such authorization, ErrConflict if an issued
// token's digest is taken, and an error wrapping ErrNotFound if the grant
// was revoked. On any error nothing changes.
func (m *Model) ConsumeDeviceAuthorization(ctx context.Context, deviceCode mcpoauth.Digest, clientID string, now time.Time, issued ...*mcpoauth.Token) error {
	return m.redeem(ctx, sqlmodel.Redemption{
		Op:       "consume device authorization",
		ClientID: clientID,
		Issued:   issued,
		NotFound: errs.DeviceNotFound,
		Update: `DELETE FROM mcpoauth_device_authorizations
			WHERE device_code_digest = ? AND client_id = ? AND status = ? AND expires_at > ?`,
		Args: []any{deviceCode[:], clientID, int64(mcpoauth.DeviceApproved), nanosOrZero(now)},
	})
}

// DeleteDeviceAuthorization removes the authorization of clientID with this
// device code digest, whatever its status; ErrNotFound, and no change, if
// there is none.
func (m *Model) DeleteDeviceAuthorization(ctx context.Context, deviceCode mcpoauth.Digest, clientID string) error {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.DeviceNotFound); err != nil {
		return err
	}
	return m.execOne(ctx, "delete device authorization", errs.DeviceNotFound,
		`DELETE FROM mcpoauth_device_authorizations WHERE device_code_digest = ? AND client_id = ?`, deviceCode[:], clientID)
}
