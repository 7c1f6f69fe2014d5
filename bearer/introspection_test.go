package bearer_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

// The resource server's credentials at the stub authorization server; both
// need form-urlencoding before base64 (RFC 6749 §2.3.1).
const (
	rsClientID     = "rs:1"
	rsClientSecret = "s3cret/with %and+"
	stubIssuer     = "https://as.example.com"
	stubResource   = "https://mcp.example.com/mcp"
)

// t0 is the test clock's start; exp values are relative to it.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// stubAS is an introspection endpoint whose answer a test sets; it checks
// every request is what RFC 7662 §2.1 asks of a resource server.
type stubAS struct {
	t     *testing.T
	srv   *httptest.Server
	calls atomic.Int64
	// arrived receives a value per request, if set; release, if set,
	// holds every request until closed.
	arrived chan struct{}
	release chan struct{}

	mu     sync.Mutex
	status int
	body   string
	tokens []string
}

func newStubAS(t *testing.T) *stubAS {
	s := &stubAS{t: t, status: http.StatusOK, body: `{"active":false}`}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stubAS) serve(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if s.arrived != nil {
		s.arrived <- struct{}{}
	}
	if s.release != nil {
		<-s.release
	}
	id, sec, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok || id != url.QueryEscape(rsClientID) || sec != url.QueryEscape(rsClientSecret) ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.URL.RawQuery != "" {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" || len(r.PostForm["token"]) != 1 {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.tokens = append(s.tokens, r.PostForm.Get("token"))
	status, body := s.status, s.body
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (s *stubAS) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *stubAS) endpoint() string { return s.srv.URL + "/introspect" }

// newVerifier makes a verifier on the stub with a test clock.
func newVerifier(t *testing.T, s *stubAS, clock *testclock.Clock, mutate ...func(*bearer.IntrospectionOptions)) *bearer.IntrospectionVerifier {
	t.Helper()
	opts := bearer.IntrospectionOptions{
		Endpoint: s.endpoint(), ClientID: rsClientID, ClientSecret: rsClientSecret,
		Issuer: stubIssuer, Now: clock.Now,
	}
	for _, m := range mutate {
		m(&opts)
	}
	v, err := bearer.NewIntrospectionVerifier(opts)
	require.NoError(t, err)
	return v
}

// activeBody is an active answer expiring d after t0.
func activeBody(d time.Duration) string {
	return fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","sub":"alice","scope":"mcp:tools mcp:admin","aud":%q,"iss":%q,"exp":%d,"iat":%d}`,
		stubResource, stubIssuer, t0.Add(d).Unix(), t0.Unix())
}

func TestNewIntrospectionVerifierOptions(t *testing.T) {
	valid := bearer.IntrospectionOptions{Endpoint: "https://as.example.com/introspect", ClientID: "rs", ClientSecret: "s"}
	for _, tc := range []struct {
		name   string
		mutate func(*bearer.IntrospectionOptions)
		ok     bool
	}{
		{"https", func(*bearer.IntrospectionOptions) {}, true},
		{"http on 127.0.0.1", func(o *bearer.IntrospectionOptions) { o.Endpoint = "http://127.0.0.1:8080/introspect" }, true},
		{"http on localhost", func(o *bearer.IntrospectionOptions) { o.Endpoint = "http://localhost/introspect" }, true},
		{"http on [::1]", func(o *bearer.IntrospectionOptions) { o.Endpoint = "http://[::1]:9/introspect" }, true},
		{"http elsewhere", func(o *bearer.IntrospectionOptions) { o.Endpoint = "http://as.internal/introspect" }, false},
		{"http elsewhere, allowed", func(o *bearer.IntrospectionOptions) {
			o.Endpoint, o.AllowHTTP = "http://as.internal/introspect", true
		}, true},
		{"no endpoint", func(o *bearer.IntrospectionOptions) { o.Endpoint = "" }, false},
		{"relative endpoint", func(o *bearer.IntrospectionOptions) { o.Endpoint = "/introspect" }, false},
		{"other scheme", func(o *bearer.IntrospectionOptions) { o.Endpoint = "ftp://as.example.com/introspect" }, false},
		{"userinfo", func(o *bearer.IntrospectionOptions) { o.Endpoint = "https://u:p@as.example.com/introspect" }, false},
		{"fragment", func(o *bearer.IntrospectionOptions) { o.Endpoint = "https://as.example.com/introspect#x" }, false},
		{"no client id", func(o *bearer.IntrospectionOptions) { o.ClientID = "" }, false},
		{"no client secret", func(o *bearer.IntrospectionOptions) { o.ClientSecret = "" }, false},
		{"negative timeout", func(o *bearer.IntrospectionOptions) { o.Timeout = -time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid
			tc.mutate(&o)
			v, err := bearer.NewIntrospectionVerifier(o)
			if tc.ok {
				require.NoError(t, err)
				require.NotNil(t, v)
			} else {
				require.Error(t, err)
				require.NotContains(t, err.Error(), "u:p")
			}
		})
	}
}

// TestIntrospectionVerifierAnswers maps each kind of answer: active and
// acceptable → AuthInfo; inactive, not a bearer token, no or past exp,
// future nbf, another issuer → ErrInvalidToken; anything that is not a 200
// RFC 7662 answer → ErrIntrospectionFailed (never ErrInvalidToken, so the
// middleware answers 503, not 401).
func TestIntrospectionVerifierAnswers(t *testing.T) {
	hour := t0.Add(time.Hour).Unix()
	want := &bearer.AuthInfo{
		ClientID: "app", UserID: "alice", Scopes: []string{"mcp:tools", "mcp:admin"},
		Resource: stubResource, ExpiresAt: time.Unix(hour, 0),
	}
	with := func(f func(*bearer.AuthInfo)) *bearer.AuthInfo {
		c := *want
		f(&c)
		return &c
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   *bearer.AuthInfo
		err    error
	}{
		{"active", 200, activeBody(time.Hour), want, nil},
		{"token_type case-insensitive", 200, fmt.Sprintf(`{"active":true,"token_type":"bearer","client_id":"app","sub":"alice","scope":"mcp:tools mcp:admin","aud":%q,"exp":%d}`, stubResource, hour), want, nil},
		{"client token: no sub", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","scope":"mcp:tools mcp:admin","aud":%q,"exp":%d}`, stubResource, hour), with(func(a *bearer.AuthInfo) { a.UserID = "" }), nil},
		{"aud array of one", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","sub":"alice","scope":"mcp:tools mcp:admin","aud":[%q],"exp":%d}`, stubResource, hour), want, nil},
		{"aud of several: no single resource", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","sub":"alice","scope":"mcp:tools mcp:admin","aud":[%q,"https://other.example"],"exp":%d}`, stubResource, hour), with(func(a *bearer.AuthInfo) { a.Resource = "" }), nil},
		{"no aud", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","sub":"alice","scope":"mcp:tools mcp:admin","exp":%d}`, hour), with(func(a *bearer.AuthInfo) { a.Resource = "" }), nil},
		{"no scope", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","sub":"alice","aud":%q,"exp":%d}`, stubResource, hour), with(func(a *bearer.AuthInfo) { a.Scopes = []string{} }), nil},
		{"unknown members ignored", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","client_id":"app","sub":"alice","scope":"mcp:tools mcp:admin","aud":%q,"exp":%d,"username":"Alice","cnf":{}}`, stubResource, hour), want, nil},
		{"inactive", 200, `{"active":false}`, nil, bearer.ErrInvalidToken},
		{"refresh token (no token_type)", 200, fmt.Sprintf(`{"active":true,"client_id":"app","sub":"alice","exp":%d}`, hour), nil, bearer.ErrInvalidToken},
		{"other token_type", 200, fmt.Sprintf(`{"active":true,"token_type":"refresh_token","exp":%d}`, hour), nil, bearer.ErrInvalidToken},
		{"no exp", 200, `{"active":true,"token_type":"Bearer"}`, nil, bearer.ErrInvalidToken},
		{"expired", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","exp":%d}`, t0.Unix()), nil, bearer.ErrInvalidToken},
		{"not yet valid", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","exp":%d,"nbf":%d}`, hour, t0.Add(time.Minute).Unix()), nil, bearer.ErrInvalidToken},
		{"another issuer", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","exp":%d,"iss":"https://evil.example"}`, hour), nil, bearer.ErrInvalidToken},
		{"server error", 500, `{"error":"server_error"}`, nil, bearer.ErrIntrospectionFailed},
		{"unavailable", 503, `{"error":"temporarily_unavailable"}`, nil, bearer.ErrIntrospectionFailed},
		{"own credentials refused", 401, `{"error":"invalid_client"}`, nil, bearer.ErrIntrospectionFailed},
		{"rate limited", 429, `{"error":"too_many_requests"}`, nil, bearer.ErrIntrospectionFailed},
		{"not JSON", 200, `<html>`, nil, bearer.ErrIntrospectionFailed},
		{"no active member", 200, `{"token_type":"Bearer"}`, nil, bearer.ErrIntrospectionFailed},
		{"active not a boolean", 200, `{"active":"true"}`, nil, bearer.ErrIntrospectionFailed},
		{"trailing data", 200, `{"active":true}{"active":true}`, nil, bearer.ErrIntrospectionFailed},
		{"exp not an integer", 200, `{"active":true,"token_type":"Bearer","exp":"soon"}`, nil, bearer.ErrIntrospectionFailed},
		{"aud not strings", 200, fmt.Sprintf(`{"active":true,"token_type":"Bearer","exp":%d,"aud":7}`, hour), nil, bearer.ErrIntrospectionFailed},
		{"too large", 200, `{"active":false,"pad":"` + strings.Repeat("x", 70<<10) + `"}`, nil, bearer.ErrIntrospectionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newStubAS(t)
			as.answer(tc.status, tc.body)
			v := newVerifier(t, as, testclock.New(t0))
			const token = "the-token-value"
			info, err := v.VerifyAccessToken(context.Background(), token)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				if tc.err == bearer.ErrIntrospectionFailed {
					require.NotErrorIs(t, err, bearer.ErrInvalidToken)
				}
				require.NotContains(t, err.Error(), token)
				require.Nil(t, info)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.want, info)
			}
			require.Equal(t, []string{token}, as.tokens, "the token went in the body, once")
		})
	}
}

// TestIntrospectionVerifierNoRedirects: a redirect is a failure and is not
// followed: following it would carry the token to another URL.
func TestIntrospectionVerifierNoRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(target.Close)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL, status)
			}))
			t.Cleanup(as.Close)
			v, err := bearer.NewIntrospectionVerifier(bearer.IntrospectionOptions{
				Endpoint: as.URL, ClientID: rsClientID, ClientSecret: rsClientSecret,
				HTTPClient: &http.Client{}, // a client that would follow redirects
			})
			require.NoError(t, err)
			_, err = v.VerifyAccessToken(context.Background(), "tok")
			require.ErrorIs(t, err, bearer.ErrIntrospectionFailed)
			require.Zero(t, elsewhere.Load())
		})
	}
}

// TestIntrospectionVerifierCache: an active answer is reused for CacheTTL,
// never past the token's exp; an inactive one for NegativeCacheTTL;
// failures never; a negative CacheTTL disables the cache; the cache is
// keyed by the token's SHA-256 digest and bounded by MaxEntries.
func TestIntrospectionVerifierCache(t *testing.T) {
	ctx := context.Background()
	type step struct {
		advance time.Duration
		status  int
		body    string
		calls   int64 // requests made so far, after this step
		valid   bool
	}
	for _, tc := range []struct {
		name   string
		mutate func(*bearer.IntrospectionOptions)
		steps  []step
	}{
		{"active: reused for the TTL, then asked again (the revocation delay)", nil, []step{
			{0, 200, activeBody(time.Hour), 1, true},
			{bearer.DefaultIntrospectionCacheTTL - time.Second, 200, `{"active":false}`, 1, true},
			{time.Second, 200, `{"active":false}`, 2, false},
		}},
		{"active: never past exp", nil, []step{
			{0, 200, activeBody(10 * time.Second), 1, true},
			{9 * time.Second, 200, activeBody(10 * time.Second), 1, true},
			{time.Second, 200, activeBody(10 * time.Second), 2, false},
		}},
		{"inactive: reused for the negative TTL", nil, []step{
			{0, 200, `{"active":false}`, 1, false},
			{bearer.DefaultIntrospectionNegativeCacheTTL - time.Second, 200, activeBody(time.Hour), 1, false},
			{time.Second, 200, activeBody(time.Hour), 2, true},
		}},
		{"failures are not cached", nil, []step{
			{0, 500, `{}`, 1, false},
			{0, 200, activeBody(time.Hour), 2, true},
		}},
		{"custom TTLs", func(o *bearer.IntrospectionOptions) { o.CacheTTL, o.NegativeCacheTTL = time.Second, 2*time.Second }, []step{
			{0, 200, `{"active":false}`, 1, false},
			{time.Second, 200, activeBody(time.Hour), 1, false},
			{time.Second, 200, activeBody(time.Hour), 2, true},
			{time.Second - time.Nanosecond, 200, `{"active":false}`, 2, true},
			{time.Nanosecond, 200, `{"active":false}`, 3, false},
		}},
		{"cache disabled", func(o *bearer.IntrospectionOptions) { o.CacheTTL, o.NegativeCacheTTL = -1, -1 }, []step{
			{0, 200, activeBody(time.Hour), 1, true},
			{0, 200, activeBody(time.Hour), 2, true},
			{0, 200, `{"active":false}`, 3, false},
			{0, 200, `{"active":false}`, 4, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newStubAS(t)
			clock := testclock.New(t0)
			var mutate []func(*bearer.IntrospectionOptions)
			if tc.mutate != nil {
				mutate = append(mutate, tc.mutate)
			}
			v := newVerifier(t, as, clock, mutate...)
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				as.answer(s.status, s.body)
				info, err := v.VerifyAccessToken(ctx, "tok")
				require.Equal(t, s.calls, as.calls.Load(), "step %d", i)
				if s.valid {
					require.NoError(t, err, "step %d", i)
					require.Equal(t, "alice", info.UserID)
				} else {
					require.Error(t, err, "step %d", i)
				}
			}
		})
	}

	t.Run("keyed by digest, bounded", func(t *testing.T) {
		as := newStubAS(t)
		as.answer(200, activeBody(time.Hour))
		v := newVerifier(t, as, testclock.New(t0), func(o *bearer.IntrospectionOptions) { o.MaxEntries = 3 })
		for i := range 10 {
			_, err := v.VerifyAccessToken(ctx, fmt.Sprintf("token-%d", i))
			require.NoError(t, err)
			require.LessOrEqual(t, len(bearer.CachedDigests(v)), 3)
		}
		_, err := v.VerifyAccessToken(ctx, "token-last")
		require.NoError(t, err)
		require.Contains(t, bearer.CachedDigests(v), sha256.Sum256([]byte("token-last")))
		require.Len(t, bearer.CachedDigests(v), 3)
	})

	t.Run("a full cache evicts expired entries first", func(t *testing.T) {
		as := newStubAS(t)
		clock := testclock.New(t0)
		v := newVerifier(t, as, clock, func(o *bearer.IntrospectionOptions) { o.MaxEntries = 2 })
		as.answer(200, activeBody(time.Hour))
		_, err := v.VerifyAccessToken(ctx, "long")
		require.NoError(t, err)
		as.answer(200, `{"active":false}`)
		_, err = v.VerifyAccessToken(ctx, "short")
		require.ErrorIs(t, err, bearer.ErrInvalidToken)
		clock.Advance(bearer.DefaultIntrospectionNegativeCacheTTL) // "short" expires
		as.answer(200, activeBody(time.Hour))
		_, err = v.VerifyAccessToken(ctx, "new")
		require.NoError(t, err)
		require.ElementsMatch(t, [][sha256.Size]byte{sha256.Sum256([]byte("long")), sha256.Sum256([]byte("new"))}, bearer.CachedDigests(v))
	})

	// The lifetime of a cached answer counts from when the question was
	// asked, not from when the answer came: the answer is only known to
	// hold at some instant in between, so a slow endpoint must not stretch
	// the revocation delay past the TTL.
	for _, tc := range []struct {
		name  string
		body  string
		ttl   time.Duration
		valid bool
	}{
		{"active: the TTL counts from the question, not the answer", activeBody(time.Hour), bearer.DefaultIntrospectionCacheTTL, true},
		{"inactive: the negative TTL counts from the question, not the answer", `{"active":false}`, bearer.DefaultIntrospectionNegativeCacheTTL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newStubAS(t)
			as.arrived, as.release = make(chan struct{}, 4), make(chan struct{})
			as.answer(200, tc.body)
			clock := testclock.New(t0)
			v := newVerifier(t, as, clock)
			done := make(chan error, 1)
			go func() {
				_, err := v.VerifyAccessToken(ctx, "tok")
				done <- err
			}()
			<-as.arrived
			slow := tc.ttl / 2
			clock.Advance(slow) // the endpoint answers late
			close(as.release)
			require.Equal(t, tc.valid, <-done == nil)
			clock.Advance(tc.ttl - slow - time.Nanosecond)
			_, err := v.VerifyAccessToken(ctx, "tok")
			require.Equal(t, tc.valid, err == nil)
			require.EqualValues(t, 1, as.calls.Load(), "cached until the TTL after the question")
			clock.Advance(time.Nanosecond)
			_, err = v.VerifyAccessToken(ctx, "tok")
			require.Equal(t, tc.valid, err == nil)
			require.EqualValues(t, 2, as.calls.Load(), "asked again at the TTL after the question")
		})
	}

	t.Run("empty token", func(t *testing.T) {
		as := newStubAS(t)
		_, err := newVerifier(t, as, testclock.New(t0)).VerifyAccessToken(ctx, "")
		require.ErrorIs(t, err, bearer.ErrInvalidToken)
		require.Zero(t, as.calls.Load())
	})
}

// TestIntrospectionVerifierCoalesces: concurrent verifications of one token
// share one request, and all get its answer.
func TestIntrospectionVerifierCoalesces(t *testing.T) {
	const callers = 8
	as := newStubAS(t)
	as.answer(200, activeBody(time.Hour))
	as.arrived, as.release = make(chan struct{}, callers), make(chan struct{})
	v := newVerifier(t, as, testclock.New(t0))
	joined := make(chan struct{}, callers)
	bearer.SetOnJoin(v, func() { joined <- struct{}{} })

	results := make(chan *bearer.AuthInfo, callers)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			info, err := v.VerifyAccessToken(context.Background(), "shared-token")
			results <- info
			errs <- err
		}()
	}
	<-as.arrived
	for range callers - 1 {
		<-joined
	}
	close(as.release)
	var first *bearer.AuthInfo
	for range callers {
		require.NoError(t, <-errs)
		info := <-results
		if first == nil {
			first = info
		}
		require.Same(t, first, info)
	}
	require.EqualValues(t, 1, as.calls.Load())
}

// TestIntrospectionVerifierCallerGivesUp: a caller whose context ends stops
// waiting at once with a failure (not an invalid token); the request it
// started still completes and its answer serves the next caller.
func TestIntrospectionVerifierCallerGivesUp(t *testing.T) {
	as := newStubAS(t)
	as.answer(200, activeBody(time.Hour))
	as.arrived, as.release = make(chan struct{}, 2), make(chan struct{})
	v := newVerifier(t, as, testclock.New(t0))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.VerifyAccessToken(ctx, "tok")
		done <- err
	}()
	<-as.arrived
	cancel()
	err := <-done
	require.ErrorIs(t, err, bearer.ErrIntrospectionFailed)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, bearer.ErrInvalidToken)

	joined := make(chan struct{}, 1)
	bearer.SetOnJoin(v, func() { joined <- struct{}{} })
	go func() {
		_, err := v.VerifyAccessToken(context.Background(), "tok")
		done <- err
	}()
	<-joined // the second caller waits for the first caller's request
	close(as.release)
	require.NoError(t, <-done)
	require.EqualValues(t, 1, as.calls.Load())
}

// TestIntrospectionVerifierTimeout: Timeout bounds a request to an
// endpoint that does not answer.
func TestIntrospectionVerifierTimeout(t *testing.T) {
	as := newStubAS(t)
	as.release = make(chan struct{})
	t.Cleanup(func() { close(as.release) })
	v := newVerifier(t, as, testclock.New(t0), func(o *bearer.IntrospectionOptions) { o.Timeout = 50 * time.Millisecond })
	_, err := v.VerifyAccessToken(context.Background(), "tok")
	require.ErrorIs(t, err, bearer.ErrIntrospectionFailed)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestIntrospectionVerifierBehindMiddleware: with RequireBearerAuth, an
// active token passes, an inactive one is 401 invalid_token, and an
// endpoint failure is 500 server_error reported to ErrorHandler without
// the token.
func TestIntrospectionVerifierBehindMiddleware(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		want      int
		reported  bool
		errorCode string
	}{
		{"active", 200, activeBody(time.Hour), http.StatusOK, false, ""},
		{"inactive", 200, `{"active":false}`, http.StatusUnauthorized, false, "invalid_token"},
		{"for another resource", 200, strings.Replace(activeBody(time.Hour), stubResource, "https://other.example/mcp", 1), http.StatusUnauthorized, false, "invalid_token"},
		{"authorization server down", 502, `bad gateway`, http.StatusServiceUnavailable, true, "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newStubAS(t)
			as.answer(tc.status, tc.body)
			var reported []error
			h := bearer.RequireBearerAuth(bearer.Options{
				Verifier:       newVerifier(t, as, testclock.New(t0)),
				RequiredScopes: []string{"mcp:tools"},
				Resource:       stubResource,
				Now:            testclock.New(t0).Now,
				ErrorHandler:   func(_ *http.Request, err error) { reported = append(reported, err) },
			})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				info, _ := bearer.FromContext(r.Context())
				_, _ = w.Write([]byte(info.UserID))
			}))
			r := httptest.NewRequest(http.MethodPost, stubResource, nil)
			r.Header.Set("Authorization", "Bearer secret-token-value")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
			require.Equal(t, tc.reported, len(reported) == 1)
			for _, err := range reported {
				require.ErrorIs(t, err, bearer.ErrIntrospectionFailed)
				require.NotContains(t, err.Error(), "secret-token-value")
			}
			if tc.errorCode != "" {
				var body struct{ Error string }
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				require.Equal(t, tc.errorCode, body.Error)
			} else {
				require.Equal(t, "alice", w.Body.String())
			}
		})
	}
}

// BenchmarkIntrospectionCacheHit: the resource server's hot path with
// introspection: a token whose answer is cached (active, or inactive), by
// one caller and by many at once.
func BenchmarkIntrospectionCacheHit(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("token") == "inactive-token" {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		_, _ = w.Write([]byte(activeBody(time.Hour)))
	}))
	b.Cleanup(srv.Close)
	v, err := bearer.NewIntrospectionVerifier(bearer.IntrospectionOptions{
		Endpoint: srv.URL, ClientID: rsClientID, ClientSecret: rsClientSecret,
		Issuer: stubIssuer, Now: testclock.New(t0).Now,
	})
	require.NoError(b, err)
	ctx := context.Background()
	// A cache of many answers, as on a busy resource server.
	for i := range 1000 {
		_, err := v.VerifyAccessToken(ctx, fmt.Sprintf("other-token-%d", i))
		require.NoError(b, err)
	}
	for _, bc := range []struct {
		token  string
		active bool
	}{{"active-token-of-a-typical-length-0123456789abcdef", true}, {"inactive-token", false}} {
		_, err := v.VerifyAccessToken(ctx, bc.token)
		require.Equal(b, bc.active, err == nil, err)
		name := "active"
		if !bc.active {
			name = "inactive"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = v.VerifyAccessToken(ctx, bc.token)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = v.VerifyAccessToken(ctx, bc.token)
				}
			})
		})
	}
}
