package mcpoauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"weak"
)

// Compile-time proofs that MemoryModel satisfies the storage contracts.
var (
	_ Model                = (*MemoryModel)(nil)
	_ ClientRegistrar      = (*MemoryModel)(nil)
	_ ClientUsageRecorder  = (*MemoryModel)(nil)
	_ AssertionReplayStore = (*MemoryModel)(nil)
)

const (
	// memoryTokenShards is the number of token store shards; a power of two,
	// so a shard is picked by masking bits of the digest's hash.
	memoryTokenShards = 64
	// bigGrantTokens is the number of tokens from which a grant's tokens are
	// indexed in a map of their own instead of in the shared grant table,
	// where they would make one long probe run (a client that refreshes
	// often keeps many rotated refresh tokens until they expire).
	bigGrantTokens = 16
	// defaultSweepInterval is how often the sweeper runs unless configured.
	defaultSweepInterval = time.Minute
	// revokedGrantRetention is the least time a revoked grant is remembered,
	// so that a late save of one of its tokens cannot resurrect it.
	revokedGrantRetention = 30 * 24 * time.Hour
)

// The errors MemoryModel returns. They are built once, so that the hot paths
// (GetToken above all) answer without allocating.
var (
	errMemClientNotFound  = fmt.Errorf("mcpoauth: memory model: client: %w", ErrNotFound)
	errMemAssertionUsed   = fmt.Errorf("mcpoauth: memory model: client assertion: %w", ErrAlreadyUsed)
	errMemRequestNotFound = fmt.Errorf("mcpoauth: memory model: authorization request: %w", ErrNotFound)
	errMemCodeNotFound    = fmt.Errorf("mcpoauth: memory model: authorization code: %w", ErrNotFound)
	errMemTokenNotFound   = fmt.Errorf("mcpoauth: memory model: token: %w", ErrNotFound)
	errMemGrantRevoked    = fmt.Errorf("mcpoauth: memory model: grant was revoked: %w", ErrNotFound)
	errMemCodeUsed        = fmt.Errorf("mcpoauth: memory model: authorization code: %w", ErrAlreadyUsed)
	errMemTokenUsed       = fmt.Errorf("mcpoauth: memory model: refresh token: %w", ErrAlreadyUsed)
	errMemClientConflict  = fmt.Errorf("mcpoauth: memory model: client: %w", ErrConflict)
	errMemRequestConflict = fmt.Errorf("mcpoauth: memory model: authorization request: %w", ErrConflict)
	errMemCodeConflict    = fmt.Errorf("mcpoauth: memory model: authorization code: %w", ErrConflict)
	errMemTokenConflict   = fmt.Errorf("mcpoauth: memory model: token: %w", ErrConflict)
	errMemNilRecord       = errors.New("mcpoauth: memory model: nil record")
	errMemZeroDigest      = errors.New("mcpoauth: memory model: record has a zero digest")
	errMemEmptyClientID   = errors.New("mcpoauth: memory model: client ID is empty, or not valid UTF-8 without NUL")
)

// checkSave answers why rec cannot be saved, before any lock is taken: the
// context's error, errMemNilRecord for a nil record, errBadKey if
// badKey(rec); nil if it can.
func checkSave[T any](ctx context.Context, rec *T, badKey func(*T) bool, errBadKey error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec == nil {
		return errMemNilRecord
	}
	if badKey(rec) {
		return errBadKey
	}
	return nil
}

// MemoryModel is the embedded default Model: every record lives in this
// process's memory, so it suits a single-instance server, tests and
// development; everything is lost on restart and nothing is shared between
// instances. Create it with NewMemoryModel (the zero value is not usable) and
// Close it when done to stop its sweeper.
//
// Token lookups, on the path of every protected request, take only the read
// lock of one of 64 shards and allocate only the record they return. Writes
// that span several records (consume, rotate, revoke, sweep) are serialised
// by one model-wide lock, so they are atomic.
//
// Tokens are not kept as records but as 128-byte slots without pointers
// (see tokenSlot), with the strings they share interned per shard, found
// through open-addressing tables of slot references (see tokenIndex), one
// per shard keyed by digest and one keyed by grant: about 150 bytes a
// token, none of which the garbage collector scans, so that holding a
// million tokens does not slow the collector, nor every request with it.
type MemoryModel struct {
	// Lock order: mu, then clientsMu, then requestsMu, then at most one
	// token shard lock at a time. clientsMu and requestsMu are leaves
	// everywhere but in DeleteClient, which holds mu, clientsMu and
	// requestsMu together so that a client and everything issued to it go
	// in one step; nothing takes mu while holding either of them.
	//
	// A token shard (its slots, strings and table) is written only with
	// both mu and the shard's write lock held, so holding either one is
	// enough to read it.
	mu      sync.RWMutex
	codes   map[Digest]*AuthorizationCode
	revoked map[string]time.Time // revoked grantID → when to forget it
	shards  [memoryTokenShards]memoryTokenShard
	devices memoryDevices // RFC 8628 device authorizations (memory_model_device.go)

	// The grant index, so that RevokeGrant costs time proportional to the
	// grant and not to the whole store. Guarded by mu. Every token with a
	// GrantID is in exactly one of grantTokens (grants with fewer than
	// bigGrantTokens tokens: most have one or two) and bigGrants, as a
	// slotRef. grantTokens is sharded only so that a table that grows
	// rehashes a 64th of the tokens while writers wait.
	grantTokens [memoryTokenShards]tokenIndex   // by grant
	bigGrants   map[string]map[slotRef]struct{} // grantID → its tokens
	grantCodes  map[string][]Digest             // grantID → its live codes
	liveGrants  int                             // grants with a live code or token

	clientsMu sync.RWMutex
	clients   map[string]*Client

	requestsMu sync.RWMutex
	requests   map[Digest]*AuthorizationRequest

	assertionsMu sync.Mutex // a leaf
	assertions   memoryAssertions

	grantsMu sync.Mutex // a leaf (memory_model_grants.go)
	grants   memoryGrants

	now       func() time.Time
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NoSweep, as MemoryModelOptions.SweepInterval, runs no background
// sweeper: call Sweep yourself then, or storage grows without bound.
const NoSweep time.Duration = -1

// MemoryModelOptions configures NewMemoryModel; the zero value is the
// default.
type MemoryModelOptions struct {
	// SweepInterval is how often the background sweeper deletes expired
	// records: 0 means one minute, NoSweep (any negative value) none.
	SweepInterval time.Duration
	// Now is the clock (nil: time.Now) that the sweeper uses to decide what
	// expired and RevokeGrant uses to date a revocation; tests use it to
	// control time. It never makes a lookup refuse a record: expiry is the
	// server's business.
	Now func() time.Time
}

// NewMemoryModel returns an empty MemoryModel and starts its background
// sweeper, which deletes expired records every sweep interval until Close.
// A MemoryModel dropped without Close is still collected: its sweeper holds
// it only weakly and exits once it is gone.
func NewMemoryModel(opts MemoryModelOptions) *MemoryModel {
	interval, clock := cmp.Or(opts.SweepInterval, defaultSweepInterval), opts.Now
	if clock == nil {
		clock = time.Now
	}
	m := &MemoryModel{
		codes:      make(map[Digest]*AuthorizationCode),
		revoked:    make(map[string]time.Time),
		bigGrants:  make(map[string]map[slotRef]struct{}),
		grantCodes: make(map[string][]Digest),
		clients:    make(map[string]*Client),
		requests:   make(map[Digest]*AuthorizationRequest),
		now:        clock,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if interval < 0 {
		close(m.done)
		return m
	}
	go everyWhileAlive(weak.Make(m), interval, m.stop, m.done, func(m *MemoryModel) { m.Sweep(clock()) })
	return m
}

// everyWhileAlive calls fn with the value wp points to every interval,
// until stop is closed or the value was garbage collected: it holds the
// value only for the duration of a call, so that a background sweeper never
// keeps its owner (a MemoryModel, an OAuthServer) alive.
func everyWhileAlive[T any](wp weak.Pointer[T], interval time.Duration, stop <-chan struct{}, done chan<- struct{}, fn func(*T)) {
	defer close(done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			v := wp.Value()
			if v == nil {
				return
			}
			fn(v)
		}
	}
}

// Close stops the background sweeper and waits for it to exit. It is
// idempotent and safe to call concurrently; the model stays usable afterwards,
// only nothing sweeps it any more.
func (m *MemoryModel) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

// Sweep deletes, synchronously, every pending request, authorization code
// (used or not), token (used or not) and device authorization (decided or
// not) whose ExpiresAt is before now, with their index entries, and the
// client assertion ids that expired before now, and forgets
// revoked grants whose retention ended. Clients are never swept here: the
// server deletes idle ones through DeleteIdleClients, with the idle period
// of its Config. The sweeper calls it; tests call it to control time.
func (m *MemoryModel) Sweep(now time.Time) {
	m.requestsMu.Lock()
	for id, r := range m.requests {
		if r.ExpiresAt.Before(now) {
			delete(m.requests, id)
		}
	}
	m.requestsMu.Unlock()

	// One shard per acquisition of mu, so that consumes and rotations wait
	// for at most one shard's sweep.
	nowSec, nowNsec := now.Unix(), uint32(now.Nanosecond())
	expired := func(_ *tokenShard, sl *tokenSlot) bool { return sl.before(slotExpiresAt, nowSec, nowNsec) }
	var buf []uint32
	for i := range m.shards {
		m.mu.Lock()
		buf = m.deleteShardTokensLocked(i, expired, buf)
		m.mu.Unlock()
	}

	m.mu.Lock()
	m.deleteCodesLocked(func(c *AuthorizationCode) bool { return c.ExpiresAt.Before(now) })
	for g, until := range m.revoked {
		if until.Before(now) {
			delete(m.revoked, g)
		}
	}
	m.deleteDevicesLocked(func(d *DeviceAuthorization) bool { return d.ExpiresAt.Before(now) })
	m.mu.Unlock()
	m.sweepAssertions(now)
	m.sweepGrants(now)
}

// deleteShardTokensLocked deletes the tokens of shard si that match
// reports, with their grant index entries. buf is scratch space, returned
// for the next call. Call with mu held for writing.
func (m *MemoryModel) deleteShardTokensLocked(si int, match func(*tokenShard, *tokenSlot) bool, buf []uint32) []uint32 {
	s := &m.shards[si].tokenShard
	buf = buf[:0]
	s.slots.all(func(ref uint32, sl *tokenSlot) {
		if match(s, sl) {
			buf = append(buf, ref)
		}
	})
	if len(buf) == 0 {
		return buf
	}
	// The grant index reads the slots' grant IDs: unindex before freeing.
	for _, ref := range buf {
		m.unindexTokenLocked(newSlotRef(si, ref))
	}
	s.mu.Lock()
	for _, ref := range buf {
		s.remove(ref)
	}
	s.mu.Unlock()
	return buf
}

// deleteCodesLocked deletes the authorization codes that match reports,
// with their grant index entries. Call with mu held for writing.
func (m *MemoryModel) deleteCodesLocked(match func(*AuthorizationCode) bool) {
	for d, c := range m.codes {
		if match(c) {
			delete(m.codes, d)
			m.unindexCodeLocked(c)
		}
	}
}

// MemoryStats counts the records a MemoryModel holds, for metrics and tests.
type MemoryStats struct {
	Clients               int
	AuthorizationRequests int
	AuthorizationCodes    int
	Tokens                int
	// Grants counts grants with at least one live code or token.
	Grants int
	// RevokedGrants counts revoked grants still remembered, so that their
	// tokens cannot be saved again.
	RevokedGrants int
	// DeviceAuthorizations counts RFC 8628 device authorizations, decided
	// or not.
	DeviceAuthorizations int
}

// Stats returns the current record counts. The counts of different kinds are
// not taken at one instant.
func (m *MemoryModel) Stats() MemoryStats {
	var st MemoryStats
	m.clientsMu.RLock()
	st.Clients = len(m.clients)
	m.clientsMu.RUnlock()
	m.requestsMu.RLock()
	st.AuthorizationRequests = len(m.requests)
	m.requestsMu.RUnlock()
	m.mu.RLock()
	st.AuthorizationCodes = len(m.codes)
	st.Grants = m.liveGrants
	st.RevokedGrants = len(m.revoked)
	st.DeviceAuthorizations = len(m.devices.byDeviceCode)
	for i := range m.shards {
		st.Tokens += m.shards[i].tokens.n // mu excludes every writer
	}
	m.mu.RUnlock()
	return st
}

// GetClient returns the client with this client_id, or ErrNotFound.
func (m *MemoryModel) GetClient(ctx context.Context, clientID string) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.clientsMu.RLock()
	c := m.clients[clientID]
	m.clientsMu.RUnlock()
	if c == nil {
		return nil, errMemClientNotFound
	}
	return c, nil
}

// RegisterClient stores a new client; ErrConflict if its ID exists.
func (m *MemoryModel) RegisterClient(ctx context.Context, client *Client) error {
	if err := checkSave(ctx, client, func(c *Client) bool { return !storableClientID(c.ID) }, errMemEmptyClientID); err != nil {
		return err
	}
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	if _, ok := m.clients[client.ID]; ok {
		return errMemClientConflict
	}
	m.clients[client.ID] = client
	return nil
}

// UpdateClient replaces the stored client whose ID is client.ID with
// client; ErrNotFound, and no change, if there is none.
func (m *MemoryModel) UpdateClient(ctx context.Context, client *Client) error {
	if err := checkSave(ctx, client, func(*Client) bool { return false }, nil); err != nil {
		return err
	}
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	if _, ok := m.clients[client.ID]; !ok {
		return errMemClientNotFound
	}
	// The record is replaced, not written to: callers may hold the old
	// pointer.
	m.clients[client.ID] = client
	return nil
}

// DeleteClient removes the client and every token, authorization code,
// pending authorization request and device authorization of it, in one
// step under every lock those records live under: no lookup sees the
// client gone and one of its tokens still there, and a save of its tokens
// happens before (and is deleted) or after (when GetClient already answers
// ErrNotFound). ErrNotFound, and no change, if there is no such client.
//
// It visits every stored token, code and request, so it costs time in
// proportion to the whole store, not to the client: it is a rare
// administrative operation, and an index by client would cost memory in
// every token for it.
func (m *MemoryModel) DeleteClient(ctx context.Context, clientID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	if _, ok := m.clients[clientID]; !ok {
		return errMemClientNotFound
	}
	m.deleteClientsLocked(map[string]struct{}{clientID: {}})
	return nil
}

// RecordClientUse sets the client's LastUsedAt to at, unless it is later
// already; ErrNotFound if there is no such client.
func (m *MemoryModel) RecordClientUse(ctx context.Context, clientID string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	c := m.clients[clientID]
	if c == nil {
		return errMemClientNotFound
	}
	if !at.After(c.LastUsedAt) {
		return nil
	}
	// Callers may hold the stored pointer: store a modified copy instead of
	// writing to it.
	used := *c
	used.LastUsedAt = at
	m.clients[clientID] = &used
	return nil
}

// DeleteIdleClients deletes, as DeleteClient does and in one step, every
// client that is not PreRegistered and whose LastUsedAt is not zero and
// before idleSince, and returns how many it deleted. Like DeleteClient it
// visits the whole store, once for all the clients it deletes.
func (m *MemoryModel) DeleteIdleClients(ctx context.Context, idleSince time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	idle := make(map[string]struct{})
	for id, c := range m.clients {
		if !c.PreRegistered && !c.LastUsedAt.IsZero() && c.LastUsedAt.Before(idleSince) {
			idle[id] = struct{}{}
		}
	}
	if len(idle) > 0 {
		m.deleteClientsLocked(idle)
	}
	return len(idle), nil
}

// deleteClientsLocked removes the clients and every record of theirs. Call
// with mu and clientsMu held for writing.
func (m *MemoryModel) deleteClientsLocked(ids map[string]struct{}) {
	for id := range ids {
		delete(m.clients, id)
	}
	ofClients := func(clientID string) bool {
		_, ok := ids[clientID]
		return ok
	}
	m.requestsMu.Lock()
	for id, r := range m.requests {
		if ofClients(r.ClientID) {
			delete(m.requests, id)
		}
	}
	m.requestsMu.Unlock()
	var buf []uint32
	for i := range m.shards {
		s := &m.shards[i].tokenShard
		// The clients' ids in this shard's strings: none, no token.
		var clientIDs []uint32
		for id := range ids {
			if c := s.strs.lookup(id); c != 0 {
				clientIDs = append(clientIDs, c)
			}
		}
		if len(clientIDs) == 0 {
			continue
		}
		buf = m.deleteShardTokensLocked(i, func(_ *tokenShard, sl *tokenSlot) bool { return slices.Contains(clientIDs, sl.client) }, buf)
	}
	m.deleteCodesLocked(func(c *AuthorizationCode) bool { return ofClients(c.ClientID) })
	m.deleteDevicesLocked(func(d *DeviceAuthorization) bool { return ofClients(d.ClientID) })
	m.deleteGrantsLocked(func(_, clientID string) bool { return ofClients(clientID) })
}

// SaveAuthorizationRequest stores a validated authorization request under
// req.ID until the user decides; ErrConflict if the ID is taken.
func (m *MemoryModel) SaveAuthorizationRequest(ctx context.Context, req *AuthorizationRequest) error {
	if err := checkSave(ctx, req, func(r *AuthorizationRequest) bool { return r.ID.IsZero() }, errMemZeroDigest); err != nil {
		return err
	}
	m.requestsMu.Lock()
	defer m.requestsMu.Unlock()
	if _, ok := m.requests[req.ID]; ok {
		return errMemRequestConflict
	}
	m.requests[req.ID] = req
	return nil
}

// GetAuthorizationRequest returns a pending request without consuming it;
// ErrNotFound if unknown or consumed.
func (m *MemoryModel) GetAuthorizationRequest(ctx context.Context, id Digest) (*AuthorizationRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.requestsMu.RLock()
	r := m.requests[id]
	m.requestsMu.RUnlock()
	if r == nil {
		return nil, errMemRequestNotFound
	}
	return r, nil
}

// ConsumeAuthorizationRequest atomically removes and returns a pending
// request; ErrNotFound if unknown or consumed already.
func (m *MemoryModel) ConsumeAuthorizationRequest(ctx context.Context, id Digest) (*AuthorizationRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.requestsMu.Lock()
	defer m.requestsMu.Unlock()
	r := m.requests[id]
	if r == nil {
		return nil, errMemRequestNotFound
	}
	delete(m.requests, id)
	return r, nil
}

// SaveAuthorizationCode stores an issued authorization code; ErrConflict if
// the digest is taken, and an error wrapping ErrNotFound if its grant was
// revoked.
func (m *MemoryModel) SaveAuthorizationCode(ctx context.Context, code *AuthorizationCode) error {
	if err := checkSave(ctx, code, func(c *AuthorizationCode) bool { return c.Digest.IsZero() }, errMemZeroDigest); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.isRevokedLocked(code.GrantID) {
		return errMemGrantRevoked
	}
	if _, ok := m.codes[code.Digest]; ok {
		return errMemCodeConflict
	}
	m.codes[code.Digest] = code
	if g := code.GrantID; g != "" {
		if !m.grantLiveLocked(g) {
			m.liveGrants++
		}
		m.grantCodes[g] = append(m.grantCodes[g], code.Digest)
	}
	return nil
}

// GetAuthorizationCode returns a code, consumed or not (Used tells), or
// ErrNotFound.
func (m *MemoryModel) GetAuthorizationCode(ctx context.Context, code Digest) (*AuthorizationCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	c := m.codes[code]
	m.mu.RUnlock()
	if c == nil {
		return nil, errMemCodeNotFound
	}
	return c, nil
}

// ConsumeAuthorizationCode atomically marks the code used and saves the
// tokens issued for it, all or nothing: ErrNotFound if the code is unknown or
// belongs to another client, ErrAlreadyUsed if it was consumed before,
// ErrConflict if an issued token's digest is taken, and an error wrapping
// ErrNotFound if an issued token's grant was revoked. On any error nothing
// changes.
func (m *MemoryModel) ConsumeAuthorizationCode(ctx context.Context, code Digest, clientID string, issued ...*Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.codes[code]
	if c == nil || clientID == "" || c.ClientID != clientID {
		return errMemCodeNotFound
	}
	if c.Used {
		return errMemCodeUsed
	}
	if err := m.checkNewTokensLocked(issued); err != nil {
		return err
	}
	// Callers may hold the stored pointer: store a modified copy instead of
	// writing to it.
	used := *c
	used.Used = true
	m.codes[code] = &used
	m.insertTokensLocked(issued)
	return nil
}

// SaveTokens stores newly issued tokens, all or nothing: ErrConflict if a
// digest is taken (or repeated), an error wrapping ErrNotFound if a token's
// grant was revoked.
func (m *MemoryModel) SaveTokens(ctx context.Context, tokens ...*Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkNewTokensLocked(tokens); err != nil {
		return err
	}
	m.insertTokensLocked(tokens)
	return nil
}

// GetToken returns an access or refresh token by digest, including a rotated
// refresh token (RotatedAt set), or ErrNotFound. It takes one shard's read
// lock and allocates the record it returns (built from the token's slot;
// its times are in UTC).
func (m *MemoryModel) GetToken(ctx context.Context, token Digest) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := digestHash(token) // once, for the shard and the table
	s := &m.shards[shardOf(h)]
	s.mu.RLock()
	var t *Token
	if ref := s.find(h, token); ref >= 0 {
		t = s.token(uint32(ref))
	}
	s.mu.RUnlock()
	if t == nil {
		return nil, errMemTokenNotFound
	}
	return t, nil
}

// RotateRefreshToken atomically rotates the refresh token (RotatedAt = at)
// and saves the tokens that replace it, all or nothing; a token rotated at
// or after a non-zero reuseSince is rotated again, its RotatedAt kept (the
// reuse interval). ErrNotFound if the token is unknown, not a refresh token
// or another client's, ErrAlreadyUsed if it was rotated before otherwise, ErrConflict if an issued token's digest is taken, and an
// error wrapping ErrNotFound if an issued token's grant was revoked. On any
// error nothing changes.
func (m *MemoryModel) RotateRefreshToken(ctx context.Context, token Digest, clientID string, at, reuseSince time.Time, issued ...*Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := digestHash(token)
	s := &m.shards[shardOf(h)]
	ref := s.find(h, token) // mu excludes every writer
	if ref < 0 {
		return errMemTokenNotFound
	}
	sl := s.slots.at(uint32(ref))
	if sl.kind != RefreshToken || clientID == "" || s.strs.str(sl.client) != clientID {
		return errMemTokenNotFound
	}
	rotatedAt := sl.time(slotRotatedAt)
	if !rotatedAt.IsZero() && (reuseSince.IsZero() || rotatedAt.Before(reuseSince)) {
		return errMemTokenUsed
	}
	if err := m.checkNewTokensLocked(issued); err != nil {
		return err
	}
	if rotatedAt.IsZero() {
		// Records already returned are copies: the slot changes in place.
		s.mu.Lock()
		sl.setTime(slotRotatedAt, at)
		s.mu.Unlock()
	} // else within the reuse interval: the first rotation stands.
	m.insertTokensLocked(issued)
	return nil
}

// RevokeToken deletes a token of either kind that belongs to clientID and
// returns it; ErrNotFound (and no change) otherwise.
func (m *MemoryModel) RevokeToken(ctx context.Context, token Digest, clientID string) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := digestHash(token)
	si := shardOf(h)
	s := &m.shards[si]
	ref := s.find(h, token) // mu excludes every writer
	if ref < 0 {
		return nil, errMemTokenNotFound
	}
	if clientID == "" || s.strs.str(s.slots.at(uint32(ref)).client) != clientID {
		return nil, errMemTokenNotFound
	}
	t := s.token(uint32(ref))
	m.unindexTokenLocked(newSlotRef(si, uint32(ref)))
	s.mu.Lock()
	s.remove(uint32(ref))
	s.mu.Unlock()
	return t, nil
}

// RevokeGrant deletes every token and authorization code whose GrantID is
// grantID, in time proportional to the grant, and remembers the grant as
// revoked so that no later save brings a token or code of it back (such saves
// fail with an error wrapping ErrNotFound). It deletes the grant record
// (GrantStore) and the grant's upstream token vault entries too. The grant
// is remembered for 30 days or until the latest ExpiresAt or GrantExpiresAt
// of what was deleted, whichever is later. An empty grantID matches
// nothing.
func (m *MemoryModel) RevokeGrant(ctx context.Context, grantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if grantID == "" {
		return nil
	}
	until := m.now().Add(revokedGrantRetention)
	later := func(t time.Time) {
		if t.After(until) {
			until = t
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grantLiveLocked(grantID) {
		m.liveGrants--
	}
	var tokens []slotRef
	m.grantTokensLocked(grantID, func(r slotRef) bool {
		tokens = append(tokens, r)
		return true
	})
	gt := m.grantTable(grantID)
	for _, r := range tokens {
		gt.remove(grantHash(grantID), uint32(r), m.grantHashOf)
	}
	for r := range m.bigGrants[grantID] {
		tokens = append(tokens, r)
	}
	delete(m.bigGrants, grantID)
	for _, r := range tokens {
		s, sl := m.slotOf(r)
		later(sl.time(slotExpiresAt))
		later(sl.time(slotGrantExpiresAt))
		s.mu.Lock()
		s.remove(r.slot())
		s.mu.Unlock()
	}
	for _, d := range m.grantCodes[grantID] {
		if c := m.codes[d]; c != nil {
			later(c.ExpiresAt)
			later(c.GrantExpiresAt)
		}
		delete(m.codes, d)
	}
	delete(m.grantCodes, grantID)
	later(m.revokeGrantRecordLocked(grantID))
	if prev, ok := m.revoked[grantID]; ok {
		later(prev)
	}
	m.revoked[grantID] = until
	return nil
}

// shardOf is the shard of a digest's hash: bits 8-13 (the tag uses bits
// 0-7, the home slot 32-63).
func shardOf(h uint64) int { return int(h >> 8 & (memoryTokenShards - 1)) }

// slotRef names a token slot across shards, in the grant index: the shard
// in the high 6 bits, the slot's reference in its shard below.
type slotRef uint32

func newSlotRef(shard int, ref uint32) slotRef { return slotRef(uint32(shard)<<26 | ref) }

func (r slotRef) shard() int   { return int(r >> 26) }
func (r slotRef) slot() uint32 { return uint32(r) & (maxShardSlots - 1) }

// slotOf returns the shard and the slot r names. Call with mu held.
func (m *MemoryModel) slotOf(r slotRef) (*tokenShard, *tokenSlot) {
	s := &m.shards[r.shard()].tokenShard
	return s, s.slots.at(r.slot())
}

// grantHashOf is the grant hash of the token r names, for the grant
// table's moves. Call with mu held.
func (m *MemoryModel) grantHashOf(r uint32) uint64 {
	s, sl := m.slotOf(slotRef(r))
	return grantHash(s.grantID(sl))
}

// isRevokedLocked reports whether grantID was revoked. Call with mu held.
func (m *MemoryModel) isRevokedLocked(grantID string) bool {
	if grantID == "" {
		return false
	}
	_, ok := m.revoked[grantID]
	return ok
}

// grantLiveLocked reports whether the grant has a live code or token. Call
// with mu held.
func (m *MemoryModel) grantLiveLocked(grantID string) bool {
	return len(m.grantCodes[grantID]) > 0 || m.bigGrants[grantID] != nil || m.countGrantLocked(grantID, 1) > 0
}

// grantTable returns the shard of the grant table that holds the tokens of
// grantID (unless it is big).
func (m *MemoryModel) grantTable(grantID string) *tokenIndex {
	// Bits 8-13 of the hash: the tag uses bits 0-7, the home slot 32-63.
	return &m.grantTokens[grantHash(grantID)>>8&(memoryTokenShards-1)]
}

// grantTokensLocked calls fn with each token of grantID in the grant table
// (not those of a big grant) until fn returns false. fn must not change the
// table. Call with mu held.
func (m *MemoryModel) grantTokensLocked(grantID string, fn func(slotRef) bool) {
	m.grantTable(grantID).run(grantHash(grantID), func(_ int, r uint32) bool {
		if s, sl := m.slotOf(slotRef(r)); s.grantID(sl) != grantID {
			return true
		}
		return fn(slotRef(r))
	})
}

// countGrantLocked returns how many tokens of grantID the grant table
// holds, up to limit. Call with mu held.
func (m *MemoryModel) countGrantLocked(grantID string, limit int) int {
	n := 0
	m.grantTokensLocked(grantID, func(slotRef) bool {
		n++
		return n < limit
	})
	return n
}

// indexTokenLocked adds a stored token, r, of grant g to the grant index.
// g must be a string of its own (the caller's), not the slot's. Call with
// mu held for writing.
func (m *MemoryModel) indexTokenLocked(r slotRef, g string) {
	if g == "" {
		return
	}
	if big := m.bigGrants[g]; big != nil {
		big[r] = struct{}{}
		return
	}
	n := m.countGrantLocked(g, bigGrantTokens)
	if n == 0 && len(m.grantCodes[g]) == 0 {
		m.liveGrants++
	}
	gt := m.grantTable(g)
	if n < bigGrantTokens-1 {
		gt.insert(grantHash(g), uint32(r), m.grantHashOf)
		return
	}
	// The grant's tokens move to a map of their own.
	big := make(map[slotRef]struct{}, 2*bigGrantTokens)
	big[r] = struct{}{}
	m.grantTokensLocked(g, func(u slotRef) bool {
		big[u] = struct{}{}
		return true
	})
	for u := range big {
		gt.remove(grantHash(g), uint32(u), m.grantHashOf)
	}
	m.bigGrants[g] = big
}

// unindexTokenLocked removes a token, r, from the grant index before its
// slot is freed. Call with mu held for writing.
func (m *MemoryModel) unindexTokenLocked(r slotRef) {
	s, sl := m.slotOf(r)
	g := s.grantID(sl) // the slot's: used here only
	if g == "" {
		return
	}
	if big := m.bigGrants[g]; big != nil {
		delete(big, r)
		if len(big) == 0 {
			delete(m.bigGrants, g)
		}
	} else {
		m.grantTable(g).remove(grantHash(g), uint32(r), m.grantHashOf)
	}
	if !m.grantLiveLocked(g) {
		m.liveGrants--
	}
}

// unindexCodeLocked removes a deleted code from the grant index. Call with mu
// held for writing.
func (m *MemoryModel) unindexCodeLocked(c *AuthorizationCode) {
	g := c.GrantID
	codes := m.grantCodes[g]
	i := slices.Index(codes, c.Digest)
	if i < 0 {
		return
	}
	if len(codes) == 1 {
		delete(m.grantCodes, g)
	} else {
		m.grantCodes[g] = slices.Delete(codes, i, i+1)
	}
	if !m.grantLiveLocked(g) {
		m.liveGrants--
	}
}

// hasTokenLocked reports whether a token with digest d is stored. Call with
// mu held.
func (m *MemoryModel) hasTokenLocked(d Digest) bool {
	h := digestHash(d)
	return m.shards[shardOf(h)].find(h, d) >= 0
}

// checkNewTokensLocked reports why tokens cannot be inserted, or nil. Call
// with mu held.
func (m *MemoryModel) checkNewTokensLocked(tokens []*Token) error {
	var seen map[Digest]struct{}
	if len(tokens) > 16 {
		seen = make(map[Digest]struct{}, len(tokens))
	}
	for i, t := range tokens {
		if t == nil {
			return errMemNilRecord
		}
		if t.Digest.IsZero() {
			return errMemZeroDigest
		}
		if m.isRevokedLocked(t.GrantID) {
			return errMemGrantRevoked
		}
		if m.hasTokenLocked(t.Digest) {
			return errMemTokenConflict
		}
		if seen != nil {
			if _, ok := seen[t.Digest]; ok {
				return errMemTokenConflict
			}
			seen[t.Digest] = struct{}{}
			continue
		}
		for _, u := range tokens[:i] {
			if u.Digest == t.Digest {
				return errMemTokenConflict
			}
		}
	}
	return nil
}

// insertTokensLocked stores tokens that checkNewTokensLocked accepted and
// indexes them by grant. Call with mu held for writing.
func (m *MemoryModel) insertTokensLocked(tokens []*Token) {
	for _, t := range tokens {
		si := shardOf(digestHash(t.Digest))
		s := &m.shards[si]
		if s.tokens.needsGrowth() {
			// Rebuild the table with only mu held (no writer can change
			// it), so readers of the shard wait only for the swap.
			grown := s.tokens.grown(s.hashOfRef)
			s.mu.Lock()
			s.tokens = grown
			s.mu.Unlock()
		}
		s.mu.Lock()
		ref := s.add(t)
		s.mu.Unlock()
		m.indexTokenLocked(newSlotRef(si, ref), t.GrantID)
	}
}

// storableClientID reports whether a client may be registered under id:
// not empty, and valid UTF-8 without NUL, as the SQL Models' text columns
// require (sqlmodel.ValidClientID), so that a program moves between Models
// without finding a client it cannot keep (see ClientRegistrar).
func storableClientID(id string) bool {
	return id != "" && utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}
