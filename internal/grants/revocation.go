package grants

import (
	"context"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// Revoke revokes a token of the authenticated client (RFC 7009 §2.1). Both
// kinds are searched whatever the hint (the hint only speeds a lookup, and a
// digest finds either kind at once). Revoking a refresh token revokes its
// whole grant, access tokens included (RFC 7009 §2.1 SHOULD). An unknown
// token, or another client's, is not an error (RFC 7009 §2.2); a storage
// failure is, so the caller never claims a revocation that did not happen
// (fosite CVE-2020-15223).
func (s *Service) Revoke(ctx context.Context, client *record.Client, token string) *oautherr.Error {
	if token == "" {
		return oautherr.InvalidRequest("token is required")
	}
	digest := secret.Digest(token)
	tok, err := s.Store.GetToken(ctx, digest)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return storeError(err)
	case tok.ClientID != client.ID:
		// RFC 7009 §2.1: only the client the token was issued to may
		// revoke it; anyone else learns nothing.
		return nil
	}
	if tok.Kind == record.RefreshToken {
		// Revoking the grant deletes the refresh token with everything
		// else; if it fails, the token is still there for the client's
		// retry, which then revokes everything (never a false 200).
		if err := s.Store.RevokeGrant(ctx, tok.GrantID); err != nil {
			return storeError(err)
		}
		s.Telemetry.Emit(ctx, audit.Event{Type: audit.GrantRevoked, ClientID: tok.ClientID, UserID: tok.UserID, GrantID: tok.GrantID})
		return nil
	}
	if _, err := s.Store.RevokeToken(ctx, digest, client.ID); err != nil && !isNotFound(err) {
		return storeError(err)
	}
	s.Telemetry.Emit(ctx, audit.Event{Type: audit.TokenRevoked, ClientID: tok.ClientID, UserID: tok.UserID, GrantID: tok.GrantID})
	return nil
}
