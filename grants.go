package mcpoauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mcpoauth/mcpoauth/audit"
)

// Grant management: what a "connected apps" page and an operator need to
// answer "which apps can act for alice?" and to take that back. Grants are
// records only with a Model that is a GrantStore (MemoryModel and
// postgres.Model are); the server saves one when a user approves a client on
// the consent page or the device page. A client-credentials exchange is a
// client acting for itself, with no user to list it for: it makes no grant
// record (DeleteClient ends its tokens).

// ErrNoGrantRecords is returned by the grant management methods when the
// Model is not a GrantStore.
var ErrNoGrantRecords = errors.New("mcpoauth: the Model keeps no grant records (GrantStore)")

// grantStore returns the Model as a GrantStore, or ErrNoGrantRecords.
func (s *OAuthServer) grantStore() (GrantStore, error) {
	if gs, ok := s.cfg.Model.(GrantStore); ok {
		return gs, nil
	}
	return nil, ErrNoGrantRecords
}

// UserGrants returns the user's grants that have not expired, the most
// recently created first: the apps that can act for the user. Each names
// its client (whose name the client asserted itself), scopes, resource,
// creation and last use (LastUsedAt: when it last issued tokens).
func (s *OAuthServer) UserGrants(ctx context.Context, userID string) ([]*Grant, error) {
	list, err := s.storedGrants(ctx, GrantStore.ListUserGrants, userID, "list user grants")
	if err != nil {
		return nil, err
	}
	return s.live(list), nil
}

// ClientGrants returns the client's grants that have not expired, the most
// recently created first.
func (s *OAuthServer) ClientGrants(ctx context.Context, clientID string) ([]*Grant, error) {
	list, err := s.storedGrants(ctx, GrantStore.ListClientGrants, clientID, "list client grants")
	if err != nil {
		return nil, err
	}
	return s.live(list), nil
}

// storedGrants asks the GrantStore's list method (ListUserGrants or
// ListClientGrants) for the grants of id; op names the caller's operation
// in a store error.
func (s *OAuthServer) storedGrants(ctx context.Context, list func(GrantStore, context.Context, string) ([]*Grant, error), id, op string) ([]*Grant, error) {
	gs, err := s.grantStore()
	if err != nil {
		return nil, err
	}
	grants, err := list(gs, ctx, id)
	if err != nil {
		return nil, fmt.Errorf("mcpoauth: %s: %w", op, err)
	}
	return grants, nil
}

// live drops the expired grants of list and sorts the rest newest first.
func (s *OAuthServer) live(list []*Grant) []*Grant {
	now := s.cfg.Now()
	out := slices.DeleteFunc(slices.Clone(list), func(g *Grant) bool { return !now.Before(g.ExpiresAt) })
	slices.SortFunc(out, func(a, b *Grant) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Grant returns one grant by id; an error wrapping ErrNotFound if it is
// unknown, revoked or expired.
func (s *OAuthServer) Grant(ctx context.Context, grantID string) (*Grant, error) {
	gs, err := s.grantStore()
	if err != nil {
		return nil, err
	}
	g, err := gs.GetGrant(ctx, grantID)
	if err != nil {
		return nil, fmt.Errorf("mcpoauth: get grant: %w", err)
	}
	if !s.cfg.Now().Before(g.ExpiresAt) {
		return nil, fmt.Errorf("mcpoauth: get grant: expired: %w", ErrNotFound)
	}
	return g, nil
}

// RevokeGrant ends a grant: every token and code of it, its record and its
// upstream token vault entries, at once (Model.RevokeGrant). A refresh that
// races it issues nothing that survives. Revoking an unknown grant is no
// error. It works with any Model, grant records or not.
func (s *OAuthServer) RevokeGrant(ctx context.Context, grantID string) error {
	if grantID == "" {
		return nil
	}
	if err := s.cfg.Model.RevokeGrant(ctx, grantID); err != nil {
		return fmt.Errorf("mcpoauth: revoke grant: %w", err)
	}
	s.telemetry.Emit(ctx, audit.Event{Type: audit.GrantRevoked, GrantID: grantID, Reason: "revoked_by_server"})
	return nil
}

// RevokeUserGrant revokes the grant only if it is the user's: the method
// for a user's own "connected apps" page, where the grant id comes from
// the browser and must not name another user's grant. An error wrapping
// ErrNotFound says it is not the user's (or is unknown).
func (s *OAuthServer) RevokeUserGrant(ctx context.Context, userID, grantID string) error {
	gs, err := s.grantStore()
	if err != nil {
		return err
	}
	g, err := gs.GetGrant(ctx, grantID)
	if err != nil {
		return fmt.Errorf("mcpoauth: revoke user grant: %w", err)
	}
	if g.UserID != userID || userID == "" {
		return fmt.Errorf("mcpoauth: revoke user grant: not the user's: %w", ErrNotFound)
	}
	if err := s.cfg.Model.RevokeGrant(ctx, grantID); err != nil {
		return fmt.Errorf("mcpoauth: revoke user grant: %w", err)
	}
	s.telemetry.Emit(ctx, audit.Event{Type: audit.GrantRevoked, ClientID: g.ClientID, UserID: g.UserID, GrantID: g.ID, Reason: "revoked_by_user"})
	return nil
}

// RevokeUserGrants revokes every grant of the user (a compromised account,
// a departing employee) and returns how many it revoked. Grants of the user
// made while it runs may survive it; call it again after blocking the
// user's sign-in.
func (s *OAuthServer) RevokeUserGrants(ctx context.Context, userID string) (int, error) {
	list, err := s.storedGrants(ctx, GrantStore.ListUserGrants, userID, "revoke user grants")
	if err != nil {
		return 0, err
	}
	return s.revokeAll(ctx, list, "revoked_user_grants")
}

// RevokeClientGrants revokes every grant users gave the client (a
// misbehaving app) without deleting the client, and returns how many it
// revoked. DeleteClient removes the client itself and everything it holds.
func (s *OAuthServer) RevokeClientGrants(ctx context.Context, clientID string) (int, error) {
	list, err := s.storedGrants(ctx, GrantStore.ListClientGrants, clientID, "revoke client grants")
	if err != nil {
		return 0, err
	}
	return s.revokeAll(ctx, list, "revoked_client_grants")
}

// revokeAll revokes each grant of list, stopping at the first failure.
func (s *OAuthServer) revokeAll(ctx context.Context, list []*Grant, reason string) (int, error) {
	n := 0
	for _, g := range list {
		if err := s.cfg.Model.RevokeGrant(ctx, g.ID); err != nil {
			return n, fmt.Errorf("mcpoauth: revoke grant: %w", err)
		}
		n++
		s.telemetry.Emit(ctx, audit.Event{Type: audit.GrantRevoked, ClientID: g.ClientID, UserID: g.UserID, GrantID: g.ID, Reason: reason})
	}
	return n, nil
}
