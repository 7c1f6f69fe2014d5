package sqlmodel

import (
	"context"

	"github.com/mcpoauth/mcpoauth"
)

// Redemption is the redemption of a credential (an authorization code, a
// refresh token, a device code) by a client, with the tokens it issues.
type Redemption struct {
	Op       string
	ClientID string
	Issued   []*mcpoauth.Token
	// Update is the conditional UPDATE or DELETE that redeems the
	// credential, matching it only while it can be redeemed, so that of
	// concurrent calls exactly one matches it. Args are its arguments and
	// UsedQuery's.
	Update string
	Args   []any
	// UsedQuery, when Update matched nothing, reads whether the credential
	// was used: Used is the answer if so, and NotFound if it is absent or
	// unused (saved since Update ran). Without UsedQuery the answer is
	// NotFound.
	UsedQuery string
	// UsedArgs are UsedQuery's arguments, when not Args.
	UsedArgs       []any
	NotFound, Used error
}

// Refused answers what r answers before it reaches the database: the
// context's error, and NotFound for a client ID that names no record.
func (r *Redemption) Refused(ctx context.Context) error {
	return CheckClientID(ctx, r.ClientID, r.NotFound)
}

// WhyNotRedeemed answers, in tx, why r's Update matched nothing. Only now
// is the reason read; the client is part of the key, so another client's
// used credential is not found.
func (r *Redemption) WhyNotRedeemed(ctx context.Context, e *Errors, tx Tx) error {
	if r.UsedQuery == "" {
		return r.NotFound
	}
	args := r.Args
	if r.UsedArgs != nil {
		args = r.UsedArgs
	}
	var used bool
	err := tx.QueryRow(ctx, r.UsedQuery, args...).Scan(&used)
	switch {
	case e.IsNoRows(err):
		return r.NotFound
	case err != nil:
		return e.Storage(ctx, r.Op, err)
	case used:
		return r.Used
	}
	// Unused now, so it did not exist when the update ran: it was saved
	// since.
	return r.NotFound
}
