// Package gosdk plugs mcpoauth into the official MCP Go SDK,
// github.com/modelcontextprotocol/go-sdk (tested with v1.8.0). There are two
// ways to protect an SDK handler; both end with the same TokenInfo in the
// SDK (auth.TokenInfoFromContext, req.Extra.TokenInfo, and the SDK's binding
// of a session to TokenInfo.UserID):
//
// With the SDK's own middleware, verifying tokens with a bearer.Verifier
// (an *mcpoauth.OAuthServer is one):
//
//	mw := auth.RequireBearerToken(gosdk.TokenVerifier(srv, mcpURL, gosdk.Options{}),
//		&auth.RequireBearerTokenOptions{ResourceMetadataURL: prmURL, Scopes: []string{"mcp:tools"}})
//	mux.Handle("/mcp", gosdk.WithRFC6750Errors(mw(mcpHandler)))
//
// Or with mcpoauth's middleware, whose challenges are RFC 6750 and RFC 9728
// exact and which checks the token's audience itself, followed by
// ForwardAuthInfo, which hands its verdict to the SDK without verifying the
// token again:
//
//	mux.Handle("/mcp", srv.RequireBearerAuth("mcp:tools")(gosdk.ForwardAuthInfo(gosdk.Options{})(mcpHandler)))
//
// Only the second way requires scopes per MCP method and tool
// (bearer.Options.OperationScopes, Config.OperationScopes) with the single
// complete insufficient_scope challenge of MCP SEP-2350: the SDK's
// middleware checks one fixed scope list.
//
// Either way, add AuthInfoMiddleware to every mcp.Server so that tool
// handlers can call bearer.FromContext(ctx): the SDK runs a session's
// handlers under the context of the HTTP request that created the session,
// not of the request being answered.
package gosdk

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/resource"
)

// ExtraClientID is the key of the OAuth client id in TokenInfo.Extra.
const ExtraClientID = "client_id"

// extraAuthInfo is the key of the whole *bearer.AuthInfo in TokenInfo.Extra;
// read it with AuthInfo.
const extraAuthInfo = "github.com/mcpoauth/mcpoauth/bearer.AuthInfo"

// Options configures TokenVerifier and ForwardAuthInfo; the zero value is
// the default.
type Options struct {
	// SessionKey sets what TokenInfo.UserID holds, which is what the SDK
	// binds a session to: a request that names a session created under
	// another UserID is refused with 403 ("session user mismatch"). nil
	// means SessionKey (the function); UserAndClient binds sessions to the
	// OAuth client as well. A function returning "" turns the SDK's binding
	// off for that token, so it should not.
	SessionKey func(*bearer.AuthInfo) string
}

type options struct {
	sessionKey func(*bearer.AuthInfo) string
}

func newOptions(opts Options) *options {
	o := &options{sessionKey: SessionKey}
	if opts.SessionKey != nil {
		o.sessionKey = opts.SessionKey
	}
	return o
}

// clientPrefix marks the session key of a token that acts for no user.
const clientPrefix = "client:"

// SessionKey is the default TokenInfo.UserID: the user the token acts for,
// so that the SDK binds each session to its user. A client_credentials
// token acts for no user; its key is "client:" followed by the client id,
// so its sessions are bound to its client rather than left unbound. User
// ids that may begin with "client:" could be mistaken for such a client;
// where they can, or where a session must not move between the clients of
// one user either, use UserAndClient.
func SessionKey(info *bearer.AuthInfo) string {
	if info.UserID != "" {
		return info.UserID
	}
	return clientPrefix + info.ClientID
}

// UserAndClient is a session key naming both the user and the client of a
// token, unambiguously (each is quoted), so that a session is usable only
// with tokens of the same user issued to the same client. Pass it to
// Options.SessionKey. TokenInfo.UserID then is not a plain user id: read the
// user from AuthInfo or bearer.FromContext.
func UserAndClient(info *bearer.AuthInfo) string {
	return strconv.Quote(info.UserID) + " " + strconv.Quote(info.ClientID)
}

// tokenInfo converts a verified AuthInfo into the SDK's TokenInfo.
func (o *options) tokenInfo(info *bearer.AuthInfo) *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     slices.Clone(info.Scopes),
		Expiration: info.ExpiresAt,
		UserID:     o.sessionKey(info),
		Extra: map[string]any{
			ExtraClientID: info.ClientID,
			extraAuthInfo: info,
		},
	}
}

// AuthInfo returns the mcpoauth AuthInfo behind a TokenInfo made by
// TokenVerifier or ForwardAuthInfo (in a tool handler: req.Extra.TokenInfo),
// with the user id, client id, scopes, resource, expiry and grant id. The
// boolean is false for a nil TokenInfo or one made elsewhere. Treat the
// result as read-only.
func AuthInfo(ti *auth.TokenInfo) (*bearer.AuthInfo, bool) {
	if ti == nil {
		return nil, false
	}
	info, ok := ti.Extra[extraAuthInfo].(*bearer.AuthInfo)
	return info, ok && info != nil
}

// invalidTokenError is what the SDK's middleware answers 401 for. Its
// message is fixed, because the SDK writes it into the response body; the
// verifier's error stays reachable through errors.Is and errors.As.
type invalidTokenError struct{ cause error }

func (e *invalidTokenError) Error() string   { return "invalid token" }
func (e *invalidTokenError) Unwrap() []error { return []error{auth.ErrInvalidToken, e.cause} }

// verifyError is what the SDK's middleware answers 500 for: a verifier
// failure that says nothing about the token (a storage error). Its message
// is fixed for the same reason: no internals in the body.
type verifyError struct{ cause error }

func (e *verifyError) Error() string { return "token verification failed" }
func (e *verifyError) Unwrap() error { return e.cause }

var (
	errNoExpiry      = errors.New("gosdk: token has no expiry")
	errExpired       = errors.New("gosdk: token expired")
	errWrongResource = errors.New("gosdk: token issued for another resource")
	errNilAuthInfo   = errors.New("gosdk: verifier returned no AuthInfo")
	errDPoPBound     = errors.New("gosdk: a DPoP-bound token presented as Bearer")
	errNoAuthInfo    = errors.New("gosdk: no bearer.AuthInfo in the request context: ForwardAuthInfo must sit behind bearer.RequireBearerAuth")
)

// TokenVerifier adapts v to the SDK's auth.TokenVerifier, for
// auth.RequireBearerToken. The TokenInfo it returns carries the token's
// scopes, its expiry (never zero: a token without one is refused), the
// session key (SessionKey, or Options.SessionKey's) as UserID so that the SDK
// binds sessions to it, and in Extra the client id under ExtraClientID and
// the whole AuthInfo (read it with AuthInfo).
//
// resource is the MCP server's canonical URL (RFC 8707): a token issued for
// another resource is refused, as the MCP authorization spec requires and
// the SDK's middleware does not check. Empty skips the check; otherwise it
// must be an absolute http(s) URL without fragment, or TokenVerifier
// panics.
//
// An unknown, expired, revoked or foreign token yields an error wrapping
// auth.ErrInvalidToken (the SDK answers 401; any other error would be a
// 500) and bearer's error. Other verifier failures yield an error the SDK
// answers 500 for. Both have fixed messages, since the SDK copies the
// message into the response body; neither contains the token.
//
// The SDK's middleware omits the RFC 6750 error codes from its challenge;
// wrap it with WithRFC6750Errors.
func TokenVerifier(v bearer.Verifier, resourceURL string, opts Options) auth.TokenVerifier {
	if v == nil {
		panic("gosdk: TokenVerifier: nil verifier")
	}
	var want string
	if resourceURL != "" {
		c, err := resource.Canonical(resourceURL)
		if err != nil {
			panic("gosdk: TokenVerifier: invalid resource: " + err.Error())
		}
		want = c
	}
	o := newOptions(opts)
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		info, err := v.VerifyAccessToken(ctx, token)
		switch {
		case err != nil && errors.Is(err, bearer.ErrInvalidToken):
			return nil, &invalidTokenError{cause: err}
		case err != nil:
			return nil, &verifyError{cause: err}
		case info == nil:
			return nil, &verifyError{cause: errNilAuthInfo}
		case info.ExpiresAt.IsZero():
			return nil, &invalidTokenError{cause: errNoExpiry}
		case !time.Now().Before(info.ExpiresAt):
			return nil, &invalidTokenError{cause: errExpired}
		case want != "" && info.Resource != want && !resource.Equal(want, info.Resource):
			return nil, &invalidTokenError{cause: errWrongResource}
		case info.JKT != "":
			// The SDK's middleware passes Bearer tokens only, with no
			// proof to check: a DPoP-bound token is refused here (RFC
			// 9449 §7.2). Put bearer.RequireBearerAuth with DPoP in front
			// and use ForwardAuthInfo to accept such tokens.
			return nil, &invalidTokenError{cause: errDPoPBound}
		}
		return o.tokenInfo(info), nil
	}
}

// ForwardAuthInfo returns middleware for an SDK handler that sits behind
// bearer.RequireBearerAuth (or OAuthServer.RequireBearerAuth): it hands the
// AuthInfo that middleware verified and put in the request context to the
// SDK, as the TokenInfo TokenVerifier would have made, without looking the
// token up again. The SDK then binds each session to the session key
// (TokenInfo.UserID) and passes the TokenInfo to handlers in
// req.Extra.TokenInfo.
//
// It uses the SDK's auth.RequireBearerToken, because the SDK's context key
// is private. A request that reaches it without an AuthInfo in its context
// means the middleware was mounted without bearer.RequireBearerAuth in front
// of it: it is answered 500, never let through.
func ForwardAuthInfo(opts Options) func(http.Handler) http.Handler {
	o := newOptions(opts)
	verify := func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		info, ok := bearer.FromContext(ctx)
		if !ok {
			return nil, &verifyError{cause: errNoAuthInfo}
		}
		return o.tokenInfo(info), nil
	}
	// Non-nil options: with nil the SDK's middleware skips its challenge.
	sdk := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{})
	return func(next http.Handler) http.Handler {
		h := sdk(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The SDK's middleware knows the Bearer scheme only. A
			// DPoP-bound token was checked with its proof by
			// bearer.RequireBearerAuth already (RFC 9449 §7), and verify
			// reads the AuthInfo, not the token: the SDK is shown the
			// same credentials under the scheme it knows.
			if info, ok := bearer.FromContext(r.Context()); ok && info.JKT != "" {
				if scheme, token, err := bearer.ParseCredentials(r.Header.Get("Authorization")); err == nil && scheme == "DPoP" {
					r = r.Clone(r.Context())
					r.Header.Set("Authorization", "Bearer "+token)
				}
			}
			h.ServeHTTP(w, r)
		})
	}
}

// AuthInfoMiddleware is an mcp.Middleware for mcp.Server.AddReceivingMiddleware
// that runs every request handler (tools/call included) with the AuthInfo of
// the HTTP request that carried the message in its context, so that
// bearer.FromContext(ctx) answers for the request being handled. The SDK
// gives handlers the context of the request that created the session, which
// may hold an older token (refreshed since, or with other scopes); without a
// TokenInfo made by this package in req.Extra, the handler's context has no
// AuthInfo at all, rather than that stale one.
func AuthInfoMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		var info *bearer.AuthInfo
		if extra := req.GetExtra(); extra != nil {
			info, _ = AuthInfo(extra.TokenInfo)
		}
		return next(bearer.ContextWithAuthInfo(ctx, info), method, req)
	}
}

// WithRFC6750Errors wraps a handler protected by the SDK's
// auth.RequireBearerToken so that its challenges carry the RFC 6750 §3.1
// error codes that SDK v1.8.0 leaves out: error="invalid_token" on a 401
// for a request that presented a bearer token, error="invalid_request" on a
// 401 for a malformed Bearer Authorization header, and
// error="insufficient_scope" on a 403. A 401 for a request without bearer
// credentials keeps a challenge without error code (RFC 6750 §3). A
// challenge that already has an error parameter is left alone, so the
// wrapper stays correct once the SDK adds them. Without a Bearer challenge
// from the SDK (nil RequireBearerTokenOptions) it adds one with just the
// error code. Statuses and bodies are unchanged.
//
// Only 401 and 403 responses written before any body byte are touched;
// the handler's ResponseWriter stays reachable through
// http.ResponseController (Flush, deadlines) for streaming.
func WithRFC6750Errors(h http.Handler) http.Handler {
	if h == nil {
		panic("gosdk: WithRFC6750Errors: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&challengeWriter{ResponseWriter: w, r: r}, r)
	})
}

// challengeWriter adds the error code to the challenge of the first status
// written.
type challengeWriter struct {
	http.ResponseWriter
	r           *http.Request
	wroteHeader bool
}

func (w *challengeWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		switch code {
		case http.StatusUnauthorized:
			if errCode := unauthorizedCode(w.r); errCode != "" {
				addErrorCode(w.Header(), errCode)
			}
		case http.StatusForbidden:
			addErrorCode(w.Header(), "insufficient_scope")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *challengeWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true // an implicit 200
	return w.ResponseWriter.Write(b)
}

// Flush lets code that type-asserts http.Flusher stream through the
// wrapper.
func (w *challengeWriter) Flush() {
	w.wroteHeader = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// unauthorizedCode is the RFC 6750 error code of a 401 answered to r: none
// without bearer credentials (§3), invalid_request for a malformed Bearer
// header, invalid_token otherwise.
func unauthorizedCode(r *http.Request) string {
	_, err := bearer.ParseAuthorization(r.Header.Get("Authorization"))
	switch {
	case err == nil:
		return "invalid_token"
	case errors.Is(err, bearer.ErrNoBearerToken):
		return ""
	default:
		return "invalid_request"
	}
}

// addErrorCode puts error="code" first in every Bearer challenge of h that
// has no error parameter yet, or adds a Bearer challenge when there is none.
func addErrorCode(h http.Header, code string) {
	param := `error="` + code + `"`
	values := h.Values("WWW-Authenticate")
	out := make([]string, 0, len(values)+1)
	found := false
	for _, v := range values {
		rest, ok := bearerParams(v)
		if !ok {
			out = append(out, v)
			continue
		}
		found = true
		switch {
		case hasParam(rest, "error"):
			out = append(out, v)
		case rest == "":
			out = append(out, "Bearer "+param)
		default:
			out = append(out, "Bearer "+param+", "+rest)
		}
	}
	if !found {
		out = append(out, "Bearer "+param)
	}
	h.Del("WWW-Authenticate")
	for _, v := range out {
		h.Add("WWW-Authenticate", v)
	}
}

// bearerParams returns the auth-params of a Bearer challenge (the scheme is
// case-insensitive, RFC 9110 §11.1), and false for another scheme.
func bearerParams(challenge string) (string, bool) {
	const scheme = "Bearer"
	if len(challenge) < len(scheme) || !strings.EqualFold(challenge[:len(scheme)], scheme) {
		return "", false
	}
	rest := challenge[len(scheme):]
	if rest == "" {
		return "", true
	}
	if rest[0] != ' ' {
		return "", false // "Bearerx"
	}
	return strings.TrimLeft(rest, " "), true
}

// hasParam reports whether an auth-param list (RFC 9110 §11.2: name=value
// pairs separated by commas, each value a token or a quoted-string) has a
// parameter named name. A comma or "error=" inside a quoted value is not a
// parameter.
func hasParam(params, name string) bool {
	for params != "" {
		params = strings.TrimLeft(params, " \t,")
		i := strings.IndexByte(params, '=')
		if i < 0 {
			return false
		}
		if strings.EqualFold(strings.TrimSpace(params[:i]), name) {
			return true
		}
		params = params[i+1:]
		if strings.HasPrefix(params, `"`) {
			// Skip the quoted-string, honouring quoted-pairs.
			j := 1
			for j < len(params) && params[j] != '"' {
				if params[j] == '\\' {
					j++
				}
				j++
			}
			params = params[min(j+1, len(params)):]
		}
		if k := strings.IndexByte(params, ','); k >= 0 {
			params = params[k+1:]
		} else {
			return false
		}
	}
	return false
}
