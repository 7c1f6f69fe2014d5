package bearer

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/dpop"
	"github.com/mcpoauth/mcpoauth/internal/resource"
)

// Options configures RequireBearerAuth.
type Options struct {
	// Verifier checks a presented token and describes it. Required.
	Verifier Verifier

	// RequiredScopes must all be satisfied by the token's scopes, else the
	// request is refused with 403 insufficient_scope. They are also
	// advertised, space-joined, as scope="..." in every challenge so a
	// client knows what to ask for (MCP: all of them in one challenge).
	// Each must be an RFC 6749 §3.3 scope-token.
	RequiredScopes []string

	// ResourceMetadataURL is the URL of this resource's RFC 9728 protected
	// resource metadata; it is put in every challenge as
	// resource_metadata="..." (RFC 9728 §5.1), which is how MCP clients find
	// the authorization server. Empty omits the parameter.
	ResourceMetadataURL string

	// Resource is this server's RFC 8707 resource indicator (its canonical
	// MCP URL). When set, a token whose AuthInfo.Resource does not name the
	// same resource (resource.Equal) is refused with 401 invalid_token:
	// MCP servers must accept only tokens issued for them (RFC 8707 §2).
	// It must be an absolute http(s) URI without a fragment.
	Resource string

	// OperationScopes, if set, returns the scopes one MCP operation needs
	// on top of RequiredScopes: method is the JSON-RPC method, name the
	// tool or prompt name of tools/call and prompts/get, or the URI of
	// resources/read ("" otherwise). ScopeRequirements.Scopes is a
	// declarative one. It is consulted for POST requests, whose JSON-RPC
	// body is then read (at most MaxMessageBytes, and put back for the
	// handler) and is what decides: the Mcp-Method and Mcp-Name headers of
	// MCP 2026-07-28, where sent, must match it or the request is refused
	// with 400 (JSON-RPC error -32001). A token lacking a needed scope gets
	// 403 insufficient_scope whose scope parameter lists every scope the
	// operation needs and those the token already holds, so that a client
	// stepping up asks for all of them at once and loses none (MCP
	// SEP-2350). The scopes returned must be RFC 6749 §3.3 scope-tokens; it
	// must be safe for concurrent use. nil (the default) leaves bodies
	// unread and checks RequiredScopes only.
	OperationScopes func(method, name string) []string

	// MaxMessageBytes bounds the JSON-RPC body read for OperationScopes;
	// a longer one is refused with 413. Default DefaultMaxMessageBytes.
	MaxMessageBytes int64

	// ImpliedScopes, if set, describes a scope hierarchy: the scopes one
	// granted scope implies (files:write → files:read), followed
	// transitively, so that a token holding files:write passes a
	// files:read requirement (MCP 2026-07-28 requires servers to account
	// for scope hierarchies). Set it or ScopeSatisfied, not both.
	ImpliedScopes func(scope string) []string

	// ScopeSatisfied reports whether the granted scopes satisfy one
	// required scope. The default is exact membership, or HasScope with
	// ImpliedScopes. Supply one for rules a hierarchy cannot express.
	ScopeSatisfied func(granted []string, required string) bool

	// Now returns the current time, for expiry checks. Default time.Now.
	Now func() time.Time

	// ErrorHandler, if set, is called with the errors that make the
	// middleware answer 503 or 500: a verifier error that does not wrap
	// ErrInvalidToken, or a verifier returning no AuthInfo. It never sees
	// the token: the request it gets has no Authorization header, and an
	// error message that contains the token has it replaced by
	// "[redacted]". Invalid tokens are client errors and are not reported.
	ErrorHandler func(r *http.Request, err error)

	// DPoP, if set, admits DPoP-bound access tokens (RFC 9449 §7):
	// "Authorization: DPoP <token>" with a proof in the DPoP header, which
	// this Verifier checks against the request's method and URL
	// (DPoPRequestURL) and the token's hash (ath), nonce included. A token
	// whose AuthInfo.JKT is set is then admitted only that way, with a proof
	// of that key; presented as Bearer it is 401 invalid_token. Every
	// challenge names the DPoP scheme next to Bearer, with the algorithms
	// (algs). nil (the default): Bearer only, and a bound token is always
	// refused, since nothing here could check its proof.
	DPoP *dpop.Verifier

	// DPoPRequired refuses tokens that are not DPoP-bound (RFC 9728
	// dpop_bound_access_tokens_required). Needs DPoP.
	DPoPRequired bool

	// DPoPRequestURL returns the URL a request was sent to, as the client
	// wrote it, for the htu of its proof. Default: the scheme and host of
	// Resource followed by the request's path (the MCP endpoint is the
	// resource); without Resource, https (http for a loopback host) with
	// the request's Host and path. Set it when a proxy rewrites the path.
	DPoPRequestURL func(r *http.Request) string
}

// Fixed error descriptions (RFC 6750 §3: printable ASCII without '"' or '\').
// They never echo request input.
const (
	descNoToken           = "An access token is required in the Authorization header"
	descMalformed         = "The Authorization header must be Bearer followed by exactly one access token"
	descMultipleHeaders   = "Exactly one Authorization header is allowed"
	descHeaderTooLarge    = "The Authorization header is too large"
	descTokenNotInHeader  = "Access tokens are accepted only in the Authorization header"
	descInvalidToken      = "The access token is invalid or expired"
	descWrongResource     = "The access token was not issued for this resource"
	descInsufficientScope = "The access token does not grant the required scope"
	descServerError       = "internal server error"
	descUnavailable       = "The access token cannot be verified now; retry later"
	descBoundAsBearer     = "The access token is DPoP-bound: present it with the DPoP scheme and a proof"
	descNotBound          = "The access token is not DPoP-bound"
	descDPoPRequired      = "A DPoP-bound access token is required"
	descWrongKey          = "The DPoP proof is not signed with the key the access token is bound to"
	descInvalidProof      = "The DPoP proof is invalid"
	descUseNonce          = "Use the DPoP nonce the server provided"
)

// RetryAfterSeconds is the Retry-After of the 503 RequireBearerAuth answers
// when its Verifier fails.
const RetryAfterSeconds = 1

// errNilAuthInfo is reported to ErrorHandler when a verifier returns neither
// an AuthInfo nor an error.
var errNilAuthInfo = errors.New("bearer: verifier returned nil AuthInfo and nil error")

// response is an error response prepared at construction: the error path
// does no formatting per request.
type response struct {
	status    int
	challenge string // WWW-Authenticate value; empty for none
	// dpopChallenge is a second WWW-Authenticate value, for the DPoP
	// scheme, while DPoP is on.
	dpopChallenge string
	retry         string // Retry-After value; empty for none
	body          []byte
	length        string // len(body), for Content-Length
}

type middleware struct {
	verifier        Verifier
	requiredScopes  []string
	operationScopes func(method, name string) []string
	maxMessage      int64
	resourceMeta    string
	resource        string // canonical form of Options.Resource; empty for no check
	scopeSatisfied  func(granted []string, required string) bool
	now             func() time.Time
	errorHandler    func(r *http.Request, err error)

	noToken, malformed, multipleHeaders, headerTooLarge, tokenNotInHeader,
	invalidToken, wrongResource, insufficientScope, unavailable, serverError response

	// DPoP (RFC 9449 §7); dpop is nil while it is off.
	dpop           *dpop.Verifier
	dpopRequired   bool
	dpopRequestURL func(r *http.Request) string
	boundAsBearer, notBound, dpopRequiredResp, wrongKey, invalidProof,
	useNonce, dpopInvalidToken response
}

// RequireBearerAuth returns middleware that admits only requests carrying a
// valid bearer access token in the Authorization header, as the MCP
// authorization spec requires of a protected MCP server. A request passes
// when exactly one well-formed "Authorization: Bearer <token>" header is
// present (RFC 6750 §2.1), no token is sent in the URI query or an already
// parsed form body, the Verifier accepts the token, the token has an expiry
// in the future, it is bound to Options.Resource (if set) and it grants
// every required scope. The next handler then runs with the AuthInfo in the
// request context (FromContext). Otherwise it answers:
//
//   - 401 with a challenge without error code: no credentials, or another
//     scheme than Bearer (RFC 6750 §3);
//   - 400 invalid_request: malformed, repeated or oversized Authorization
//     header, or a token in the query or form body;
//   - 401 invalid_token: token unknown, expired, revoked, without expiry, or
//     issued for another resource;
//   - 403 insufficient_scope: a required scope, or one the operation needs
//     (Options.OperationScopes), is missing;
//   - with Options.OperationScopes, for a POST: 400 with a JSON-RPC error
//     for a body that is no JSON-RPC message (-32700) or whose Mcp-Method
//     or Mcp-Name header disagrees with it (-32001), 413 for one longer
//     than Options.MaxMessageBytes;
//   - 503 temporarily_unavailable with Retry-After and no challenge: any
//     other verifier failure (the store or the authorization server cannot
//     be reached). It says nothing about the token, which the client keeps
//     and presents again; a 401 would make it drop the token and send the
//     user through sign-in;
//   - 500 server_error without challenge: a verifier that returned neither
//     an AuthInfo nor an error (a bug).
//
// Every error response has a JSON body {"error","error_description"} and
// Cache-Control: no-store; 400, 401 and 403 carry a WWW-Authenticate
// challenge built by Challenge with resource_metadata and the required
// scopes. The token is never echoed, logged or handed to ErrorHandler.
//
// RequireBearerAuth panics if Options.Verifier is nil, if Options.Resource
// is not a valid resource indicator, or if a required scope is not a valid
// scope-token: these are programming errors that would otherwise surface
// only as every request failing. The returned function panics if given a
// nil handler.
func RequireBearerAuth(opts Options) func(http.Handler) http.Handler {
	m := newMiddleware(opts)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("bearer: RequireBearerAuth: nil next handler")
		}
		return &handler{m: m, next: next}
	}
}

func newMiddleware(opts Options) *middleware {
	if opts.Verifier == nil {
		panic("bearer: RequireBearerAuth: Options.Verifier is nil")
	}
	if f, ok := opts.Verifier.(VerifierFunc); ok && f == nil {
		panic("bearer: RequireBearerAuth: Options.Verifier is a nil VerifierFunc")
	}
	for _, s := range opts.RequiredScopes {
		if !isScopeToken(s) {
			panic("bearer: RequireBearerAuth: invalid required scope " + strconv.Quote(s))
		}
	}
	if opts.ImpliedScopes != nil && opts.ScopeSatisfied != nil {
		panic("bearer: RequireBearerAuth: set Options.ImpliedScopes or Options.ScopeSatisfied, not both")
	}
	m := &middleware{
		verifier:        opts.Verifier,
		requiredScopes:  append([]string(nil), opts.RequiredScopes...),
		operationScopes: opts.OperationScopes,
		maxMessage:      opts.MaxMessageBytes,
		resourceMeta:    opts.ResourceMetadataURL,
		scopeSatisfied:  opts.ScopeSatisfied,
		now:             opts.Now,
		errorHandler:    opts.ErrorHandler,
	}
	if m.maxMessage <= 0 {
		m.maxMessage = DefaultMaxMessageBytes
	}
	if implied := opts.ImpliedScopes; implied != nil {
		m.scopeSatisfied = func(granted []string, required string) bool {
			return HasScope(granted, required, implied)
		}
	}
	if opts.Resource != "" {
		c, err := resource.Canonical(opts.Resource)
		if err != nil {
			panic("bearer: RequireBearerAuth: invalid Options.Resource: " + err.Error())
		}
		m.resource = c
	}
	if m.scopeSatisfied == nil {
		m.scopeSatisfied = hasScope
	}
	if m.now == nil {
		m.now = time.Now
	}
	if opts.DPoPRequired && opts.DPoP == nil {
		panic("bearer: RequireBearerAuth: Options.DPoPRequired needs Options.DPoP")
	}
	var algs string
	if opts.DPoP != nil {
		m.dpop, m.dpopRequired, m.dpopRequestURL = opts.DPoP, opts.DPoPRequired, opts.DPoPRequestURL
		if m.dpopRequestURL == nil {
			m.dpopRequestURL = requestURL(m.resource)
		}
		algs = strings.Join(opts.DPoP.Algorithms(), " ")
	}

	scope := strings.Join(m.requiredScopes, " ")
	// prep builds a response whose body carries code; the challenge (if
	// any) carries challengeCode, with the description only next to a code.
	prep := func(status int, code, challengeCode, desc string, challenge bool) response {
		r := response{status: status, body: jsonError(code, desc)}
		r.length = strconv.Itoa(len(r.body))
		if challenge {
			p := ChallengeParams{Scope: scope, ResourceMetadata: opts.ResourceMetadataURL}
			if challengeCode != "" {
				p.Error, p.ErrorDescription = challengeCode, desc
			}
			r.challenge = Challenge(p)
			if m.dpop != nil {
				// RFC 9449 §7.1: the DPoP scheme is offered too, without
				// an error (the error is about the Bearer credentials).
				r.dpopChallenge = DPoPChallenge(ChallengeParams{Scope: scope, ResourceMetadata: opts.ResourceMetadataURL}, algs)
			}
		}
		return r
	}
	// prepDPoP builds a 401 for a request with DPoP credentials: the error
	// goes in the DPoP challenge, and Bearer is offered without one.
	prepDPoP := func(code, desc string) response {
		r := response{status: http.StatusUnauthorized, body: jsonError(code, desc)}
		r.length = strconv.Itoa(len(r.body))
		r.challenge = Challenge(ChallengeParams{Scope: scope, ResourceMetadata: opts.ResourceMetadataURL})
		r.dpopChallenge = DPoPChallenge(ChallengeParams{Error: code, ErrorDescription: desc, Scope: scope, ResourceMetadata: opts.ResourceMetadataURL}, algs)
		return r
	}
	// RFC 6750 §3: a request without credentials gets a challenge without
	// an error code. The JSON body, which RFC 6750 does not govern, still
	// says what is wrong with the closest registered code.
	m.noToken = prep(http.StatusUnauthorized, "invalid_token", "", descNoToken, true)
	// RFC 6750 §3.1 error codes and their status codes.
	m.malformed = prep(http.StatusBadRequest, "invalid_request", "invalid_request", descMalformed, true)
	m.multipleHeaders = prep(http.StatusBadRequest, "invalid_request", "invalid_request", descMultipleHeaders, true)
	m.headerTooLarge = prep(http.StatusBadRequest, "invalid_request", "invalid_request", descHeaderTooLarge, true)
	m.tokenNotInHeader = prep(http.StatusBadRequest, "invalid_request", "invalid_request", descTokenNotInHeader, true)
	m.invalidToken = prep(http.StatusUnauthorized, "invalid_token", "invalid_token", descInvalidToken, true)
	m.wrongResource = prep(http.StatusUnauthorized, "invalid_token", "invalid_token", descWrongResource, true)
	m.insufficientScope = prep(http.StatusForbidden, "insufficient_scope", "insufficient_scope", descInsufficientScope, true)
	// A server failure says nothing about the token: no challenge.
	m.serverError = prep(http.StatusInternalServerError, "server_error", "", descServerError, false)
	// RFC 9110 §15.6.4: the server cannot handle the request now; it
	// may later (temporarily_unavailable: RFC 6749 §4.1.2.1, the OAuth
	// error registry's code for it).
	m.unavailable = prep(http.StatusServiceUnavailable, "temporarily_unavailable", "", descUnavailable, false)
	m.unavailable.retry = strconv.Itoa(RetryAfterSeconds)
	m.boundAsBearer = prep(http.StatusUnauthorized, "invalid_token", "invalid_token", descBoundAsBearer, true)
	m.dpopRequiredResp = prep(http.StatusUnauthorized, "invalid_token", "invalid_token", descDPoPRequired, true)
	if m.dpop != nil {
		m.notBound = prepDPoP("invalid_token", descNotBound)
		m.wrongKey = prepDPoP("invalid_token", descWrongKey)
		m.dpopInvalidToken = prepDPoP("invalid_token", descInvalidToken)
		m.invalidProof = prepDPoP(dpop.ErrorInvalidProof, descInvalidProof)
		m.useNonce = prepDPoP(dpop.ErrorUseNonce, descUseNonce)
	}
	return m
}

func jsonError(code, desc string) []byte {
	b, err := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{code, desc})
	if err != nil { // cannot happen for two strings
		panic(err)
	}
	return b
}

type handler struct {
	m    *middleware
	next http.Handler
}

// ServeHTTP implements http.Handler. The success path allocates only what
// the verifier returns plus the context value and the request copy.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m

	// MCP: access tokens MUST NOT be sent in the URI query string. We also
	// decline RFC 6750 §2.2 (form body) and §2.3 (URI query), even next to
	// a valid header.
	if tokenOutsideHeader(r) {
		m.write(w, &m.tokenNotInHeader)
		return
	}

	var header string
	switch values := r.Header["Authorization"]; len(values) {
	case 0:
	case 1:
		header = values[0]
	default:
		// RFC 6750 §3.1: more than one method / credential is invalid_request.
		m.write(w, &m.multipleHeaders)
		return
	}
	if len(header) > MaxAuthorizationLength {
		m.write(w, &m.headerTooLarge)
		return
	}
	scheme, token, err := ParseCredentials(header)
	if err == nil && scheme == dpop.Scheme && m.dpop == nil {
		// Without DPoP support the scheme is as unknown as any other.
		err = ErrNoBearerToken
	}
	if err != nil {
		if err == ErrNoBearerToken {
			m.write(w, &m.noToken)
		} else {
			m.write(w, &m.malformed)
		}
		return
	}
	isDPoP := scheme == dpop.Scheme

	info, err := m.verifier.VerifyAccessToken(r.Context(), token)
	if err != nil {
		if errors.Is(err, ErrInvalidToken) {
			if isDPoP {
				m.write(w, &m.dpopInvalidToken)
			} else {
				m.write(w, &m.invalidToken)
			}
		} else {
			m.fail(w, r, &m.unavailable, err, token)
		}
		return
	}
	if info == nil {
		m.fail(w, r, &m.serverError, errNilAuthInfo, token)
		return
	}
	// OAuth 2.1 §5.2: the token must not be expired. A token without an
	// expiry is refused rather than treated as eternal (MCP TS SDK #446).
	if info.ExpiresAt.IsZero() || !m.now().Before(info.ExpiresAt) {
		m.write(w, &m.invalidToken)
		return
	}
	// RFC 8707 §2 / MCP: accept only tokens issued for this resource. The
	// audience is checked before the scopes: a token for another resource
	// is invalid here, whatever its scopes.
	if m.resource != "" && info.Resource != m.resource && !resource.Equal(m.resource, info.Resource) {
		m.write(w, &m.wrongResource)
		return
	}
	if (isDPoP || info.JKT != "" || m.dpopRequired) && !m.checkDPoP(w, r, isDPoP, token, info) {
		return
	}
	if m.operationScopes != nil && r.Method == http.MethodPost {
		if !m.checkOperation(w, r, info) {
			return
		}
	} else {
		for _, s := range m.requiredScopes {
			if !m.scopeSatisfied(info.Scopes, s) {
				m.write(w, &m.insufficientScope)
				return
			}
		}
	}

	h.next.ServeHTTP(w, r.WithContext(ContextWithAuthInfo(r.Context(), info)))
}

// checkDPoP applies RFC 9449 §7 to a verified token: a bound token only
// with the DPoP scheme and a valid proof of its key, the DPoP scheme only
// for a bound token, and (DPoPRequired) no unbound token at all. It answers
// the request and reports false when the request fails.
func (m *middleware) checkDPoP(w http.ResponseWriter, r *http.Request, isDPoP bool, token string, info *AuthInfo) bool {
	switch {
	case !isDPoP && info.JKT != "":
		// A bound token presented as Bearer: whoever presents it this way
		// proves nothing (RFC 9449 §7.2), and without DPoP support here
		// nothing could check a proof.
		m.write(w, &m.boundAsBearer)
		return false
	case info.JKT == "" && m.dpopRequired:
		m.write(w, &m.dpopRequiredResp)
		return false
	case info.JKT == "":
		m.write(w, &m.notBound)
		return false
	}
	proofs := r.Header.Values(dpop.Header)
	if len(proofs) != 1 {
		m.write(w, &m.invalidProof)
		return false
	}
	p, err := m.dpop.Verify(proofs[0], dpop.Request{Method: r.Method, URL: m.dpopRequestURL(r), AccessToken: token})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		w.Header().Set(dpop.NonceHeader, m.dpop.Nonce())
		m.write(w, &m.useNonce)
		return false
	case err != nil:
		m.write(w, &m.invalidProof)
		return false
	case p.JKT != info.JKT:
		m.write(w, &m.wrongKey)
		return false
	}
	if p.NewNonce != "" {
		w.Header().Set(dpop.NonceHeader, p.NewNonce)
	}
	return true
}

// requestURL is the default Options.DPoPRequestURL: the origin of the
// resource (or of the request) and the request's path.
func requestURL(res string) func(r *http.Request) string {
	if u, err := url.Parse(res); err == nil && res != "" {
		origin := u.Scheme + "://" + u.Host
		return func(r *http.Request) string { return origin + r.URL.EscapedPath() }
	}
	return func(r *http.Request) string {
		scheme := "https"
		if r.TLS == nil && isLoopbackHost(hostOnly(r.Host)) {
			scheme = "http"
		}
		return scheme + "://" + r.Host + r.URL.EscapedPath()
	}
}

// hostOnly strips the port from a Host header.
func hostOnly(host string) string {
	if u, err := url.Parse("http://" + host); err == nil {
		return u.Hostname()
	}
	return host
}

// write sends a prepared error response.
func (m *middleware) write(w http.ResponseWriter, resp *response) {
	hdr := w.Header()
	if resp.challenge != "" {
		hdr.Set("WWW-Authenticate", resp.challenge)
	}
	if resp.retry != "" {
		hdr.Set("Retry-After", resp.retry)
	}
	if resp.dpopChallenge != "" {
		hdr.Add("WWW-Authenticate", resp.dpopChallenge)
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", resp.length)
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// fail reports err to the ErrorHandler, stripped of the token, and answers
// resp.
func (m *middleware) fail(w http.ResponseWriter, r *http.Request, resp *response, err error, token string) {
	if m.errorHandler != nil {
		r2 := r.Clone(r.Context())
		r2.Header.Del("Authorization")
		m.errorHandler(r2, redact(err, token))
	}
	m.write(w, resp)
}

// redact returns err unchanged unless its message contains token; then it
// returns an error whose message has the token replaced and which still
// matches errors.Is against err's chain, but does not expose err itself
// (its fields or Unwrap chain would lead back to the token).
func redact(err error, token string) error {
	if token == "" {
		return err
	}
	msg := err.Error()
	if !strings.Contains(msg, token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(msg, token, "[redacted]"), orig: err}
}

type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }

// tokenOutsideHeader reports whether r carries an access_token parameter in
// its URI query, or in a form body that something upstream already parsed.
// The body is never read here.
func tokenOutsideHeader(r *http.Request) bool {
	if r.URL != nil && queryHasAccessToken(r.URL.RawQuery) {
		return true
	}
	if r.PostForm != nil { // includes multipart values, see ParseMultipartForm
		if _, ok := r.PostForm["access_token"]; ok {
			return true
		}
	}
	return false
}

// queryHasAccessToken reports whether a raw query has a parameter named
// access_token (RFC 6750 §2.3), however its name is percent-encoded. Pairs
// are split on '&' and on ';' so a token hidden behind a separator another
// parser honours is caught too. Queries with neither "access_token" nor '%'
// in them are dismissed without parsing.
func queryHasAccessToken(raw string) bool {
	const name = "access_token"
	if raw == "" || !strings.Contains(raw, name) && strings.IndexByte(raw, '%') < 0 {
		return false
	}
	for raw != "" {
		var pair string
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		key, _, _ := strings.Cut(pair, "=")
		if key == name {
			return true
		}
		if strings.IndexByte(key, '%') >= 0 {
			if k, err := url.QueryUnescape(key); err == nil && k == name {
				return true
			}
		}
	}
	return false
}

// hasScope is the default Options.ScopeSatisfied: exact membership
// (RFC 6749 §3.3 scope tokens are case-sensitive).
func hasScope(granted []string, required string) bool { return slices.Contains(granted, required) }

// isScopeToken reports whether s is an RFC 6749 §3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
