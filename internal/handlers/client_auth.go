package handlers

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/clientjwt"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// clientAuthFailed is the one answer to every failed client authentication:
// unknown client, wrong secret and missing secret look alike.
var clientAuthFailed = oautherr.InvalidClient("client authentication failed")

// clientRequest begins a request at an endpoint where the client
// authenticates (the token, device authorization, introspection and
// revocation endpoints): Cache-Control: no-store, since the answer may carry
// credentials, then the form parsed and the client authenticated. On a
// failure it has answered, under step, and ok is false.
func (e *Env) clientRequest(w http.ResponseWriter, r *http.Request, step string) (form url.Values, client *record.Client, ok bool) {
	httpx.NoStore(w)
	form, oerr := httpx.ParseForm(w, r)
	if oerr != nil {
		e.fail(w, r, step, oerr)
		return nil, nil, false
	}
	client, oerr = e.authenticateClient(r, form)
	if oerr != nil {
		e.writeClientError(w, r, step, oerr)
		return nil, nil, false
	}
	return form, client, true
}

// authenticateClient identifies the client of a token, revocation,
// introspection or device request (OAuth 2.1 §2.4): client_secret_basic
// (RFC 6749 §2.3.1, id and secret form-urlencoded before base64),
// client_secret_post, private_key_jwt (RFC 7523 §2.2, see
// authenticateAssertion), or none for a public client. Using two methods at once
// is invalid_request (RFC 6749 §2.3). A confidential client must use the
// method it registered (RFC 7591 §2); one whose registration named none may
// use either secret method. Every invalid_client is 401 with a Basic
// challenge, however the client tried: RFC 6749 §5.2 allows it for any
// failure, RFC 7662 §2.3 asks it of introspection, and clients (claude.ai)
// re-register only after a 401.
func (e *Env) authenticateClient(r *http.Request, form url.Values) (client *record.Client, oerr *oautherr.Error) {
	if e.Grants.Telemetry.EmitsEvents() {
		defer func() {
			if oerr != nil && oerr.Code == oautherr.CodeInvalidClient {
				e.Grants.Telemetry.Emit(r.Context(), audit.Event{Type: audit.ClientAuthenticationFailed, ClientID: claimedClientID(r, form), Outcome: audit.Failure, Reason: oerr.Description})
			}
		}()
	}
	p, oerr := params(form, "client_id", "client_secret", "client_assertion_type", "client_assertion")
	if oerr != nil {
		return nil, oerr
	}
	bodyID, bodySecret, assertionType, assertion := p[0], p[1], p[2], p[3]
	if assertionType != "" || assertion != "" {
		if bodySecret != "" || len(r.Header.Values("Authorization")) > 0 {
			return nil, oautherr.InvalidRequest("more than one client authentication method")
		}
		return e.authenticateAssertion(r, bodyID, assertionType, assertion)
	}
	id, sec, basic := bodyID, bodySecret, false
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return nil, oautherr.InvalidRequest("repeated Authorization header")
		}
		bid, bsec, ok := parseBasic(h[0])
		if !ok {
			return nil, oautherr.InvalidClient("malformed HTTP Basic credentials")
		}
		if bodySecret != "" || (bodyID != "" && bodyID != bid) {
			return nil, oautherr.InvalidRequest("more than one client authentication method")
		}
		id, sec, basic = bid, bsec, true
	}
	if id == "" {
		return nil, oautherr.InvalidClient("client_id is required")
	}
	client, oerr = e.Grants.GetClient(r.Context(), id)
	if oerr != nil && oerr.Code == oautherr.CodeServerError {
		return nil, oerr
	}
	if client == nil {
		// Same work as a wrong secret, so timing does not tell an unknown
		// client from a known confidential one.
		secret.Equal(secret.Digest(sec), record.Digest{})
		return nil, clientAuthFailed.WithCause(oerr)
	}
	if client.Metadata.TokenEndpointAuthMethod == grants.AuthMethodPrivateKeyJWT {
		// RFC 7591 §2: a client that registered private_key_jwt (or whose
		// metadata document names it) authenticates with nothing else;
		// it has no secret, and its client_id alone proves nothing.
		return nil, clientAuthFailed
	}
	if client.IsPublic() {
		if sec != "" || basic {
			// Credentials were included, and they cannot be right.
			return nil, clientAuthFailed
		}
		return client, nil
	}
	if sec == "" || !secret.Equal(secret.Digest(sec), client.SecretDigest) {
		return nil, clientAuthFailed
	}
	if !usesRegisteredMethod(client, basic) {
		return nil, errWrongAuthMethod
	}
	if !client.SecretExpiresAt.IsZero() && !e.Grants.Now().Before(client.SecretExpiresAt) {
		return nil, oautherr.InvalidClient("client secret expired")
	}
	return client, nil
}

// authenticateAssertion authenticates a client by a JWT it signed (RFC 7523
// §2.2 and §3; OpenID Connect Core §9 private_key_jwt): the assertion's sub
// names the client (client_id, optional in the body, must agree: RFC 7521
// §4.2), which must have registered private_key_jwt; clientjwt checks the
// signature against its keys, the claims, and that the jti is new. Every
// failure but a storage error is the one invalid_client.
func (e *Env) authenticateAssertion(r *http.Request, bodyID, assertionType, assertion string) (*record.Client, *oautherr.Error) {
	if assertionType == "" || assertion == "" {
		return nil, oautherr.InvalidRequest("client_assertion and client_assertion_type go together")
	}
	if assertionType != clientjwt.AssertionType {
		return nil, oautherr.InvalidClient("unsupported client_assertion_type")
	}
	v := e.Grants.Assertions
	if v == nil {
		return nil, oautherr.InvalidClient("private_key_jwt is not supported")
	}
	id, err := clientjwt.Subject(assertion)
	if err != nil {
		return nil, clientAuthFailed.WithCause(err)
	}
	if bodyID != "" && bodyID != id {
		return nil, clientAuthFailed
	}
	client, oerr := e.Grants.GetClient(r.Context(), id)
	if oerr != nil && oerr.Code == oautherr.CodeServerError {
		return nil, oerr
	}
	if client == nil {
		return nil, clientAuthFailed.WithCause(oerr)
	}
	if client.Metadata.TokenEndpointAuthMethod != grants.AuthMethodPrivateKeyJWT {
		// RFC 7591 §2: a client uses the method it registered.
		return nil, clientAuthFailed
	}
	if err := v.Verify(r.Context(), client.ID, client.Metadata, assertion); err != nil {
		if clientjwt.IsStoreError(err) {
			return nil, oautherr.ServerError(err)
		}
		return nil, clientAuthFailed.WithCause(err)
	}
	return client, nil
}

// claimedClientID is the client_id a failed authentication named: the
// body's, else the HTTP Basic user's, else the client assertion's subject
// (unverified); "" when it named none. Only the audit event takes it.
func claimedClientID(r *http.Request, form url.Values) string {
	if v := form["client_id"]; len(v) == 1 && v[0] != "" {
		return v[0]
	}
	if h := r.Header.Values("Authorization"); len(h) == 1 {
		if id, _, ok := parseBasic(h[0]); ok {
			return id
		}
	}
	if v := form["client_assertion"]; len(v) == 1 {
		if id, err := clientjwt.Subject(v[0]); err == nil {
			return id
		}
	}
	return ""
}

// errWrongAuthMethod: the secret is right, but not sent the way the client
// registered. Checked after the secret, so that it tells nothing to a caller
// who does not know it.
var errWrongAuthMethod = oautherr.InvalidClient("client authentication method does not match the registered token_endpoint_auth_method")

// usesRegisteredMethod reports whether a confidential client presented its
// secret with the method it registered (RFC 7591 §2 token_endpoint_auth_method).
// A client that registered no method may use either: RFC 7591 defaults it to
// client_secret_basic, but clients in the wild send client_secret_post.
func usesRegisteredMethod(c *record.Client, basic bool) bool {
	if c.AuthMethodDefaulted {
		return true
	}
	switch c.Metadata.TokenEndpointAuthMethod {
	case grants.AuthMethodClientSecretBasic:
		return basic
	case grants.AuthMethodClientSecretPost:
		return !basic
	}
	return false
}

// parseBasic decodes "Basic base64(urlencode(id):urlencode(secret))".
func parseBasic(h string) (id, sec string, ok bool) {
	scheme, cred, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	rid, rsec, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rid); err != nil {
		return "", "", false
	}
	if sec, err = url.QueryUnescape(rsec); err != nil {
		return "", "", false
	}
	return id, sec, true
}

// writeClientError renders an error of a client-authenticated endpoint,
// adding the Basic challenge to a 401 (RFC 6749 §5.2: a 401 names the
// scheme to authenticate with).
func (e *Env) writeClientError(w http.ResponseWriter, r *http.Request, step string, oerr *oautherr.Error) {
	if oerr.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+e.Issuer+`", charset="UTF-8"`)
	}
	e.fail(w, r, step, oerr)
}

// tokenRequest begins a request about one token, at the revocation or the
// introspection endpoint: the client authenticated (clientRequest), then
// the token parameter (RFC 7009 §2.1, RFC 7662 §2.1) and token_type_hint,
// read only so that a repeated hint is refused (OAuth 2.1 §3.1). Whether
// token is present is the grant's rule. On a failure it has answered,
// under step, and ok is false.
func (e *Env) tokenRequest(w http.ResponseWriter, r *http.Request, step string) (client *record.Client, token string, ok bool) {
	form, client, ok := e.clientRequest(w, r, step)
	if !ok {
		return nil, "", false
	}
	p, oerr := params(form, "token", "token_type_hint")
	if oerr != nil {
		e.fail(w, r, step, oerr)
		return nil, "", false
	}
	return client, p[0], true
}
