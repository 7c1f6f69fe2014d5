package handlers

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/record"
	"github.com/mcpoauth/mcpoauth/internal/secret"
)

// clientAuthFailed is the one answer to every failed client authentication:
// unknown client, wrong secret and missing secret look alike.
var clientAuthFailed = oautherr.InvalidClient("client authentication failed")

// authenticateClient identifies the client of a token, revocation or device
// request (OAuth 2.1 §2.4): client_secret_basic (RFC 6749 §2.3.1, id and
// secret form-urlencoded before base64), client_secret_post, or none for a
// public client. Using two methods at once is invalid_request (RFC 6749
// §2.3). The returned bool tells whether HTTP Basic was used, so that
// invalid_client is answered 401 with WWW-Authenticate: Basic.
func (e *Env) authenticateClient(r *http.Request, form url.Values) (*record.Client, bool, *oautherr.Error) {
	bodyID, oerr := httpx.Param(form, "client_id")
	if oerr != nil {
		return nil, false, oerr
	}
	bodySecret, oerr := httpx.Param(form, "client_secret")
	if oerr != nil {
		return nil, false, oerr
	}
	id, sec, basic := bodyID, bodySecret, false
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return nil, false, oautherr.InvalidRequest("repeated Authorization header")
		}
		bid, bsec, ok := parseBasic(h[0])
		if !ok {
			return nil, true, basicFailure(oautherr.InvalidClient("malformed HTTP Basic credentials"))
		}
		if bodySecret != "" || (bodyID != "" && bodyID != bid) {
			return nil, true, oautherr.InvalidRequest("more than one client authentication method")
		}
		id, sec, basic = bid, bsec, true
	}
	if id == "" {
		return nil, basic, withBasic(oautherr.InvalidClient("client_id is required"), basic)
	}
	client, oerr := e.Grants.GetClient(r.Context(), id)
	if oerr != nil && oerr.Code == oautherr.CodeServerError {
		return nil, basic, oerr
	}
	if client == nil {
		// Same work as a wrong secret, so timing does not tell an unknown
		// client from a known confidential one (peer lesson 18).
		secret.Equal(secret.Digest(sec), record.Digest{})
		return nil, basic, withBasic(clientAuthFailed.WithCause(oerr), basic)
	}
	if client.IsPublic() {
		if sec != "" || basic {
			// Credentials were included, and they cannot be right.
			return nil, basic, withBasic(clientAuthFailed, basic)
		}
		return client, false, nil
	}
	if sec == "" || !secret.Equal(secret.Digest(sec), client.SecretDigest) {
		return nil, basic, withBasic(clientAuthFailed, basic)
	}
	if !client.SecretExpiresAt.IsZero() && !e.Grants.Now().Before(client.SecretExpiresAt) {
		return nil, basic, withBasic(oautherr.InvalidClient("client secret expired"), basic)
	}
	return client, basic, nil
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

// withBasic makes invalid_client 401 when HTTP Basic was attempted (RFC 6749
// §5.2), else 400: a 401 must carry a challenge, and a body-only client has
// no scheme to be challenged with.
func withBasic(oerr *oautherr.Error, basic bool) *oautherr.Error {
	if basic {
		return basicFailure(oerr)
	}
	c := *oerr
	c.Status = http.StatusBadRequest
	return &c
}

func basicFailure(oerr *oautherr.Error) *oautherr.Error {
	c := *oerr
	c.Status = http.StatusUnauthorized
	return &c
}

// writeClientError renders an error of a client-authenticated endpoint,
// adding the Basic challenge to a 401.
func (e *Env) writeClientError(w http.ResponseWriter, r *http.Request, step string, oerr *oautherr.Error) {
	if oerr.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+e.Issuer+`", charset="UTF-8"`)
	}
	e.fail(w, r, step, oerr)
}
