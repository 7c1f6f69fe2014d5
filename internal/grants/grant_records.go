package grants

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// RecordGrant completes a grant an approval makes, before any code or token
// of it is issued: identify (the application's Config.OnApproval; nil for
// none) names the user's upstream identity, and the grant is saved when the
// store keeps grant records. A failure of either is a server_error: the
// approval is not completed, so nothing is issued for a grant whose record
// or identity is missing.
func (s *Service) RecordGrant(ctx context.Context, g *record.Grant, identify IdentifyFunc) *oautherr.Error {
	if oerr := s.identifyGrant(g, identify); oerr != nil {
		return oerr
	}
	return s.saveGrant(ctx, g)
}

// identifyGrant sets g.Identity from identify, if set.
func (s *Service) identifyGrant(g *record.Grant, identify IdentifyFunc) *oautherr.Error {
	if identify == nil {
		return nil
	}
	id, err := identify(g)
	if err != nil {
		return oautherr.ServerError(err)
	}
	g.Identity = id
	return nil
}

// saveGrant stores g when the store keeps grant records.
func (s *Service) saveGrant(ctx context.Context, g *record.Grant) *oautherr.Error {
	if s.Grants == nil {
		return nil
	}
	if err := s.Grants.SaveGrant(ctx, g); err != nil {
		return storeError(err)
	}
	return nil
}

// IdentityCache remembers the upstream identity of the grants whose tokens
// were verified, so that the bearer path reads a grant record once per
// replica rather than on every request. That is safe because a grant
// record never changes once saved: a revoked grant's entry may linger, but
// its tokens are refused before the cache is asked. It holds at most Max
// grants (default 10,000) and starts afresh when full.
type IdentityCache struct {
	Max int

	mu sync.Mutex
	m  map[string]*record.Identity
}

// lookup returns the identity of the grant, reading it from store on a
// miss. A grant not found is not remembered: its record may still be on
// its way (a device approval saves it before issuing tokens, but a
// replica's read may lag).
func (c *IdentityCache) lookup(ctx context.Context, store GrantStore, grantID string) (*record.Identity, error) {
	if store == nil || grantID == "" {
		return nil, nil
	}
	c.mu.Lock()
	id, ok := c.m[grantID]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	g, err := store.GetGrant(ctx, grantID)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	limit := c.Max
	if limit <= 0 {
		limit = 10_000
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= limit {
		c.m = make(map[string]*record.Identity)
	}
	c.m[grantID] = g.Identity
	c.mu.Unlock()
	return g.Identity, nil
}

// Remembered reports whether the user approved this client before for every
// scope of the request (or more) and the same resource, in a grant that is
// neither revoked nor expired: remembered consent. Approval is per client
// (MCP authorization, "Confused deputy": a proxy must obtain consent for
// each client), so another client's grant never counts; a request for a
// scope the grant lacks asks again. Without grant records nothing is
// remembered.
func (s *Service) Remembered(ctx context.Context, userID string, req *record.AuthorizationRequest) (bool, error) {
	if s.Grants == nil || userID == "" {
		return false, nil
	}
	list, err := s.Grants.ListUserGrants(ctx, userID)
	if err != nil {
		return false, err
	}
	now := s.Now()
	for _, g := range list {
		if g.UserID == userID && g.ClientID == req.ClientID && g.Resource == req.Resource &&
			now.Before(g.ExpiresAt) && containsAll(g.Scopes, req.Scopes) {
			return true, nil
		}
	}
	return false, nil
}

// containsAll reports whether every element of want is in have.
func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// recordGrantUse notes that tokens of the grant were issued at now
// (Grant.LastUsedAt, for a "connected apps" page), when the store keeps
// grant records. It writes on every issue (a code redeemed, a refresh, a
// device poll that succeeded), which is one write beside the issue's own,
// and never on the bearer path. A grant without a record (issued before
// grant records, or a client-credentials exchange) is no failure; any other
// is reported like a client's (UseNotRecorded) and does not fail the
// request: the tokens are issued already.
func (s *Service) recordGrantUse(ctx context.Context, grantID string, now time.Time) {
	if s.Grants == nil {
		return
	}
	if err := s.Grants.RecordGrantUse(ctx, grantID, now); err != nil && !isNotFound(err) && s.UseNotRecorded != nil {
		s.UseNotRecorded(ctx, err)
	}
}
