package bearer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

const (
	testPRM      = "https://rs.example/.well-known/oauth-protected-resource/mcp"
	testResource = "https://rs.example/mcp"
	testScope    = "mcp:tools"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Expected challenges for the base options (RFC 6750 §3, RFC 9728 §5.1).
const (
	chNoCredentials = `Bearer resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chMalformed     = `Bearer error="invalid_request", error_description="` + descMalformed + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chMultiple      = `Bearer error="invalid_request", error_description="` + descMultipleHeaders + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chTooLarge      = `Bearer error="invalid_request", error_description="` + descHeaderTooLarge + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chNotInHeader   = `Bearer error="invalid_request", error_description="` + descTokenNotInHeader + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chInvalidToken  = `Bearer error="invalid_token", error_description="` + descInvalidToken + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chWrongResource = `Bearer error="invalid_token", error_description="` + descWrongResource + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
	chInsufficient  = `Bearer error="insufficient_scope", error_description="` + descInsufficientScope + `", resource_metadata="` + testPRM + `", scope="mcp:tools"`
)

func info(mod func(*AuthInfo)) *AuthInfo {
	i := &AuthInfo{
		ClientID:  "client-1",
		UserID:    "user-1",
		Scopes:    []string{testScope},
		Resource:  testResource,
		ExpiresAt: testNow.Add(time.Hour),
		GrantID:   "grant-1",
	}
	if mod != nil {
		mod(i)
	}
	return i
}

// fakeVerifier knows a fixed set of tokens; "invalid" (and any unknown
// token) wraps ErrInvalidToken, "broken" fails like a database, "nilinfo"
// returns neither an AuthInfo nor an error.
type fakeVerifier struct {
	tokens map[string]*AuthInfo
	calls  atomic.Int32
}

var errStoreDown = errors.New("store: connection refused")

func (v *fakeVerifier) VerifyAccessToken(_ context.Context, token string) (*AuthInfo, error) {
	v.calls.Add(1)
	switch token {
	case "broken":
		return nil, fmt.Errorf("verify: %w", errStoreDown)
	case "nilinfo":
		return nil, nil
	}
	if i, ok := v.tokens[token]; ok {
		return i, nil
	}
	return nil, fmt.Errorf("verify: unknown token: %w", ErrInvalidToken)
}

func newFakeVerifier() *fakeVerifier {
	return &fakeVerifier{tokens: map[string]*AuthInfo{
		"good":         info(nil),
		"aZ09-._~+/==": info(nil),
		"long":         info(nil),
		"noexpiry":     info(func(i *AuthInfo) { i.ExpiresAt = time.Time{} }),
		"expired":      info(func(i *AuthInfo) { i.ExpiresAt = testNow.Add(-time.Second) }),
		"expiresnow":   info(func(i *AuthInfo) { i.ExpiresAt = testNow }),
		"almostdue":    info(func(i *AuthInfo) { i.ExpiresAt = testNow.Add(time.Nanosecond) }),
		"otherres":     info(func(i *AuthInfo) { i.Resource = "https://other.example/mcp" }),
		"prefixres":    info(func(i *AuthInfo) { i.Resource = "https://rs.example/mcp/sub" }),
		"otherresnoscope": info(func(i *AuthInfo) {
			i.Resource = "https://other.example/mcp"
			i.Scopes = nil
		}),
		"nores":    info(func(i *AuthInfo) { i.Resource = "" }),
		"canonres": info(func(i *AuthInfo) { i.Resource = "HTTPS://RS.example:443/mcp/" }),
		"noscope":  info(func(i *AuthInfo) { i.Scopes = []string{"mcp:read"} }),
		"casescope": info(func(i *AuthInfo) {
			i.Scopes = []string{"MCP:TOOLS"}
		}),
		"twoscopes": info(func(i *AuthInfo) { i.Scopes = []string{"mcp:tools", "mcp:admin"} }),
		"wildcard":  info(func(i *AuthInfo) { i.Scopes = []string{"mcp:*"} }),
		"cc":        info(func(i *AuthInfo) { i.UserID = "" }),
	}}
}

func baseOptions(v Verifier) Options {
	return Options{
		Verifier:            v,
		RequiredScopes:      []string{testScope},
		ResourceMetadataURL: testPRM,
		Resource:            testResource,
		Now:                 testclock.New(testNow).Now,
	}
}

// prefixScopes models a hierarchy: "x:*" grants every "x:..." scope.
func prefixScopes(granted []string, required string) bool {
	for _, g := range granted {
		if g == required {
			return true
		}
		if p, ok := strings.CutSuffix(g, "*"); ok && strings.HasPrefix(required, p) {
			return true
		}
	}
	return false
}

func TestRequireBearerAuth(t *testing.T) {
	tooLong := "Bearer " + strings.Repeat("a", MaxAuthorizationLength-len("Bearer ")+1)
	maxLen := "Bearer " + strings.Repeat("a", MaxAuthorizationLength-len("Bearer "))

	tests := []struct {
		name   string
		target string          // request URI; default "/mcp"
		auth   []string        // Authorization header values; nil = none
		form   url.Values      // pre-parsed PostForm, as by an upstream ParseForm
		opts   func(*Options)  // changes to baseOptions
		ok     bool            // next must run
		status int             // for failures
		chall  string          // exact WWW-Authenticate; "" = must be absent
		errc   string          // JSON body error code
		calls  int32           // verifier calls expected
		check  func(*AuthInfo) // extra check of the AuthInfo seen by next
	}{
		// Rule 1: no credentials → 401, challenge without error code (RFC 6750 §3).
		{name: "no header", status: 401, chall: chNoCredentials, errc: "invalid_token"},
		{name: "basic scheme", auth: []string{"Basic dXNlcjpwYXNz"}, status: 401, chall: chNoCredentials, errc: "invalid_token"},
		{name: "dpop scheme", auth: []string{"DPoP good"}, status: 401, chall: chNoCredentials, errc: "invalid_token"},
		{name: "empty header", auth: []string{""}, status: 401, chall: chNoCredentials, errc: "invalid_token"},
		{
			name: "empty parameters omitted", opts: func(o *Options) { o.RequiredScopes, o.ResourceMetadataURL = nil, "" },
			status: 401, chall: "Bearer", errc: "invalid_token",
		},
		{
			name: "all required scopes advertised", opts: func(o *Options) { o.RequiredScopes = []string{"mcp:tools", "mcp:admin"} },
			status: 401, chall: `Bearer resource_metadata="` + testPRM + `", scope="mcp:tools mcp:admin"`, errc: "invalid_token",
		},

		// Rule 2: RFC 6750 §2.1 header syntax.
		{name: "valid", auth: []string{"Bearer good"}, ok: true, calls: 1},
		{name: "scheme lower case", auth: []string{"bearer good"}, ok: true, calls: 1},
		{name: "scheme upper case", auth: []string{"BEARER good"}, ok: true, calls: 1},
		{name: "several spaces", auth: []string{"Bearer   good"}, ok: true, calls: 1},
		{name: "b64token alphabet and padding", auth: []string{"Bearer aZ09-._~+/=="}, ok: true, calls: 1},
		{name: "trailing junk", auth: []string{"Bearer good junk"}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "scheme alone", auth: []string{"Bearer"}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "empty token", auth: []string{"Bearer "}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "tab separator", auth: []string{"Bearer\tgood"}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "trailing space", auth: []string{"Bearer good "}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "padding first", auth: []string{"Bearer =good"}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "quoted token", auth: []string{`Bearer "good"`}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "comma list", auth: []string{"Bearer good, Bearer good"}, status: 400, chall: chMalformed, errc: "invalid_request"},
		{name: "two headers", auth: []string{"Bearer good", "Bearer good"}, status: 400, chall: chMultiple, errc: "invalid_request"},
		{name: "two headers other scheme", auth: []string{"Basic x", "Bearer good"}, status: 400, chall: chMultiple, errc: "invalid_request"},
		{name: "header too large", auth: []string{tooLong}, status: 400, chall: chTooLarge, errc: "invalid_request"},
		{name: "header at the limit is parsed", auth: []string{maxLen}, status: 401, chall: chInvalidToken, errc: "invalid_token", calls: 1},

		// Rule 3: tokens outside the header are refused (MCP; RFC 6750 §2.2, §2.3 not supported).
		{name: "query token with valid header", target: "/mcp?access_token=good", auth: []string{"Bearer good"}, status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "query token alone", target: "/mcp?access_token=good", status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "query token empty value", target: "/mcp?x=1&access_token", auth: []string{"Bearer good"}, status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "query token encoded name", target: "/mcp?a=1&access%5Ftoken=good", auth: []string{"Bearer good"}, status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "query token after semicolon", target: "/mcp?a=1;access_token=good", auth: []string{"Bearer good"}, status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "query token undecodable value", target: "/mcp?access_token=%zz", auth: []string{"Bearer good"}, status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "form token parsed upstream", form: url.Values{"access_token": {"good"}}, auth: []string{"Bearer good"}, status: 400, chall: chNotInHeader, errc: "invalid_request"},
		{name: "access_token as a value is fine", target: "/mcp?q=access_token&p=%41", auth: []string{"Bearer good"}, ok: true, calls: 1},
		{name: "similar name is fine", target: "/mcp?access_tokens=1", auth: []string{"Bearer good"}, ok: true, calls: 1},
		{name: "other form fields are fine", form: url.Values{"x": {"1"}}, auth: []string{"Bearer good"}, ok: true, calls: 1},

		// Rule 4: verifier outcomes.
		{name: "unknown token", auth: []string{"Bearer invalid"}, status: 401, chall: chInvalidToken, errc: "invalid_token", calls: 1},
		// The store is down: 503 with Retry-After, never 401 (which makes
		// clients drop their tokens), nor a challenge.
		{name: "verifier failure", auth: []string{"Bearer broken"}, status: 503, errc: "temporarily_unavailable", calls: 1},
		{name: "verifier returns nothing", auth: []string{"Bearer nilinfo"}, status: 500, errc: "server_error", calls: 1},

		// Rule 5: expiry (OAuth 2.1 §5.2); a token without one is not valid
		// forever (MCP TypeScript SDK #446 took it as valid).
		{name: "no expiry", auth: []string{"Bearer noexpiry"}, status: 401, chall: chInvalidToken, errc: "invalid_token", calls: 1},
		{name: "expired", auth: []string{"Bearer expired"}, status: 401, chall: chInvalidToken, errc: "invalid_token", calls: 1},
		{name: "expires now", auth: []string{"Bearer expiresnow"}, status: 401, chall: chInvalidToken, errc: "invalid_token", calls: 1},
		{name: "expires in 1ns", auth: []string{"Bearer almostdue"}, ok: true, calls: 1},
		{
			name: "default clock is time.Now", auth: []string{"Bearer good"}, opts: func(o *Options) { o.Now = nil },
			status: 401, chall: chInvalidToken, errc: "invalid_token", calls: 1, // testNow is in the past
		},

		// Rule 6: audience (RFC 8707 §2), before the scopes.
		{name: "other resource", auth: []string{"Bearer otherres"}, status: 401, chall: chWrongResource, errc: "invalid_token", calls: 1},
		{name: "sub-path resource", auth: []string{"Bearer prefixres"}, status: 401, chall: chWrongResource, errc: "invalid_token", calls: 1},
		{name: "no resource", auth: []string{"Bearer nores"}, status: 401, chall: chWrongResource, errc: "invalid_token", calls: 1},
		{name: "resource checked before scope", auth: []string{"Bearer otherresnoscope"}, status: 401, chall: chWrongResource, errc: "invalid_token", calls: 1},
		{name: "equivalent resource", auth: []string{"Bearer canonres"}, ok: true, calls: 1},
		{
			name: "non-canonical configured resource", auth: []string{"Bearer good"}, opts: func(o *Options) { o.Resource = "https://RS.EXAMPLE:443/mcp/" },
			ok: true, calls: 1,
		},
		{name: "no resource configured", auth: []string{"Bearer otherres"}, opts: func(o *Options) { o.Resource = "" }, ok: true, calls: 1},

		// Rule 7: scopes.
		{name: "missing scope", auth: []string{"Bearer noscope"}, status: 403, chall: chInsufficient, errc: "insufficient_scope", calls: 1},
		{name: "scopes are case-sensitive", auth: []string{"Bearer casescope"}, status: 403, chall: chInsufficient, errc: "insufficient_scope", calls: 1},
		{
			name: "one of two scopes missing lists both", auth: []string{"Bearer good"},
			opts:   func(o *Options) { o.RequiredScopes = []string{"mcp:tools", "mcp:admin"} },
			status: 403, errc: "insufficient_scope", calls: 1,
			chall: `Bearer error="insufficient_scope", error_description="` + descInsufficientScope + `", resource_metadata="` + testPRM + `", scope="mcp:tools mcp:admin"`,
		},
		{name: "both scopes", auth: []string{"Bearer twoscopes"}, opts: func(o *Options) { o.RequiredScopes = []string{"mcp:tools", "mcp:admin"} }, ok: true, calls: 1},
		{name: "no scopes required", auth: []string{"Bearer noscope"}, opts: func(o *Options) { o.RequiredScopes = nil }, ok: true, calls: 1},
		{name: "hierarchy by default refused", auth: []string{"Bearer wildcard"}, status: 403, chall: chInsufficient, errc: "insufficient_scope", calls: 1},
		{name: "hierarchy via ScopeSatisfied", auth: []string{"Bearer wildcard"}, opts: func(o *Options) { o.ScopeSatisfied = prefixScopes }, ok: true, calls: 1},

		// Rule 8: challenge values are escaped quoted-strings.
		{
			name: "escaped metadata URL", opts: func(o *Options) { o.ResourceMetadataURL = `https://rs.example/a"b\c` },
			status: 401, chall: `Bearer resource_metadata="https://rs.example/a\"b\\c", scope="mcp:tools"`, errc: "invalid_token",
		},

		// Rule 10: success.
		{
			name: "client credentials token", auth: []string{"Bearer cc"}, ok: true, calls: 1,
			check: func(i *AuthInfo) { require.Empty(t, i.UserID); require.Equal(t, "client-1", i.ClientID) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeVerifier()
			opts := baseOptions(v)
			var reported []error
			opts.ErrorHandler = func(_ *http.Request, err error) { reported = append(reported, err) }
			if tt.opts != nil {
				tt.opts(&opts)
			}
			var seen *AuthInfo
			nextRan := false
			h := RequireBearerAuth(opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nextRan = true
				i, ok := FromContext(r.Context())
				require.True(t, ok)
				seen = i
				w.WriteHeader(http.StatusTeapot)
			}))

			target := tt.target
			if target == "" {
				target = "/mcp"
			}
			req := httptest.NewRequest(http.MethodPost, "https://rs.example"+target, strings.NewReader(`{"jsonrpc":"2.0"}`))
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			if tt.form != nil {
				req.PostForm = tt.form
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()

			require.Equal(t, tt.calls, v.calls.Load(), "verifier calls")
			if tt.ok {
				require.True(t, nextRan, "next must run")
				require.Equal(t, http.StatusTeapot, res.StatusCode)
				require.NotNil(t, seen)
				token := strings.TrimLeft(tt.auth[0][len("Bearer"):], " ")
				require.Same(t, v.tokens[token], seen, "next sees the verifier's AuthInfo")
				if tt.check != nil {
					tt.check(seen)
				}
				require.Empty(t, reported)
				return
			}

			require.False(t, nextRan, "next must not run")
			require.Equal(t, tt.status, res.StatusCode)
			if tt.chall == "" {
				require.Empty(t, res.Header.Values("WWW-Authenticate"))
			} else {
				require.Equal(t, []string{tt.chall}, res.Header.Values("WWW-Authenticate"))
				params, err := parseChallenge(tt.chall)
				require.NoError(t, err)
				if tt.status == http.StatusUnauthorized && tt.errc == "invalid_token" && !strings.Contains(tt.chall, "error=") {
					require.NotContains(t, params, "error") // RFC 6750 §3
				}
			}
			// Rule 9: JSON body, no-store.
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&body))
			require.Equal(t, tt.errc, body.Error)
			require.NotEmpty(t, body.ErrorDescription)
			require.Equal(t, fmt.Sprint(rec.Body.Len()), res.Header.Get("Content-Length"))
			switch tt.status {
			case http.StatusInternalServerError:
				require.Equal(t, `{"error":"server_error","error_description":"internal server error"}`, rec.Body.String())
				require.Len(t, reported, 1)
				require.Empty(t, res.Header.Get("Retry-After"))
			case http.StatusServiceUnavailable:
				require.Equal(t, `{"error":"temporarily_unavailable","error_description":"The access token cannot be verified now; retry later"}`, rec.Body.String())
				require.Equal(t, "1", res.Header.Get("Retry-After"))
				require.Len(t, reported, 1)
			default:
				require.Empty(t, reported, "client errors are not reported")
			}
		})
	}
}

func TestErrorHandler(t *testing.T) {
	t.Run("sees the verifier error and a request without the token", func(t *testing.T) {
		opts := baseOptions(newFakeVerifier())
		var gotReq *http.Request
		var gotErr error
		opts.ErrorHandler = func(r *http.Request, err error) { gotReq, gotErr = r, err }
		h := RequireBearerAuth(opts)(http.NotFoundHandler())
		req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer broken")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.ErrorIs(t, gotErr, errStoreDown)
		require.NotNil(t, gotReq)
		require.Empty(t, gotReq.Header.Values("Authorization"))
		require.Equal(t, "/mcp", gotReq.URL.Path)
		require.Equal(t, "Bearer broken", req.Header.Get("Authorization"), "the caller's request is untouched")
	})
	t.Run("nil AuthInfo is reported", func(t *testing.T) {
		opts := baseOptions(newFakeVerifier())
		var gotErr error
		opts.ErrorHandler = func(_ *http.Request, err error) { gotErr = err }
		req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer nilinfo")
		RequireBearerAuth(opts)(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), req)
		require.ErrorIs(t, gotErr, errNilAuthInfo)
	})
	t.Run("no handler configured", func(t *testing.T) {
		opts := baseOptions(newFakeVerifier())
		req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer broken")
		rec := httptest.NewRecorder()
		RequireBearerAuth(opts)(http.NotFoundHandler()).ServeHTTP(rec, req)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	})
}

// Rule 11: a distinctive token never appears in a response or in what the
// ErrorHandler sees, on every failure path.
func TestTokenNeverEchoed(t *testing.T) {
	const secret = "S3cr3t-T0ken.leak~check"
	errLeaky := errors.New("leaky store")
	tests := []struct {
		name    string
		target  string
		auth    []string
		verify  func(token string) (*AuthInfo, error)
		status  int
		reports bool
	}{
		{name: "trailing junk", auth: []string{"Bearer " + secret + " junk"}, status: 400},
		{name: "junk after", auth: []string{"Bearer junk " + secret}, status: 400},
		{name: "other scheme", auth: []string{"Basic " + secret}, status: 401},
		{name: "two headers", auth: []string{"Bearer " + secret, "Bearer " + secret}, status: 400},
		{name: "too large", auth: []string{"Bearer " + secret + strings.Repeat("A", MaxAuthorizationLength)}, status: 400},
		{name: "query token", target: "/mcp?access_token=" + secret, status: 400},
		{name: "query and header", target: "/mcp?access_token=" + secret, auth: []string{"Bearer " + secret}, status: 400},
		{
			name: "invalid token", auth: []string{"Bearer " + secret}, status: 401,
			verify: func(tok string) (*AuthInfo, error) { return nil, fmt.Errorf("token %q: %w", tok, ErrInvalidToken) },
		},
		{
			name: "verifier error naming the token", auth: []string{"Bearer " + secret}, status: 503, reports: true,
			verify: func(tok string) (*AuthInfo, error) { return nil, fmt.Errorf("lookup %s: %w", tok, errLeaky) },
		},
		{
			name: "nil info", auth: []string{"Bearer " + secret}, status: 500, reports: true,
			verify: func(string) (*AuthInfo, error) { return nil, nil },
		},
		{
			name: "expired", auth: []string{"Bearer " + secret}, status: 401,
			verify: func(string) (*AuthInfo, error) {
				return info(func(i *AuthInfo) { i.ExpiresAt = testNow.Add(-time.Hour) }), nil
			},
		},
		{
			name: "wrong resource", auth: []string{"Bearer " + secret}, status: 401,
			verify: func(string) (*AuthInfo, error) {
				return info(func(i *AuthInfo) { i.Resource = "https://other.example/" }), nil
			},
		},
		{
			name: "insufficient scope", auth: []string{"Bearer " + secret}, status: 403,
			verify: func(string) (*AuthInfo, error) { return info(func(i *AuthInfo) { i.Scopes = nil }), nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verify := tt.verify
			if verify == nil {
				verify = func(string) (*AuthInfo, error) {
					t.Fatal("verifier must not be called")
					return nil, nil
				}
			}
			opts := baseOptions(VerifierFunc(func(_ context.Context, tok string) (*AuthInfo, error) { return verify(tok) }))
			var reports []string
			opts.ErrorHandler = func(r *http.Request, err error) {
				var sb strings.Builder
				fmt.Fprintf(&sb, "%v %+v %#v %s ", err, err, err, r.URL.String())
				for k, vs := range r.Header {
					fmt.Fprintf(&sb, "%s: %s\n", k, strings.Join(vs, ","))
				}
				reports = append(reports, sb.String())
				require.ErrorIs(t, err, errLeaky, "redaction keeps errors.Is working")
			}
			if tt.name == "nil info" {
				opts.ErrorHandler = func(r *http.Request, err error) {
					reports = append(reports, fmt.Sprintf("%v %#v", err, r.Header))
				}
			}
			h := RequireBearerAuth(opts)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Fatal("next must not run")
			}))
			target := tt.target
			if target == "" {
				target = "/mcp"
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			require.Equal(t, tt.status, rec.Code)
			for k, vs := range rec.Result().Header {
				for _, v := range vs {
					require.NotContains(t, v, secret, "header %s", k)
				}
			}
			require.NotContains(t, rec.Body.String(), secret)
			if tt.reports {
				require.Len(t, reports, 1)
			} else {
				require.Empty(t, reports)
			}
			for _, r := range reports {
				require.NotContains(t, r, secret)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	base := errors.New("db down")
	err := redact(fmt.Errorf("lookup tok123: %w", base), "tok123")
	require.Equal(t, "lookup [redacted]: db down", err.Error())
	require.ErrorIs(t, err, base)
	require.Nil(t, errors.Unwrap(err), "the original, token-bearing error is not reachable")

	plain := fmt.Errorf("x: %w", base)
	require.Same(t, plain, redact(plain, "tok123"), "errors without the token pass unchanged")
}

func TestRequireBearerAuthPanics(t *testing.T) {
	v := newFakeVerifier()
	tests := []struct {
		name string
		opts Options
	}{
		{"nil verifier", Options{}},
		{"nil VerifierFunc", Options{Verifier: VerifierFunc(nil)}},
		{"relative resource", Options{Verifier: v, Resource: "/mcp"}},
		{"resource with fragment", Options{Verifier: v, Resource: "https://rs.example/mcp#x"}},
		{"empty scope", Options{Verifier: v, RequiredScopes: []string{""}}},
		{"scope with space", Options{Verifier: v, RequiredScopes: []string{"a b"}}},
		{"scope with quote", Options{Verifier: v, RequiredScopes: []string{`a"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Panics(t, func() { RequireBearerAuth(tt.opts) })
		})
	}
	require.Panics(t, func() { RequireBearerAuth(Options{Verifier: v})(nil) })
	require.NotPanics(t, func() { RequireBearerAuth(baseOptions(v))(http.NotFoundHandler()) })
}

// The options are copied at construction: changing the caller's slice later
// changes nothing.
func TestRequiredScopesCopied(t *testing.T) {
	opts := baseOptions(newFakeVerifier())
	opts.RequiredScopes = []string{"mcp:tools"}
	h := RequireBearerAuth(opts)(http.NotFoundHandler())
	opts.RequiredScopes[0] = "mcp:read"

	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer noscope") // has mcp:read only
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusForbidden, rec.Code)
}

// discardWriter is a ResponseWriter that allocates nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func hotPath(tb testing.TB) (http.Handler, *http.Request, http.ResponseWriter) {
	tb.Helper()
	ai := info(func(i *AuthInfo) { i.ExpiresAt = time.Now().Add(time.Hour) })
	opts := baseOptions(VerifierFunc(func(_ context.Context, tok string) (*AuthInfo, error) {
		if tok == "good" {
			return ai, nil
		}
		return nil, ErrInvalidToken
	}))
	opts.Now = nil
	h := RequireBearerAuth(opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromContext(r.Context()); !ok {
			panic("no AuthInfo")
		}
	}))
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer good")
	return h, req, &discardWriter{h: http.Header{}}
}

// Rule 10: the success path allocates only the context value and the
// request copy made by r.WithContext.
func TestHotPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	h, req, w := hotPath(t)
	allocs := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) })
	require.LessOrEqual(t, allocs, 2.0)
}

func BenchmarkRequireBearerAuth(b *testing.B) {
	h, req, w := hotPath(b)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// RFC 6750 §3: error_description is 1*( %x20-21 / %x23-5B / %x5D-7E ).
func TestDescriptionsAreNQSCHAR(t *testing.T) {
	for _, d := range []string{
		descNoToken, descMalformed, descMultipleHeaders, descHeaderTooLarge, descTokenNotInHeader,
		descInvalidToken, descWrongResource, descInsufficientScope, descServerError,
	} {
		require.NotEmpty(t, d)
		for i := 0; i < len(d); i++ {
			c := d[i]
			require.True(t, c >= 0x20 && c <= 0x7e && c != '"' && c != '\\', "%q has %q", d, c)
		}
	}
}
