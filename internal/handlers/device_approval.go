package handlers

import (
	"net/http"
	"net/url"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
)

// Field names of the device verification form, and the query parameter and
// values that report a decision back to the verification page.
const (
	ParamUserCode        = "user_code"
	ParamDeviceResult    = "result"
	DeviceResultApproved = "approved"
	DeviceResultDenied   = "denied"
)

// ApproveDevice receives the user's approval from the device verification
// page; see DenyDevice for the request and the answers.
func ApproveDevice(env *Env, getUser GetUserFunc) http.Handler {
	return deviceDecision(env, getUser, true)
}

// DenyDevice receives the user's denial from the device verification page:
// a POST whose body (never the query: a code in a URL leaks through logs and
// Referer) carries user_code and csrf_token. It checks
// the CSRF token against the browser-binding cookie first, so a forged post
// learns nothing, then requires a signed-in user (knowing a code is
// not enough to deny it), then decides once. Success is a 303 to the verification page with
// result=approved or result=denied; errors are shown on the error page. The body
// may have been parsed by the application already (r.PostForm), for
// instance to dispatch on a decision field.
func DenyDevice(env *Env, getUser GetUserFunc) http.Handler {
	return deviceDecision(env, getUser, false)
}

func deviceDecision(env *Env, getUser GetUserFunc, approve bool) http.Handler {
	step, result := "device:deny", DeviceResultDenied
	if approve {
		step, result = "device:approve", DeviceResultApproved
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		form, oerr := postForm(w, r)
		if oerr != nil {
			env.showError(w, r, step, oerr)
			return
		}
		p, oerr := params(form, ParamUserCode, ParamCSRFToken)
		if oerr != nil {
			env.showError(w, r, step, oerr)
			return
		}
		if !grants.CheckDeviceCSRF(BrowserSecret(r, env.SecureCookies), p[1]) {
			env.showError(w, r, step, grants.ErrDeviceForeignPage)
			return
		}
		if p[0] == "" {
			env.showError(w, r, step, oautherr.InvalidRequest("user_code is required"))
			return
		}
		user, err := getUser(r)
		if err != nil || user == "" {
			env.showError(w, r, step, grants.ErrSignInRequired.WithCause(err))
			return
		}
		if oerr := env.Grants.DecideDevice(r.Context(), p[0], user, approve, env.identify(r)); oerr != nil {
			env.showError(w, r, step, oerr)
			return
		}
		// RFC 9700 §4.12: 303 after a POST.
		httpx.Redirect(w, redirect.WithParams(env.Grants.DeviceVerificationURI, url.Values{ParamDeviceResult: {result}}), http.StatusSeeOther)
	})
}

// DeviceFormToken returns the CSRF token the device verification form must
// carry, setting the browser-binding cookie when the browser has none yet.
// Call it on every render of the form.
func DeviceFormToken(w http.ResponseWriter, r *http.Request, secure bool) string {
	return grants.DeviceCSRFToken(ensureBrowserSecret(w, r, secure))
}
