package grants

import (
	"context"
	"time"

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
	grantID := newGrantID()
	// OAuth 2.1 §4.2.2: no refresh token, and no user.
	resp, toSave, oerr := s.mintTokens(x.Client, "", grantID, scopes, res, x.JKT, now, now.Add(s.AccessTokenLifetime), false)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := s.saveUnconsumed(ctx, x.Client, grantID, false, now, toSave); oerr != nil {
		return nil, oerr
	}
	s.issued(ctx, audit.TokenIssued, ClientCredentials, x.Client.ID, "", grantID, resp)
	return resp, nil
}

// saveUnconsumed stores tokens whose issue consumed no record (client
// credentials, jwt-bearer), then records the use of the client and, when
// grantRecorded, of the grant. A DeleteClient since the client
// authenticated did not remove these tokens (no record it removed was
// consumed to issue them), so the client is looked up again after the
// save: the ClientRegistrar contract orders the save and the delete so
// that this look sees such a delete. The tokens are then never handed
// out; their grant is revoked so that they do not linger until they
// expire.
func (s *Service) saveUnconsumed(ctx context.Context, client *record.Client, grantID string, grantRecorded bool, now time.Time, tokens []*record.Token) *oautherr.Error {
	if err := s.Store.SaveTokens(ctx, tokens...); err != nil {
		if grantRecorded {
			// The grant's record was saved for these tokens: with none
			// issued it is revoked rather than listed as a connected app
			// until it expires.
			s.discardGrant(ctx, grantID)
		}
		return storeError(err)
	}
	if _, err := s.Store.GetClient(ctx, client.ID); err != nil {
		s.discardGrant(ctx, grantID)
		if isNotFound(err) {
			return errClientGone
		}
		return storeError(err)
	}
	if grantRecorded {
		s.recordGrantUse(ctx, grantID, now)
	}
	if oerr := s.recordUse(ctx, client, now); oerr != nil {
		// Deleted since the look above: the tokens go with their grant.
		s.discardGrant(ctx, grantID)
		return oerr
	}
	return nil
}
