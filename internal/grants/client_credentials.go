package grants

import (
	"context"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// errClientGone answers a token request whose client was deleted (or swept
// as idle) while it was under way as an unknown client's is answered.
var errClientGone = oautherr.InvalidClient("client authentication failed")

// ClientCredentialsRequest is a token request with
// grant_type=client_credentials from an authenticated client.
type ClientCredentialsRequest struct {
	Client   *record.Client
	Scope    string
	Resource string
	// JKT binds the token to a DPoP key (RFC 9449 §5); "" for none.
	JKT string
}

// ClientCredentials issues an access token to a client acting on its own
// behalf (OAuth 2.1 §4.2), as the MCP extension
// io.modelcontextprotocol/oauth-client-credentials uses it for machine-to-
// machine access. The token has a fresh grant, no user and no refresh token;
// it is bound to the requested resource, or to the configured resource
// server when the request names none (the MCP Go SDK's client omits it).
func (s *Service) ClientCredentials(ctx context.Context, x ClientCredentialsRequest) (*TokenResponse, *oautherr.Error) {
	if !s.Enabled(ClientCredentials) || !x.Client.HasGrantType(ClientCredentials) {
		return nil, oautherr.UnauthorizedClient("client is not allowed the client_credentials grant")
	}
	if x.Client.IsPublic() {
		// OAuth 2.1 §4.2: only confidential clients may use this grant (a
		// public client proves nothing by presenting its client_id), and the
		// MCP extension requires client authentication.
		return nil, oautherr.UnauthorizedClient("client_credentials requires a confidential client")
	}
	scopes, oerr := s.ResolveScopes(x.Client, x.Scope)
	if oerr != nil {
		return nil, oerr
	}
	res, oerr := s.ResolveResource(x.Resource, false)
	if oerr != nil {
		return nil, oerr
	}
	now := s.Now()
	// OAuth 2.1 §4.2.2 / spec-checklist 118: no refresh token, and no user.
	access, oerr := s.mintBoundAccessToken(x.Client.ID, "", newGrantID(), scopes, res, x.JKT, now, now.Add(s.AccessTokenLifetime))
	if oerr != nil {
		return nil, oerr
	}
	if err := s.Store.SaveTokens(ctx, access.record); err != nil {
		return nil, storeError(err)
	}
	// A DeleteClient since the client authenticated did not remove this
	// token (no record it removed was consumed to issue it), so look again:
	// the ClientRegistrar contract orders the save and the delete so that
	// this look sees such a delete. The token is then never handed out; its
	// grant is revoked so that it does not linger until it expires.
	if _, err := s.Store.GetClient(ctx, x.Client.ID); err != nil {
		_ = s.Store.RevokeGrant(ctx, access.record.GrantID)
		if isNotFound(err) {
			return nil, errClientGone
		}
		return nil, storeError(err)
	}
	if oerr := s.recordUse(ctx, x.Client, now); oerr != nil {
		// Deleted since the look above: the token goes with its grant.
		_ = s.Store.RevokeGrant(ctx, access.record.GrantID)
		return nil, oerr
	}
	resp := &TokenResponse{AccessToken: access.value, ExpiresIn: expiresIn(access.record.ExpiresAt, now), Scopes: scopes, DPoP: x.JKT != ""}
	s.issued(ctx, audit.TokenIssued, ClientCredentials, x.Client.ID, "", access.record.GrantID, resp)
	return resp, nil
}
