package sqlite

import (
	"context"
	"database/sql"

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
		`INSERT INTO mcpoauth_authorization_requests (id, `+requestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		req.ID[:], req.BrowserDigest[:], req.ClientID, req.RedirectURI, boolInt(req.RedirectURIProvided),
		encodeStrings(req.Scopes), req.Resource, []byte(req.State), req.CodeChallenge, toNanos(req.ExpiresAt), boolInt(req.PromptConsent))
}

// GetAuthorizationRequest returns a pending request without consuming it;
// ErrNotFound if unknown or consumed.
func (m *Model) GetAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return scanRequest(ctx, "get authorization request", id, m.r.QueryRowContext(ctx,
		`SELECT `+requestColumns+` FROM mcpoauth_authorization_requests WHERE id = ?`, id[:]))
}

// ConsumeAuthorizationRequest atomically removes and returns a pending
// request, with one DELETE ... RETURNING; ErrNotFound if unknown or
// consumed already.
func (m *Model) ConsumeAuthorizationRequest(ctx context.Context, id mcpoauth.Digest) (*mcpoauth.AuthorizationRequest, error) {
	var r *mcpoauth.AuthorizationRequest
	err := m.inTx(ctx, "consume authorization request", func(tx *sql.Tx) error {
		var err error
		r, err = scanRequest(ctx, "consume authorization request", id, tx.QueryRowContext(ctx,
			`DELETE FROM mcpoauth_authorization_requests WHERE id = ? RETURNING `+requestColumns, id[:]))
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func scanRequest(ctx context.Context, op string, id mcpoauth.Digest, row rowScanner) (*mcpoauth.AuthorizationRequest, error) {
	r := &mcpoauth.AuthorizationRequest{ID: id}
	var (
		browser, state []byte
		scopes         string
		exp            sql.NullInt64
	)
	err := row.Scan(&browser, &r.ClientID, &r.RedirectURI, &r.RedirectURIProvided, &scopes, &r.Resource, &state, &r.CodeChallenge, &exp, &r.PromptConsent)
	if err = errs.Scan(ctx, op, errs.RequestNotFound, err); err != nil {
		return nil, err
	}
	if err := errs.Digest(browser, &r.BrowserDigest); err != nil {
		return nil, err
	}
	if r.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, errs.Storage(ctx, op+": scopes", err)
	}
	r.State, r.ExpiresAt = string(state), fromNanos(exp)
	return r, nil
}
