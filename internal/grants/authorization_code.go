package grants

import (
	"context"
	"crypto/hmac"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// AuthorizationParams is an authorization request (OAuth 2.1 §4.1.1) whose
// client and redirect URI were verified by the caller: every error Authorize
// returns may be sent to RedirectURI.
type AuthorizationParams struct {
	Client              *record.Client
	RedirectURI         string
	RedirectURIProvided bool
	ResponseType        string
	CodeChallenge       string
	CodeChallengeMethod string
	Scope               string
	Resource            string
	State               string
	// BrowserSecret is the value of the browser-binding cookie; the decision
	// must later come from the browser that holds it.
	BrowserSecret string
	// Prompt is the request's prompt parameter (OpenID Connect Core
	// §3.1.2.1), space-separated values; only whether it asks for the user
	// is kept.
	Prompt string
}

// Authorize validates the rest of an authorization request and stores it as
// pending. It returns the opaque request id the consent page is addressed by,
// and the stored request.
func (s *Service) Authorize(ctx context.Context, p AuthorizationParams) (string, *record.AuthorizationRequest, *oautherr.Error) {
	if !s.Enabled(AuthorizationCode) || !p.Client.HasGrantType(AuthorizationCode) {
		// A client not registered for the code grant
		// could obtain codes it could never redeem.
		return "", nil, oautherr.UnauthorizedClient("client is not allowed the authorization_code grant")
	}
	switch p.ResponseType {
	case "":
		return "", nil, oautherr.InvalidRequest("response_type is required")
	case "code":
	default:
		return "", nil, oautherr.UnsupportedResponseType("only response_type=code is supported")
	}
	// OAuth 2.1 §4.1.2.1 and §7.5.2: PKCE is required of every client, S256
	// only (an absent method would mean "plain").
	if p.CodeChallenge == "" {
		return "", nil, oautherr.InvalidRequest("code_challenge is required")
	}
	if p.CodeChallengeMethod != pkce.MethodS256 {
		return "", nil, oautherr.InvalidRequest("code_challenge_method must be S256")
	}
	if !pkce.ValidChallenge(p.CodeChallenge) {
		return "", nil, oautherr.InvalidRequest("code_challenge is malformed")
	}
	scopes, oerr := s.ResolveScopes(p.Client, p.Scope)
	if oerr != nil {
		return "", nil, oerr
	}
	res, oerr := s.ResolveResource(p.Resource, s.StrictResource)
	if oerr != nil {
		return "", nil, oerr
	}
	id := secret.New()
	now := s.Now()
	req := &record.AuthorizationRequest{
		ID:                  secret.Digest(id),
		BrowserDigest:       secret.Digest(p.BrowserSecret),
		ClientID:            p.Client.ID,
		RedirectURI:         p.RedirectURI,
		RedirectURIProvided: p.RedirectURIProvided,
		Scopes:              scopes,
		Resource:            res,
		State:               p.State,
		CodeChallenge:       p.CodeChallenge,
		ExpiresAt:           now.Add(s.AuthorizationRequestLifetime),
		PromptConsent:       promptsUser(p.Prompt),
	}
	if err := s.Store.SaveAuthorizationRequest(ctx, req); err != nil {
		return "", nil, storeError(err)
	}
	return id, req, nil
}

// promptsUser reports whether a prompt parameter asks for the user to be
// asked again: consent, login or select_account (OpenID Connect Core
// §3.1.2.1). none and unknown values ask for nothing.
func promptsUser(prompt string) bool {
	for v := range strings.FieldsSeq(prompt) {
		switch v {
		case "consent", "login", "select_account":
			return true
		}
	}
	return false
}

// CSRFToken derives the token the consent form carries: an HMAC of the
// request id under the browser-binding secret, so only a page rendered for
// the browser holding the cookie can produce it (double submit, bound to the
// request).
func CSRFToken(browserSecret, requestID string) string {
	m := secret.MAC(browserSecret, requestID) // crypto/hmac without its allocations
	return secret.Encode(m[:])
}

// Errors of the consent step. They are shown to the user, never redirected:
// the request they concern cannot be trusted.
var (
	ErrUnknownRequest = oautherr.InvalidRequest("unknown, expired or already decided authorization request")
	ErrForeignBrowser = &oautherr.Error{Code: oautherr.CodeAccessDenied, Description: "the decision did not come from the browser that started the authorization", Status: 403}
)

// PendingRequest returns a pending request and its client for the consent
// page, after checking that browserSecret is the browser that started it.
func (s *Service) PendingRequest(ctx context.Context, requestID, browserSecret string) (*record.AuthorizationRequest, *record.Client, *oautherr.Error) {
	req, oerr := s.pending(ctx, requestID, browserSecret)
	if oerr != nil {
		return nil, nil, oerr
	}
	client, oerr := s.pendingClient(ctx, req.ClientID, ErrUnknownRequest)
	if oerr != nil {
		return nil, nil, oerr
	}
	return req, client, nil
}

// pendingClient returns the client of a pending request or device
// authorization for its page. A client deleted since, or whose metadata
// document is gone or invalid now, makes the pending one unknown: the error
// is unknown, with the cause; a server error stays one.
func (s *Service) pendingClient(ctx context.Context, clientID string, unknown *oautherr.Error) (*record.Client, *oautherr.Error) {
	client, oerr := s.GetClient(ctx, clientID)
	if oerr != nil {
		if oerr.Code != oautherr.CodeServerError {
			oerr = unknown.WithCause(oerr)
		}
		return nil, oerr
	}
	return client, nil
}

func (s *Service) pending(ctx context.Context, requestID, browserSecret string) (*record.AuthorizationRequest, *oautherr.Error) {
	if requestID == "" {
		return nil, ErrUnknownRequest
	}
	req, err := s.Store.GetAuthorizationRequest(ctx, secret.Digest(requestID))
	if err != nil {
		if isNotFound(err) {
			return nil, ErrUnknownRequest
		}
		return nil, storeError(err)
	}
	if !s.Now().Before(req.ExpiresAt) {
		return nil, ErrUnknownRequest
	}
	if browserSecret == "" || !secret.Equal(req.BrowserDigest, secret.Digest(browserSecret)) {
		return nil, ErrForeignBrowser
	}
	return req, nil
}

// Decision is the user's answer on the consent page.
type Decision struct {
	RequestID     string
	CSRFToken     string
	BrowserSecret string
	Approve       bool
	// SignIn tells who is signed in. Decide asks it only for an approval,
	// and only after the request, browser and CSRF token were verified, so
	// a forged decision learns nothing and burns nothing.
	SignIn func() (string, error)
	// Identify, if set, names the user's upstream identity for the grant an
	// approval makes (see RecordGrant).
	Identify IdentifyFunc
}

// Outcome is where the browser goes after a decision: to RedirectURI with
// Code, or with Err (access_denied, server_error); State is echoed.
type Outcome struct {
	RedirectURI string
	State       string
	Code        string
	Err         *oautherr.Error
}

// checkDecision verifies a decision may be taken (known pending request,
// same browser, valid CSRF token) without consuming anything.
func (s *Service) checkDecision(ctx context.Context, d Decision) *oautherr.Error {
	if _, oerr := s.pending(ctx, d.RequestID, d.BrowserSecret); oerr != nil {
		return oerr
	}
	want := CSRFToken(d.BrowserSecret, d.RequestID)
	if !hmac.Equal([]byte(want), []byte(d.CSRFToken)) {
		return ErrForeignBrowser
	}
	return nil
}

// ErrAccessDenied, returned (or wrapped) by the sign-in callback, says that
// the user is signed in but may not authorize the request: the decision is
// then a denial, sent to the client's redirect URI as access_denied (RFC
// 6749 §4.1.2.1), not a sign-in page.
var ErrAccessDenied = errors.New("mcpoauth: the signed-in user may not authorize this request")

// errUserRefused is the access_denied a client gets when the application
// refused the signed-in user.
var errUserRefused = oautherr.AccessDenied("the signed-in user is not allowed to authorize this client")

// Decide consumes the pending request and, on approval, issues an
// authorization code. The returned error is shown to the user; an Outcome
// goes to the client's redirect URI.
func (s *Service) Decide(ctx context.Context, d Decision) (*Outcome, *oautherr.Error) {
	if oerr := s.checkDecision(ctx, d); oerr != nil {
		return nil, oerr
	}
	var userID string
	var refused error
	if d.Approve {
		var err error
		if d.SignIn != nil {
			userID, err = d.SignIn()
		}
		switch {
		case errors.Is(err, ErrAccessDenied):
			// Signed in, but refused by the application: the client
			// learns it at once rather than waiting for a code that
			// never comes.
			refused = err
		case err != nil || userID == "":
			return nil, ErrSignInRequired.WithCause(err)
		}
	}
	req, err := s.Store.ConsumeAuthorizationRequest(ctx, secret.Digest(d.RequestID))
	if err != nil {
		if isNotFound(err) {
			return nil, ErrUnknownRequest
		}
		return nil, storeError(err)
	}
	out := &Outcome{RedirectURI: req.RedirectURI, State: req.State}
	switch {
	case refused != nil:
		out.Err = errUserRefused.WithCause(refused)
		s.emitDenied(ctx, req.ClientID, userID, AuthorizationCode)
		return out, nil
	case !d.Approve:
		out.Err = oautherr.AccessDenied("the user denied the request")
		s.emitDenied(ctx, req.ClientID, "", AuthorizationCode)
		return out, nil
	}
	code := secret.New()
	now := s.Now()
	grant := &record.Grant{
		ID: newGrantID(), ClientID: req.ClientID, UserID: userID, Scopes: req.Scopes, Resource: req.Resource,
		CreatedAt: now, ExpiresAt: now.Add(s.GrantLifetime),
	}
	if oerr := s.RecordGrant(ctx, grant, d.Identify); oerr != nil {
		out.Err = oerr
		return out, nil
	}
	rec := &record.AuthorizationCode{
		Digest:              secret.Digest(code),
		ClientID:            req.ClientID,
		UserID:              userID,
		GrantID:             grant.ID,
		RedirectURI:         req.RedirectURI,
		RedirectURIProvided: req.RedirectURIProvided,
		Scopes:              req.Scopes,
		Resource:            req.Resource,
		CodeChallenge:       req.CodeChallenge,
		ExpiresAt:           now.Add(s.AuthorizationCodeLifetime),
		GrantExpiresAt:      grant.ExpiresAt,
	}
	if err := s.Store.SaveAuthorizationCode(ctx, rec); err != nil {
		// No code of the grant exists: its record, and what OnApproval
		// stored for it (the user's upstream tokens), go, so that it
		// neither lists nor counts as remembered consent.
		s.discardGrant(ctx, grant.ID)
		out.Err = storeError(err)
		return out, nil
	}
	s.Telemetry.Emit(ctx, audit.Event{Type: audit.AuthorizationApproved, ClientID: req.ClientID, UserID: userID, GrantID: grant.ID, GrantType: AuthorizationCode})
	out.Code = code
	return out, nil
}

// CodeExchange is a token request with grant_type=authorization_code from an
// authenticated client.
type CodeExchange struct {
	Client       *record.Client
	Code         string
	CodeVerifier string
	RedirectURI  string
	Resource     string
	// JKT is the thumbprint of the DPoP key the request proved, "" for
	// none: the tokens are bound to it (RFC 9449 §5).
	JKT string
}

// ExchangeCode redeems an authorization code (OAuth 2.1 §4.1.3). Every check
// runs before the code is consumed, so a bad request burns nothing; a second
// valid redemption revokes the grant (OAuth 2.1 §4.1.3, RFC 9700 §4.5).
func (s *Service) ExchangeCode(ctx context.Context, x CodeExchange) (*TokenResponse, *oautherr.Error) {
	if x.Code == "" {
		return nil, oautherr.InvalidRequest("code is required")
	}
	if x.CodeVerifier == "" {
		// RFC 9700 §4.8: a code issued with a challenge needs its verifier.
		return nil, oautherr.InvalidRequest("code_verifier is required")
	}
	digest := secret.Digest(x.Code)
	code, err := s.Store.GetAuthorizationCode(ctx, digest)
	if err != nil {
		if isNotFound(err) {
			return nil, oautherr.InvalidGrant("invalid authorization code")
		}
		return nil, storeError(err)
	}
	now := s.Now()
	switch {
	case code.ClientID != x.Client.ID:
		// OAuth 2.1 §4.1.3: the code must have been issued to this client.
		return nil, oautherr.InvalidGrant("invalid authorization code")
	case !now.Before(code.ExpiresAt):
		return nil, oautherr.InvalidGrant("authorization code expired")
	case !pkce.Verify(x.CodeVerifier, code.CodeChallenge):
		return nil, oautherr.InvalidGrant("code_verifier does not match the code_challenge")
	case code.RedirectURIProvided && x.RedirectURI == "",
		x.RedirectURI != "" && x.RedirectURI != code.RedirectURI:
		// OAuth 2.1 §10.2 / RFC 6749 §4.1.3: redirect_uri binding.
		return nil, oautherr.InvalidGrant("redirect_uri does not match the authorization request")
	}
	if oerr := checkBoundResource(x.Resource, code.Resource); oerr != nil {
		return nil, oerr
	}
	if code.Used {
		return nil, s.replayed(ctx, AuthorizationCode, code.ClientID, code.UserID, code.GrantID, "authorization code already used")
	}
	// x.Client is the code's client (checked above).
	resp, toSave, oerr := s.mintTokens(x.Client, code.UserID, code.GrantID, code.Scopes, code.Resource, x.JKT, now, code.GrantExpiresAt, s.issuesRefresh(x.Client, code.Scopes))
	if oerr != nil {
		return nil, oerr
	}
	if err := s.Store.ConsumeAuthorizationCode(ctx, digest, x.Client.ID, toSave...); err != nil {
		// ErrAlreadyUsed: lost a race with another valid redemption.
		return nil, s.redemptionFailed(ctx, err, AuthorizationCode, code.ClientID, code.UserID, code.GrantID, "authorization code already used", "invalid authorization code")
	}
	if oerr := s.redeemed(ctx, code.GrantID, x.Client, now); oerr != nil {
		return nil, oerr
	}
	s.issued(ctx, audit.TokenIssued, AuthorizationCode, code.ClientID, code.UserID, code.GrantID, resp)
	return resp, nil
}

// issuesRefresh reports whether a refresh token goes with the tokens of a
// grant of scopes: only when the server enables the refresh grant, and then
// when the client registered it or asked for offline_access (MCP SEP-2207;
// OpenID Connect Core §11). Most MCP clients register refresh_token and do
// not ask; ChatGPT asks, and refreshes only when the server metadata lists
// offline_access.
func (s *Service) issuesRefresh(c *record.Client, scopes []string) bool {
	return s.Enabled(RefreshToken) && (c.HasGrantType(RefreshToken) || slices.Contains(scopes, OfflineAccess))
}

// redemptionFailed answers err, a store's refusal to redeem a one-time
// credential (a code's consumption, a refresh token's rotation) of grantID:
// ErrAlreadyUsed is a replay (see replayed), answered with used; not found
// is invalid_grant, answered with invalid; anything else is a server error.
func (s *Service) redemptionFailed(ctx context.Context, err error, grantType, clientID, userID, grantID, used, invalid string) *oautherr.Error {
	switch {
	case errors.Is(err, record.ErrAlreadyUsed):
		return s.replayed(ctx, grantType, clientID, userID, grantID, used)
	case isNotFound(err):
		return oautherr.InvalidGrant(invalid)
	}
	return storeError(err)
}

// redeemed records, once a credential of grantID was redeemed for tokens,
// the use of the grant and of client (see recordGrantUse and recordUse).
func (s *Service) redeemed(ctx context.Context, grantID string, client *record.Client, now time.Time) *oautherr.Error {
	s.recordGrantUse(ctx, grantID, now)
	return s.recordUse(ctx, client, now)
}

// replayed revokes the grant of a credential presented a second time by its
// legitimate client, and answers invalid_grant. grantType, clientID and
// userID describe the credential, for the audit event.
func (s *Service) replayed(ctx context.Context, grantType, clientID, userID, grantID, description string) *oautherr.Error {
	s.Telemetry.Replayed(ctx, grantType)
	e := audit.Event{Type: audit.ReplayDetected, ClientID: clientID, UserID: userID, GrantID: grantID, GrantType: grantType}
	if err := s.Store.RevokeGrant(ctx, grantID); err != nil {
		e.Outcome, e.Reason = audit.Failure, oautherr.CodeServerError
		s.Telemetry.Emit(ctx, e)
		return storeError(err)
	}
	s.Telemetry.Emit(ctx, e)
	return oautherr.InvalidGrant(description)
}

// emitDenied reports a denied authorization.
func (s *Service) emitDenied(ctx context.Context, clientID, userID, grantType string) {
	s.Telemetry.Emit(ctx, audit.Event{Type: audit.AuthorizationDenied, ClientID: clientID, UserID: userID, GrantType: grantType, Outcome: audit.Failure, Reason: oautherr.CodeAccessDenied})
}

// issued reports a token response of grantType: the event of type typ and
// the tokens-issued metric.
func (s *Service) issued(ctx context.Context, typ audit.Type, grantType, clientID, userID, grantID string, resp *TokenResponse) {
	if s.Telemetry == nil {
		return
	}
	s.Telemetry.TokensIssued(ctx, grantType, resp.RefreshToken != "")
	s.Telemetry.Emit(ctx, audit.Event{Type: typ, ClientID: clientID, UserID: userID, GrantID: grantID, GrantType: grantType})
}

// expiresIn is the remaining lifetime, never negative.
func expiresIn(exp, now time.Time) time.Duration {
	if d := exp.Sub(now); d > 0 {
		return d
	}
	return 0
}
