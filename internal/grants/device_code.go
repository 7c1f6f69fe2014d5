package grants

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// User codes (RFC 8628 §6.1): eight characters from twenty consonants, with
// no vowels (no words can form) and no digits (none to confuse with
// letters): 20^8, about 2^34.6 codes. Entered case-insensitively, with or
// without the dash of the XXXX-XXXX display form.
const (
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	UserCodeLength   = 8
	// userCodeAcceptBelow is the largest multiple of 20 a byte can hold:
	// bytes from it up to 255 are rejected, so every letter is drawn with
	// probability exactly 1/20 (256 is not a multiple of 20; a plain modulo
	// would favour the first 16 letters).
	userCodeAcceptBelow = 256 - 256%len(UserCodeAlphabet)
	// maxUserCodeAttempts bounds the retries when a fresh user code collides
	// with a stored one; with 2^34.6 codes a collision is rare, eight in a
	// row means the store is broken.
	maxUserCodeAttempts = 8
	// maxUserCodeInput bounds what NormalizeUserCode looks at.
	maxUserCodeInput = 64
	// slowDownStep is what slow_down adds to the interval (RFC 8628 §3.5).
	slowDownStep = 5 * time.Second
	// devicePollRounds bounds how often a poll re-reads a record whose
	// conditional update lost to a concurrent decision or poll.
	devicePollRounds = 3
	// deviceCSRFPurpose is what the device page's CSRF token is derived
	// for. It cannot collide with a consent request id (those are base64url).
	deviceCSRFPurpose = "mcpoauth device verification"
)

// The device flow's errors. Token endpoint errors are RFC 8628 §3.5's;
// verification page errors are shown to the user.
var (
	errDeviceDisabled        = oautherr.UnsupportedGrantType("device authorization is not enabled")
	errInvalidDeviceCode     = oautherr.InvalidGrant("invalid device code")
	errAuthorizationPending  = oautherr.New(oautherr.CodeAuthorizationPending, "the user has not decided yet", http.StatusBadRequest)
	errSlowDown              = oautherr.New(oautherr.CodeSlowDown, "polling too frequently: wait 5 more seconds between polls", http.StatusBadRequest)
	errDeviceAccessDenied    = oautherr.AccessDenied("the user denied the request")
	errDeviceCodeExpired     = oautherr.New(oautherr.CodeExpiredToken, "the device code has expired", http.StatusBadRequest)
	errDeviceConsumeConflict = oautherr.InvalidGrant("the device authorization changed while it was redeemed")

	// ErrUnknownUserCode: the user code is malformed, unknown, or its
	// authorization was consumed.
	ErrUnknownUserCode = oautherr.InvalidGrant("unknown user code")
	// ErrUserCodeExpired: the device authorization expired before the user
	// decided; the device must start again.
	ErrUserCodeExpired = oautherr.New(oautherr.CodeExpiredToken, "the user code has expired", http.StatusBadRequest)
	// ErrDeviceDecided: the device authorization was approved or denied
	// already; a decision is final.
	ErrDeviceDecided = oautherr.InvalidGrant("the device authorization was already decided")
	// ErrDeviceForeignPage: the decision does not carry the CSRF token of a
	// verification page this browser was shown.
	ErrDeviceForeignPage = &oautherr.Error{Code: oautherr.CodeAccessDenied, Description: "the decision did not come from this server's verification page", Status: http.StatusForbidden}
)

// NewUserCode draws a user code from rnd, uniformly over UserCodeAlphabet
// by rejection sampling, and returns it normalised (eight letters, no dash).
func NewUserCode(rnd io.Reader) (string, error) {
	var out [UserCodeLength]byte
	var buf [2 * UserCodeLength]byte
	n := 0
	for n < UserCodeLength {
		if _, err := io.ReadFull(rnd, buf[:]); err != nil {
			return "", fmt.Errorf("draw user code: %w", err)
		}
		for _, b := range buf {
			if int(b) >= userCodeAcceptBelow {
				continue
			}
			out[n] = UserCodeAlphabet[int(b)%len(UserCodeAlphabet)]
			if n++; n == UserCodeLength {
				break
			}
		}
	}
	return string(out[:]), nil
}

// FormatUserCode shows a normalised user code as XXXX-XXXX.
func FormatUserCode(normalized string) string {
	if len(normalized) != UserCodeLength {
		return normalized
	}
	return normalized[:4] + "-" + normalized[4:]
}

// NormalizeUserCode reads a user code as a user typed it: letters in either
// case, dashes and spaces ignored (RFC 8628 §6.1). It returns the eight
// uppercase letters, or false if the input cannot be a user code. Only ASCII
// is folded, so no other script's letter can stand in for one.
func NormalizeUserCode(s string) (string, bool) {
	if len(s) > maxUserCodeInput {
		return "", false
	}
	out := make([]byte, 0, UserCodeLength)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		if !isUserCodeLetter(c) || len(out) == UserCodeLength {
			return "", false
		}
		out = append(out, c)
	}
	if len(out) != UserCodeLength {
		return "", false
	}
	return string(out), true
}

func isUserCodeLetter(c byte) bool {
	for i := 0; i < len(UserCodeAlphabet); i++ {
		if UserCodeAlphabet[i] == c {
			return true
		}
	}
	return false
}

// DeviceCSRFToken derives the CSRF token of the device verification page
// from the browser-binding secret: only a page this server's application
// rendered for the browser holding the cookie can carry it (double submit).
// It is not bound to a user code, because on the plain verification_uri the
// user types the code into the very form that carries the token.
func DeviceCSRFToken(browserSecret string) string {
	return CSRFToken(browserSecret, deviceCSRFPurpose)
}

// CheckDeviceCSRF reports whether token is the device page's CSRF token for
// this browser; a browser without the binding cookie has none.
func CheckDeviceCSRF(browserSecret, token string) bool {
	return browserSecret != "" && hmac.Equal([]byte(DeviceCSRFToken(browserSecret)), []byte(token))
}

// DeviceAuthorizationRequest is an RFC 8628 §3.1 request from an
// authenticated client.
type DeviceAuthorizationRequest struct {
	Client   *record.Client
	Scope    string
	Resource string
}

// DeviceAuthorizationResponse is the RFC 8628 §3.2 response.
type DeviceAuthorizationResponse struct {
	DeviceCode string
	// UserCode is in display form, XXXX-XXXX.
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	ExpiresIn               time.Duration
	Interval                time.Duration
}

func (s *Service) deviceEnabled() bool { return s.Devices != nil && s.Enabled(DeviceCode) }

// RequestDeviceAuthorization starts a device flow (RFC 8628 §3.1-3.2): it
// checks the client may use the grant, resolves scope and resource as an
// authorization request does, and stores a pending authorization under a
// 256-bit device code (§5.2) and a fresh user code, unique among stored
// ones.
func (s *Service) RequestDeviceAuthorization(ctx context.Context, x DeviceAuthorizationRequest) (*DeviceAuthorizationResponse, *oautherr.Error) {
	if !s.deviceEnabled() {
		return nil, errDeviceDisabled
	}
	if !x.Client.HasGrantType(DeviceCode) {
		return nil, oautherr.UnauthorizedClient("client is not registered for the device_code grant")
	}
	scopes, oerr := s.ResolveScopes(x.Client, x.Scope)
	if oerr != nil {
		return nil, oerr
	}
	res, oerr := s.ResolveResource(x.Resource, s.StrictResource)
	if oerr != nil {
		return nil, oerr
	}
	deviceCode := secret.New()
	now := s.Now()
	base := record.DeviceAuthorization{
		DeviceCodeDigest: secret.Digest(deviceCode),
		ClientID:         x.Client.ID,
		Scopes:           scopes,
		Resource:         res,
		GrantID:          newGrantID(),
		Status:           record.DevicePending,
		DevicePoll:       record.DevicePoll{Interval: s.DevicePollInterval},
		ExpiresAt:        now.Add(s.DeviceAuthorizationLifetime),
	}
	userCode, err := s.saveWithFreeUserCode(ctx, base)
	if err != nil {
		return nil, storeError(err)
	}
	display := FormatUserCode(userCode)
	return &DeviceAuthorizationResponse{
		DeviceCode:      deviceCode,
		UserCode:        display,
		VerificationURI: s.DeviceVerificationURI,
		// RFC 8628 §3.3.1: the URI with the code, for a QR code or a link.
		VerificationURIComplete: redirect.WithParams(s.DeviceVerificationURI, url.Values{"user_code": {display}}),
		ExpiresIn:               s.DeviceAuthorizationLifetime,
		Interval:                s.DevicePollInterval,
	}, nil
}

// saveWithFreeUserCode stores the authorization under a fresh user code,
// drawing again while the store reports the code taken.
func (s *Service) saveWithFreeUserCode(ctx context.Context, base record.DeviceAuthorization) (string, error) {
	var err error
	for range maxUserCodeAttempts {
		var code string
		if code, err = NewUserCode(rand.Reader); err != nil {
			return "", err
		}
		d := base // a fresh record per attempt: a saved one belongs to the store
		d.UserCodeDigest = secret.Digest(code)
		err = s.Devices.SaveDeviceAuthorization(ctx, &d)
		if err == nil {
			return code, nil
		}
		if !errors.Is(err, record.ErrConflict) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free user code after %d attempts: %w", maxUserCodeAttempts, err)
}

// DeviceTokenRequest is a token request with
// grant_type=urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4)
// from an authenticated client.
type DeviceTokenRequest struct {
	Client     *record.Client
	DeviceCode string
	// JKT binds the tokens to a DPoP key (RFC 9449 §5); "" for none.
	JKT string
}

// PollDeviceCode answers a device's poll (RFC 8628 §3.5): tokens once the
// user approved, exactly once (atomic consume); access_denied once denied;
// expired_token after expiry; otherwise authorization_pending, or slow_down
// when the device polls faster than its interval, which then grows by five
// seconds (up to DeviceMaxPollInterval). Unknown codes and other clients'
// codes are invalid_grant and change nothing.
//
// The poll bookkeeping is a compare-and-set on the pending record as read:
// if the user decided meanwhile, it fails, and the poll re-reads the record
// and answers by the decision. A poll never writes a status.
func (s *Service) PollDeviceCode(ctx context.Context, x DeviceTokenRequest) (*TokenResponse, *oautherr.Error) {
	if !s.deviceEnabled() {
		return nil, errDeviceDisabled
	}
	if x.DeviceCode == "" {
		return nil, oautherr.InvalidRequest("device_code is required")
	}
	digest := secret.Digest(x.DeviceCode)
	fallback := errSlowDown
	for range devicePollRounds {
		d, err := s.Devices.GetDeviceAuthorization(ctx, digest)
		if err != nil {
			if isNotFound(err) {
				return nil, errInvalidDeviceCode
			}
			return nil, storeError(err)
		}
		if d.ClientID != x.Client.ID {
			// RFC 6749 §5.2: a grant issued to another client is
			// invalid_grant; the same answer as an unknown code, so a
			// client learns nothing of others' codes.
			return nil, errInvalidDeviceCode
		}
		now := s.Now()
		if !now.Before(d.ExpiresAt) {
			return nil, errDeviceCodeExpired
		}
		switch d.Status {
		case record.DeviceDenied:
			// The denial is reported once; the record goes, so a later poll
			// is invalid_grant.
			if err := s.Devices.DeleteDeviceAuthorization(ctx, digest, x.Client.ID); err != nil && !isNotFound(err) {
				return nil, storeError(err)
			}
			return nil, errDeviceAccessDenied
		case record.DeviceApproved:
			if d.UserID == "" {
				// A token of a device grant without its user would pass
				// for a client's own (client credentials) token.
				return nil, storeError(errors.New("approved device authorization has no user"))
			}
			resp, issued, oerr := s.mintTokens(x.Client, d.UserID, d.GrantID, d.Scopes, d.Resource, x.JKT, now, d.GrantExpiresAt, s.issuesRefresh(x.Client, d.Scopes))
			if oerr != nil {
				return nil, oerr
			}
			err := s.Devices.ConsumeDeviceAuthorization(ctx, digest, x.Client.ID, now, issued...)
			if err == nil {
				if oerr := s.redeemed(ctx, d.GrantID, x.Client, now); oerr != nil {
					return nil, oerr
				}
				s.issued(ctx, audit.TokenIssued, DeviceCode, d.ClientID, d.UserID, d.GrantID, resp)
				return resp, nil
			}
			if !isNotFound(err) {
				return nil, storeError(err)
			}
			// Consumed by a concurrent poll, or expired meanwhile: the
			// next read tells which.
			fallback = errDeviceConsumeConflict
		case record.DevicePending:
			next := record.DevicePoll{LastPolledAt: now, Interval: d.Interval}
			answer := errAuthorizationPending
			if !d.LastPolledAt.IsZero() && now.Sub(d.LastPolledAt) < d.Interval {
				// RFC 8628 §3.5: slow_down, and the interval grows by five
				// seconds for this and every later poll.
				next.Interval = d.Interval + slowDownStep
				if ceiling := max(s.DeviceMaxPollInterval, d.Interval); s.DeviceMaxPollInterval > 0 && next.Interval > ceiling {
					// Capped: an interval that grew without bound would stall the device.
					next.Interval = ceiling
				}
				answer = errSlowDown
			}
			err := s.Devices.RecordDevicePoll(ctx, digest, x.Client.ID, d.DevicePoll, next)
			if err == nil {
				return nil, answer
			}
			if !isNotFound(err) {
				return nil, storeError(err)
			}
			// The record changed since it was read: decided (the next read
			// answers by the decision) or polled concurrently (then this
			// poll came too fast: slow_down if it keeps losing).
			fallback = errSlowDown
		default:
			return nil, storeError(fmt.Errorf("device authorization has unknown status %d", d.Status))
		}
	}
	return nil, fallback
}

// PendingDevice returns the pending device authorization a user code names,
// and its client, for the verification page to show before the user decides
// (RFC 8628 §5.4: the user must see what they authorize). Callers rate-limit
// it: it is a user code oracle (§5.1).
func (s *Service) PendingDevice(ctx context.Context, userCode string) (*record.DeviceAuthorization, *record.Client, *oautherr.Error) {
	d, _, oerr := s.pendingDevice(ctx, userCode)
	if oerr != nil {
		return nil, nil, oerr
	}
	client, oerr := s.pendingClient(ctx, d.ClientID, ErrUnknownUserCode)
	if oerr != nil {
		return nil, nil, oerr
	}
	return d, client, nil
}

func (s *Service) pendingDevice(ctx context.Context, userCode string) (*record.DeviceAuthorization, record.Digest, *oautherr.Error) {
	if !s.deviceEnabled() {
		return nil, record.Digest{}, errDeviceDisabled
	}
	norm, ok := NormalizeUserCode(userCode)
	if !ok {
		return nil, record.Digest{}, ErrUnknownUserCode
	}
	digest := secret.Digest(norm)
	d, err := s.Devices.GetDeviceAuthorizationByUserCode(ctx, digest)
	if err != nil {
		if isNotFound(err) {
			return nil, digest, ErrUnknownUserCode
		}
		return nil, digest, storeError(err)
	}
	switch {
	case !s.Now().Before(d.ExpiresAt):
		return nil, digest, ErrUserCodeExpired
	case d.Status != record.DevicePending:
		return nil, digest, ErrDeviceDecided
	}
	return d, digest, nil
}

// DecideDevice records the signed-in user's approval or denial of the
// device authorization a user code names. The decision is atomic and final:
// of concurrent decisions one wins, the others get ErrDeviceDecided. An
// approval starts the grant's absolute lifetime.
//
// identify, if set, names the user's upstream identity for the grant an
// approval makes (see RecordGrant).
func (s *Service) DecideDevice(ctx context.Context, userCode, userID string, approve bool, identify IdentifyFunc) *oautherr.Error {
	if userID == "" {
		return ErrSignInRequired
	}
	d, digest, oerr := s.pendingDevice(ctx, userCode)
	if oerr != nil {
		return oerr
	}
	decision := record.DeviceDecision{Status: record.DeviceDenied, UserID: userID}
	var grant *record.Grant
	if approve {
		now := s.Now()
		decision.Status = record.DeviceApproved
		decision.GrantExpiresAt = now.Add(s.GrantLifetime)
		grant = &record.Grant{
			ID: d.GrantID, ClientID: d.ClientID, UserID: userID, Scopes: d.Scopes, Resource: d.Resource,
			CreatedAt: now, ExpiresAt: decision.GrantExpiresAt,
		}
		// The record is saved before the decision, so that no token of the
		// grant exists without it. Two approvals of one user code share the
		// grant id: the second save conflicts, and that approval lost.
		if oerr := s.RecordGrant(ctx, grant, identify); oerr != nil {
			if errors.Is(oerr.Cause, record.ErrConflict) {
				return ErrDeviceDecided
			}
			return oerr
		}
	}
	if err := s.Devices.ResolveDeviceAuthorization(ctx, digest, decision); err != nil {
		if grant != nil && s.Grants != nil {
			// A denial won the race: no token of this grant will ever be
			// issued, so its record (and what OnApproval stored for it)
			// goes.
			s.discardGrant(ctx, grant.ID)
		}
		if isNotFound(err) {
			return ErrDeviceDecided
		}
		return storeError(err)
	}
	if approve {
		s.Telemetry.Emit(ctx, audit.Event{Type: audit.AuthorizationApproved, ClientID: d.ClientID, UserID: userID, GrantID: d.GrantID, GrantType: DeviceCode})
	} else {
		s.emitDenied(ctx, d.ClientID, userID, DeviceCode)
	}
	return nil
}
