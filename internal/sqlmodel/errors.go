// Package sqlmodel is what the SQL Models of mcpoauth (packages postgres
// and sqlite) share: the logic that does not depend on the database's
// dialect or driver. It holds their errors, the checks a call makes before
// it reaches the database, the conversion of the columns both store alike,
// the migration runner, the sweeper and the redemption of a one-time
// credential. Each Model keeps its own SQL text and driver calls, and
// hands them to this package where the logic around them is the same.
package sqlmodel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mcpoauth/mcpoauth"
)

// Driver is what the shared code must know of a database driver: how it
// reports a query that found no row and a key that is taken.
type Driver struct {
	// NoRows is the error of a query that returned no row (errors.Is).
	NoRows error
	// IsUniqueViolation reports whether an error is a primary key or
	// unique constraint violation.
	IsUniqueViolation func(error) bool
}

// Errors are the errors a Model returns, built once, each message starting
// with the Model's package name; the first group wraps the mcpoauth
// sentinels.
type Errors struct {
	name   string
	driver Driver

	ClientNotFound, ClientConflict     error
	RequestNotFound, RequestConflict   error
	CodeNotFound, CodeUsed             error
	CodeConflict                       error
	TokenNotFound, TokenUsed           error
	TokenConflict                      error
	DeviceNotFound, DeviceConflict     error
	GrantNotFound, GrantConflict       error
	UpstreamNotFound, UpstreamConflict error
	AssertionUsed                      error
	GrantRevoked                       error

	NilRecord, ZeroDigest, EmptyClientID, BadTokenKind, UnexpectedResult error
	EmptyRecordID                                                        error
	DeviceBadStatus                                                      error
}

// NewErrors returns the errors of the Model of package name on driver.
func NewErrors(name string, driver Driver) *Errors {
	wrap := func(what string, sentinel error) error { return fmt.Errorf("%s: %s: %w", name, what, sentinel) }
	plain := func(msg string) error { return errors.New(name + ": " + msg) }
	return &Errors{
		name:   name,
		driver: driver,

		ClientNotFound:   wrap("client", mcpoauth.ErrNotFound),
		ClientConflict:   wrap("client", mcpoauth.ErrConflict),
		RequestNotFound:  wrap("authorization request", mcpoauth.ErrNotFound),
		RequestConflict:  wrap("authorization request", mcpoauth.ErrConflict),
		CodeNotFound:     wrap("authorization code", mcpoauth.ErrNotFound),
		CodeUsed:         wrap("authorization code", mcpoauth.ErrAlreadyUsed),
		CodeConflict:     wrap("authorization code", mcpoauth.ErrConflict),
		TokenNotFound:    wrap("token", mcpoauth.ErrNotFound),
		TokenUsed:        wrap("refresh token", mcpoauth.ErrAlreadyUsed),
		TokenConflict:    wrap("token", mcpoauth.ErrConflict),
		DeviceNotFound:   wrap("device authorization", mcpoauth.ErrNotFound),
		DeviceConflict:   wrap("device authorization", mcpoauth.ErrConflict),
		GrantNotFound:    wrap("grant", mcpoauth.ErrNotFound),
		GrantConflict:    wrap("grant", mcpoauth.ErrConflict),
		UpstreamNotFound: wrap("upstream token", mcpoauth.ErrNotFound),
		UpstreamConflict: wrap("upstream token", mcpoauth.ErrConflict),
		AssertionUsed:    wrap("client assertion", mcpoauth.ErrAlreadyUsed),
		GrantRevoked:     wrap("grant was revoked", mcpoauth.ErrNotFound),

		NilRecord:        plain("nil record"),
		ZeroDigest:       plain("record has a zero digest"),
		EmptyClientID:    plain("client ID is empty, or not valid UTF-8 without NUL"),
		BadTokenKind:     plain("token has an unknown kind"),
		UnexpectedResult: plain("unexpected result"),
		DeviceBadStatus:  plain("a device decision must approve or deny"),
		EmptyRecordID:    plain("record has an empty ID"),
	}
}

// Name returns the Model's package name, which starts every message.
func (e *Errors) Name() string { return e.name }

// Storage wraps an error of the database with what was being done. A done
// context is reported as itself, so that errors.Is finds it whatever the
// driver wrapped it in.
func (e *Errors) Storage(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%s: %s: %w (%w)", e.name, op, ctxErr, err)
	}
	return fmt.Errorf("%s: %s: %w", e.name, op, err)
}

// IsNoRows reports whether err says that a query found no row.
func (e *Errors) IsNoRows(err error) bool { return errors.Is(err, e.driver.NoRows) }

// Scan answers for the Scan of a row that returned err: nil for none,
// notFound if the query found no row, else a storage error.
func (e *Errors) Scan(ctx context.Context, op string, notFound, err error) error {
	switch {
	case err == nil:
		return nil
	case e.IsNoRows(err):
		return notFound
	}
	return e.Storage(ctx, op, err)
}

// Insert answers for the INSERT of a new record that returned err: nil for
// none, conflict if a key of the record is taken, else a storage error.
func (e *Errors) Insert(ctx context.Context, op string, conflict, err error) error {
	switch {
	case err == nil:
		return nil
	case e.driver.IsUniqueViolation(err):
		return conflict
	}
	return e.Storage(ctx, op, err)
}

// IsStorableText reports whether a text key of the Models can hold s:
// valid UTF-8 without NUL. A client ID that is not cannot match a stored
// client, so lookups answer ErrNotFound for it without asking the
// database, which would answer an encoding error.
func IsStorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// ValidClientID reports whether clientID can name a stored record: it is
// not empty (no record belongs to no client) and is storable text.
func ValidClientID(clientID string) bool {
	return clientID != "" && IsStorableText(clientID)
}

// CheckSave answers what a save answers before it reaches the database:
// the context's error, NilRecord for a nil record, and ZeroDigest when
// zeroKey reports a key of the record zero.
func CheckSave[T any](ctx context.Context, e *Errors, rec *T, zeroKey func(*T) bool) error {
	return CheckRecord(ctx, e, rec, func(r *T) error {
		if zeroKey(r) {
			return e.ZeroDigest
		}
		return nil
	})
}

// CheckRecord is CheckSave for a record whose key answers an error of its
// own: badKey returns it, or nil for a key that can be saved.
func CheckRecord[T any](ctx context.Context, e *Errors, rec *T, badKey func(*T) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec == nil {
		return e.NilRecord
	}
	return badKey(rec)
}

// CheckID answers EmptyRecordID for the empty ID of a grant record or vault
// entry, which no lookup or revocation could name (RevokeGrant of ""
// matches nothing), and nil for any other.
func (e *Errors) CheckID(id string) error {
	if id == "" {
		return e.EmptyRecordID
	}
	return nil
}

// ValidTokenKind reports whether k is a kind of token the Models store.
func ValidTokenKind(k mcpoauth.TokenKind) bool {
	return k == mcpoauth.AccessToken || k == mcpoauth.RefreshToken
}

// CheckTokens validates tokens for insertion: none nil, none with a zero
// digest or an unknown kind.
func (e *Errors) CheckTokens(tokens []*mcpoauth.Token) error {
	for _, t := range tokens {
		if t == nil {
			return e.NilRecord
		}
		if t.Digest.IsZero() {
			return e.ZeroDigest
		}
		if !ValidTokenKind(t.Kind) {
			return e.BadTokenKind
		}
	}
	return nil
}

// CheckKey answers what a call that finds a record by a text key answers
// before it reaches the database: the context's error, and notFound for a
// key that no record can have (it is not storable text).
func CheckKey(ctx context.Context, key string, notFound error) error {
	return checkKey(ctx, IsStorableText(key), notFound)
}

// CheckClientID answers, as CheckKey, what a call about a client's record
// answers before it reaches the database; an empty client ID names no
// record either.
func CheckClientID(ctx context.Context, clientID string, notFound error) error {
	return checkKey(ctx, ValidClientID(clientID), notFound)
}

// checkKey answers the context's error, else notFound unless the key can
// name a record (ok).
func checkKey(ctx context.Context, ok bool, notFound error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !ok {
		return notFound
	}
	return nil
}
