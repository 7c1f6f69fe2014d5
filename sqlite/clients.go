package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

const getClientSQL = `SELECT secret_digest, secret_expires_at, issued_at, last_used_at, metadata, pre_registered, auth_method_defaulted
	FROM mcpoauth_clients WHERE id = ?`

// GetClient returns the client with this client_id, or ErrNotFound.
func (m *Model) GetClient(ctx context.Context, clientID string) (*mcpoauth.Client, error) {
	if err := sqlmodel.CheckKey(ctx, clientID, errs.ClientNotFound); err != nil {
		return nil, err
	}
	var (
		secret                   []byte
		secretExp, issued, used  sql.NullInt64
		meta                     []byte
		preRegistered, defaulted bool
		c                        = &mcpoauth.Client{ID: clientID}
	)
	err := m.getClientStmt.QueryRowContext(ctx, clientID).Scan(&secret, &secretExp, &issued, &used, &meta, &preRegistered, &defaulted)
	if err = errs.Scan(ctx, "get client", errs.ClientNotFound, err); err != nil {
		return nil, err
	}
	c.SecretExpiresAt, c.IssuedAt, c.LastUsedAt = fromNanos(secretExp), fromNanos(issued), fromNanos(used)
	c.PreRegistered, c.AuthMethodDefaulted = preRegistered, defaulted
	if err := errs.SetClientColumns(ctx, "get client", c, meta, secret); err != nil {
		return nil, err
	}
	return c, nil
}

// RegisterClient stores a new client; ErrConflict if its ID exists.
func (m *Model) RegisterClient(ctx context.Context, client *mcpoauth.Client) error {
	args, err := clientArgs(ctx, "register client", client, false)
	if err != nil {
		return err
	}
	return m.insert(ctx, "register client", errs.ClientConflict,
		`INSERT INTO mcpoauth_clients (id, secret_digest, secret_expires_at, issued_at, last_used_at, metadata, pre_registered, auth_method_defaulted)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...)
}

// UpdateClient replaces the stored client whose ID is client.ID with
// client, in one UPDATE; ErrNotFound, and no change, if there is none.
func (m *Model) UpdateClient(ctx context.Context, client *mcpoauth.Client) error {
	args, err := clientArgs(ctx, "update client", client, true)
	if err != nil {
		return err
	}
	return m.execOne(ctx, "update client", errs.ClientNotFound,
		`UPDATE mcpoauth_clients SET secret_digest = ?2, secret_expires_at = ?3, issued_at = ?4, last_used_at = ?5,
			metadata = ?6, pre_registered = ?7, auth_method_defaulted = ?8 WHERE id = ?1`, args...)
}

// clientArgs returns the columns of a client, in the order of the INSERT,
// after the checks of sqlmodel's ClientColumns.
func clientArgs(ctx context.Context, op string, c *mcpoauth.Client, update bool) ([]any, error) {
	meta, secretDigest, err := errs.ClientColumns(ctx, op, c, update)
	if err != nil {
		return nil, err
	}
	var secret any // NULL for a public client, not an empty blob
	if secretDigest != nil {
		secret = secretDigest
	}
	return []any{c.ID, secret, toNanos(c.SecretExpiresAt), toNanos(c.IssuedAt), toNanos(c.LastUsedAt),
		string(meta), boolInt(c.PreRegistered), boolInt(c.AuthMethodDefaulted)}, nil
}

// clientTables are the tables whose rows belong to a client, by client_id:
// DeleteClient deletes them with the client. The tokens and codes are
// scanned without an index: deleting a client is rare, and an index would
// cost every token issued.
var clientTables = []string{
	"mcpoauth_authorization_requests",
	"mcpoauth_device_authorizations",
	"mcpoauth_authorization_codes",
	"mcpoauth_tokens",
	"mcpoauth_grants",
	"mcpoauth_upstream_tokens",
}

// deleteClients deletes, in tx, the clients whose IDs are ids and
// everything issued to them, and returns how many clients it deleted.
// The IDs are one JSON array parameter, so each table is scanned once for
// all of them.
func deleteClients(ctx context.Context, tx *sql.Tx, op string, ids []string) (int64, error) {
	arg := jsonStrings(ids)
	n, err := execCount(ctx, tx, op, `DELETE FROM mcpoauth_clients WHERE id IN (SELECT value FROM json_each(?))`, arg)
	if err != nil || n == 0 {
		// No client: nothing of an unregistered client (one of a client
		// ID metadata document) is deleted.
		return n, err
	}
	for _, table := range clientTables {
		if _, err := execCount(ctx, tx, op, `DELETE FROM `+table+` WHERE client_id IN (SELECT value FROM json_each(?))`, arg); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// DeleteClient removes the client and every token, authorization code,
// pending authorization request, device authorization, grant record and
// vault entry of it, in one transaction; ErrNotFound, and no change, if
// there is no such client. Writes are serialised, so a save of the
// client's tokens commits before it (and is deleted) or after it (and the
// server, checking the client again, hands nothing out).
func (m *Model) DeleteClient(ctx context.Context, clientID string) error {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.ClientNotFound); err != nil {
		return err
	}
	return m.inTx(ctx, "delete client", func(tx *sql.Tx) error {
		n, err := deleteClients(ctx, tx, "delete client", []string{clientID})
		if err != nil {
			return err
		}
		if n == 0 {
			return errs.ClientNotFound
		}
		return nil
	})
}

// RecordClientUse sets the client's last_used_at to at, unless it is
// later already, in one UPDATE; ErrNotFound if there is no such client.
func (m *Model) RecordClientUse(ctx context.Context, clientID string, at time.Time) error {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.ClientNotFound); err != nil {
		return err
	}
	// SQLite's max() of a NULL is NULL: an unknown last use becomes at.
	return m.execOne(ctx, "record client use", errs.ClientNotFound,
		`UPDATE mcpoauth_clients SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE id = ?1`, clientID, toNanos(at))
}

// idleClientBatch is the most clients one transaction of DeleteIdleClients
// deletes, so that it holds the write lock briefly.
const idleClientBatch = 100

// DeleteIdleClients deletes every client that is not pre-registered and
// whose last_used_at is before idleSince, with everything issued to it, as
// DeleteClient does, and returns how many it deleted. Each batch of at
// most 100 clients is one transaction: the idle ones are read and deleted
// under the write lock, so a RecordClientUse lands before (and the client
// stays) or after (and finds it gone).
func (m *Model) DeleteIdleClients(ctx context.Context, idleSince time.Time) (int, error) {
	const op = "delete idle clients"
	total := 0
	for {
		var found int
		var deleted int64
		err := m.inTx(ctx, op, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx,
				`SELECT id FROM mcpoauth_clients WHERE pre_registered = 0 AND last_used_at < ? ORDER BY last_used_at LIMIT `+itoa(idleClientBatch),
				nanosOrZero(idleSince))
			if err != nil {
				return errs.Storage(ctx, op, err)
			}
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					_ = rows.Close()
					return errs.Storage(ctx, op, err)
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				return errs.Storage(ctx, op, err)
			}
			found = len(ids)
			if found == 0 {
				return nil
			}
			deleted, err = deleteClients(ctx, tx, op, ids)
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(deleted)
		if found < idleClientBatch {
			return total, nil
		}
	}
}
