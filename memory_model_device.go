package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Compile-time proof that MemoryModel supports the device grant.
var _ DeviceStore = (*MemoryModel)(nil)

// The errors of MemoryModel's device methods, built once like the others.
var (
	errMemDeviceNotFound  = fmt.Errorf("mcpoauth: memory model: device authorization: %w", ErrNotFound)
	errMemDeviceConflict  = fmt.Errorf("mcpoauth: memory model: device authorization: %w", ErrConflict)
	errMemDeviceBadStatus = errors.New("mcpoauth: memory model: a device decision must approve or deny")
)

// memoryDevices holds the device authorizations of a MemoryModel. It lives
// under the model-wide lock mu, because consuming an approved authorization
// saves tokens in the same atomic step. Its maps are allocated on first use,
// so a model that never sees the device grant pays nothing.
type memoryDevices struct {
	byDeviceCode map[Digest]*DeviceAuthorization
	byUserCode   map[Digest]Digest // user code digest → device code digest
}

// SaveDeviceAuthorization stores a new pending device authorization;
// ErrConflict if its device code or user code digest is taken by a stored
// authorization.
func (m *MemoryModel) SaveDeviceAuthorization(ctx context.Context, d *DeviceAuthorization) error {
	if err := checkSave(ctx, d, func(d *DeviceAuthorization) bool {
		return d.DeviceCodeDigest.IsZero() || d.UserCodeDigest.IsZero()
	}, errMemZeroDigest); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.devices.byDeviceCode == nil {
		m.devices.byDeviceCode = make(map[Digest]*DeviceAuthorization)
		m.devices.byUserCode = make(map[Digest]Digest)
	}
	if _, ok := m.devices.byDeviceCode[d.DeviceCodeDigest]; ok {
		return errMemDeviceConflict
	}
	if _, ok := m.devices.byUserCode[d.UserCodeDigest]; ok {
		return errMemDeviceConflict
	}
	m.devices.byDeviceCode[d.DeviceCodeDigest] = d
	m.devices.byUserCode[d.UserCodeDigest] = d.DeviceCodeDigest
	return nil
}

// GetDeviceAuthorization returns the device authorization with this device
// code digest, whatever its status, or ErrNotFound.
func (m *MemoryModel) GetDeviceAuthorization(ctx context.Context, deviceCode Digest) (*DeviceAuthorization, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	d := m.devices.byDeviceCode[deviceCode]
	m.mu.RUnlock()
	if d == nil {
		return nil, errMemDeviceNotFound
	}
	return d, nil
}

// GetDeviceAuthorizationByUserCode returns the device authorization with
// this user code digest, whatever its status, or ErrNotFound.
func (m *MemoryModel) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode Digest) (*DeviceAuthorization, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	d := m.deviceByUserCodeLocked(userCode)
	m.mu.RUnlock()
	if d == nil {
		return nil, errMemDeviceNotFound
	}
	return d, nil
}

// ResolveDeviceAuthorization atomically decides the pending authorization
// with this user code digest; ErrNotFound if there is none (unknown, or
// decided before).
func (m *MemoryModel) ResolveDeviceAuthorization(ctx context.Context, userCode Digest, decision DeviceDecision) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if decision.Status != DeviceApproved && decision.Status != DeviceDenied {
		return errMemDeviceBadStatus
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.deviceByUserCodeLocked(userCode)
	if d == nil || d.Status != DevicePending {
		return errMemDeviceNotFound
	}
	// Callers may hold the stored pointer: store a modified copy instead of
	// writing to it.
	decided := *d
	decided.Status = decision.Status
	decided.UserID = decision.UserID
	decided.GrantExpiresAt = decision.GrantExpiresAt
	m.devices.byDeviceCode[d.DeviceCodeDigest] = &decided
	return nil
}

// RecordDevicePoll replaces the poll bookkeeping with next if the
// authorization belongs to clientID, is pending, and still has the
// bookkeeping seen; ErrNotFound, and no change, otherwise.
func (m *MemoryModel) RecordDevicePoll(ctx context.Context, deviceCode Digest, clientID string, seen, next DevicePoll) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices.byDeviceCode[deviceCode]
	if d == nil || clientID == "" || d.ClientID != clientID || d.Status != DevicePending ||
		!d.LastPolledAt.Equal(seen.LastPolledAt) || d.Interval != seen.Interval {
		return errMemDeviceNotFound
	}
	polled := *d
	polled.DevicePoll = next
	m.devices.byDeviceCode[deviceCode] = &polled
	return nil
}

// ConsumeDeviceAuthorization atomically removes the approved, unexpired
// authorization of clientID and saves the tokens issued for it, all or
// nothing: ErrNotFound if there is no such authorization, ErrConflict if an
// issued token's digest is taken, an error wrapping ErrNotFound if the
// grant was revoked. On any error nothing changes.
func (m *MemoryModel) ConsumeDeviceAuthorization(ctx context.Context, deviceCode Digest, clientID string, now time.Time, issued ...*Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices.byDeviceCode[deviceCode]
	if d == nil || clientID == "" || d.ClientID != clientID || d.Status != DeviceApproved || !now.Before(d.ExpiresAt) {
		return errMemDeviceNotFound
	}
	if err := m.checkNewTokensLocked(issued); err != nil {
		return err
	}
	m.deleteDeviceLocked(d)
	m.insertTokensLocked(issued)
	return nil
}

// DeleteDeviceAuthorization removes the authorization of clientID with this
// device code digest; ErrNotFound, and no change, if there is none.
func (m *MemoryModel) DeleteDeviceAuthorization(ctx context.Context, deviceCode Digest, clientID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices.byDeviceCode[deviceCode]
	if d == nil || clientID == "" || d.ClientID != clientID {
		return errMemDeviceNotFound
	}
	m.deleteDeviceLocked(d)
	return nil
}

// deviceByUserCodeLocked follows the user code index. Call with mu held.
func (m *MemoryModel) deviceByUserCodeLocked(userCode Digest) *DeviceAuthorization {
	dc, ok := m.devices.byUserCode[userCode]
	if !ok {
		return nil
	}
	return m.devices.byDeviceCode[dc]
}

// deleteDeviceLocked removes an authorization and its user code index
// entry. Call with mu held for writing.
func (m *MemoryModel) deleteDeviceLocked(d *DeviceAuthorization) {
	delete(m.devices.byDeviceCode, d.DeviceCodeDigest)
	delete(m.devices.byUserCode, d.UserCodeDigest)
}

// deleteDevicesLocked deletes the device authorizations that match
// reports (the expired ones, or a deleted client's). Call with mu held for
// writing.
func (m *MemoryModel) deleteDevicesLocked(match func(*DeviceAuthorization) bool) {
	for _, d := range m.devices.byDeviceCode {
		if match(d) {
			m.deleteDeviceLocked(d)
		}
	}
}
