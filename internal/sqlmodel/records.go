package sqlmodel

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mcpoauth/mcpoauth"
)

// The conversions between records and the columns that both Models store
// alike (a digest as its 32 bytes, client metadata and a grant's identity
// as JSON).

// Digest copies a 32-byte column into d: UnexpectedResult for another
// length.
func (e *Errors) Digest(b []byte, d *mcpoauth.Digest) error {
	if len(b) != len(d) {
		return e.UnexpectedResult
	}
	copy(d[:], b)
	return nil
}

// ClientColumns returns the metadata and secret digest columns of a client
// to save: JSON, and nil (NULL) for a public client. It answers first what
// the save answers before it reaches the database: the context's error,
// NilRecord for a nil client, and for a client ID that can name no record
// (ValidClientID) EmptyClientID if the save registers the client,
// ClientNotFound if it updates a stored one (update).
func (e *Errors) ClientColumns(ctx context.Context, op string, c *mcpoauth.Client, update bool) (meta, secret []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	switch {
	case c == nil:
		return nil, nil, e.NilRecord
	case !update && !ValidClientID(c.ID):
		return nil, nil, e.EmptyClientID
	case update && !ValidClientID(c.ID):
		return nil, nil, e.ClientNotFound
	}
	meta, err = json.Marshal(c.Metadata)
	if err != nil {
		return nil, nil, e.Storage(ctx, op+": metadata", err)
	}
	if !c.SecretDigest.IsZero() {
		secret = c.SecretDigest[:]
	}
	return meta, secret, nil
}

// SetClientColumns is the inverse of ClientColumns: it sets c's secret
// digest (unless secret is NULL) and metadata from the columns read by op.
func (e *Errors) SetClientColumns(ctx context.Context, op string, c *mcpoauth.Client, meta, secret []byte) error {
	if secret != nil {
		if err := e.Digest(secret, &c.SecretDigest); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(meta, &c.Metadata); err != nil {
		return e.Storage(ctx, op+": metadata", err)
	}
	return nil
}

// IdentityColumn returns the identity column of a grant: JSON, or nil
// (NULL) for none.
func (e *Errors) IdentityColumn(ctx context.Context, op string, id *mcpoauth.Identity) ([]byte, error) {
	if id == nil {
		return nil, nil
	}
	b, err := json.Marshal(id)
	if err != nil {
		return nil, e.Storage(ctx, op+": identity", err)
	}
	return b, nil
}

// ParseIdentity is the inverse of IdentityColumn: nil for NULL.
func ParseIdentity(b []byte) (*mcpoauth.Identity, error) {
	if b == nil {
		return nil, nil
	}
	id := &mcpoauth.Identity{}
	if err := json.Unmarshal(b, id); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return id, nil
}
