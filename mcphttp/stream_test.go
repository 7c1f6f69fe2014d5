package mcphttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
)

// The stream tests run in a synctest bubble: time is fake and advances only
// when every goroutine of the test is blocked, so a stream that ends "after
// an hour" ends at once, at exactly that fake instant, and no test sleeps.

const streamToken = "stream-token-0123456789"

// streamVerifier answers for streamToken as verify says, given the time
// elapsed since the stream opened, and counts its calls.
type streamVerifier struct {
	start  time.Time
	verify func(elapsed time.Duration) (*bearer.AuthInfo, error)
	calls  atomic.Int32
	tokens chan string
}

func (v *streamVerifier) VerifyAccessToken(_ context.Context, token string) (*bearer.AuthInfo, error) {
	v.calls.Add(1)
	select {
	case v.tokens <- token:
	default:
	}
	return v.verify(time.Since(v.start))
}

// stream opens a GET stream through BoundStreams in the current bubble,
// with a token valid for an hour, and returns when its handler returns,
// with the time the stream lasted and the cause of its end.
func stream(t *testing.T, opts StreamOptions, w http.ResponseWriter) (lasted time.Duration, cause error) {
	t.Helper()
	start := time.Now()
	info := &bearer.AuthInfo{ClientID: "c", Scopes: []string{"mcp:tools"}, ExpiresAt: start.Add(time.Hour)}
	r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+streamToken)
	r = r.WithContext(bearer.ContextWithAuthInfo(r.Context(), info))
	ended := make(chan error, 1)
	next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // an event stream: runs until its context ends
		ended <- context.Cause(r.Context())
	})
	if w == nil {
		w = httptest.NewRecorder()
	}
	BoundStreams(opts)(next).ServeHTTP(w, r)
	cause = <-ended
	return time.Since(start), cause
}

func TestBoundStreamsEnds(t *testing.T) {
	errStore := errors.New("store: connection refused")
	valid := func(time.Duration) (*bearer.AuthInfo, error) {
		return &bearer.AuthInfo{ExpiresAt: time.Now().Add(time.Hour)}, nil
	}
	revokedAfter := func(d time.Duration) func(time.Duration) (*bearer.AuthInfo, error) {
		return func(elapsed time.Duration) (*bearer.AuthInfo, error) {
			if elapsed >= d {
				return nil, fmt.Errorf("token: %w", bearer.ErrInvalidToken)
			}
			return valid(elapsed)
		}
	}
	for _, tt := range []struct {
		name     string
		verify   func(time.Duration) (*bearer.AuthInfo, error) // nil: no Verifier
		interval time.Duration
		cause    error
		lasted   time.Duration
		calls    int32
		reported error // wrapped by what ErrorHandler got; nil for nothing
	}{
		{
			name:  "OAuth 2.1 §5.2: without a verifier the stream ends when its token expires",
			cause: ErrTokenExpired, lasted: time.Hour,
		},
		{
			name:   "OAuth 2.1 §5.2: a token that keeps verifying still ends at its expiry",
			verify: valid, interval: 7 * time.Minute, cause: ErrTokenExpired, lasted: time.Hour, calls: 8,
		},
		{
			name:   "RFC 7009 §2: revocation ends the stream at the next re-verification (default one minute)",
			verify: revokedAfter(90 * time.Second), cause: ErrTokenRevoked, lasted: 2 * time.Minute, calls: 2,
		},
		{
			name:   "RFC 7009 §2: the re-verification interval is configurable",
			verify: revokedAfter(90 * time.Second), interval: 10 * time.Second, cause: ErrTokenRevoked, lasted: 90 * time.Second, calls: 9,
		},
		{
			name: "OAuth 2.1 §5.2: a re-verified AuthInfo that has expired ends the stream",
			verify: func(time.Duration) (*bearer.AuthInfo, error) {
				return &bearer.AuthInfo{ExpiresAt: time.Now()}, nil
			},
			cause: ErrTokenRevoked, lasted: time.Minute, calls: 1,
		},
		{
			name: "RequireBearerAuth 503: a failing verifier ends the stream (fail closed) and is reported",
			verify: func(time.Duration) (*bearer.AuthInfo, error) {
				return nil, fmt.Errorf("verify: %w", errStore)
			},
			cause: ErrReverifyFailed, lasted: time.Minute, calls: 1, reported: errStore,
		},
		{
			name: "RequireBearerAuth 500: a verifier answering nothing ends the stream",
			verify: func(time.Duration) (*bearer.AuthInfo, error) {
				return nil, nil
			},
			cause: ErrReverifyFailed, lasted: time.Minute, calls: 1, reported: ErrReverifyFailed,
		},
		{
			name: "no secrets in logs: a verifier error naming the token is withheld",
			verify: func(time.Duration) (*bearer.AuthInfo, error) {
				return nil, errors.New("lookup " + streamToken + ": timeout")
			},
			cause: ErrReverifyFailed, lasted: time.Minute, calls: 1, reported: errTokenInError,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log errorLog
				opts := StreamOptions{Interval: tt.interval, ErrorHandler: log.handler}
				var v *streamVerifier
				if tt.verify != nil {
					v = &streamVerifier{start: time.Now(), verify: tt.verify, tokens: make(chan string, 1)}
					opts.Verifier = v
				}
				lasted, cause := stream(t, opts, nil)
				require.ErrorIs(t, cause, tt.cause)
				require.Equal(t, tt.lasted, lasted)
				if v != nil {
					require.Equal(t, tt.calls, v.calls.Load())
					if tt.calls > 0 {
						require.Equal(t, streamToken, <-v.tokens, "the token of the Authorization header is re-verified")
					}
				}
				if tt.reported == nil {
					require.Empty(t, log.errs)
					return
				}
				require.Len(t, log.errs, 1)
				require.ErrorIs(t, log.errs[0], ErrReverifyFailed)
				require.ErrorIs(t, log.errs[0], tt.reported)
				require.NotContains(t, log.errs[0].Error(), streamToken)
				require.Equal(t, []string{""}, log.auths, "the ErrorHandler sees no credential")
			})
		})
	}
}

// TestBoundStreamsShutdown: http.Server.Shutdown waits for handlers, so the
// shutdown context ends every open stream, at once.
func TestBoundStreamsShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shutdown, endStreams := context.WithCancel(context.Background())
		done := make(chan struct{})
		var cause error
		var lasted time.Duration
		go func() {
			defer close(done)
			lasted, cause = stream(t, StreamOptions{Shutdown: shutdown}, nil)
		}()
		synctest.Wait() // the stream is open and waiting
		endStreams()
		<-done
		require.ErrorIs(t, cause, ErrServerShutdown)
		require.Zero(t, lasted)
	})
}

// deadlineWriter records the deadlines http.ResponseController sets.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	read, write time.Time
}

func (w *deadlineWriter) SetReadDeadline(t time.Time) error  { w.read = t; return nil }
func (w *deadlineWriter) SetWriteDeadline(t time.Time) error { w.write = t; return nil }

// TestBoundStreamsLiftsDeadlines: the server's read and write timeouts,
// meant for ordinary requests, would cut the stream; they are moved to the
// token's expiry.
func TestBoundStreamsLiftsDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
		expiry := time.Now().Add(time.Hour)
		_, _ = stream(t, StreamOptions{}, w)
		require.Equal(t, expiry, w.read)
		require.Equal(t, expiry, w.write)
	})
}

func TestBoundStreamsPassesThrough(t *testing.T) {
	for _, tt := range []struct {
		name   string
		method string
		info   *bearer.AuthInfo
		auth   string
		opts   StreamOptions
		want   int
		err    error
	}{
		{
			name: "MCP transport: POST responses are bounded by the server's timeouts, not touched",
			// No AuthInfo either: only GET is checked.
			method: http.MethodPost, want: http.StatusOK,
		},
		{
			name:   "mounted before RequireBearerAuth: a GET without AuthInfo is 500, not an unbounded stream",
			method: http.MethodGet, want: http.StatusInternalServerError, err: ErrNoAuthInfo,
		},
		{
			name:   "OAuth 2.1 §5.2: a GET with an AuthInfo without expiry is 500",
			method: http.MethodGet, info: &bearer.AuthInfo{ClientID: "c"}, auth: "Bearer " + streamToken,
			want: http.StatusInternalServerError, err: ErrNoAuthInfo,
		},
		{
			name:   "RFC 6750 §2.1: with a Verifier, a GET without a bearer token to re-verify is 500",
			method: http.MethodGet, info: &bearer.AuthInfo{ClientID: "c", ExpiresAt: time.Now().Add(time.Hour)},
			opts: StreamOptions{Verifier: bearer.VerifierFunc(func(context.Context, string) (*bearer.AuthInfo, error) {
				panic("not called")
			})},
			want: http.StatusInternalServerError, err: ErrNoAuthInfo,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log errorLog
			tt.opts.ErrorHandler = log.handler
			r := httptest.NewRequest(tt.method, "/mcp", nil)
			if tt.info != nil {
				r = r.WithContext(bearer.ContextWithAuthInfo(r.Context(), tt.info))
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			var deadline bool
			next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				_, deadline = r.Context().Deadline()
			})
			w := httptest.NewRecorder()
			BoundStreams(tt.opts)(next).ServeHTTP(w, r)
			require.Equal(t, tt.want, w.Code)
			require.False(t, deadline, "the request context is left alone")
			if tt.err == nil {
				require.Empty(t, log.errs)
				return
			}
			require.Equal(t, []error{tt.err}, log.errs)
			require.Equal(t, []string{""}, log.auths)
		})
	}
}

func TestBoundStreamsPanicsOnBadOptions(t *testing.T) {
	require.Panics(t, func() { BoundStreams(StreamOptions{Interval: -time.Second}) })
	require.Panics(t, func() { BoundStreams(StreamOptions{})(nil) })
}

// TestBoundStreamsStopsWithHandler: a GET that returns by itself leaves no
// re-verifier running behind it.
func TestBoundStreamsStopsWithHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &streamVerifier{start: time.Now(), tokens: make(chan string, 1), verify: func(time.Duration) (*bearer.AuthInfo, error) {
			return &bearer.AuthInfo{ExpiresAt: time.Now().Add(time.Hour)}, nil
		}}
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+streamToken)
		r = r.WithContext(bearer.ContextWithAuthInfo(r.Context(), &bearer.AuthInfo{ExpiresAt: time.Now().Add(time.Hour)}))
		w := httptest.NewRecorder()
		BoundStreams(StreamOptions{Verifier: v})(okHandler).ServeHTTP(w, r)
		require.Equal(t, "ok", w.Body.String())
		synctest.Wait()
		require.Zero(t, v.calls.Load())
		// synctest.Test fails if a goroutine of the bubble is still running.
	})
}
