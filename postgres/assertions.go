package postgres

import (
	"context"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

// UseAssertionID records a client assertion's jti (its digest,
// mcpoauth.AssertionIDDigest) until expiresAt, or returns ErrAlreadyUsed if
// it is recorded (Sweep deletes it after expiresAt). One statement: of
// concurrent uses on any replica exactly one inserts.
func (m *Model) UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := mcpoauth.AssertionIDDigest(clientID, jti)
	return m.execOne(ctx, "use assertion id", errs.AssertionUsed,
		`INSERT INTO mcpoauth_assertion_ids (digest, expires_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING`,
		d[:], expiresAt)
}
