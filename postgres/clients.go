package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth"
)

// GetClient returns the client with this client_id, or ErrNotFound.
func (m *Model) GetClient(ctx context.Context, clientID string) (*mcpoauth.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !isStorableText(clientID) {
		return nil, errClientNotFound
	}
	var (
		secret           []byte
		secretExp, issue *time.Time
		meta             []byte
	)
	err := m.pool.QueryRow(ctx,
		`SELECT secret_digest, secret_expires_at, issued_at, metadata FROM mcpoauth_clients WHERE id = $1`,
		clientID).Scan(&secret, &secretExp, &issue, &meta)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errClientNotFound
	}
	if err != nil {
		return nil, storageError(ctx, "get client", err)
	}
	c := &mcpoauth.Client{ID: clientID, SecretExpiresAt: fromNullTime(secretExp), IssuedAt: fromNullTime(issue)}
	if secret != nil {
		if len(secret) != len(c.SecretDigest) {
			return nil, errUnexpectedResult
		}
		copy(c.SecretDigest[:], secret)
	}
	if err := json.Unmarshal(meta, &c.Metadata); err != nil {
		return nil, storageError(ctx, "get client: metadata", err)
	}
	return c, nil
}

// RegisterClient stores a new client; ErrConflict if its ID exists.
func (m *Model) RegisterClient(ctx context.Context, client *mcpoauth.Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if client == nil {
		return errNilRecord
	}
	if client.ID == "" {
		return errEmptyClientID
	}
	meta, err := json.Marshal(client.Metadata)
	if err != nil {
		return storageError(ctx, "register client: metadata", err)
	}
	var secret []byte
	if !client.SecretDigest.IsZero() {
		secret = client.SecretDigest[:]
	}
	_, err = m.pool.Exec(ctx,
		`INSERT INTO mcpoauth_clients (id, secret_digest, secret_expires_at, issued_at, metadata) VALUES ($1, $2, $3, $4, $5)`,
		client.ID, secret, toNullTime(client.SecretExpiresAt), toNullTime(client.IssuedAt), meta)
	if isUniqueViolation(err) {
		return errClientConflict
	}
	if err != nil {
		return storageError(ctx, "register client", err)
	}
	return nil
}

// toNullTime maps the zero time to NULL.
func toNullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNullTime maps NULL to the zero time.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
