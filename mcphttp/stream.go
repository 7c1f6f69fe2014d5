package mcphttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/bearer"
)

// DefaultReverifyInterval is how often BoundStreams re-verifies the token of
// an open stream when StreamOptions.Interval is zero: a revoked grant loses
// its streams within a minute, for one verification per stream per minute.
const DefaultReverifyInterval = time.Minute

// Causes of a bounded stream's end, as context.Cause of the request context
// the handler below BoundStreams sees.
var (
	// ErrTokenExpired: the token that opened the stream reached its
	// AuthInfo.ExpiresAt.
	ErrTokenExpired = errors.New("mcphttp: access token expired")
	// ErrTokenRevoked: the Verifier no longer accepts the token (it
	// answered an error wrapping bearer.ErrInvalidToken, or an AuthInfo
	// that has expired): revoked, or its grant revoked.
	ErrTokenRevoked = errors.New("mcphttp: access token no longer valid")
	// ErrReverifyFailed: the Verifier failed (any other error, or no
	// AuthInfo); the stream ends as RequireBearerAuth would refuse a new
	// request with 500, and the failure goes to StreamOptions.ErrorHandler.
	ErrReverifyFailed = errors.New("mcphttp: access token re-verification failed")
	// ErrServerShutdown: StreamOptions.Shutdown is done.
	ErrServerShutdown = errors.New("mcphttp: server shutting down")
)

// ErrNoAuthInfo is the error BoundStreams hands to StreamOptions.ErrorHandler
// when a GET request reaches it without the verified AuthInfo (with an
// expiry) of RequireBearerAuth, or, with a Verifier set, without a bearer
// token to re-verify: BoundStreams is mounted before bearer auth, or behind
// something that does not set them. The request is answered 500: a stream
// that cannot be bounded is not opened.
var ErrNoAuthInfo = errors.New("mcphttp: no verified bearer token in the request (mount BoundStreams after RequireBearerAuth)")

// StreamOptions configures BoundStreams. The zero value bounds streams by
// token expiry alone.
type StreamOptions struct {
	// Verifier, if set, re-verifies the token that opened a stream every
	// Interval and ends the stream once it no longer verifies: revoking a
	// token or its grant then reaches the streams it opened. Use the
	// verifier of RequireBearerAuth (an *mcpoauth.OAuthServer is one). A
	// caching verifier, such as bearer.IntrospectionVerifier, notices a
	// revocation only when its cached answer expires. Nil: streams end at
	// expiry or shutdown only.
	Verifier bearer.Verifier

	// Interval is the time between two re-verifications; zero means
	// DefaultReverifyInterval. It must not be negative.
	Interval time.Duration

	// Shutdown, if set, ends every stream when it is done. http.Server's
	// Shutdown waits for handlers to return, and a GET stream never does
	// by itself: cancel this context from http.Server.RegisterOnShutdown.
	Shutdown context.Context

	// ErrorHandler, if set, is called with ErrNoAuthInfo, and with a
	// Verifier failure (wrapping ErrReverifyFailed) that ends a stream,
	// for logging. The request has no Authorization or Cookie header, and
	// the token never appears in the error. It must not write a response.
	ErrorHandler func(r *http.Request, err error)
}

// BoundStreams returns middleware that bounds the standalone event stream
// an MCP client opens with GET by the life of the access token that opened
// it. The client's later requests carry a fresh token, but a stream would
// otherwise outlive the token that authorized it for as long as the
// connection holds. For a GET request it gives the next handler a request
// context that is cancelled
//
//   - at AuthInfo.ExpiresAt (cause ErrTokenExpired);
//   - with StreamOptions.Verifier set, at the first re-verification, every
//     Interval, that the token fails (ErrTokenRevoked, ErrReverifyFailed);
//   - when StreamOptions.Shutdown is done (ErrServerShutdown);
//
// and it lifts the HTTP server's read and write deadlines of the
// connection, meant for ordinary requests, to the token's expiry through
// http.ResponseController (a writer that cannot set deadlines keeps the
// server's). Other methods pass through unchanged: their responses are
// bounded by the server's timeouts. An MCP SDK handler ends the stream
// cleanly when its context ends; the client reconnects with the token it
// holds then.
//
// Mount it after RequireBearerAuth, whose AuthInfo it reads with
// bearer.FromContext; the token to re-verify is read from the Authorization
// header, which RequireBearerAuth has checked, and is never logged. A GET
// request without them is answered 500 (ErrNoAuthInfo).
//
// It panics if StreamOptions.Interval is negative; the returned function
// panics if given a nil handler.
func BoundStreams(opts StreamOptions) func(http.Handler) http.Handler {
	if opts.Interval < 0 {
		panic("mcphttp: BoundStreams: negative StreamOptions.Interval")
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultReverifyInterval
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("mcphttp: BoundStreams: nil next handler")
		}
		return &streamHandler{opts: opts, next: next}
	}
}

type streamHandler struct {
	opts StreamOptions
	next http.Handler
}

// ServeHTTP implements http.Handler.
func (h *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		h.next.ServeHTTP(w, r)
		return
	}
	info, ok := bearer.FromContext(r.Context())
	if !ok || info.ExpiresAt.IsZero() {
		h.refuse(w, r)
		return
	}
	var token string
	if h.opts.Verifier != nil {
		var err error
		// One header, well formed: RequireBearerAuth has checked both.
		if token, err = bearer.ParseAuthorization(r.Header.Get("Authorization")); err != nil {
			h.refuse(w, r)
			return
		}
	}

	ctx, end := context.WithCancelCause(r.Context())
	defer end(nil)
	ctx, cancel := context.WithDeadlineCause(ctx, info.ExpiresAt, ErrTokenExpired)
	defer cancel()
	if h.opts.Shutdown != nil {
		stop := context.AfterFunc(h.opts.Shutdown, func() { end(ErrServerShutdown) })
		defer stop()
	}
	rc := http.NewResponseController(w)
	// An error means the writer cannot change deadlines (a test recorder,
	// a wrapper without Unwrap); the server's timeouts then apply.
	_ = rc.SetReadDeadline(info.ExpiresAt)
	_ = rc.SetWriteDeadline(info.ExpiresAt)

	if token != "" {
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			h.reverify(ctx, end, r, token)
		}()
		// Wait for the re-verifier, which may still use r, before
		// returning; end wakes it.
		defer func() { <-stopped }()
		defer end(nil)
	}
	h.next.ServeHTTP(w, r.WithContext(ctx))
}

// reverify re-verifies token every Interval until ctx ends, and ends the
// stream with the cause of the first failure.
func (h *streamHandler) reverify(ctx context.Context, end context.CancelCauseFunc, r *http.Request, token string) {
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		info, err := h.opts.Verifier.VerifyAccessToken(ctx, token)
		switch {
		case ctx.Err() != nil:
			return // ended meanwhile, for its own reason
		case errors.Is(err, bearer.ErrInvalidToken), err == nil && info != nil && !time.Now().Before(info.ExpiresAt):
			end(ErrTokenRevoked)
			return
		case err != nil:
			report(h.opts.ErrorHandler, r, fmt.Errorf("%w: %w", ErrReverifyFailed, withoutToken(err, token)))
			end(ErrReverifyFailed)
			return
		case info == nil:
			report(h.opts.ErrorHandler, r, fmt.Errorf("%w: verifier returned nil AuthInfo and nil error", ErrReverifyFailed))
			end(ErrReverifyFailed)
			return
		}
	}
}

// refuse answers 500 to a GET that cannot be bounded.
func (h *streamHandler) refuse(w http.ResponseWriter, r *http.Request) {
	report(h.opts.ErrorHandler, r, ErrNoAuthInfo)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

// errTokenInError replaces a verifier error whose message contains the
// token: neither its message nor its chain may reach the ErrorHandler.
var errTokenInError = errors.New("verifier error withheld: its message contained the token")

// withoutToken returns err, or errTokenInError when err's message contains
// token (bearer.Verifier forbids that; this is the second line).
func withoutToken(err error, token string) error {
	if strings.Contains(err.Error(), token) {
		return errTokenInError
	}
	return err
}
