package grants

import (
	"context"
	"slices"
	"time"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// RefreshRequest is a token request with grant_type=refresh_token from an
// authenticated client.
type RefreshRequest struct {
	Client       *record.Client
	RefreshToken string
	Scope        string
	Resource     string
	// JKT is the thumbprint of the DPoP key the request proved, "" for
	// none. A bound refresh token needs a proof of its key; the new
	// access token is bound to the proved key (RFC 9449 §5).
	JKT string
}

// errRefreshNotRegistered: the client registered no refresh grant, and the
// token is not of a grant that asked for offline_access.
var errRefreshNotRegistered = oautherr.UnauthorizedClient("client is not registered for this grant_type")

// Refresh rotates a refresh token (OAuth 2.1 §4.3). Every check runs before
// the rotation, so a client mistake burns nothing; a rotated token
// presented again revokes the whole grant (OAuth 2.1 §4.3.1, RFC 9700
// §4.14.2), unless the same client presents it within the reuse interval:
// two tabs or processes refreshing at once both get a new pair, and nothing
// is revoked. The new refresh token keeps the grant's scope, the new
// access token may narrow it, and no token outlives the grant's absolute
// lifetime.
func (s *Service) Refresh(ctx context.Context, x RefreshRequest) (*TokenResponse, *oautherr.Error) {
	if x.RefreshToken == "" {
		return nil, oautherr.InvalidRequest("refresh_token is required")
	}
	digest := secret.Digest(x.RefreshToken)
	old, err := s.Store.GetToken(ctx, digest)
	if err != nil && !isNotFound(err) {
		return nil, storeError(err)
	}
	mine := err == nil && old.Kind == record.RefreshToken && old.ClientID == x.Client.ID
	if !x.Client.HasGrantType(RefreshToken) && !(mine && slices.Contains(old.Scopes, OfflineAccess)) {
		// Only a grant that asked for offline_access lets a client that
		// did not register the refresh grant use it.
		return nil, errRefreshNotRegistered
	}
	if !mine {
		// OAuth 2.1 §4.3.1: the token is bound to the client it was issued to.
		return nil, oautherr.InvalidGrant("invalid refresh token")
	}
	now := s.Now()
	var reuseSince time.Time
	if s.RefreshTokenReuseInterval > 0 {
		reuseSince = now.Add(-s.RefreshTokenReuseInterval)
	}
	if old.Rotated() && (reuseSince.IsZero() || old.RotatedAt.Before(reuseSince)) {
		// OAuth 2.1 §4.3.1, RFC 9700 §4.14.2: a rotated token presented
		// again, after the reuse interval, is a replay.
		return nil, s.replayed(ctx, RefreshToken, old.ClientID, old.UserID, old.GrantID, "refresh token already used")
	}
	if !now.Before(old.ExpiresAt) || !old.GrantExpiresAt.IsZero() && !now.Before(old.GrantExpiresAt) {
		return nil, oautherr.InvalidGrant("refresh token expired")
	}
	scopes := old.Scopes
	if x.Scope != "" {
		requested, ok := ParseScope(x.Scope)
		if !ok {
			return nil, oautherr.InvalidScope("malformed scope")
		}
		for _, sc := range requested {
			if !bearer.HasScope(old.Scopes, sc, s.ImpliedScopes) {
				// OAuth 2.1 §4.3.1: the scope may only narrow; a scope
				// implied by a granted one is within the grant.
				return nil, oautherr.InvalidScope("requested scope exceeds the grant")
			}
		}
		scopes = requested
	}
	if oerr := checkBoundResource(x.Resource, old.Resource); oerr != nil {
		return nil, oerr
	}
	switch {
	case old.JKT != "" && x.JKT == "":
		// RFC 9449 §5: a bound refresh token is used only with a proof
		// of its key; checked before the rotation, so it burns nothing.
		return nil, ErrDPoPProofRequired
	case old.JKT != "" && old.JKT != x.JKT:
		return nil, errWrongDPoPKey
	}
	access, oerr := s.mintBoundAccessToken(old.ClientID, old.UserID, old.GrantID, scopes, old.Resource, x.JKT, now, old.GrantExpiresAt)
	if oerr != nil {
		return nil, oerr
	}
	// OAuth 2.1 §4.3.3: a new refresh token carries the scope of the old one.
	refresh := s.mintToken(record.RefreshToken, old.ClientID, old.UserID, old.GrantID, old.Scopes, old.Resource, now, old.GrantExpiresAt)
	// The binding, or its absence, carries over: a thief of an unbound
	// token gains nothing by binding it to a key of his.
	refresh.record.JKT = old.JKT
	if err := s.Store.RotateRefreshToken(ctx, digest, x.Client.ID, now, reuseSince, access.record, refresh.record); err != nil {
		return nil, s.redemptionFailed(ctx, err, RefreshToken, old.ClientID, old.UserID, old.GrantID, "refresh token already used", "invalid refresh token")
	}
	if oerr := s.redeemed(ctx, old.GrantID, x.Client, now); oerr != nil {
		return nil, oerr
	}
	resp := &TokenResponse{AccessToken: access.value, ExpiresIn: expiresIn(access.record.ExpiresAt, now), RefreshToken: refresh.value, Scopes: scopes, DPoP: x.JKT != ""}
	s.issued(ctx, audit.TokenRefreshed, RefreshToken, old.ClientID, old.UserID, old.GrantID, resp)
	return resp, nil
}
