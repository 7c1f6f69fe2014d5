package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

const requestColumns = `browser_digest, client_id, redirect_uri, redirect_uri_provided, scopes, resource, state, code_challenge, expires_at, prompt_consent`

// SaveAuthorizationRequest stores a validated authorization request under
// req.ID until the user decides; ErrConflict if the ID is taken.
func (m *Model) SaveAuthorizationRequest(ctx context.Context, req *mcpoauth.AuthorizationRequest) error {
	if err := sqlmodel.CheckSave(ctx, errs, req, func(r *mcpoauth.AuthorizationRequest) bool { return r.ID.IsZero() }); err != nil {
		return err
	}
	return m.insert(ctx, "save authorization request", errs.RequestConflict,
		`INSERT INTO mcpoauth_authorization_requests (id, `+requestColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		req.ID[:], req.BrowserDigest[:], req.ClientID, req.RedirectURI, req.RedirectURIProvided,
		nonNil(req.Scopes), req.Resource, []byte(req.State), req.CodeChallenge, req.ExpiresAt, req.PromptConsent)
}

// GetAuthorizationRequest returns a pending request without consuming it;
// ErrNotFound if unknown or consumed.
func (m *Model) GetAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return scanRequest(ctx, "get authorization request", id, m.pool.QueryRow(ctx,
		`SELECT `+requestColumns+` FROM mcpoauth_authorization_requests WHERE id = $1`, id[:]))
}

// ConsumeAuthorizationRequest atomically removes and returns a pending
// request, in one DELETE ... RETURNING (in a READ COMMITTED transaction, see
// execRC); ErrNotFound if unknown or consumed already.
func (m *Model) ConsumeAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r *mcpoauth.AuthorizationRequest
	err := m.inTx(ctx, "consume authorization request", func(tx pgx.Tx) error {
		var err error
		r, err = scanRequest(ctx, "consume authorization request", id, tx.QueryRow(ctx,
			`DELETE FROM mcpoauth_authorization_requests WHERE id = $1 RETURNING `+requestColumns, id[:]))
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func scanRequest(ctx context.Context, op string, id mcpoauth.Digest, row pgx.Row) (*mcpoauth.AuthorizationRequest, error) {
	r := &mcpoauth.AuthorizationRequest{ID: id}
	var browser, state []byte
	err := row.Scan(&browser, &r.ClientID, &r.RedirectURI, &r.RedirectURIProvided, &r.Scopes, &r.Resource, &state, &r.CodeChallenge, &r.ExpiresAt, &r.PromptConsent)
	if err = errs.Scan(ctx, op, errs.RequestNotFound, err); err != nil {
		return nil, err
	}
	if err := errs.Digest(browser, &r.BrowserDigest); err != nil {
		return nil, err
	}
	r.State = string(state)
	r.ExpiresAt = r.ExpiresAt.UTC()
	return r, nil
}
