package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

const formType = "application/x-www-form-urlencoded"

func newReq(method, target, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestParseForm(t *testing.T) {
	for name, tc := range map[string]struct {
		r    *http.Request
		want url.Values
	}{
		"GET query":          {newReq(http.MethodGet, "/x?a=1&b=2&b=3", "", ""), url.Values{"a": {"1"}, "b": {"2", "3"}}},
		"GET ignores body":   {newReq(http.MethodGet, "/x?a=1", formType, "b=2"), url.Values{"a": {"1"}}},
		"HEAD query":         {newReq(http.MethodHead, "/x?a=1", "", ""), url.Values{"a": {"1"}}},
		"GET no query":       {newReq(http.MethodGet, "/x", "", ""), url.Values{}},
		"POST form":          {newReq(http.MethodPost, "/x", formType, "a=1&b=%20x+y&c="), url.Values{"a": {"1"}, "b": {" x y"}, "c": {""}}},
		"POST with charset":  {newReq(http.MethodPost, "/x", formType+"; charset=UTF-8", "a=1"), url.Values{"a": {"1"}}},
		"POST type case":     {newReq(http.MethodPost, "/x", "Application/X-WWW-Form-URLEncoded", "a=1"), url.Values{"a": {"1"}}},
		"POST empty body":    {newReq(http.MethodPost, "/x", formType, ""), url.Values{}},
		"POST ignores query": {newReq(http.MethodPost, "/x?a=smuggled&z=1", formType, "a=1"), url.Values{"a": {"1"}}},
		"PUT is a body":      {newReq(http.MethodPut, "/x?z=1", formType, "a=1"), url.Values{"a": {"1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			v, oerr := ParseForm(httptest.NewRecorder(), tc.r)
			require.Nil(t, oerr)
			require.Equal(t, tc.want, v)
		})
	}
}

func TestParseFormErrors(t *testing.T) {
	big := "a=" + strings.Repeat("x", MaxFormBytes)
	for name, tc := range map[string]struct {
		r      *http.Request
		status int
	}{
		"no content type":        {newReq(http.MethodPost, "/x", "", "a=1"), http.StatusBadRequest},
		"json":                   {newReq(http.MethodPost, "/x", "application/json", `{"a":"1"}`), http.StatusBadRequest},
		"multipart":              {newReq(http.MethodPost, "/x", "multipart/form-data; boundary=b", "--b--"), http.StatusBadRequest},
		"text/plain":             {newReq(http.MethodPost, "/x", "text/plain", "a=1"), http.StatusBadRequest},
		"malformed media type":   {newReq(http.MethodPost, "/x", "application/x-www-form-urlencoded;;", "a=1"), http.StatusBadRequest},
		"type prefix":            {newReq(http.MethodPost, "/x", formType+"x", "a=1"), http.StatusBadRequest},
		"too large":              {newReq(http.MethodPost, "/x", formType, big), http.StatusRequestEntityTooLarge},
		"malformed body escape":  {newReq(http.MethodPost, "/x", formType, "a=%zz"), http.StatusBadRequest},
		"truncated body escape":  {newReq(http.MethodPost, "/x", formType, "a=%4"), http.StatusBadRequest},
		"semicolon in body":      {newReq(http.MethodPost, "/x", formType, "a=1;b=2"), http.StatusBadRequest},
		"malformed query escape": {newReq(http.MethodGet, "/x?a=%zz", "", ""), http.StatusBadRequest},
		"semicolon in query":     {newReq(http.MethodGet, "/x?a=1;b=2", "", ""), http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			v, oerr := ParseForm(httptest.NewRecorder(), tc.r)
			require.Nil(t, v)
			require.NotNil(t, oerr)
			require.Equal(t, oautherr.CodeInvalidRequest, oerr.Code)
			require.Equal(t, tc.status, oerr.Status)
			require.NotContains(t, oerr.Description, "%zz", "descriptions never echo input")
		})
	}
}

// TestParseFormSizeBoundary: exactly MaxFormBytes is read; one more is 413.
func TestParseFormSizeBoundary(t *testing.T) {
	body := "a=" + strings.Repeat("x", MaxFormBytes-2)
	v, oerr := ParseForm(httptest.NewRecorder(), newReq(http.MethodPost, "/x", formType, body))
	require.Nil(t, oerr)
	require.Len(t, v.Get("a"), MaxFormBytes-2)
	_, oerr = ParseForm(httptest.NewRecorder(), newReq(http.MethodPost, "/x", formType, body+"x"))
	require.NotNil(t, oerr)
	require.Equal(t, http.StatusRequestEntityTooLarge, oerr.Status)
}

func TestParam(t *testing.T) {
	v := url.Values{"one": {"1"}, "empty": {""}, "twice": {"a", "b"}, "twice-same": {"a", "a"}, "twice-empty": {"", ""}}
	for name, tc := range map[string]struct {
		param string
		want  string
		err   bool
	}{
		"single":                  {"one", "1", false},
		"empty counts as absent":  {"empty", "", false},
		"absent":                  {"missing", "", false},
		"repeated":                {"twice", "", true},
		"repeated identical":      {"twice-same", "", true},
		"repeated empty":          {"twice-empty", "", true},
		"name is case-sensitive":  {"ONE", "", false},
		"name is not a substring": {"on", "", false},
	} {
		t.Run(name, func(t *testing.T) {
			got, oerr := Param(v, tc.param)
			if tc.err {
				require.NotNil(t, oerr)
				require.Equal(t, oautherr.CodeInvalidRequest, oerr.Code)
				require.Equal(t, http.StatusBadRequest, oerr.Status)
				require.Empty(t, got)
				return
			}
			require.Nil(t, oerr)
			require.Equal(t, tc.want, got)
		})
	}
}

// recordingHandler records whether it ran.
type recordingHandler struct{ called int }

func (h *recordingHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.called++
	w.WriteHeader(http.StatusTeapot)
}

func TestMethods(t *testing.T) {
	for name, tc := range map[string]struct {
		allowed []string
		allow   string
		pass    []string
		refuse  []string
	}{
		"POST":          {[]string{http.MethodPost}, "POST", []string{http.MethodPost}, []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, "PROPFIND"}},
		"GET adds HEAD": {[]string{http.MethodGet}, "GET, HEAD", []string{http.MethodGet, http.MethodHead}, []string{http.MethodPost, http.MethodOptions}},
		"GET and POST":  {[]string{http.MethodGet, http.MethodPost}, "GET, HEAD, POST", []string{http.MethodGet, http.MethodHead, http.MethodPost}, []string{http.MethodDelete, http.MethodPatch}},
	} {
		t.Run(name, func(t *testing.T) {
			next := &recordingHandler{}
			h := Methods(next, tc.allowed...)
			for _, m := range tc.pass {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(m, "/x", nil))
				require.Equal(t, http.StatusTeapot, w.Code, m)
				require.Empty(t, w.Header().Get("Allow"), m)
			}
			require.Equal(t, len(tc.pass), next.called)
			for _, m := range tc.refuse {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(m, "/x", nil))
				require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
				require.Equal(t, tc.allow, w.Header().Get("Allow"), m)
				require.Equal(t, "application/json", w.Header().Get("Content-Type"))
				var body map[string]string
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				require.Equal(t, "method_not_allowed", body["error"])
			}
			require.Equal(t, len(tc.pass), next.called, "refused methods never reach the handler")
		})
	}
}

func TestCORS(t *testing.T) {
	next := &recordingHandler{}
	h := CORS(Methods(next, http.MethodPost), http.MethodPost)

	// Preflight: answered here, never reaching the handler.
	r := httptest.NewRequest(http.MethodOptions, "/x", nil)
	r.Header.Set("Origin", "https://app.example.org")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
	require.Equal(t, "POST, OPTIONS", w.Header().Get("Access-Control-Allow-Methods"))
	allowHeaders := strings.ToLower(w.Header().Get("Access-Control-Allow-Headers"))
	require.Contains(t, allowHeaders, "authorization")
	require.Contains(t, allowHeaders, "content-type")
	require.NotEmpty(t, w.Header().Get("Access-Control-Max-Age"))
	require.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"), "no credentials with a wildcard origin")
	require.Empty(t, w.Body.String())
	require.Zero(t, next.called)

	// A simple request gets the origin header and reaches the handler.
	r = httptest.NewRequest(http.MethodPost, "/x", nil)
	r.Header.Set("Origin", "https://app.example.org")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusTeapot, w.Code)
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
	require.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"))
	require.Equal(t, 1, next.called)

	// OPTIONS that is not a preflight goes to the method guard.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodOptions, "/x", nil))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, "POST", w.Header().Get("Allow"))
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"), "a browser can read the error")
	require.Equal(t, 1, next.called)
}

// TestCORSDoesNotModifyCallerSlice: CORS must not append into the caller's
// methods slice (a variadic call with a slice that has spare capacity shares
// its backing array).
func TestCORSDoesNotModifyCallerSlice(t *testing.T) {
	backing := []string{http.MethodPost, http.MethodDelete}
	methods := backing[:1]
	CORS(&recordingHandler{}, methods...)
	require.Equal(t, []string{http.MethodPost, http.MethodDelete}, backing)
}

func TestNoStore(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Cache-Control", "max-age=3600")
	NoStore(w)
	require.Equal(t, []string{"no-store"}, w.Header().Values("Cache-Control"))
	require.Equal(t, "no-cache", w.Header().Get("Pragma"))
}

func TestWriteError(t *testing.T) {
	for name, tc := range map[string]struct {
		err    *oautherr.Error
		status int
	}{
		"invalid_grant": {oautherr.InvalidGrant("bad code"), http.StatusBadRequest},
		"zero status":   {&oautherr.Error{Code: "invalid_request", Description: "x"}, http.StatusBadRequest},
		"server_error":  {oautherr.ServerError(errors.New("pq: password authentication failed for user admin")), http.StatusInternalServerError},
		"invalid_client": {oautherr.InvalidClient("client authentication failed").WithCause(errors.New("secret s3cr3t mismatch")),
			http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, tc.err)
			require.Equal(t, tc.status, w.Code)
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			require.Equal(t, map[string]any{"error": tc.err.Code, "error_description": tc.err.Description}, body)
			require.NotContains(t, w.Body.String(), "password")
			require.NotContains(t, w.Body.String(), "s3cr3t")
		})
	}
	w := httptest.NewRecorder()
	WriteError(w, &oautherr.Error{Code: "invalid_request", Status: http.StatusBadRequest})
	require.JSONEq(t, `{"error":"invalid_request"}`, w.Body.String(), "an empty description is omitted")
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusCreated, map[string]any{"a": 1})
	require.Equal(t, http.StatusCreated, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `{"a":1}`, w.Body.String())

	w = httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	require.Equal(t, http.StatusInternalServerError, w.Code, "an unmarshalable value is a server error, not a half-written 200")
	require.JSONEq(t, `{"error":"server_error","error_description":"internal server error"}`, w.Body.String())
}

// BenchmarkParseForm parses the requests of the hot endpoints as the
// benchmark deployment (internal/benchapp) sends them: a token request of each
// grant that bench/load.sh drives, an authorization request, and the
// consent decision. Compare it with BenchmarkToken and BenchmarkLogin in
// the root package, which include it.
func BenchmarkParseForm(b *testing.B) {
	const (
		client   = "4f1d6bd0-3c2a-4e8e-9a55-0b8a3e0f6a21"
		code     = "Jq3v1mYQ2nq7v0Zb9GmTnXxk8sQpLr4d6wE2uHcY1aA"
		resource = "http%3A%2F%2F127.0.0.1%3A8080%2Fmcp"
		redirect = "http%3A%2F%2F127.0.0.1%2Fcallback"
	)
	for _, c := range []struct{ name, method, query, body string }{
		{"client_credentials", http.MethodPost, "", "grant_type=client_credentials&scope=mcp%3Atools"},
		{"authorization_code", http.MethodPost, "", "client_id=" + client + "&code=" + code +
			"&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&grant_type=authorization_code" +
			"&redirect_uri=" + redirect + "&resource=" + resource},
		{"authorize", http.MethodGet, "client_id=" + client +
			"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256" +
			"&redirect_uri=" + redirect + "&resource=" + resource + "&response_type=code&scope=mcp%3Atools", ""},
		{"consent", http.MethodPost, "", "request_id=" + code + "&csrf_token=" + code + "&decision=approve"},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(c.method, "/x?"+c.query, nil)
			body := strings.NewReader(c.body)
			if c.method == http.MethodPost {
				r.Header.Set("Content-Type", formType)
				r.Body, r.ContentLength = io.NopCloser(body), int64(len(c.body))
			}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(c.body)
				if _, oerr := ParseForm(w, r); oerr != nil {
					b.Fatal(oerr)
				}
			}
		})
	}
}

// FuzzParseForm checks the strict form parsing every endpoint relies on:
// a POST is read from its form-encoded body only (nothing of the query
// leaks in, so no parameter can be smuggled through the URL), exactly as
// url.ParseQuery reads the body; a GET or HEAD from its query only;
// anything else is an invalid_request of 400, or 413 for an oversized body;
// and Param never returns one value of a repeated parameter.
func FuzzParseForm(f *testing.F) {
	f.Add(true, "application/x-www-form-urlencoded", "a=smuggled&z=1", "a=1&b=%20x+y&c=")
	f.Add(true, "application/x-www-form-urlencoded; charset=UTF-8", "", "grant_type=authorization_code&code=x&code=y")
	f.Add(true, "application/json", "", `{"a":1}`)
	f.Add(true, "multipart/form-data; boundary=x", "", "--x\r\n")
	f.Add(true, "application/x-www-form-urlencoded", "", "a=%zz")
	f.Add(true, "application/x-www-form-urlencoded", "", "a;b=1")
	f.Add(false, "", "client_id=x&redirect_uri=https%3A%2F%2Fa%2Fcb&state=%00", "ignored=1")
	f.Add(false, "", "a=%", "")
	f.Fuzz(func(t *testing.T, post bool, contentType, query, body string) {
		if strings.ContainsAny(query, " #\r\n\x00") || strings.ContainsAny(contentType, "\r\n\x00") {
			return // not a request line or header a client can send
		}
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		r := httptest.NewRequest(method, "/x", strings.NewReader(body))
		r.URL.RawQuery = query
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		form, oerr := ParseForm(w, r)
		if oerr != nil {
			require.Nil(t, form)
			require.Equal(t, oautherr.CodeInvalidRequest, oerr.Code)
			if oerr.Status == http.StatusRequestEntityTooLarge {
				require.Greater(t, len(body), MaxFormBytes)
			} else {
				require.Equal(t, http.StatusBadRequest, oerr.Status)
			}
			return
		}
		source := query
		if post {
			source = body
			require.LessOrEqual(t, len(body), MaxFormBytes)
		}
		want, err := url.ParseQuery(source)
		require.NoError(t, err)
		require.Equal(t, want, form)
		for name, vals := range form {
			v, perr := Param(form, name)
			if len(vals) > 1 {
				require.NotNil(t, perr, "repeated %q", name)
				require.Empty(t, v)
			} else {
				require.Nil(t, perr)
				require.Equal(t, vals[0], v)
			}
		}
	})
}
