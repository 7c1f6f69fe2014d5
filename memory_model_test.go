package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/stretchr/testify/require"
)

// memT0 is the fixed "now" of these tests.
var memT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newTestMemoryModel returns a model without a background sweeper, whose
// clock is fixed at memT0, closed when the test ends.
func newTestMemoryModel(t testing.TB) *MemoryModel {
	t.Helper()
	m := NewMemoryModel(MemoryModelOptions{SweepInterval: NoSweep, Now: testclock.New(memT0).Now})
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func newDigest() Digest { return secret.Digest(secret.New()) }

func memCode(clientID, grantID string, exp time.Time) *AuthorizationCode {
	return &AuthorizationCode{
		Digest:         newDigest(),
		ClientID:       clientID,
		UserID:         "user",
		GrantID:        grantID,
		RedirectURI:    "https://client.example/cb",
		Scopes:         []string{"read"},
		Resource:       "https://mcp.example/",
		CodeChallenge:  "challenge",
		ExpiresAt:      exp,
		GrantExpiresAt: exp.Add(24 * time.Hour),
	}
}

func memToken(kind TokenKind, clientID, grantID string, exp time.Time) *Token {
	return &Token{
		Digest:         newDigest(),
		Kind:           kind,
		ClientID:       clientID,
		UserID:         "user",
		GrantID:        grantID,
		Scopes:         []string{"read"},
		Resource:       "https://mcp.example/",
		IssuedAt:       memT0,
		ExpiresAt:      exp,
		GrantExpiresAt: exp.Add(24 * time.Hour),
	}
}

func memRequest(exp time.Time) *AuthorizationRequest {
	return &AuthorizationRequest{
		ID:            newDigest(),
		BrowserDigest: newDigest(),
		ClientID:      "client",
		RedirectURI:   "https://client.example/cb",
		Scopes:        []string{"read"},
		State:         "state",
		CodeChallenge: "challenge",
		ExpiresAt:     exp,
	}
}

// newModelWithTokens returns a fresh model (newTestMemoryModel) holding an
// access and a refresh token of "client" and "grant" that expire at exp.
func newModelWithTokens(t *testing.T, exp time.Time) (m *MemoryModel, access, refresh *Token) {
	t.Helper()
	m = newTestMemoryModel(t)
	access = memToken(AccessToken, "client", "grant", exp)
	refresh = memToken(RefreshToken, "client", "grant", exp)
	require.NoError(t, m.SaveTokens(t.Context(), access, refresh))
	return m, access, refresh
}

// requireTokenAbsent asserts GetToken answers ErrNotFound for every token.
func requireTokenAbsent(t *testing.T, m *MemoryModel, tokens ...*Token) {
	t.Helper()
	for _, tok := range tokens {
		got, err := m.GetToken(t.Context(), tok.Digest)
		require.ErrorIs(t, err, ErrNotFound)
		require.Nil(t, got)
	}
}

// requireTokenPresent asserts GetToken returns a record equal to each
// stored token (a copy built from its slot: times in UTC, no monotonic
// reading).
func requireTokenPresent(t *testing.T, m *MemoryModel, tokens ...*Token) {
	t.Helper()
	for _, tok := range tokens {
		got, err := m.GetToken(t.Context(), tok.Digest)
		require.NoError(t, err)
		requireSameToken(t, tok, got)
	}
}

// requireSameToken asserts that got is want as the model stores it: equal
// fields, times the same instants.
func requireSameToken(t *testing.T, want, got *Token) {
	t.Helper()
	w, g := *want, *got
	for _, p := range [][2]*time.Time{{&w.IssuedAt, &g.IssuedAt}, {&w.ExpiresAt, &g.ExpiresAt}, {&w.GrantExpiresAt, &g.GrantExpiresAt}, {&w.RotatedAt, &g.RotatedAt}} {
		require.True(t, p[0].Equal(*p[1]), "time %v, want %v", *p[1], *p[0])
		*p[0], *p[1] = time.Time{}, time.Time{}
	}
	require.Equal(t, w, g)
}

// requireMemoryInvariants checks that the grant index and the stores agree:
// every record with a grant is indexed, every index entry names a live record
// of that grant, no entry is empty, no record of a revoked grant survives,
// every token sits in the shard its digest selects, reachable under its own
// digest, every slot's strings are counted in its shard's intern table, and
// the live grant count is right.
func requireMemoryInvariants(t *testing.T, m *MemoryModel) {
	t.Helper()
	m.mu.RLock()
	defer m.mu.RUnlock()
	live := map[string]bool{}
	indexed := 0
	for i := range m.shards {
		s := &m.shards[i].tokenShard
		n := 0
		refs := map[uint32]int{}
		s.slots.all(func(ref uint32, sl *tokenSlot) {
			n++
			h := digestHash(sl.digest)
			require.Equal(t, i, shardOf(h))
			require.Equal(t, int64(ref), s.find(h, sl.digest))
			for _, id := range []uint32{sl.client, sl.user, sl.resource, sl.scopes, sl.jkt, sl.grantLong()} {
				if id != 0 {
					refs[id]++
				}
			}
			g := strings.Clone(s.grantID(sl))
			require.NotContains(t, m.revoked, g)
			if g == "" {
				return
			}
			live[g] = true
			indexed++
			r := newSlotRef(i, ref)
			if big := m.bigGrants[g]; big != nil {
				require.Contains(t, big, r)
				require.Negative(t, m.grantTable(g).indexOf(grantHash(g), uint32(r)))
			} else {
				require.GreaterOrEqual(t, m.grantTable(g).indexOf(grantHash(g), uint32(r)), 0)
			}
		})
		require.Equal(t, n, s.tokens.n)
		inUse := 0
		for id, v := range s.strs.vals {
			if v.refs == 0 {
				continue
			}
			inUse++
			require.Equal(t, int(v.refs), refs[uint32(id)], "references to %q", v.key)
			if v.isScopes {
				require.Equal(t, uint32(id), s.strs.scopes[v.key])
			} else {
				require.Equal(t, uint32(id), s.strs.strs[v.key])
			}
		}
		require.Len(t, refs, inUse)
		require.Equal(t, inUse, len(s.strs.strs)+len(s.strs.scopes))
	}
	for d, c := range m.codes {
		require.Equal(t, d, c.Digest)
		require.NotContains(t, m.revoked, c.GrantID)
		if c.GrantID != "" {
			live[c.GrantID] = true
			require.Contains(t, m.grantCodes[c.GrantID], d)
		}
	}
	n := 0
	for i := range m.grantTokens {
		gt := &m.grantTokens[i]
		gt.all(func(ref uint32) {
			n++
			s, sl := m.slotOf(slotRef(ref))
			require.True(t, sl.live)
			g := s.grantID(sl)
			require.NotEmpty(t, g)
			require.Same(t, gt, m.grantTable(g))
			require.Less(t, m.countGrantLocked(g, bigGrantTokens), bigGrantTokens)
		})
	}
	for id, big := range m.bigGrants {
		require.NotEmpty(t, id)
		require.NotEmpty(t, big, "empty index entry for grant %q", id)
		for r := range big {
			n++
			s, sl := m.slotOf(r)
			require.True(t, sl.live)
			require.Equal(t, id, s.grantID(sl))
		}
	}
	require.Equal(t, indexed, n)
	for id, codes := range m.grantCodes {
		require.NotEmpty(t, id)
		require.NotEmpty(t, codes, "empty index entry for grant %q", id)
		for _, d := range codes {
			c := m.codes[d]
			require.NotNil(t, c)
			require.Equal(t, id, c.GrantID)
		}
	}
	require.Equal(t, len(live), m.liveGrants)
}

func TestMemoryModelClients(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	c := &Client{ID: "client-a", IssuedAt: memT0}

	require.NoError(t, m.RegisterClient(ctx, c))
	got, err := m.GetClient(ctx, "client-a")
	require.NoError(t, err)
	require.Same(t, c, got)

	err = m.RegisterClient(ctx, &Client{ID: "client-a"})
	require.ErrorIs(t, err, ErrConflict)
	got, err = m.GetClient(ctx, "client-a")
	require.NoError(t, err)
	require.Same(t, c, got, "a conflicting registration replaced the client")

	for _, id := range []string{"client-b", "", "CLIENT-A"} {
		got, err = m.GetClient(ctx, id)
		require.ErrorIs(t, err, ErrNotFound, id)
		require.Nil(t, got)
	}

	require.Error(t, m.RegisterClient(ctx, nil))
	err = m.RegisterClient(ctx, &Client{})
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrConflict)
	require.Equal(t, 1, m.Stats().Clients)

	// An update stores the record given, in place of the old one, which
	// stays as it was for whoever holds it.
	next := &Client{ID: "client-a", IssuedAt: memT0, SecretDigest: newDigest()}
	require.NoError(t, m.UpdateClient(ctx, next))
	got, err = m.GetClient(ctx, "client-a")
	require.NoError(t, err)
	require.Same(t, next, got)
	require.True(t, c.IsPublic(), "the update wrote to the old record")
	require.ErrorIs(t, m.UpdateClient(ctx, &Client{ID: "client-b"}), ErrNotFound)
	require.Error(t, m.UpdateClient(ctx, nil))
	require.Equal(t, 1, m.Stats().Clients)

	require.NoError(t, m.DeleteClient(ctx, "client-a"))
	require.ErrorIs(t, m.DeleteClient(ctx, "client-a"), ErrNotFound)
	require.Zero(t, m.Stats().Clients)
}

// TestMemoryModelDeleteClientKeepsTheIndex: deleting a client removes its
// tokens from the shards and from the grant index, big grants and codes
// included, and leaves the index agreeing with the stores.
func TestMemoryModelDeleteClientKeepsTheIndex(t *testing.T) {
	ctx := t.Context()
	exp := memT0.Add(time.Hour)
	m := newTestMemoryModel(t)
	for _, id := range []string{"gone", "stays"} {
		require.NoError(t, m.RegisterClient(ctx, &Client{ID: id}))
		// A grant with a code and a token, a big grant (its own map), a
		// grant of codes only, and a token without a grant.
		require.NoError(t, m.SaveAuthorizationCode(ctx, memCode(id, id+"-small", exp)))
		require.NoError(t, m.SaveTokens(ctx, memToken(AccessToken, id, id+"-small", exp)))
		for range 2 * bigGrantTokens {
			require.NoError(t, m.SaveTokens(ctx, memToken(RefreshToken, id, id+"-big", exp)))
		}
		require.NoError(t, m.SaveAuthorizationCode(ctx, memCode(id, id+"-codes", exp)))
		require.NoError(t, m.SaveTokens(ctx, memToken(AccessToken, id, "", exp)))
		req := memRequest(exp)
		req.ClientID = id
		require.NoError(t, m.SaveAuthorizationRequest(ctx, req))
		dev := &DeviceAuthorization{DeviceCodeDigest: newDigest(), UserCodeDigest: newDigest(), ClientID: id, GrantID: id + "-device", Status: DevicePending, ExpiresAt: exp}
		require.NoError(t, m.SaveDeviceAuthorization(ctx, dev))
	}
	before := m.Stats()
	require.NoError(t, m.DeleteClient(ctx, "gone"))
	requireMemoryInvariants(t, m)
	half := MemoryStats{
		Clients: 1, AuthorizationRequests: 1, AuthorizationCodes: 2, Tokens: 2 + 2*bigGrantTokens,
		Grants: 3, DeviceAuthorizations: 1,
	}
	require.Equal(t, before.Tokens, 2*half.Tokens, "test premise")
	require.Equal(t, half, m.Stats())
	require.NotContains(t, m.bigGrants, "gone-big")
	require.Contains(t, m.bigGrants, "stays-big")
}

func TestMemoryModelAuthorizationRequests(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	req := memRequest(memT0.Add(time.Minute))

	require.NoError(t, m.SaveAuthorizationRequest(ctx, req))
	require.ErrorIs(t, m.SaveAuthorizationRequest(ctx, &AuthorizationRequest{ID: req.ID}), ErrConflict)

	for range 2 { // Get does not consume.
		got, err := m.GetAuthorizationRequest(ctx, req.ID)
		require.NoError(t, err)
		require.Same(t, req, got)
	}

	got, err := m.ConsumeAuthorizationRequest(ctx, req.ID)
	require.NoError(t, err)
	require.Same(t, req, got)

	got, err = m.ConsumeAuthorizationRequest(ctx, req.ID)
	require.ErrorIs(t, err, ErrNotFound)
	require.Nil(t, got)
	got, err = m.GetAuthorizationRequest(ctx, req.ID)
	require.ErrorIs(t, err, ErrNotFound)
	require.Nil(t, got)

	unknown := newDigest()
	_, err = m.GetAuthorizationRequest(ctx, unknown)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = m.ConsumeAuthorizationRequest(ctx, unknown)
	require.ErrorIs(t, err, ErrNotFound)

	require.Error(t, m.SaveAuthorizationRequest(ctx, nil))
	require.Error(t, m.SaveAuthorizationRequest(ctx, &AuthorizationRequest{}))
	require.Zero(t, m.Stats().AuthorizationRequests)
}

func TestMemoryModelSaveAndGetAuthorizationCode(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	code := memCode("client", "grant", memT0.Add(time.Minute))

	require.NoError(t, m.SaveAuthorizationCode(ctx, code))
	got, err := m.GetAuthorizationCode(ctx, code.Digest)
	require.NoError(t, err)
	require.Same(t, code, got)

	// A duplicate digest must not replace (and so un-use) the stored code.
	dup := memCode("other", "grant2", memT0.Add(time.Hour))
	dup.Digest = code.Digest
	require.ErrorIs(t, m.SaveAuthorizationCode(ctx, dup), ErrConflict)
	got, err = m.GetAuthorizationCode(ctx, code.Digest)
	require.NoError(t, err)
	require.Same(t, code, got)

	_, err = m.GetAuthorizationCode(ctx, newDigest())
	require.ErrorIs(t, err, ErrNotFound)

	require.Error(t, m.SaveAuthorizationCode(ctx, nil))
	require.Error(t, m.SaveAuthorizationCode(ctx, &AuthorizationCode{ClientID: "client"}))
	require.Equal(t, MemoryStats{AuthorizationCodes: 1, Grants: 1}, m.Stats())
	requireMemoryInvariants(t, m)
}

func TestMemoryModelConsumeAuthorizationCode(t *testing.T) {
	exp := memT0.Add(time.Minute)
	existing := memToken(AccessToken, "client", "grant", exp)

	tests := []struct {
		name     string
		clientID string
		unknown  bool // consume a digest that was never saved
		used     bool // consume the code once before
		issued   func(*AuthorizationCode) []*Token
		wantErr  error // nil: success; else errors.Is target, or errAny
	}{
		{name: "success", clientID: "client", issued: func(c *AuthorizationCode) []*Token {
			return []*Token{memToken(AccessToken, "client", c.GrantID, exp), memToken(RefreshToken, "client", c.GrantID, exp)}
		}},
		{name: "success without tokens", clientID: "client"},
		{name: "unknown code", clientID: "client", unknown: true, wantErr: ErrNotFound},
		{name: "other client", clientID: "other", wantErr: ErrNotFound},
		{name: "empty client", clientID: "", wantErr: ErrNotFound},
		{name: "already used", clientID: "client", used: true, wantErr: ErrAlreadyUsed},
		{name: "other client checked before used", clientID: "other", used: true, wantErr: ErrNotFound},
		{name: "issued digest exists", clientID: "client", wantErr: ErrConflict, issued: func(c *AuthorizationCode) []*Token {
			dup := memToken(RefreshToken, "client", c.GrantID, exp)
			dup.Digest = existing.Digest
			return []*Token{memToken(AccessToken, "client", c.GrantID, exp), dup}
		}},
		{name: "issued digest repeated", clientID: "client", wantErr: ErrConflict, issued: func(c *AuthorizationCode) []*Token {
			a := memToken(AccessToken, "client", c.GrantID, exp)
			b := memToken(RefreshToken, "client", c.GrantID, exp)
			b.Digest = a.Digest
			return []*Token{a, b}
		}},
		{name: "issued nil", clientID: "client", wantErr: errAny, issued: func(c *AuthorizationCode) []*Token {
			return []*Token{memToken(AccessToken, "client", c.GrantID, exp), nil}
		}},
		{name: "issued zero digest", clientID: "client", wantErr: errAny, issued: func(c *AuthorizationCode) []*Token {
			return []*Token{memToken(AccessToken, "client", c.GrantID, exp), {Kind: RefreshToken, GrantID: c.GrantID}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			m := newTestMemoryModel(t)
			require.NoError(t, m.SaveTokens(ctx, existing))
			code := memCode("client", "grant", exp)
			require.NoError(t, m.SaveAuthorizationCode(ctx, code))
			if tt.used {
				require.NoError(t, m.ConsumeAuthorizationCode(ctx, code.Digest, "client"))
			}
			before, err := m.GetAuthorizationCode(ctx, code.Digest)
			require.NoError(t, err)
			statsBefore := m.Stats()

			var issued []*Token
			if tt.issued != nil {
				issued = tt.issued(code)
			}
			key := code.Digest
			if tt.unknown {
				key = newDigest()
			}
			err = m.ConsumeAuthorizationCode(ctx, key, tt.clientID, issued...)
			requireMemoryInvariants(t, m)

			after, gerr := m.GetAuthorizationCode(ctx, code.Digest)
			require.NoError(t, gerr, "a consumed code is kept")
			if tt.wantErr != nil {
				if tt.wantErr == errAny {
					require.Error(t, err)
				} else {
					require.ErrorIs(t, err, tt.wantErr)
				}
				// Nothing changed: same code record, no token saved.
				require.Same(t, before, after)
				require.Equal(t, statsBefore, m.Stats())
				for _, tok := range issued {
					if tok != nil && tok.Digest != existing.Digest {
						requireTokenAbsent(t, m, tok)
					}
				}
				requireTokenPresent(t, m, existing)
				return
			}
			require.NoError(t, err)
			require.True(t, after.Used)
			require.NotSame(t, code, after, "the returned record was mutated in place")
			require.False(t, code.Used, "the returned record was mutated in place")
			used := *code
			used.Used = true
			require.Equal(t, &used, after)
			requireTokenPresent(t, m, issued...)

			// A replay answers ErrAlreadyUsed and saves nothing.
			replay := memToken(AccessToken, "client", "grant", exp)
			require.ErrorIs(t, m.ConsumeAuthorizationCode(ctx, code.Digest, "client", replay), ErrAlreadyUsed)
			requireTokenAbsent(t, m, replay)
		})
	}
}

// errAny marks a table case expecting some error, not a sentinel.
var errAny = errors.New("any error")

func TestMemoryModelSaveTokens(t *testing.T) {
	ctx := t.Context()
	exp := memT0.Add(time.Hour)
	m, a, r := newModelWithTokens(t, exp)
	requireTokenPresent(t, m, a, r)
	require.NoError(t, m.SaveTokens(ctx)) // nothing to save is fine

	t.Run("duplicate of a stored digest saves nothing", func(t *testing.T) {
		fresh := memToken(AccessToken, "client", "grant", exp)
		dup := memToken(AccessToken, "other", "grant2", exp)
		dup.Digest = a.Digest
		require.ErrorIs(t, m.SaveTokens(ctx, fresh, dup), ErrConflict)
		requireTokenAbsent(t, m, fresh)
		requireTokenPresent(t, m, a)
	})
	t.Run("digest repeated in the call saves nothing", func(t *testing.T) {
		x := memToken(AccessToken, "client", "grant", exp)
		y := memToken(RefreshToken, "client", "grant", exp)
		y.Digest = x.Digest
		require.ErrorIs(t, m.SaveTokens(ctx, x, y), ErrConflict)
		requireTokenAbsent(t, m, x)
	})
	t.Run("digest repeated in a long call saves nothing", func(t *testing.T) {
		many := make([]*Token, 40)
		for i := range many {
			many[i] = memToken(AccessToken, "client", "grant", exp)
		}
		many[39].Digest = many[3].Digest
		require.ErrorIs(t, m.SaveTokens(ctx, many...), ErrConflict)
		requireTokenAbsent(t, m, many[:39]...)
		many[39].Digest = newDigest()
		require.NoError(t, m.SaveTokens(ctx, many...))
		requireTokenPresent(t, m, many...)
	})
	t.Run("invalid tokens save nothing", func(t *testing.T) {
		x := memToken(AccessToken, "client", "grant", exp)
		require.Error(t, m.SaveTokens(ctx, x, nil))
		require.Error(t, m.SaveTokens(ctx, x, &Token{Kind: AccessToken, GrantID: "grant"}))
		requireTokenAbsent(t, m, x)
	})
	_, err := m.GetToken(ctx, newDigest())
	require.ErrorIs(t, err, ErrNotFound)
	requireMemoryInvariants(t, m)
}

func TestMemoryModelRotateRefreshToken(t *testing.T) {
	exp := memT0.Add(time.Hour)
	tests := []struct {
		name     string
		kind     TokenKind
		clientID string
		unknown  bool
		used     bool
		conflict bool
		wantErr  error
	}{
		{name: "success", kind: RefreshToken, clientID: "client"},
		{name: "unknown token", kind: RefreshToken, clientID: "client", unknown: true, wantErr: ErrNotFound},
		{name: "access token", kind: AccessToken, clientID: "client", wantErr: ErrNotFound},
		{name: "other client", kind: RefreshToken, clientID: "other", wantErr: ErrNotFound},
		{name: "empty client", kind: RefreshToken, clientID: "", wantErr: ErrNotFound},
		{name: "already rotated", kind: RefreshToken, clientID: "client", used: true, wantErr: ErrAlreadyUsed},
		{name: "already rotated, other client", kind: RefreshToken, clientID: "other", used: true, wantErr: ErrNotFound},
		{name: "issued digest exists", kind: RefreshToken, clientID: "client", conflict: true, wantErr: ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			m := newTestMemoryModel(t)
			old := memToken(tt.kind, "client", "grant", exp)
			other := memToken(AccessToken, "client", "grant", exp)
			require.NoError(t, m.SaveTokens(ctx, old, other))
			if tt.used {
				require.NoError(t, m.RotateRefreshToken(ctx, old.Digest, "client", memT0, time.Time{}))
			}
			before, err := m.GetToken(ctx, old.Digest)
			require.NoError(t, err)
			statsBefore := m.Stats()

			issued := []*Token{memToken(AccessToken, "client", "grant", exp), memToken(RefreshToken, "client", "grant", exp)}
			if tt.conflict {
				issued[1].Digest = other.Digest
			}
			key := old.Digest
			if tt.unknown {
				key = newDigest()
			}
			err = m.RotateRefreshToken(ctx, key, tt.clientID, memT0, time.Time{}, issued...)
			requireMemoryInvariants(t, m)

			after, gerr := m.GetToken(ctx, old.Digest)
			require.NoError(t, gerr, "a rotated token is kept")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				requireSameToken(t, before, after)
				require.Equal(t, statsBefore, m.Stats())
				requireTokenAbsent(t, m, issued[0])
				requireTokenPresent(t, m, other)
				return
			}
			require.NoError(t, err)
			require.True(t, after.Rotated())
			require.False(t, old.Rotated(), "the returned record was mutated in place")
			used := *old
			used.RotatedAt = memT0
			require.Equal(t, &used, after)
			requireTokenPresent(t, m, issued...)

			replay := memToken(AccessToken, "client", "grant", exp)
			require.ErrorIs(t, m.RotateRefreshToken(ctx, old.Digest, "client", memT0, time.Time{}, replay), ErrAlreadyUsed)
			requireTokenAbsent(t, m, replay)
		})
	}
}

func TestMemoryModelRevokeToken(t *testing.T) {
	ctx := t.Context()
	m, a, r := newModelWithTokens(t, memT0.Add(time.Hour))
	require.NoError(t, m.RotateRefreshToken(ctx, r.Digest, "client", memT0, time.Time{}))

	for _, clientID := range []string{"other", ""} {
		got, err := m.RevokeToken(ctx, a.Digest, clientID)
		require.ErrorIs(t, err, ErrNotFound)
		require.Nil(t, got)
	}
	requireTokenPresent(t, m, a)
	_, err := m.RevokeToken(ctx, newDigest(), "client")
	require.ErrorIs(t, err, ErrNotFound)

	got, err := m.RevokeToken(ctx, a.Digest, "client")
	require.NoError(t, err)
	requireSameToken(t, a, got)
	requireTokenAbsent(t, m, a)
	_, err = m.RevokeToken(ctx, a.Digest, "client")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, 1, m.Stats().Grants)
	requireMemoryInvariants(t, m)

	// A rotated refresh token can be revoked too; it was the grant's last
	// record, so its index entry goes with it.
	got, err = m.RevokeToken(ctx, r.Digest, "client")
	require.NoError(t, err)
	require.True(t, got.Rotated())
	requireTokenAbsent(t, m, r)
	require.Equal(t, MemoryStats{}, m.Stats())
	requireMemoryInvariants(t, m)
}

func TestMemoryModelRevokeGrant(t *testing.T) {
	ctx := t.Context()
	exp := memT0.Add(time.Hour)
	m := newTestMemoryModel(t)

	usedCode := memCode("client", "g1", exp)
	freshCode := memCode("client", "g1", exp)
	require.NoError(t, m.SaveAuthorizationCode(ctx, usedCode))
	require.NoError(t, m.SaveAuthorizationCode(ctx, freshCode))
	a := memToken(AccessToken, "client", "g1", exp)
	r := memToken(RefreshToken, "client", "g1", exp)
	require.NoError(t, m.ConsumeAuthorizationCode(ctx, usedCode.Digest, "client", a, r))
	a2 := memToken(AccessToken, "client", "g1", exp)
	r2 := memToken(RefreshToken, "client", "g1", exp)
	require.NoError(t, m.RotateRefreshToken(ctx, r.Digest, "client", memT0, time.Time{}, a2, r2))

	keepCode := memCode("client", "g2", exp)
	require.NoError(t, m.SaveAuthorizationCode(ctx, keepCode))
	keep := memToken(RefreshToken, "client", "g2", exp)
	noGrant := memToken(AccessToken, "client", "", exp)
	require.NoError(t, m.SaveTokens(ctx, keep, noGrant))

	// An empty grant ID matches nothing, not even tokens without a grant.
	require.NoError(t, m.RevokeGrant(ctx, ""))
	requireTokenPresent(t, m, a, a2, r2, keep, noGrant)
	require.Zero(t, m.Stats().RevokedGrants)

	require.NoError(t, m.RevokeGrant(ctx, "g1"))
	requireTokenAbsent(t, m, a, r, a2, r2)
	for _, c := range []*AuthorizationCode{usedCode, freshCode} {
		_, err := m.GetAuthorizationCode(ctx, c.Digest)
		require.ErrorIs(t, err, ErrNotFound)
	}
	requireTokenPresent(t, m, keep, noGrant)
	_, err := m.GetAuthorizationCode(ctx, keepCode.Digest)
	require.NoError(t, err)
	require.Equal(t, MemoryStats{AuthorizationCodes: 1, Tokens: 2, Grants: 1, RevokedGrants: 1}, m.Stats())
	requireMemoryInvariants(t, m)

	// Revoking again, or revoking an unknown grant, is fine.
	require.NoError(t, m.RevokeGrant(ctx, "g1"))
	require.NoError(t, m.RevokeGrant(ctx, "never-issued"))

	t.Run("revoked grant is not resurrected", func(t *testing.T) {
		// SaveTokens: all or nothing, even beside a token of a live grant.
		live := memToken(AccessToken, "client", "g2", exp)
		late := memToken(AccessToken, "client", "g1", exp)
		require.ErrorIs(t, m.SaveTokens(ctx, live, late), ErrNotFound)
		requireTokenAbsent(t, m, live, late)

		// ConsumeAuthorizationCode: the code is not consumed.
		late2 := memToken(RefreshToken, "client", "g1", exp)
		require.ErrorIs(t, m.ConsumeAuthorizationCode(ctx, keepCode.Digest, "client", late2), ErrNotFound)
		got, err := m.GetAuthorizationCode(ctx, keepCode.Digest)
		require.NoError(t, err)
		require.Same(t, keepCode, got)
		require.False(t, got.Used)
		requireTokenAbsent(t, m, late2)

		// RotateRefreshToken: the token is not rotated.
		late3 := memToken(AccessToken, "client", "never-issued", exp)
		require.ErrorIs(t, m.RotateRefreshToken(ctx, keep.Digest, "client", memT0, time.Time{}, late3), ErrNotFound)
		requireTokenPresent(t, m, keep)
		require.False(t, keep.Rotated())
		requireTokenAbsent(t, m, late3)

		// SaveAuthorizationCode.
		lateCode := memCode("client", "g1", exp)
		require.ErrorIs(t, m.SaveAuthorizationCode(ctx, lateCode), ErrNotFound)
		_, err = m.GetAuthorizationCode(ctx, lateCode.Digest)
		require.ErrorIs(t, err, ErrNotFound)
		requireMemoryInvariants(t, m)
	})

	t.Run("revocation is remembered long enough, then forgotten", func(t *testing.T) {
		m.Sweep(memT0.Add(revokedGrantRetention - time.Second))
		require.Equal(t, 2, m.Stats().RevokedGrants)
		m.Sweep(memT0.Add(revokedGrantRetention + time.Second))
		require.Zero(t, m.Stats().RevokedGrants)
		require.NoError(t, m.SaveTokens(ctx, memToken(AccessToken, "client", "g1", exp)))
	})
}

func TestMemoryModelRevokedGrantOutlivesItsTokens(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	grantEnd := memT0.Add(90 * 24 * time.Hour)
	tok := memToken(RefreshToken, "client", "g", memT0.Add(60*24*time.Hour))
	tok.GrantExpiresAt = grantEnd
	require.NoError(t, m.SaveTokens(ctx, tok))
	require.NoError(t, m.RevokeGrant(ctx, "g"))

	// Past the 30 days but before the grant would have ended: remembered.
	m.Sweep(grantEnd.Add(-time.Second))
	require.ErrorIs(t, m.SaveTokens(ctx, memToken(AccessToken, "client", "g", grantEnd)), ErrNotFound)
	m.Sweep(grantEnd.Add(time.Second))
	require.Zero(t, m.Stats().RevokedGrants)
}

func TestMemoryModelHonoursDoneContext(t *testing.T) {
	exp := memT0.Add(time.Hour)
	m := newTestMemoryModel(t)
	bg := t.Context()
	code := memCode("client", "g", exp)
	req := memRequest(exp)
	refresh := memToken(RefreshToken, "client", "g", exp)
	require.NoError(t, m.RegisterClient(bg, &Client{ID: "client"}))
	require.NoError(t, m.SaveAuthorizationRequest(bg, req))
	require.NoError(t, m.SaveAuthorizationCode(bg, code))
	require.NoError(t, m.SaveTokens(bg, refresh))
	before := m.Stats()

	canceled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Unix(0, 0))
	defer cancel2()

	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		ctx := c.ctx
		calls := map[string]func() error{
			"GetClient":      func() error { _, err := m.GetClient(ctx, "client"); return err },
			"RegisterClient": func() error { return m.RegisterClient(ctx, &Client{ID: "new"}) },
			"UpdateClient":   func() error { return m.UpdateClient(ctx, &Client{ID: "client"}) },
			"DeleteClient":   func() error { return m.DeleteClient(ctx, "client") },
			"SaveAuthorizationRequest": func() error {
				return m.SaveAuthorizationRequest(ctx, memRequest(exp))
			},
			"GetAuthorizationRequest": func() error { _, err := m.GetAuthorizationRequest(ctx, req.ID); return err },
			"ConsumeAuthorizationRequest": func() error {
				_, err := m.ConsumeAuthorizationRequest(ctx, req.ID)
				return err
			},
			"SaveAuthorizationCode": func() error { return m.SaveAuthorizationCode(ctx, memCode("client", "g", exp)) },
			"GetAuthorizationCode":  func() error { _, err := m.GetAuthorizationCode(ctx, code.Digest); return err },
			"ConsumeAuthorizationCode": func() error {
				return m.ConsumeAuthorizationCode(ctx, code.Digest, "client", memToken(AccessToken, "client", "g", exp))
			},
			"SaveTokens": func() error { return m.SaveTokens(ctx, memToken(AccessToken, "client", "g", exp)) },
			"GetToken":   func() error { _, err := m.GetToken(ctx, refresh.Digest); return err },
			"RotateRefreshToken": func() error {
				return m.RotateRefreshToken(ctx, refresh.Digest, "client", memT0, time.Time{}, memToken(AccessToken, "client", "g", exp))
			},
			"RevokeToken": func() error { _, err := m.RevokeToken(ctx, refresh.Digest, "client"); return err },
			"RevokeGrant": func() error { return m.RevokeGrant(ctx, "g") },
		}
		for name, call := range calls {
			require.ErrorIs(t, call(), c.want, name)
		}
	}
	require.Equal(t, before, m.Stats(), "a call with a done context changed the store")
	got, err := m.GetAuthorizationCode(bg, code.Digest)
	require.NoError(t, err)
	require.False(t, got.Used)
	got2, err := m.GetToken(bg, refresh.Digest)
	require.NoError(t, err)
	require.False(t, got2.Rotated())
}

// requireExactlyOneWinner asserts one nil error and loser for every other.
func requireExactlyOneWinner(t *testing.T, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two calls succeeded")
			winner = i
			continue
		}
		require.ErrorIs(t, err, loser)
	}
	require.NotEqual(t, -1, winner, "no call succeeded")
	return winner
}

const memConcurrency = 50

// requireOneRedemption has memConcurrency callers redeem one credential at
// once, each with a token of its own to issue: exactly one wins, only its
// token is stored, and the model then holds wantTokens tokens.
func requireOneRedemption(t *testing.T, m *MemoryModel, kind TokenKind, wantTokens int, redeem func(issued *Token) error) {
	t.Helper()
	issued := make([]*Token, memConcurrency)
	for i := range issued {
		issued[i] = memToken(kind, "client", "g", memT0.Add(time.Hour))
	}
	errs := together.Run(memConcurrency, func(i int) error { return redeem(issued[i]) })
	winner := requireExactlyOneWinner(t, errs, ErrAlreadyUsed)
	for i, tok := range issued {
		if i == winner {
			requireTokenPresent(t, m, tok)
		} else {
			requireTokenAbsent(t, m, tok)
		}
	}
	require.Equal(t, wantTokens, m.Stats().Tokens)
	requireMemoryInvariants(t, m)
}

func TestMemoryModelConcurrentConsumeAuthorizationCode(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	code := memCode("client", "g", memT0.Add(time.Hour))
	require.NoError(t, m.SaveAuthorizationCode(ctx, code))
	requireOneRedemption(t, m, AccessToken, 1, func(issued *Token) error {
		return m.ConsumeAuthorizationCode(ctx, code.Digest, "client", issued)
	})
}

func TestMemoryModelConcurrentRotateRefreshToken(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	old := memToken(RefreshToken, "client", "g", memT0.Add(time.Hour))
	require.NoError(t, m.SaveTokens(ctx, old))
	requireOneRedemption(t, m, RefreshToken, 2, func(issued *Token) error {
		return m.RotateRefreshToken(ctx, old.Digest, "client", memT0, time.Time{}, issued)
	})
}

func TestMemoryModelConcurrentConsumeAuthorizationRequest(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	req := memRequest(memT0.Add(time.Minute))
	require.NoError(t, m.SaveAuthorizationRequest(ctx, req))
	got := make([]*AuthorizationRequest, memConcurrency)
	errs := together.Run(memConcurrency, func(i int) error {
		var err error
		got[i], err = m.ConsumeAuthorizationRequest(ctx, req.ID)
		return err
	})
	winner := requireExactlyOneWinner(t, errs, ErrNotFound)
	require.Same(t, req, got[winner])
	require.Zero(t, m.Stats().AuthorizationRequests)
}

// TestMemoryModelRevokeGrantRaces runs RevokeGrant against each operation
// that saves tokens of the grant, and checks that afterwards no token of the
// grant can be found, whichever won.
func TestMemoryModelRevokeGrantRaces(t *testing.T) {
	exp := memT0.Add(time.Hour)
	ops := map[string]func(ctx context.Context, m *MemoryModel, grant string) (issued []*Token, err error){
		"ConsumeAuthorizationCode": func(ctx context.Context, m *MemoryModel, grant string) ([]*Token, error) {
			code := memCode("client", grant, exp)
			if err := m.SaveAuthorizationCode(ctx, code); err != nil {
				return nil, err
			}
			issued := []*Token{memToken(AccessToken, "client", grant, exp), memToken(RefreshToken, "client", grant, exp)}
			return issued, m.ConsumeAuthorizationCode(ctx, code.Digest, "client", issued...)
		},
		"RotateRefreshToken": func(ctx context.Context, m *MemoryModel, grant string) ([]*Token, error) {
			old := memToken(RefreshToken, "client", grant, exp)
			if err := m.SaveTokens(ctx, old); err != nil {
				return nil, err
			}
			issued := []*Token{old, memToken(AccessToken, "client", grant, exp), memToken(RefreshToken, "client", grant, exp)}
			return issued, m.RotateRefreshToken(ctx, old.Digest, "client", memT0, time.Time{}, issued[1:]...)
		},
		"SaveTokens": func(ctx context.Context, m *MemoryModel, grant string) ([]*Token, error) {
			issued := []*Token{memToken(AccessToken, "client", grant, exp), memToken(RefreshToken, "client", grant, exp)}
			return issued, m.SaveTokens(ctx, issued...)
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			m := newTestMemoryModel(t)
			var saved, refused int
			for round := range 200 {
				grant := fmt.Sprintf("grant-%d", round)
				var issued []*Token
				errs := together.Run(2, func(i int) error {
					if i == 0 {
						var err error
						issued, err = op(ctx, m, grant)
						return err
					}
					return m.RevokeGrant(ctx, grant)
				})
				opErr := errs[0]
				require.NoError(t, errs[1])

				if opErr == nil {
					saved++
				} else {
					require.ErrorIs(t, opErr, ErrNotFound)
					refused++
				}
				requireTokenAbsent(t, m, issued...)
			}
			t.Logf("%s: %d saved before the revocation, %d refused after it", name, saved, refused)
			require.Equal(t, MemoryStats{RevokedGrants: 200}, m.Stats())
			requireMemoryInvariants(t, m)
		})
	}
}

// TestMemoryModelReadersDuringWrites has readers inspect returned records
// while writers rotate, consume and revoke; under -race it proves stored
// records are replaced, never written in place.
func TestMemoryModelReadersDuringWrites(t *testing.T) {
	ctx := t.Context()
	exp := memT0.Add(time.Hour)
	m := newTestMemoryModel(t)
	const n = 100
	refresh := make([]*Token, n)
	codes := make([]*AuthorizationCode, n)
	for i := range n {
		refresh[i] = memToken(RefreshToken, "client", fmt.Sprintf("g%d", i), exp)
		codes[i] = memCode("client", fmt.Sprintf("g%d", i), exp)
		require.NoError(t, m.SaveTokens(ctx, refresh[i]))
		require.NoError(t, m.SaveAuthorizationCode(ctx, codes[i]))
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var reads atomic.Int64
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
				for i := range n {
					if tok, err := m.GetToken(ctx, refresh[i].Digest); err == nil && !tok.Rotated() {
						reads.Add(1)
					}
					if c, err := m.GetAuthorizationCode(ctx, codes[i].Digest); err == nil && !c.Used {
						reads.Add(1)
					}
				}
			}
		})
	}
	errs := together.Run(n, func(i int) error {
		grant := fmt.Sprintf("g%d", i)
		if err := m.RotateRefreshToken(ctx, refresh[i].Digest, "client", memT0, time.Time{}, memToken(RefreshToken, "client", grant, exp)); err != nil {
			return err
		}
		if err := m.ConsumeAuthorizationCode(ctx, codes[i].Digest, "client", memToken(AccessToken, "client", grant, exp)); err != nil {
			return err
		}
		if i%2 == 0 {
			return m.RevokeGrant(ctx, grant)
		}
		return nil
	})
	close(stop)
	readers.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Positive(t, reads.Load())
	for i := range n {
		require.False(t, refresh[i].Rotated())
		require.False(t, codes[i].Used)
	}
	require.Equal(t, MemoryStats{AuthorizationCodes: n / 2, Tokens: 3 * n / 2, Grants: n / 2, RevokedGrants: n / 2}, m.Stats())
	requireMemoryInvariants(t, m)
}

func TestMemoryModelSweep(t *testing.T) {
	ctx := t.Context()
	m := newTestMemoryModel(t)
	past, future := memT0.Add(-time.Second), memT0.Add(time.Second)

	require.NoError(t, m.RegisterClient(ctx, &Client{ID: "client", IssuedAt: past, SecretExpiresAt: past}))
	oldReq, liveReq, edgeReq := memRequest(past), memRequest(future), memRequest(memT0)
	for _, r := range []*AuthorizationRequest{oldReq, liveReq, edgeReq} {
		require.NoError(t, m.SaveAuthorizationRequest(ctx, r))
	}

	// Grant g1: everything expired, a used code and a rotated token among it.
	oldCode, oldUsedCode := memCode("client", "g1", past), memCode("client", "g1", past)
	require.NoError(t, m.SaveAuthorizationCode(ctx, oldCode))
	require.NoError(t, m.SaveAuthorizationCode(ctx, oldUsedCode))
	oldAccess, oldRotated := memToken(AccessToken, "client", "g1", past), memToken(RefreshToken, "client", "g1", past)
	require.NoError(t, m.ConsumeAuthorizationCode(ctx, oldUsedCode.Digest, "client", oldAccess, oldRotated))
	require.NoError(t, m.RotateRefreshToken(ctx, oldRotated.Digest, "client", memT0, time.Time{}))

	// Grant g2: some expired, some live (including a used code and a
	// rotated token), one exactly at now.
	liveCode, liveUsedCode, oldCode2 := memCode("client", "g2", future), memCode("client", "g2", future), memCode("client", "g2", past)
	for _, c := range []*AuthorizationCode{liveCode, liveUsedCode, oldCode2} {
		require.NoError(t, m.SaveAuthorizationCode(ctx, c))
	}
	liveRotated := memToken(RefreshToken, "client", "g2", future)
	oldAccess2 := memToken(AccessToken, "client", "g2", past)
	edgeAccess := memToken(AccessToken, "client", "g2", memT0)
	noGrantOld := memToken(AccessToken, "client", "", past)
	require.NoError(t, m.ConsumeAuthorizationCode(ctx, liveUsedCode.Digest, "client", liveRotated, oldAccess2, edgeAccess, noGrantOld))
	require.NoError(t, m.RotateRefreshToken(ctx, liveRotated.Digest, "client", memT0, time.Time{}))
	requireMemoryInvariants(t, m)

	m.Sweep(memT0)
	requireMemoryInvariants(t, m)

	_, err := m.GetClient(ctx, "client")
	require.NoError(t, err, "a client was swept")
	for _, r := range []*AuthorizationRequest{liveReq, edgeReq} {
		_, err = m.GetAuthorizationRequest(ctx, r.ID)
		require.NoError(t, err)
	}
	_, err = m.GetAuthorizationRequest(ctx, oldReq.ID)
	require.ErrorIs(t, err, ErrNotFound)

	for _, c := range []*AuthorizationCode{liveCode, liveUsedCode} {
		_, err = m.GetAuthorizationCode(ctx, c.Digest)
		require.NoError(t, err)
	}
	for _, c := range []*AuthorizationCode{oldCode, oldUsedCode, oldCode2} {
		_, err = m.GetAuthorizationCode(ctx, c.Digest)
		require.ErrorIs(t, err, ErrNotFound)
	}
	got, err := m.GetToken(ctx, liveRotated.Digest)
	require.NoError(t, err)
	require.True(t, got.Rotated())
	_, err = m.GetToken(ctx, edgeAccess.Digest)
	require.NoError(t, err)
	requireTokenAbsent(t, m, oldAccess, oldRotated, oldAccess2, noGrantOld)
	require.Equal(t, MemoryStats{Clients: 1, AuthorizationRequests: 2, AuthorizationCodes: 2, Tokens: 2, Grants: 1}, m.Stats())

	// Sweeping everything leaves only the client, and an empty index.
	m.Sweep(memT0.Add(time.Hour))
	require.Equal(t, MemoryStats{Clients: 1}, m.Stats())
	for i := range m.grantTokens {
		require.Zero(t, m.grantTokens[i].n)
	}
	require.Empty(t, m.bigGrants)
	require.Empty(t, m.grantCodes)
	requireMemoryInvariants(t, m)
}

func TestMemoryModelSweeperRuns(t *testing.T) {
	ctx := t.Context()
	calls := make(chan struct{}, 1)
	clock := func() time.Time {
		select {
		case calls <- struct{}{}:
		default:
		}
		return memT0
	}
	m := NewMemoryModel(MemoryModelOptions{SweepInterval: time.Millisecond, Now: clock})
	defer func() { require.NoError(t, m.Close()) }()
	old := memToken(AccessToken, "client", "g", memT0.Add(-time.Second))
	live := memToken(AccessToken, "client", "g", memT0.Add(time.Second))
	require.NoError(t, m.SaveTokens(ctx, old, live))

	// The sweeper reads the clock, then sweeps; once it read the clock a
	// second time, the first sweep is complete.
	<-calls
	<-calls
	requireTokenAbsent(t, m, old)
	requireTokenPresent(t, m, live)
	requireMemoryInvariants(t, m)
}

func TestMemoryModelClose(t *testing.T) {
	t.Run("with sweeper", func(t *testing.T) {
		m := NewMemoryModel(MemoryModelOptions{SweepInterval: time.Millisecond})
		errs := together.Run(10, func(int) error { return m.Close() })
		for _, err := range errs {
			require.NoError(t, err)
		}
		select {
		case <-m.done:
		default:
			t.Fatal("Close returned before the sweeper exited")
		}
		require.NoError(t, m.Close())
		// The model stays usable after Close.
		require.NoError(t, m.SaveTokens(t.Context(), memToken(AccessToken, "client", "g", memT0)))
	})
	t.Run("default interval", func(t *testing.T) {
		m := NewMemoryModel(MemoryModelOptions{})
		require.NoError(t, m.Close())
		require.NoError(t, m.Close())
	})
	t.Run("sweeper disabled", func(t *testing.T) {
		for _, d := range []time.Duration{0, -time.Second} {
			m := NewMemoryModel(MemoryModelOptions{SweepInterval: d})
			require.NoError(t, m.Close())
			require.NoError(t, m.Close())
		}
	})
}

// TestMemoryModelSweeperStopsWhenCollected checks that a model dropped
// without Close does not leak its sweeper goroutine (nor, through it, itself).
func TestMemoryModelSweeperStopsWhenCollected(t *testing.T) {
	done := func() <-chan struct{} {
		m := NewMemoryModel(MemoryModelOptions{SweepInterval: time.Millisecond})
		return m.done
	}()
	timeout := time.After(30 * time.Second)
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-timeout:
			t.Fatal("the sweeper of an unreachable model is still running")
		case <-time.After(time.Millisecond):
		}
	}
}

// TestMemoryModelGetTokenAllocatesOnce guards the lookup's cost: the
// record it returns, with its grant ID, is one allocation; a miss none.
func TestMemoryModelGetTokenAllocatesOnce(t *testing.T) {
	ctx := context.Background()
	m := newTestMemoryModel(t)
	tok := memToken(AccessToken, "client", "g-0123456789abcdefghij", memT0)
	require.NoError(t, m.SaveTokens(ctx, tok))
	missing := newDigest()
	allocs := testing.AllocsPerRun(1000, func() {
		if got, err := m.GetToken(ctx, tok.Digest); err != nil || got.GrantID != tok.GrantID {
			panic("lookup failed")
		}
	})
	require.Equal(t, 1.0, allocs)
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := m.GetToken(ctx, missing); err == nil {
			panic("found a missing token")
		}
	})
	require.Zero(t, allocs)
}

// TestMemoryModelTokenShardPadding guards the padding that keeps readers
// of neighbouring shards off each other's cache lines.
func TestMemoryModelTokenShardPadding(t *testing.T) {
	require.Zero(t, unsafe.Sizeof(memoryTokenShard{})%128)
}

// TestMemoryModelSweepsAssertionIDs: an assertion id is kept until it
// expires, then swept.
func TestMemoryModelSweepsAssertionIDs(t *testing.T) {
	m := NewMemoryModel(MemoryModelOptions{SweepInterval: NoSweep})
	t.Cleanup(func() { _ = m.Close() })
	exp := time.Now().Add(time.Minute)
	require.NoError(t, m.UseAssertionID(t.Context(), "c", "j", exp))
	m.Sweep(exp.Add(-time.Second))
	require.ErrorIs(t, m.UseAssertionID(t.Context(), "c", "j", exp), ErrAlreadyUsed, "kept until exp")
	m.Sweep(exp.Add(time.Second))
	require.NoError(t, m.UseAssertionID(t.Context(), "c", "j", exp.Add(time.Minute)), "swept after exp")
}
