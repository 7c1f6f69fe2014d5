package main

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/upstream"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// consentPage is the data of templates/consent.html.
type consentPage struct {
	// Action is the path the form posts to: the consent page itself.
	Action string
	// Field names and decision values, the library's constants.
	FieldRequestID, FieldCSRFToken, FieldDecision string
	Approve, Deny                                 string
	Pending                                       *mcpoauth.PendingAuthorization
	// SignIn is the upstream sign-in (-upstream-issuer); nil shows the
	// demo username field.
	SignIn *signInView
}

// errorPage is the data of templates/error.html.
type errorPage struct {
	Title, Message string
}

// newConsentHandler serves the consent page: GET renders the pending
// authorization request as a form, POST hands the decision to the library's
// AuthenticateHandler (which answers 303 to the client's redirect URI).
// With signIn (nil: the demo username field), the page links to the
// upstream sign-in and the decision asks its session who approves.
func newConsentHandler(srv *mcpoauth.OAuthServer, path string, signIn *upstreamSignIn, logger *slog.Logger) http.Handler {
	show := func(w http.ResponseWriter, r *http.Request) { showConsent(w, r, srv, path, signIn, logger) }
	return formPage("consent", show, srv.AuthenticateHandler(signIn.getUser()).ServeHTTP, logger)
}

// formPage serves a page of the example that shows a form on GET and HEAD
// and takes its decision on POST; other methods are refused.
func formPage(name string, show, decide http.HandlerFunc, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			show(w, r)
		case http.MethodPost:
			// The library's decision handlers answer JSON errors or a 303;
			// the headers keep them out of caches and frames all the same.
			setPageHeaders(w.Header(), cspFormActionSelf)
			decide(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			renderError(w, http.StatusMethodNotAllowed, "Method not allowed", "The "+name+" page accepts GET and POST only.", logger, r)
		}
	})
}

func showConsent(w http.ResponseWriter, r *http.Request, srv *mcpoauth.OAuthServer, path string, signIn *upstreamSignIn, logger *slog.Logger) {
	// Remembered consent: a user signed in upstream who approved this
	// client for these scopes before goes straight back to it. (The demo
	// username field signs nobody in before the form is posted, so without
	// an upstream the page is always shown.)
	// The upstream session is read once per page: for the remembered
	// consent and for the page's view of the sign-in.
	var view *signInView
	if signIn != nil {
		id, err := signIn.Identity(r)
		view = signIn.viewOf(r, id, err)
		if r.Method == http.MethodGet {
			setPageHeaders(w.Header(), cspFormActionSelf)
			// As signIn.GetUser answers, from this read.
			user := func(*http.Request) (string, error) {
				switch {
				case err == nil:
					return id.UserID(), nil
				case errors.Is(err, upstream.ErrNoSession):
					return "", nil
				}
				return "", err
			}
			if srv.ApproveRemembered(w, r, user) {
				return
			}
		}
	}
	p, err := srv.PendingAuthorization(r)
	if err != nil {
		if errors.Is(err, mcpoauth.ErrNoPendingAuthorization) {
			// Fixed text: nothing of the request is echoed.
			renderError(w, http.StatusBadRequest, "This authorization request cannot be shown",
				"It is unknown, has expired, was already decided, or was started in another browser. Go back to the application and start again.", logger, r)
			return
		}
		logger.LogAttrs(r.Context(), slog.LevelError, "consent page failed", slog.Any("error", err))
		renderError(w, http.StatusInternalServerError, "Something went wrong", "The authorization request could not be loaded. Try again later.", logger, r)
		return
	}
	// Chromium applies form-action to the redirects that follow a form
	// submission, and the decision's 303 goes to the client's redirect URI:
	// with 'self' alone the browser would block it. So the policy allows the
	// pending request's redirect origin too, and nothing else (omitting
	// form-action would let injected markup post the CSRF token anywhere).
	// An origin CSP cannot express safely keeps 'self' alone: the redirect
	// may then be blocked, but the policy is never widened.
	formAction := cspFormActionSelf
	if src, ok := redirectSource(p.RedirectURI); ok {
		formAction += " " + src
	}
	render(w, http.StatusOK, "consent.html", formAction, consentPage{
		Action:         path,
		FieldRequestID: mcpoauth.FormRequestID,
		FieldCSRFToken: mcpoauth.FormCSRFToken,
		FieldDecision:  mcpoauth.FormDecision,
		Approve:        mcpoauth.DecisionApprove,
		Deny:           mcpoauth.DecisionDeny,
		Pending:        p,
		SignIn:         view,
	}, logger, r)
}

func renderError(w http.ResponseWriter, status int, title, message string, logger *slog.Logger, r *http.Request) {
	render(w, status, "error.html", cspFormActionSelf, errorPage{Title: title, Message: message}, logger, r)
}

// render executes a template into a buffer first, so a template failure
// becomes a clean 500 rather than half a page.
func render(w http.ResponseWriter, status int, name, formAction string, data any, logger *slog.Logger, r *http.Request) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		logger.LogAttrs(r.Context(), slog.LevelError, "render page", slog.String("template", name), slog.Any("error", err))
		setPageHeaders(w.Header(), cspFormActionSelf)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header(), formAction)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

const cspFormActionSelf = "'self'"

// setPageHeaders sets the headers of every HTML response: a CSP that allows
// nothing but inline styles and form posts to formAction, no framing
// (clickjacking of the approve button), no Referer (the URL carries the
// request id), no sniffing, no caching.
func setPageHeaders(h http.Header, formAction string) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

var (
	cspScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	// cspHost is the CSP host-part grammar (CSP3 §2.3.1): dot-separated
	// labels of letters, digits and hyphens. IPv6 literals have no CSP
	// syntax.
	cspHost = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)*$`)
	cspPort = regexp.MustCompile(`^[0-9]{1,5}$`)
)

// redirectSource returns the CSP source expression that matches a redirect
// URI: its origin for http(s), its scheme for a private-use scheme (RFC 8252
// §7.1: the app owns the scheme). Every part is checked against the CSP
// grammar so that a crafted URI cannot add a directive (";") or a source
// (" "); false means no safe expression exists.
func redirectSource(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if !cspScheme.MatchString(scheme) {
		return "", false
	}
	switch scheme {
	case "http", "https":
	case "javascript", "data", "blob", "filesystem", "vbscript", "file", "about":
		return "", false
	default:
		return scheme + ":", true
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if !cspHost.MatchString(host) || port != "" && !cspPort.MatchString(port) {
		return "", false
	}
	src := scheme + "://" + host
	if port != "" {
		src += ":" + port
	}
	return src, true
}
