package sqlite

import (
	"context"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

// UseAssertionID records a client assertion's jti (its digest,
// mcpoauth.AssertionIDDigest) until expiresAt, or returns ErrAlreadyUsed if
// it is recorded (Sweep deletes it after expiresAt). One INSERT ... ON
// CONFLICT DO NOTHING under the write lock: of concurrent uses in any
// process exactly one inserts.
func (m *Model) UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := mcpoauth.AssertionIDDigest(clientID, jti)
	return m.execOne(ctx, "use assertion id", errs.AssertionUsed,
		`INSERT INTO mcpoauth_assertion_ids (digest, expires_at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING`,
		d[:], toNanos(expiresAt))
}
