package main

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"

	"github.com/mcpoauth/mcpoauth"
)

// maxFormBytes bounds the body of a device page POST.
const maxFormBytes = 16 << 10

// devicePage is the data of templates/device.html.
type devicePage struct {
	// Action is the path the form posts to: the device page itself.
	Action string
	// Field names and decision values, the library's constants.
	FieldUserCode, FieldCSRFToken, FieldDecision string
	Approve, Deny                                string
	CSRFToken                                    string
	// UserCode pre-fills the code field: the pending request's code, in
	// display form.
	UserCode string
	// Pending is the request the code names, when the page was opened
	// with one (verification_uri_complete) and it is pending.
	Pending *mcpoauth.PendingDeviceAuthorization
	// Notice is a fixed message about a code that could not be shown.
	Notice string
	// SignIn is the upstream sign-in (-upstream-issuer); nil shows the
	// demo username field.
	SignIn *signInView
}

// deviceResultPage is the data of templates/device_result.html.
type deviceResultPage struct {
	Approved bool
}

// Fixed notices: the code the user typed is never echoed back.
const (
	noticeExpired = "That code has expired. Start again on your device to get a new one."
	noticeUnknown = "That code is unknown or was already used. Check the code your device shows and enter it again."
)

// newDeviceHandler serves the device verification page (RFC 8628 §3.3, the
// verification_uri). GET shows the form: the code field (pre-filled from
// ?user_code=, verification_uri_complete), the demo sign-in and Approve and
// Deny, with the client and what it asks for when a pending code is given
// (RFC 8628 §5.4: the user must see which client asks for what, so that a
// code sent by a phisher is recognised); ?result=approved|denied shows the
// outcome. POST hands the decision to the library's approve or deny
// handler, which answer 303 back here with the result.
// With signIn (nil: the demo username field), the page links to the
// upstream sign-in and the decision asks its session who decides.
func newDeviceHandler(srv *mcpoauth.OAuthServer, path string, signIn *upstreamSignIn, logger *slog.Logger) http.Handler {
	approve := srv.ApproveDeviceAuthorizationHandler(signIn.getUser())
	deny := srv.DenyDeviceAuthorizationHandler(signIn.getUser())
	show := func(w http.ResponseWriter, r *http.Request) { showDevice(w, r, srv, path, signIn, logger) }
	decide := func(w http.ResponseWriter, r *http.Request) { decideDevice(w, r, approve, deny, logger) }
	return formPage("device", show, decide, logger)
}

func showDevice(w http.ResponseWriter, r *http.Request, srv *mcpoauth.OAuthServer, path string, signIn *upstreamSignIn, logger *slog.Logger) {
	q := r.URL.Query()
	switch q.Get(mcpoauth.DeviceResultParam) {
	case mcpoauth.DeviceResultApproved:
		render(w, http.StatusOK, "device_result.html", cspFormActionSelf, deviceResultPage{Approved: true}, logger, r)
		return
	case mcpoauth.DeviceResultDenied:
		render(w, http.StatusOK, "device_result.html", cspFormActionSelf, deviceResultPage{Approved: false}, logger, r)
		return
	}
	page := devicePage{
		Action:         path,
		FieldUserCode:  mcpoauth.FormUserCode,
		FieldCSRFToken: mcpoauth.FormCSRFToken,
		FieldDecision:  mcpoauth.FormDecision,
		Approve:        mcpoauth.DecisionApprove,
		Deny:           mcpoauth.DecisionDeny,
		SignIn:         signIn.view(r),
	}
	status := http.StatusOK
	if code := q.Get(mcpoauth.FormUserCode); code != "" {
		// Each lookup spends one of the client IP's user code attempts.
		p, err := srv.PendingDeviceAuthorization(r, code)
		switch {
		case err == nil:
			page.Pending, page.UserCode = p, p.UserCode
		case errors.Is(err, mcpoauth.ErrTooManyUserCodeAttempts):
			renderError(w, http.StatusTooManyRequests, "Too many attempts",
				"Too many codes were tried from your network. Wait a few minutes, then try again.", logger, r)
			return
		case errors.Is(err, mcpoauth.ErrNoPendingDeviceAuthorization):
			status, page.Notice = http.StatusNotFound, noticeUnknown
			if errors.Is(err, &mcpoauth.OAuthError{Code: "expired_token"}) {
				page.Notice = noticeExpired
			}
		default:
			logger.LogAttrs(r.Context(), slog.LevelError, "device page failed", slog.Any("error", err))
			renderError(w, http.StatusInternalServerError, "Something went wrong", "The code could not be looked up. Try again later.", logger, r)
			return
		}
	}
	// Sets the browser-binding cookie the token is derived from: before the
	// body is written.
	page.CSRFToken = srv.DeviceFormToken(w, r)
	render(w, status, "device.html", cspFormActionSelf, page, logger, r)
}

// decideDevice dispatches the form's decision to the library's approve or
// deny handler. It parses the body first (the handlers accept an already
// parsed form) with the limits the library's own endpoints use: a form
// content type, a bounded body, one decision.
func decideDevice(w http.ResponseWriter, r *http.Request, approve, deny http.Handler, logger *slog.Logger) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		renderError(w, http.StatusUnsupportedMediaType, "Unsupported form", "The device page accepts form posts only.", logger, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderError(w, http.StatusBadRequest, "Malformed form", "The form could not be read. Go back and try again.", logger, r)
		return
	}
	decision := r.PostForm[mcpoauth.FormDecision]
	switch {
	case len(decision) == 1 && decision[0] == mcpoauth.DecisionApprove:
		approve.ServeHTTP(w, r)
	case len(decision) == 1 && decision[0] == mcpoauth.DecisionDeny:
		deny.ServeHTTP(w, r)
	default:
		renderError(w, http.StatusBadRequest, "No decision", "Choose Approve or Deny.", logger, r)
	}
}
