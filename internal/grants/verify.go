package grants

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/codes"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/internal/telemetry"
	"github.com/mcpoauth/mcpoauth/record"
)

// VerifyAccessToken resolves an access token to what it grants. Unknown,
// expired, revoked and refresh tokens are all bearer.ErrInvalidToken; any
// other error is a storage failure. It is on the path of every protected
// request: one digest, one lookup, one allocation, and with Telemetry one
// counter (mcpoauth.token.verifications) and, under a recording span, a
// child span.
func (s *Service) VerifyAccessToken(ctx context.Context, token string) (*bearer.AuthInfo, error) {
	t := s.Telemetry
	if t == nil {
		return s.verifyAccessToken(ctx, token)
	}
	ctx, span := t.Span(ctx, "mcpoauth.verify_access_token")
	info, err := s.verifyAccessToken(ctx, token)
	o := telemetry.Valid
	switch {
	case errors.Is(err, bearer.ErrInvalidToken):
		o = telemetry.Invalid
	case err != nil:
		o = telemetry.Failed
		span.SetStatus(codes.Error, "model error")
	}
	t.Verified(o)
	span.End()
	return info, err
}

func (s *Service) verifyAccessToken(ctx context.Context, token string) (*bearer.AuthInfo, error) {
	tok, err := s.Store.GetToken(ctx, secret.Digest(token))
	if err != nil {
		if isNotFound(err) {
			return nil, bearer.ErrInvalidToken
		}
		return nil, fmt.Errorf("verify access token: %w", err)
	}
	if tok.Kind != record.AccessToken || !s.Now().Before(tok.ExpiresAt) {
		return nil, bearer.ErrInvalidToken
	}
	if j := s.JWTAccessTokens; j != nil && strings.IndexByte(token, '.') >= 0 && !j.Signer.PublishedKeyOf(token) {
		// A JWT whose key was removed from SigningKeys: resource servers
		// verifying it offline refuse it, and so does the server, so that
		// removing a key retires its tokens everywhere alike. (Its digest
		// matched: the header is the one the server signed.)
		return nil, bearer.ErrInvalidToken
	}
	info := &bearer.AuthInfo{
		ClientID:  tok.ClientID,
		UserID:    tok.UserID,
		Scopes:    tok.Scopes,
		Resource:  tok.Resource,
		ExpiresAt: tok.ExpiresAt,
		GrantID:   tok.GrantID,
		JKT:       tok.JKT,
	}
	if s.Identities != nil && tok.UserID != "" {
		id, err := s.Identities.lookup(ctx, s.Grants, tok.GrantID)
		if err != nil {
			return nil, fmt.Errorf("verify access token: grant identity: %w", err)
		}
		info.Identity = id
	}
	return info, nil
}
