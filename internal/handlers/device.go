package handlers

import (
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// deviceAuthorizationResponse is the RFC 8628 §3.2 response body.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// Device serves the RFC 8628 device authorization endpoint: POST,
// form-encoded, the client authenticated as at the token endpoint (§3.1),
// with optional scope and resource (RFC 8707). It answers 200 with
// device_code, user_code, verification_uri, verification_uri_complete,
// expires_in and interval (§3.2), and Cache-Control: no-store, since the
// body carries credentials.
func Device(env *Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, client, ok := env.clientRequest(w, r, "device")
		if !ok {
			return
		}
		if len(form["resource"]) > 1 {
			// RFC 8707 §2 allows several; tokens here have one audience.
			env.fail(w, r, "device", oautherr.InvalidTarget("only one resource per request is supported"))
			return
		}
		p, oerr := params(form, "scope", "resource")
		if oerr != nil {
			env.fail(w, r, "device", oerr)
			return
		}
		resp, oerr := env.Grants.RequestDeviceAuthorization(r.Context(), grants.DeviceAuthorizationRequest{Client: client, Scope: p[0], Resource: p[1]})
		if oerr != nil {
			env.fail(w, r, "device", oerr)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, deviceAuthorizationResponse{
			DeviceCode:              resp.DeviceCode,
			UserCode:                resp.UserCode,
			VerificationURI:         resp.VerificationURI,
			VerificationURIComplete: resp.VerificationURIComplete,
			ExpiresIn:               int64(resp.ExpiresIn.Seconds()),
			Interval:                int64(resp.Interval.Seconds()),
		})
	})
}
