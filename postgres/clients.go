package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// GetClient returns the client with this client_id, or ErrNotFound. If
// the connection breaks, the SELECT runs again on another (safeRead).
func (m *Model) GetClient(ctx context.Context, clientID string) (*mcpoauth.Client, error) {
	if err := sqlmodel.CheckKey(ctx, clientID, errs.ClientNotFound); err != nil {
		return nil, err
	}
	var (
		secret                 []byte
		secretExp, issue, used *time.Time
		meta                   []byte
		c                      = &mcpoauth.Client{ID: clientID}
	)
	err := m.safeRead(ctx, func(q querier) error {
		return q.QueryRow(ctx,
			`SELECT secret_digest, secret_expires_at, issued_at, metadata, pre_registered, auth_method_defaulted, last_used_at FROM mcpoauth_clients WHERE id = $1`,
			clientID).Scan(&secret, &secretExp, &issue, &meta, &c.PreRegistered, &c.AuthMethodDefaulted, &used)
	})
	if err = errs.Scan(ctx, "get client", errs.ClientNotFound, err); err != nil {
		return nil, err
	}
	c.SecretExpiresAt, c.IssuedAt, c.LastUsedAt = fromNullTime(secretExp), fromNullTime(issue), fromNullTime(used)
	if err := errs.SetClientColumns(ctx, "get client", c, meta, secret); err != nil {
		return nil, err
	}
	return c, nil
}

// RegisterClient stores a new client; ErrConflict if its ID exists.
func (m *Model) RegisterClient(ctx context.Context, client *mcpoauth.Client) error {
	meta, secret, err := errs.ClientColumns(ctx, "register client", client, false)
	if err != nil {
		return err
	}
	return m.insert(ctx, "register client", errs.ClientConflict,
		`INSERT INTO mcpoauth_clients (id, secret_digest, secret_expires_at, issued_at, metadata, pre_registered, auth_method_defaulted, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		client.ID, secret, toNullTime(client.SecretExpiresAt), toNullTime(client.IssuedAt), meta, client.PreRegistered, client.AuthMethodDefaulted, toNullTime(client.LastUsedAt))
}

// UpdateClient replaces the stored client whose ID is client.ID with
// client, in one UPDATE; ErrNotFound, and no change, if there is none.
func (m *Model) UpdateClient(ctx context.Context, client *mcpoauth.Client) error {
	meta, secret, err := errs.ClientColumns(ctx, "update client", client, true)
	if err != nil {
		return err
	}
	return m.execOne(ctx, "update client", errs.ClientNotFound,
		`UPDATE mcpoauth_clients SET secret_digest = $2, secret_expires_at = $3, issued_at = $4, metadata = $5, pre_registered = $6, auth_method_defaulted = $7, last_used_at = $8 WHERE id = $1`,
		client.ID, secret, toNullTime(client.SecretExpiresAt), toNullTime(client.IssuedAt), meta, client.PreRegistered, client.AuthMethodDefaulted, toNullTime(client.LastUsedAt))
}

// deleteClientSQL deletes a client and every row of it: one statement, so
// one snapshot, run once the client's lock is held (see lockThen), when
// every token insert of the client has committed or waits for this
// transaction. Its command tag counts the client rows: none means there is
// no such client, and the transaction is rolled back, so that the records
// of a client that is not registered (one of a client ID metadata
// document) stay.
// The sweep of idle clients (DeleteIdleClients) runs it on several
// clients at once: $1 is an array of client IDs, so that the tables are
// scanned once for all of them.
const deleteClientSQL = `WITH
	r AS (DELETE FROM mcpoauth_authorization_requests WHERE client_id = ANY($1::text[])),
	d AS (DELETE FROM mcpoauth_device_authorizations WHERE client_id = ANY($1::text[])),
	c AS (DELETE FROM mcpoauth_authorization_codes WHERE client_id = ANY($1::text[])),
	t AS (DELETE FROM mcpoauth_tokens WHERE client_id = ANY($1::text[])),
	g AS (DELETE FROM mcpoauth_grants WHERE client_id = ANY($1::text[])),
	u AS (DELETE FROM mcpoauth_upstream_tokens WHERE client_id = ANY($1::text[]))
DELETE FROM mcpoauth_clients WHERE id = ANY($1::text[])`

// deleteClientAttempts bounds how often DeleteClient runs its transaction
// when PostgreSQL ends it to break a deadlock.
const deleteClientAttempts = 3

// DeleteClient removes the client and every token, authorization code,
// pending authorization request, device authorization, grant record and
// upstream vault entry of it, in one transaction; ErrNotFound, and no change, if there is no such client.
// It holds the client's advisory lock, which every transaction that saves
// tokens takes too, so a save of the client's tokens commits before it
// (and is deleted) or starts after it (and the server, checking the client
// again, hands nothing out).
//
// The tables are scanned by client_id without an index: deleting a client
// is a rare administrative operation, and an index on mcpoauth_tokens would
// cost every token issued. A RevokeGrant of one of the client's grants
// deletes some of the same rows in another order; should PostgreSQL break
// the deadlock by ending this transaction, it is run again.
func (m *Model) DeleteClient(ctx context.Context, clientID string) error {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.ClientNotFound); err != nil {
		return err
	}
	var err error
	for range deleteClientAttempts {
		err = m.inTx(ctx, "delete client", func(tx pgx.Tx) error {
			tag, err := lockThen(ctx, tx, lockKeys(lockClassClient, clientID), deleteClientSQL, []string{clientID})
			if err != nil {
				return errs.Storage(ctx, "delete client", err)
			}
			if tag.RowsAffected() == 0 {
				return errs.ClientNotFound
			}
			return notify(ctx, tx, "delete client", idPayload(notifyClient, clientID))
		})
		if !isDeadlock(err) {
			break
		}
	}
	if err == nil {
		m.evict(idPayload(notifyClient, clientID))
	}
	return err
}

// RecordClientUse sets the client's last_used_at to at, unless it is
// later already, in one UPDATE; ErrNotFound if there is no such client.
func (m *Model) RecordClientUse(ctx context.Context, clientID string, at time.Time) error {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.ClientNotFound); err != nil {
		return err
	}
	// GREATEST ignores NULL: an unknown last use becomes at.
	return m.execOne(ctx, "record client use", errs.ClientNotFound,
		`UPDATE mcpoauth_clients SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1`, clientID, at)
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
