package grants

import (
	"context"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/record"
	"github.com/mcpoauth/mcpoauth/internal/secret"
)

// Revoke revokes a token of the authenticated client (RFC 7009 §2.1). Both
// kinds are searched whatever the hint (the hint only speeds a lookup, and a
// digest finds either kind at once). Revoking a refresh token revokes its
// whole grant, access tokens included (RFC 7009 §2.1 SHOULD). An unknown
// token, or another client's, is not an error (RFC 7009 §2.2); a storage
// failure is, so the caller never claims a revocation that did not happen
// (peer lesson 2, fosite CVE-2020-15223).
func (s *Service) Revoke(ctx context.Context, client *record.Client, token string) *oautherr.Error {
	if token == "" {
		return oautherr.InvalidRequest("token is required")
	}
	tok, err := s.Store.RevokeToken(ctx, secret.Digest(token), client.ID)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return storeError(err)
	}
	if tok.Kind == record.RefreshToken {
		if err := s.Store.RevokeGrant(ctx, tok.GrantID); err != nil {
			return storeError(err)
		}
	}
	return nil
}
