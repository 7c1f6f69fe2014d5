package grants

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// ErrIntrospectionUnauthorized refuses an introspection request from a
// public client: RFC 7662 §2.1 requires the caller to be authorized, and a
// client_id alone proves nothing. It is 401, so the handler adds the Basic
// challenge (RFC 7662 §2.3, RFC 6749 §5.2).
var ErrIntrospectionUnauthorized = &oautherr.Error{
	Code:        oautherr.CodeInvalidClient,
	Description: "token introspection requires client authentication with a client secret",
	Status:      http.StatusUnauthorized,
}

// Introspection is what the introspection endpoint tells a caller about a
// token (RFC 7662 §2.2). When Active is false every other field is zero: an
// unknown, expired, revoked or rotated token and a token the caller may not
// see get the same answer.
type Introspection struct {
	// Active tells whether the token is valid and the caller may see it.
	Active bool
	// Kind is the token's kind; the handler reports token_type "Bearer"
	// for access tokens only.
	Kind record.TokenKind
	// ClientID is the client the token was issued to.
	ClientID string
	// UserID is the user the token acts for; empty for a client's own
	// (client_credentials) token.
	UserID string
	// Scopes are the token's scopes.
	Scopes []string
	// Resource is the RFC 8707 resource the token is bound to (aud).
	Resource string
	// IssuedAt and ExpiresAt are the token's iat and exp.
	IssuedAt, ExpiresAt time.Time
	// JKT is the thumbprint of the DPoP key the token is bound to, for
	// cnf.jkt and token_type DPoP (RFC 9449 §6.2); "" when not bound.
	JKT string
}

// Introspect answers an RFC 7662 introspection request of the authenticated
// client caller about token. token_type_hint plays no part: a digest finds
// either kind at once (RFC 7662 §2.1 lets the server ignore it).
//
// The visibility rule (RFC 7662 §2.1 requires the caller be authorized, and
// §2.2 lets the server answer inactive for a token it will not describe):
//
//   - the caller must be a confidential client (a public one is
//     ErrIntrospectionUnauthorized);
//   - a client sees its own tokens, access and refresh;
//   - a client listed in IntrospectionClients (a resource server) also sees
//     every access token bound to Resource, whichever client holds it,
//     and never another client's refresh token;
//   - anything else, and every unknown, expired, revoked or rotated token,
//     is inactive.
//
// A storage failure is server_error, never a false "inactive".
func (s *Service) Introspect(ctx context.Context, caller *record.Client, token string) (*Introspection, *oautherr.Error) {
	if caller.IsPublic() {
		return nil, ErrIntrospectionUnauthorized
	}
	if token == "" {
		return nil, oautherr.InvalidRequest("token is required")
	}
	tok, err := s.Store.GetToken(ctx, secret.Digest(token))
	switch {
	case isNotFound(err):
		return &Introspection{}, nil
	case err != nil:
		return nil, storeError(err)
	}
	now := s.Now()
	if !now.Before(tok.ExpiresAt) ||
		tok.Kind == record.RefreshToken && (tok.Rotated() || !tok.GrantExpiresAt.IsZero() && !now.Before(tok.GrantExpiresAt)) ||
		!s.mayIntrospect(caller, tok) {
		return &Introspection{}, nil
	}
	return &Introspection{
		Active:    true,
		Kind:      tok.Kind,
		ClientID:  tok.ClientID,
		UserID:    tok.UserID,
		Scopes:    tok.Scopes,
		Resource:  tok.Resource,
		IssuedAt:  tok.IssuedAt,
		ExpiresAt: tok.ExpiresAt,
		JKT:       tok.JKT,
	}, nil
}

// mayIntrospect applies the visibility rule of Introspect.
func (s *Service) mayIntrospect(caller *record.Client, tok *record.Token) bool {
	if tok.ClientID == caller.ID {
		return true
	}
	return tok.Kind == record.AccessToken && s.Resource != "" && tok.Resource == s.Resource &&
		slices.Contains(s.IntrospectionClients, caller.ID)
}
