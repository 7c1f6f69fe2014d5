package modeltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/mcpoauth/mcpoauth"
)

// grantRecordGroups are the subtests of the optional GrantStore and
// UpstreamTokenStore capabilities. Each skips when the model does not
// implement the capability it checks.
func grantRecordGroups() []group {
	return []group{
		{"GrantStore", grantStoreClauses},
		{"UpstreamTokenStore", upstreamTokenStoreClauses},
	}
}

// grantStore returns the model as a GrantStore, or skips the test.
var grantStore = capability[mcpoauth.GrantStore]

// upstreamStore returns the model as an UpstreamTokenStore, or skips the
// test.
var upstreamStore = capability[mcpoauth.UpstreamTokenStore]

// grant returns a fully populated grant record of clientID and userID, with
// a fresh ID, an upstream identity whose claims hold a value of each JSON
// type, and an end 30 days away.
func (k *kit) grant(clientID, userID string) *mcpoauth.Grant {
	return &mcpoauth.Grant{
		ID:        newGrantID(),
		ClientID:  clientID,
		UserID:    userID,
		Scopes:    []string{"mcp:tools", "read"},
		Resource:  "https://mcp.example.com/mcp",
		CreatedAt: k.now,
		ExpiresAt: k.now.Add(30 * 24 * time.Hour),
		Identity: &mcpoauth.Identity{
			Issuer:  "https://idp.example.com",
			Subject: "sub-\u00e9-" + userID,
			Email:   userID + "@example.com",
			Name:    "Zo\u00eb \U0001F600",
			// The values json.Unmarshal makes of JSON: a store that keeps
			// claims as JSON must give back these types.
			Claims: map[string]any{
				"string": "v\u00e9",
				"number": float64(42.5),
				"int":    float64(7),
				"bool":   true,
				"false":  false,
				"list":   []any{"a", float64(1), true},
				"nested": map[string]any{"k": "v"},
			},
		},
	}
}

// upstreamToken returns a vault entry bound to grantID and clientID (both
// may be empty: a sign-in session's entry) with a fresh ID, sealed bytes of
// every value, version 1, a lease and an end 30 days away.
func (k *kit) upstreamToken(grantID, clientID string) *mcpoauth.UpstreamToken {
	d := newDigest()
	sealed := make([]byte, 0, 256+len(d))
	for b := range 256 {
		sealed = append(sealed, byte(b))
	}
	sealed = append(sealed, d[:]...)
	return &mcpoauth.UpstreamToken{
		ID:         "vault-" + d.String()[:16],
		GrantID:    grantID,
		ClientID:   clientID,
		Sealed:     sealed,
		Version:    1,
		LeaseUntil: k.now.Add(time.Minute),
		ExpiresAt:  k.now.Add(30 * 24 * time.Hour),
	}
}

// copyGrant returns a deep copy of g, to compare what is read back with.
func copyGrant(g *mcpoauth.Grant) mcpoauth.Grant {
	out := *g
	out.Scopes = slices.Clone(g.Scopes)
	if g.Identity != nil {
		id := *g.Identity
		id.Claims = deepCopyJSON(g.Identity.Claims).(map[string]any)
		out.Identity = &id
	}
	return out
}

// deepCopyJSON copies a JSON value as json.Unmarshal makes them.
func deepCopyJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopyJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopyJSON(e)
		}
		return out
	}
	return v
}

// copyUpstreamToken returns a deep copy of t.
func copyUpstreamToken(t *mcpoauth.UpstreamToken) mcpoauth.UpstreamToken {
	out := *t
	out.Sealed = slices.Clone(t.Sealed)
	return out
}

// saveGrant stores g, which must be accepted, and returns a copy taken
// before the save.
func (k *kit) saveGrant(t *testing.T, s mcpoauth.GrantStore, g *mcpoauth.Grant) mcpoauth.Grant {
	t.Helper()
	want := copyGrant(g)
	noError(t, s.SaveGrant(k.ctx, g), "SaveGrant")
	return want
}

// saveUpstreamToken stores e, which must be accepted, and returns a copy
// taken before the save.
func (k *kit) saveUpstreamToken(t *testing.T, s mcpoauth.UpstreamTokenStore, e *mcpoauth.UpstreamToken) mcpoauth.UpstreamToken {
	t.Helper()
	want := copyUpstreamToken(e)
	noError(t, s.SaveUpstreamToken(k.ctx, e), "SaveUpstreamToken")
	return want
}

// requireGrant asserts GetGrant returns a grant equal to want.
func (k *kit) requireGrant(t *testing.T, s mcpoauth.GrantStore, want mcpoauth.Grant) {
	t.Helper()
	requireFound(t, k.ctx, "GetGrant of a stored grant", s.GetGrant, want.ID, want)
}

// requireNoGrant asserts GetGrant answers ErrNotFound for each ID.
func (k *kit) requireNoGrant(t *testing.T, s mcpoauth.GrantStore, ids ...string) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetGrant of a grant", s.GetGrant, ids...)
}

// requireUserGrants asserts ListUserGrants returns exactly want, in any
// order.
func (k *kit) requireUserGrants(t *testing.T, s mcpoauth.GrantStore, userID string, want ...mcpoauth.Grant) {
	t.Helper()
	k.requireGrantList(t, "ListUserGrants", s.ListUserGrants, userID, want)
}

// requireClientGrants asserts ListClientGrants returns exactly want, in
// any order.
func (k *kit) requireClientGrants(t *testing.T, s mcpoauth.GrantStore, clientID string, want ...mcpoauth.Grant) {
	t.Helper()
	k.requireGrantList(t, "ListClientGrants", s.ListClientGrants, clientID, want)
}

// requireGrantList asserts that the listing list (a method of GrantStore,
// named name) of id is exactly want, in any order.
func (k *kit) requireGrantList(t *testing.T, name string, list func(context.Context, string) ([]*mcpoauth.Grant, error), id string, want []mcpoauth.Grant) {
	t.Helper()
	call := fmt.Sprintf("%s(%q)", name, id)
	listed, err := list(k.ctx, id)
	noError(t, err, "%s", call)
	got := make(map[string]*mcpoauth.Grant, len(listed))
	for _, g := range listed {
		notNil(t, g, "a grant %s returned", call)
		if got[g.ID] != nil {
			t.Fatalf("%s returned grant %q twice", call, g.ID)
		}
		got[g.ID] = g
	}
	for _, w := range want {
		g := got[w.ID]
		if g == nil {
			t.Fatalf("%s lacks grant %q of user %q, client %q", call, w.ID, w.UserID, w.ClientID)
		}
		requireReadBack(t, w, g)
		delete(got, w.ID)
	}
	for gid, g := range got {
		t.Fatalf("%s returned grant %q of user %q, client %q, which it must not", call, gid, g.UserID, g.ClientID)
	}
}

// requireUpstreamToken asserts GetUpstreamToken returns an entry equal to
// want.
func (k *kit) requireUpstreamToken(t *testing.T, s mcpoauth.UpstreamTokenStore, want mcpoauth.UpstreamToken) {
	t.Helper()
	requireFound(t, k.ctx, "GetUpstreamToken of a stored entry", s.GetUpstreamToken, want.ID, want)
}

// requireNoUpstreamToken asserts GetUpstreamToken answers ErrNotFound for
// each ID.
func (k *kit) requireNoUpstreamToken(t *testing.T, s mcpoauth.UpstreamTokenStore, ids ...string) {
	t.Helper()
	requireNotFound(t, k.ctx, "GetUpstreamToken of an entry", s.GetUpstreamToken, ids...)
}

var grantStoreClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		withIdentity := k.grant(clientA, "user-1")
		// An application that signs users in itself has no identity, and
		// a grant may have no scope.
		without := k.grant(clientA, "user-2")
		without.Identity, without.Scopes = nil, nil
		for _, g := range []*mcpoauth.Grant{withIdentity, without} {
			k.requireGrant(t, s, k.saveGrant(t, s, g))
		}
	}},
	{"IdentityClaimsRoundTrip", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		want := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		got, err := s.GetGrant(k.ctx, want.ID)
		noError(t, err)
		notNil(t, got.Identity, "the identity read back")
		// Claims are compared value by value, so that a number that comes
		// back as json.Number or int, or a list as []string, is named.
		for name, w := range want.Identity.Claims {
			g, ok := got.Identity.Claims[name]
			if !ok {
				t.Fatalf("claim %q: missing", name)
			}
			if fmt.Sprintf("%T", g) != fmt.Sprintf("%T", w) {
				t.Fatalf("claim %q: got a %T, want a %T (the type json.Unmarshal makes)", name, g, w)
			}
		}
		requireReadBack(t, want, got)
	}},
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		k.saveGrant(t, s, k.grant(clientA, "user-1"))
		k.requireNoGrant(t, s, newGrantID(), "")
	}},
	{"DuplicateIDIsConflict", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		want := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		// Grants are immutable: a second save under the ID must not
		// replace the first, whoever it names.
		dup := k.grant(clientB, "user-2")
		dup.ID = want.ID
		errorIs(t, s.SaveGrant(k.ctx, dup), mcpoauth.ErrConflict)
		k.requireGrant(t, s, want)
		k.requireUserGrants(t, s, "user-2")
	}},
	{"ListUserGrantsIsTheUsersOnly", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		mine := []mcpoauth.Grant{
			k.saveGrant(t, s, k.grant(clientA, "user-1")),
			k.saveGrant(t, s, k.grant(clientA, "user-1")),
			k.saveGrant(t, s, k.grant(clientB, "user-1")),
		}
		theirs := k.saveGrant(t, s, k.grant(clientA, "user-2"))
		// Users are matched exactly, as client IDs are.
		caseVariant := k.saveGrant(t, s, k.grant(clientA, "USER-1"))
		k.requireUserGrants(t, s, "user-1", mine...)
		k.requireUserGrants(t, s, "user-2", theirs)
		k.requireUserGrants(t, s, "USER-1", caseVariant)
		k.requireUserGrants(t, s, "user-unknown")
		k.requireUserGrants(t, s, "")
	}},
	{"ListClientGrantsIsTheClientsOnly", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		ofA := []mcpoauth.Grant{
			k.saveGrant(t, s, k.grant(clientA, "user-1")),
			k.saveGrant(t, s, k.grant(clientA, "user-2")),
		}
		ofB := k.saveGrant(t, s, k.grant(clientB, "user-1"))
		k.requireClientGrants(t, s, clientA, ofA...)
		k.requireClientGrants(t, s, clientB, ofB)
		k.requireClientGrants(t, s, "client-unknown")
		k.requireClientGrants(t, s, "")
		noError(t, k.m.RevokeGrant(k.ctx, ofA[0].ID))
		k.requireClientGrants(t, s, clientA, ofA[1])
	}},
	{"RecordGrantUseNeverMovesBack", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		g := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		other := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		at := k.now.Add(time.Hour)
		noError(t, s.RecordGrantUse(k.ctx, g.ID, at), "first use")
		g.LastUsedAt = at
		k.requireGrant(t, s, g)
		noError(t, s.RecordGrantUse(k.ctx, g.ID, at.Add(-time.Minute)), "an older use")
		k.requireGrant(t, s, g)
		noError(t, s.RecordGrantUse(k.ctx, g.ID, at.Add(time.Minute)), "a later use")
		g.LastUsedAt = at.Add(time.Minute)
		k.requireGrant(t, s, g)
		k.requireGrant(t, s, other) // untouched
		k.requireUserGrants(t, s, "user-1", g, other)
		errorIs(t, s.RecordGrantUse(k.ctx, newGrantID(), at), mcpoauth.ErrNotFound, "an unknown grant")
		noError(t, k.m.RevokeGrant(k.ctx, g.ID))
		errorIs(t, s.RecordGrantUse(k.ctx, g.ID, at.Add(time.Hour)), mcpoauth.ErrNotFound, "a revoked grant")
		k.requireNoGrant(t, s, g.ID)
	}},
	{"ConcurrentRecordGrantUsesAllLand", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		// Uses of one grant recorded at once (refreshes on several
		// replicas) all succeed, and the latest is the one kept: none
		// fails for meeting another, none writes an older time back.
		for range ConcurrencyRounds {
			g := k.saveGrant(t, s, k.grant(clientA, "user-1"))
			errs := together.Run(Concurrency, func(i int) error {
				return s.RecordGrantUse(k.ctx, g.ID, k.now.Add(time.Duration(i+1)*time.Second))
			})
			for i, err := range errs {
				noError(t, err, "RecordGrantUse %d of %d concurrent ones", i+1, Concurrency)
			}
			g.LastUsedAt = k.now.Add(Concurrency * time.Second)
			k.requireGrant(t, s, g)
		}
	}},
	{"RecordGrantUseRacesRevokeGrant", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		// A use recorded as the grant is revoked lands before the
		// revocation (and goes with the grant) or answers ErrNotFound
		// after it; it never brings the grant back.
		k.raceRevokeGrant(t, func(id string) (func() error, func(t *testing.T)) {
			g := k.grant(clientA, "user-1")
			g.ID = id
			k.saveGrant(t, s, g)
			return func() error { return s.RecordGrantUse(k.ctx, id, k.now.Add(time.Minute)) },
				func(t *testing.T) { t.Helper(); k.requireNoGrant(t, s, id) }
		})
		k.requireUserGrants(t, s, "user-1")
	}},
	{"RevokeGrantDeletesIt", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		gone := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		stays := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		noError(t, k.m.RevokeGrant(k.ctx, gone.ID))
		k.requireNoGrant(t, s, gone.ID)
		k.requireGrant(t, s, stays)
		k.requireUserGrants(t, s, "user-1", stays)
	}},
	{"SaveOfEmptyIDIsRefused", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		// An empty ID names no grant (RevokeGrant of "" matches nothing,
		// so such a grant could never be revoked): the save is refused
		// with an error that is no sentinel, and stores nothing.
		g := k.grant(clientA, "user-1")
		g.ID = ""
		requireRefused(t, s.SaveGrant(k.ctx, g), "SaveGrant of a grant with an empty ID")
		k.requireNoGrant(t, s, "")
		k.requireUserGrants(t, s, "user-1")
		k.requireClientGrants(t, s, clientA)
	}},
	{"SaveOfRevokedGrantIsNotFound", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		// A grant revoked after it issued tokens, and one revoked before
		// its record was saved (an approval racing a revocation).
		used := k.grant(clientA, "user-1")
		k.liveGrant(t, clientA, used.ID)
		unused := k.grant(clientA, "user-1")
		for _, g := range []*mcpoauth.Grant{used, unused} {
			noError(t, k.m.RevokeGrant(k.ctx, g.ID))
			errorIs(t, s.SaveGrant(k.ctx, g), mcpoauth.ErrNotFound, "SaveGrant of a revoked grant")
			k.requireNoGrant(t, s, g.ID)
		}
		k.requireUserGrants(t, s, "user-1")
	}},
	{"RacesRevokeGrant", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		k.raceRevokeGrant(t, func(id string) (func() error, func(t *testing.T)) {
			g := k.grant(clientA, "user-1")
			g.ID = id
			return func() error { return s.SaveGrant(k.ctx, g) },
				func(t *testing.T) { t.Helper(); k.requireNoGrant(t, s, id) }
		})
		k.requireUserGrants(t, s, "user-1")
	}},
	{"DeleteClientDeletesItsGrants", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		s := grantStore(t, k)
		noError(t, r.RegisterClient(k.ctx, confidentialClient(k, clientA)))
		noError(t, r.RegisterClient(k.ctx, publicClient(clientB)))
		gone := []mcpoauth.Grant{k.saveGrant(t, s, k.grant(clientA, "user-1")), k.saveGrant(t, s, k.grant(clientA, "user-2"))}
		stays := k.saveGrant(t, s, k.grant(clientB, "user-1"))
		noError(t, r.DeleteClient(k.ctx, clientA))
		k.requireNoGrant(t, s, gone[0].ID, gone[1].ID)
		k.requireGrant(t, s, stays)
		k.requireUserGrants(t, s, "user-1", stays)
		k.requireUserGrants(t, s, "user-2")
	}},
	{"DeleteIdleClientsDeletesTheirGrants", func(t *testing.T, k *kit) {
		r, u := usageRecorder(t, k)
		s := grantStore(t, k)
		idleSince := k.idleSince()
		noError(t, r.RegisterClient(k.ctx, dynamicClient(clientA, idleSince.Add(-time.Hour))))
		noError(t, r.RegisterClient(k.ctx, dynamicClient(clientB, k.now)))
		gone := k.saveGrant(t, s, k.grant(clientA, "user-1"))
		stays := k.saveGrant(t, s, k.grant(clientB, "user-1"))
		n, err := u.DeleteIdleClients(k.ctx, idleSince)
		noError(t, err)
		equal(t, 1, n, "clients deleted")
		k.requireNoGrant(t, s, gone.ID)
		k.requireGrant(t, s, stays)
	}},
	{"RevokeUnderConcurrentRefreshesLeavesNothing", func(t *testing.T, k *kit) {
		s := grantStore(t, k)
		for range ConcurrencyRounds {
			k.revokeUnderRefreshes(t, s)
		}
	}},
}

// refreshers is how many goroutines rotate one grant's refresh token while
// RevokeGrant runs, and refreshRounds how many rotations each attempts.
const (
	refreshers    = 4
	refreshRounds = 20
)

// revokeUnderRefreshes revokes a grant while refreshers goroutines rotate
// its refresh token (each rotating the newest it knows of, as clients that
// share a token would), then asserts that nothing of the grant survived:
// no grant record, no token, not even one a rotation saved as the
// revocation ran.
func (k *kit) revokeUnderRefreshes(t *testing.T, s mcpoauth.GrantStore) {
	t.Helper()
	g := k.saveGrant(t, s, k.grant(clientA, "user-1"))
	first := k.tokens(clientA, g.ID)
	k.saveTokens(t, first...)

	var (
		mu      sync.Mutex
		current = first[1].Digest
		all     = slices.Clone(first) // every token saved or offered
	)
	// rotated is closed after the first successful rotation, or once every
	// refresher gave up, so that the revocation lands mid-stream.
	rotated := make(chan struct{})
	var once sync.Once
	signal := func() { once.Do(func() { close(rotated) }) }
	var errMu sync.Mutex
	var unexpected []error

	errs := together.Run(refreshers+1, func(i int) error {
		if i == refreshers {
			<-rotated
			return k.m.RevokeGrant(k.ctx, g.ID)
		}
		defer signal()
		for range refreshRounds {
			issued := k.tokens(clientA, g.ID)
			mu.Lock()
			old := current
			all = append(all, issued...)
			mu.Unlock()
			err := k.m.RotateRefreshToken(k.ctx, old, clientA, k.now, time.Time{}, issued...)
			switch {
			case err == nil:
				mu.Lock()
				if current == old {
					current = issued[1].Digest
				}
				mu.Unlock()
				signal()
			case errors.Is(err, mcpoauth.ErrAlreadyUsed), errors.Is(err, mcpoauth.ErrNotFound):
				// Another refresher won, or the grant is gone.
			default:
				errMu.Lock()
				unexpected = append(unexpected, err)
				errMu.Unlock()
			}
		}
		return nil
	})
	noError(t, errs[refreshers], "RevokeGrant")
	for _, err := range unexpected {
		noError(t, err, "RotateRefreshToken racing RevokeGrant")
	}
	k.requireNoGrant(t, s, g.ID)
	k.requireNoToken(t, digests(all)...)
	k.requireUserGrants(t, s, "user-1")
}

var upstreamTokenStoreClauses = []clause{
	{"RoundTrip", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		// A sign-in session's entry, bound to nothing, and a grant's.
		session := k.upstreamToken("", "")
		session.LeaseUntil = time.Time{}
		for _, e := range []*mcpoauth.UpstreamToken{session, k.upstreamToken(newGrantID(), clientA)} {
			k.requireUpstreamToken(t, s, k.saveUpstreamToken(t, s, e))
		}
	}},
	{"SealedBytesAreKeptAsTheyAre", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		e := k.upstreamToken(newGrantID(), clientA)
		want := k.saveUpstreamToken(t, s, e)
		got, err := s.GetUpstreamToken(k.ctx, want.ID)
		noError(t, err)
		notNil(t, got)
		if string(got.Sealed) != string(want.Sealed) {
			t.Fatalf("the sealed bytes read back differ from those saved:\n\tgot:  %x\n\twant: %x", got.Sealed, want.Sealed)
		}
	}},
	{"UnknownIsNotFound", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		stored := k.saveUpstreamToken(t, s, k.upstreamToken("", ""))
		for _, id := range []string{"vault-unknown", "", strings.ToUpper(stored.ID)} {
			k.requireNoUpstreamToken(t, s, id)
			got, err := s.ConsumeUpstreamToken(k.ctx, id)
			errorIs(t, err, mcpoauth.ErrNotFound, "ConsumeUpstreamToken of %q", id)
			isNil(t, got)
		}
		k.requireUpstreamToken(t, s, stored)
	}},
	{"DuplicateIDIsConflict", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		want := k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientA))
		dup := k.upstreamToken(newGrantID(), clientB)
		dup.ID = want.ID
		errorIs(t, s.SaveUpstreamToken(k.ctx, dup), mcpoauth.ErrConflict)
		k.requireUpstreamToken(t, s, want)
	}},
	{"SaveOfEmptyIDIsRefused", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		// An empty ID names no entry: a session's entry and a grant's
		// are refused with an error that is no sentinel, and nothing is
		// stored.
		for _, e := range []*mcpoauth.UpstreamToken{k.upstreamToken("", ""), k.upstreamToken(newGrantID(), clientA)} {
			e.ID = ""
			requireRefused(t, s.SaveUpstreamToken(k.ctx, e), "SaveUpstreamToken of an entry with an empty ID (grant %q)", e.GrantID)
			k.requireNoUpstreamToken(t, s, "")
		}
	}},
	{"SaveForRevokedGrantIsNotFound", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		used, unused := newGrantID(), newGrantID()
		k.liveGrant(t, clientA, used)
		for _, g := range []string{used, unused} {
			noError(t, k.m.RevokeGrant(k.ctx, g))
			e := k.upstreamToken(g, clientA)
			errorIs(t, s.SaveUpstreamToken(k.ctx, e), mcpoauth.ErrNotFound, "SaveUpstreamToken of a revoked grant")
			k.requireNoUpstreamToken(t, s, e.ID)
		}
	}},
	{"SaveRacesRevokeGrant", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			e := k.upstreamToken(g, clientA)
			return func() error { return s.SaveUpstreamToken(k.ctx, e) },
				func(t *testing.T) { t.Helper(); k.requireNoUpstreamToken(t, s, e.ID) }
		})
	}},
	{"RevokeGrantDeletesItsEntriesOnly", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		revoked, kept := newGrantID(), newGrantID()
		gone := []mcpoauth.UpstreamToken{
			k.saveUpstreamToken(t, s, k.upstreamToken(revoked, clientA)),
			k.saveUpstreamToken(t, s, k.upstreamToken(revoked, clientA)),
		}
		stays := []mcpoauth.UpstreamToken{
			k.saveUpstreamToken(t, s, k.upstreamToken(kept, clientA)),
			k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientB)),
			k.saveUpstreamToken(t, s, k.upstreamToken("", "")),
		}
		noError(t, k.m.RevokeGrant(k.ctx, revoked))
		k.requireNoUpstreamToken(t, s, gone[0].ID, gone[1].ID)
		for _, e := range stays {
			k.requireUpstreamToken(t, s, e)
		}
		// An empty grant ID matches nothing, not the unbound entry.
		noError(t, k.m.RevokeGrant(k.ctx, ""))
		k.requireUpstreamToken(t, s, stays[2])
	}},
	{"DeleteClientDeletesItsEntriesOnly", func(t *testing.T, k *kit) {
		r := registrar(t, k)
		s := upstreamStore(t, k)
		noError(t, r.RegisterClient(k.ctx, confidentialClient(k, clientA)))
		noError(t, r.RegisterClient(k.ctx, publicClient(clientB)))
		gone := []mcpoauth.UpstreamToken{
			k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientA)),
			k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientA)),
		}
		stays := []mcpoauth.UpstreamToken{
			k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientB)),
			k.saveUpstreamToken(t, s, k.upstreamToken("", "")),
		}
		noError(t, r.DeleteClient(k.ctx, clientA))
		k.requireNoUpstreamToken(t, s, gone[0].ID, gone[1].ID)
		for _, e := range stays {
			k.requireUpstreamToken(t, s, e)
		}
	}},
	{"ReplaceSucceedsAtTheStoredVersion", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		// A session's entry is bound to a grant by a replacement.
		old := k.saveUpstreamToken(t, s, k.upstreamToken("", ""))
		next := k.upstreamToken(newGrantID(), clientA)
		next.ID, next.Version, next.LeaseUntil = old.ID, old.Version+1, time.Time{}
		want := copyUpstreamToken(next)
		noError(t, s.ReplaceUpstreamToken(k.ctx, next, old.Version))
		k.requireUpstreamToken(t, s, want)
	}},
	{"ReplaceBindingARevokedGrantIsNotFound", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		// A replacement that binds an entry to a revoked grant is a save
		// of that grant's entry, refused as SaveUpstreamToken refuses
		// one, whatever version it expects, and changes nothing.
		old := k.saveUpstreamToken(t, s, k.upstreamToken("", ""))
		used, unused := newGrantID(), newGrantID()
		k.liveGrant(t, clientA, used)
		for _, g := range []string{used, unused} {
			noError(t, k.m.RevokeGrant(k.ctx, g))
			for _, version := range []int64{old.Version, old.Version + 1} {
				next := k.upstreamToken(g, clientA)
				next.ID, next.Version = old.ID, version+1
				errorIs(t, s.ReplaceUpstreamToken(k.ctx, next, version), mcpoauth.ErrNotFound,
					"ReplaceUpstreamToken binding a revoked grant, expecting version %d (stored: %d)", version, old.Version)
				k.requireUpstreamToken(t, s, old)
			}
		}
	}},
	{"ReplaceRacesRevokeGrant", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		// A replacement that binds a session's entry to a grant as the
		// grant is revoked lands before the revocation (and the entry
		// goes with the grant) or is refused after it (and the entry is
		// left as it was); it never leaves an entry of a revoked grant.
		k.raceRevokeGrant(t, func(g string) (func() error, func(t *testing.T)) {
			old := k.saveUpstreamToken(t, s, k.upstreamToken("", ""))
			next := k.upstreamToken(g, clientA)
			next.ID, next.Version = old.ID, old.Version+1
			var replaced error
			return func() error {
					replaced = s.ReplaceUpstreamToken(k.ctx, next, old.Version)
					return replaced
				}, func(t *testing.T) {
					t.Helper()
					if replaced == nil {
						k.requireNoUpstreamToken(t, s, old.ID)
						return
					}
					k.requireUpstreamToken(t, s, old)
				}
		})
	}},
	{"ReplaceAtAnotherVersionIsConflict", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		e := k.upstreamToken(newGrantID(), clientA)
		e.Version = 5
		want := k.saveUpstreamToken(t, s, e)
		for _, version := range []int64{4, 6, 0, -5} {
			next := k.upstreamToken(want.GrantID, clientA)
			next.ID, next.Version = want.ID, version+1
			errorIs(t, s.ReplaceUpstreamToken(k.ctx, next, version), mcpoauth.ErrConflict, "version %d", version)
			k.requireUpstreamToken(t, s, want)
		}
	}},
	{"ReplaceOfUnknownIsNotFound", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		e := k.upstreamToken(newGrantID(), clientA)
		errorIs(t, s.ReplaceUpstreamToken(k.ctx, e, e.Version), mcpoauth.ErrNotFound)
		// A replacement is not an upsert.
		k.requireNoUpstreamToken(t, s, e.ID)
	}},
	{"ConcurrentReplacesOneWins", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		for range ConcurrencyRounds {
			old := k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientA))
			next := make([]*mcpoauth.UpstreamToken, replaceConcurrency)
			want := make([]mcpoauth.UpstreamToken, replaceConcurrency)
			for i := range next {
				next[i] = k.upstreamToken(old.GrantID, clientA)
				next[i].ID, next[i].Version = old.ID, old.Version+1
				want[i] = copyUpstreamToken(next[i])
			}
			errs := together.Run(replaceConcurrency, func(i int) error {
				return s.ReplaceUpstreamToken(k.ctx, next[i], old.Version)
			})
			winner := requireOneWinner(t, errs, mcpoauth.ErrConflict)
			k.requireUpstreamToken(t, s, want[winner])
		}
	}},
	{"ConsumeRemovesTheEntry", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		want := k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientA))
		stays := k.saveUpstreamToken(t, s, k.upstreamToken(want.GrantID, clientA))
		got, err := s.ConsumeUpstreamToken(k.ctx, want.ID)
		noError(t, err)
		requireReadBack(t, want, got)
		k.requireNoUpstreamToken(t, s, want.ID)
		got, err = s.ConsumeUpstreamToken(k.ctx, want.ID)
		errorIs(t, err, mcpoauth.ErrNotFound, "second ConsumeUpstreamToken")
		isNil(t, got)
		k.requireUpstreamToken(t, s, stays)
	}},
	{"ConcurrentConsumesOneWins", func(t *testing.T, k *kit) {
		s := upstreamStore(t, k)
		for range ConcurrencyRounds {
			want := k.saveUpstreamToken(t, s, k.upstreamToken(newGrantID(), clientA))
			got := make([]*mcpoauth.UpstreamToken, Concurrency)
			errs := together.Run(Concurrency, func(i int) error {
				var err error
				got[i], err = s.ConsumeUpstreamToken(k.ctx, want.ID)
				return err
			})
			winner := requireOneWinner(t, errs, mcpoauth.ErrNotFound)
			requireReadBack(t, want, got[winner])
			k.requireNoUpstreamToken(t, s, want.ID)
		}
	}},
}

// replaceConcurrency is how many replacements of one vault entry race, all
// expecting the same version: replicas refreshing the same upstream tokens.
const replaceConcurrency = 16
