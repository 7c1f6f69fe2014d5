package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	_ GrantStore         = (*MemoryModel)(nil)
	_ UpstreamTokenStore = (*MemoryModel)(nil)

	errMemGrantNotFound    = fmt.Errorf("mcpoauth: memory model: grant: %w", ErrNotFound)
	errMemGrantConflict    = fmt.Errorf("mcpoauth: memory model: grant: %w", ErrConflict)
	errMemUpstreamNotFound = fmt.Errorf("mcpoauth: memory model: upstream token: %w", ErrNotFound)
	errMemUpstreamConflict = fmt.Errorf("mcpoauth: memory model: upstream token: %w", ErrConflict)
	errMemEmptyRecordID    = errors.New("mcpoauth: memory model: record has an empty ID")
)

// memoryGrants are MemoryModel's grant records (GrantStore) and upstream
// token vault entries (UpstreamTokenStore), under grantsMu, a leaf lock
// taken after mu where both are held: a save checks mu's revoked grants
// with mu read-locked, and RevokeGrant deletes under mu write-locked, so
// the two never interleave.
type memoryGrants struct {
	byID     map[string]*Grant
	byUser   map[string]map[string]struct{} // userID → grant ids
	byClient map[string]map[string]struct{} // clientID → grant ids
	vault    map[string]*UpstreamToken
	// vaultOfGrant indexes the vault entries bound to a grant, so that
	// RevokeGrant costs time proportional to the grant.
	vaultOfGrant map[string]map[string]struct{}
}

func (g *memoryGrants) init() {
	if g.byID == nil {
		g.byID = make(map[string]*Grant)
		g.byUser = make(map[string]map[string]struct{})
		g.byClient = make(map[string]map[string]struct{})
		g.vault = make(map[string]*UpstreamToken)
		g.vaultOfGrant = make(map[string]map[string]struct{})
	}
}

// SaveGrant stores a new grant record: ErrConflict if its ID exists, an
// error wrapping ErrNotFound if the grant was revoked, errMemEmptyRecordID
// for an empty ID.
func (m *MemoryModel) SaveGrant(ctx context.Context, g *Grant) error {
	if err := checkSave(ctx, g, func(g *Grant) bool { return g.ID == "" }, errMemEmptyRecordID); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.isRevokedLocked(g.ID) {
		return errMemGrantRevoked
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	m.grants.init()
	if _, ok := m.grants.byID[g.ID]; ok {
		return errMemGrantConflict
	}
	m.grants.byID[g.ID] = g
	addToIndex(m.grants.byUser, g.UserID, g.ID)
	addToIndex(m.grants.byClient, g.ClientID, g.ID)
	return nil
}

// addToIndex adds id to the set of key in index.
func addToIndex(index map[string]map[string]struct{}, key, id string) {
	ids := index[key]
	if ids == nil {
		ids = make(map[string]struct{})
		index[key] = ids
	}
	ids[id] = struct{}{}
}

// removeFromIndex removes id from the set of key in index.
func removeFromIndex(index map[string]map[string]struct{}, key, id string) {
	if ids := index[key]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(index, key)
		}
	}
}

// GetGrant returns the grant record, or ErrNotFound.
func (m *MemoryModel) GetGrant(ctx context.Context, grantID string) (*Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	if g := m.grants.byID[grantID]; g != nil {
		return g, nil
	}
	return nil, errMemGrantNotFound
}

// ListUserGrants returns the user's grant records, in no particular order.
func (m *MemoryModel) ListUserGrants(ctx context.Context, userID string) ([]*Grant, error) {
	return m.listGrants(ctx, func(g *memoryGrants) map[string]map[string]struct{} { return g.byUser }, userID)
}

// ListClientGrants returns the client's grant records, in no particular
// order.
func (m *MemoryModel) ListClientGrants(ctx context.Context, clientID string) ([]*Grant, error) {
	return m.listGrants(ctx, func(g *memoryGrants) map[string]map[string]struct{} { return g.byClient }, clientID)
}

// listGrants returns the grants of key in the index (byUser or byClient)
// that index picks, read under the lock.
func (m *MemoryModel) listGrants(ctx context.Context, index func(*memoryGrants) map[string]map[string]struct{}, key string) ([]*Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	var out []*Grant
	for id := range index(&m.grants)[key] {
		out = append(out, m.grants.byID[id])
	}
	return out, nil
}

// RecordGrantUse sets the grant's LastUsedAt to at unless it is later
// already; ErrNotFound for an unknown or revoked grant. Callers may hold the
// stored record, so it stores a modified copy.
func (m *MemoryModel) RecordGrantUse(ctx context.Context, grantID string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	g := m.grants.byID[grantID]
	if g == nil {
		return errMemGrantNotFound
	}
	if at.After(g.LastUsedAt) {
		used := *g
		used.LastUsedAt = at
		m.grants.byID[grantID] = &used
	}
	return nil
}

// SaveUpstreamToken stores a new vault entry: ErrConflict if its ID exists,
// an error wrapping ErrNotFound if its grant was revoked,
// errMemEmptyRecordID for an empty ID.
func (m *MemoryModel) SaveUpstreamToken(ctx context.Context, t *UpstreamToken) error {
	if err := checkSave(ctx, t, func(t *UpstreamToken) bool { return t.ID == "" }, errMemEmptyRecordID); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.isRevokedLocked(t.GrantID) {
		return errMemGrantRevoked
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	m.grants.init()
	if _, ok := m.grants.vault[t.ID]; ok {
		return errMemUpstreamConflict
	}
	m.grants.putVaultLocked(t)
	return nil
}

// GetUpstreamToken returns the vault entry, or ErrNotFound.
func (m *MemoryModel) GetUpstreamToken(ctx context.Context, id string) (*UpstreamToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	if t := m.grants.vault[id]; t != nil {
		return t, nil
	}
	return nil, errMemUpstreamNotFound
}

// ReplaceUpstreamToken replaces the vault entry t.ID if its stored Version
// is version: ErrConflict if it is not, ErrNotFound if there is none, and
// an error wrapping ErrNotFound, whatever the version, if t binds the
// entry to a revoked grant. Like SaveUpstreamToken, it checks the
// revocation with mu read-locked, so RevokeGrant runs wholly before or
// after it.
func (m *MemoryModel) ReplaceUpstreamToken(ctx context.Context, t *UpstreamToken, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t == nil {
		return errMemNilRecord
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.isRevokedLocked(t.GrantID) {
		return errMemGrantRevoked
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	m.grants.init()
	old := m.grants.vault[t.ID]
	switch {
	case old == nil:
		return errMemUpstreamNotFound
	case old.Version != version:
		return errMemUpstreamConflict
	}
	m.grants.deleteVaultLocked(old)
	m.grants.putVaultLocked(t)
	return nil
}

// ConsumeUpstreamToken removes and returns the vault entry, or ErrNotFound.
func (m *MemoryModel) ConsumeUpstreamToken(ctx context.Context, id string) (*UpstreamToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	t := m.grants.vault[id]
	if t == nil {
		return nil, errMemUpstreamNotFound
	}
	m.grants.deleteVaultLocked(t)
	return t, nil
}

// deleteGrantsLocked deletes the grant records and vault entries match
// reports (by grant id and client id). Call with mu held for writing.
func (m *MemoryModel) deleteGrantsLocked(match func(grantID, clientID string) bool) {
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	for id, g := range m.grants.byID {
		if match(id, g.ClientID) {
			m.deleteGrantRecordLocked(g)
		}
	}
	for _, t := range m.grants.vault {
		if (t.GrantID != "" || t.ClientID != "") && match(t.GrantID, t.ClientID) {
			m.grants.deleteVaultLocked(t)
		}
	}
}

// revokeGrantRecordLocked deletes one grant's record and vault entries,
// and returns the latest ExpiresAt of what it deleted: the revoked grant
// is remembered until then at least, so that a late save cannot bring back
// a grant record that would still be live. Call with mu held for writing.
func (m *MemoryModel) revokeGrantRecordLocked(grantID string) (until time.Time) {
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	if g := m.grants.byID[grantID]; g != nil {
		until = g.ExpiresAt
		m.deleteGrantRecordLocked(g)
	}
	for id := range m.grants.vaultOfGrant[grantID] {
		t := m.grants.vault[id]
		if t.ExpiresAt.After(until) {
			until = t.ExpiresAt
		}
		m.grants.deleteVaultLocked(t)
	}
	return until
}

// deleteGrantRecordLocked removes g from both maps. Call with grantsMu
// held.
func (m *MemoryModel) deleteGrantRecordLocked(g *Grant) {
	delete(m.grants.byID, g.ID)
	removeFromIndex(m.grants.byUser, g.UserID, g.ID)
	removeFromIndex(m.grants.byClient, g.ClientID, g.ID)
}

// sweepGrants deletes the grant records and vault entries that expired
// before now.
func (m *MemoryModel) sweepGrants(now time.Time) {
	m.grantsMu.Lock()
	defer m.grantsMu.Unlock()
	for _, g := range m.grants.byID {
		if g.ExpiresAt.Before(now) {
			m.deleteGrantRecordLocked(g)
		}
	}
	for _, t := range m.grants.vault {
		if t.ExpiresAt.Before(now) {
			m.grants.deleteVaultLocked(t)
		}
	}
}

// putVaultLocked stores t with its index entry. Call with grantsMu held.
func (g *memoryGrants) putVaultLocked(t *UpstreamToken) {
	g.vault[t.ID] = t
	if t.GrantID == "" {
		return
	}
	ids := g.vaultOfGrant[t.GrantID]
	if ids == nil {
		ids = make(map[string]struct{})
		g.vaultOfGrant[t.GrantID] = ids
	}
	ids[t.ID] = struct{}{}
}

// deleteVaultLocked removes t with its index entry. Call with grantsMu
// held.
func (g *memoryGrants) deleteVaultLocked(t *UpstreamToken) {
	delete(g.vault, t.ID)
	if ids := g.vaultOfGrant[t.GrantID]; ids != nil {
		delete(ids, t.ID)
		if len(ids) == 0 {
			delete(g.vaultOfGrant, t.GrantID)
		}
	}
}
