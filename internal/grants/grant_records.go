package grants

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strings"
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

	// mu is read-locked on every verification of a user's token, written
	// only on a miss.
	mu sync.RWMutex
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
	c.mu.RLock()
	id, ok := c.m[grantID]
	c.mu.RUnlock()
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
//
// Only a client whose identity the redirect proves is remembered (RFC 8252
// §8.6, OAuth 2.1 §7.4.2 "client impersonation": a server should not
// process a request again without the user for a client whose identity it
// cannot assure): a confidential client, whose code is useless without its
// credentials, or a public client whose every redirect URI is https, which
// only its owner's host receives. A public client with a loopback or
// private-use-scheme redirect URI asks every time: any local program can
// send the browser to /authorize with its client_id and a port of its own,
// and would otherwise get a code silently.
func (s *Service) Remembered(ctx context.Context, userID string, req *record.AuthorizationRequest, client *record.Client) (bool, error) {
	if s.Grants == nil || userID == "" || req.PromptConsent || !identifiedByRedirect(client) {
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

// identifiedByRedirect reports whether a client's identity is assured
// enough for remembered consent: it authenticates, or all its redirect URIs
// are https URLs of a host other than loopback.
func identifiedByRedirect(c *record.Client) bool {
	if c == nil {
		return false
	}
	if !c.IsPublic() {
		return true
	}
	if len(c.Metadata.RedirectURIs) == 0 {
		return false
	}
	for _, raw := range c.Metadata.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || isLoopbackHost(u.Hostname()) {
			return false
		}
	}
	return true
}

// isLoopbackHost reports whether host names the local machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
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
