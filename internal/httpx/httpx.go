// Package httpx holds the HTTP plumbing every endpoint shares: strict form
// parsing, single-valued parameters, JSON and OAuth error responses, the
// method guard, CORS and Cache-Control: no-store.
package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// MaxFormBytes bounds a form body. OAuth requests are small; a larger body is
// refused before it is read.
const MaxFormBytes = 64 << 10

// ParseForm returns the parameters of a request: the query of a GET or HEAD,
// the application/x-www-form-urlencoded body of a POST (never the query too,
// so a parameter cannot be smuggled through the URL). The body is size-limited
// and a malformed encoding is invalid_request.
func ParseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oautherr.Error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, oautherr.InvalidRequest("malformed query string")
		}
		return v, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		// OAuth 2.1 §3.2: requests use application/x-www-form-urlencoded;
		// refusing anything else also stops simple cross-site JSON posts.
		return nil, oautherr.InvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &oautherr.Error{Code: oautherr.CodeInvalidRequest, Description: "request body too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, oautherr.InvalidRequest("unreadable request body")
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oautherr.InvalidRequest("malformed form body")
	}
	return v, nil
}

// Param returns the single value of a parameter. A parameter sent more than
// once is invalid_request (OAuth 2.1 §3.1, §3.2); an empty value counts as
// absent (OAuth 2.1 §3.1).
func Param(v url.Values, name string) (string, *oautherr.Error) {
	vals := v[name]
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	}
	return "", oautherr.InvalidRequest("parameter " + name + " is repeated")
}

// NoStore marks a response as carrying credentials: never cached (OAuth 2.1
// §3.2.3, RFC 6749 §5.1).
func NoStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error","error_description":"internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorBody is the RFC 6749 §5.2 error response.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// WriteError writes an OAuth error as JSON with its status. Only the code and
// the fixed description are rendered, never the cause.
func WriteError(w http.ResponseWriter, e *oautherr.Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	WriteJSON(w, status, errorBody{Error: e.Code, Description: e.Description})
}

// Methods guards a handler: other methods get 405 with an Allow header. HEAD
// is allowed wherever GET is (RFC 9110 §9.3.2; seed defect f.12).
func Methods(next http.Handler, allowed ...string) http.Handler {
	set := map[string]bool{}
	var list []string
	for _, m := range allowed {
		set[m] = true
		list = append(list, m)
		if m == http.MethodGet {
			set[http.MethodHead] = true
			list = append(list, http.MethodHead)
		}
	}
	allow := strings.Join(list, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !set[r.Method] {
			w.Header().Set("Allow", allow)
			WriteError(w, oautherr.New(oautherr.CodeMethodNotAllowed, "method not allowed", http.StatusMethodNotAllowed))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CORS lets browser-based clients call an endpoint from any origin: token,
// registration and revocation (RFC 9700 §2.6 permits it there, and never on
// the authorization endpoint). No credentials (cookies) are allowed, so the
// wildcard origin is safe. Preflight requests are answered here.
func CORS(next http.Handler, methods ...string) http.Handler {
	allow := strings.Join(append(methods[:len(methods):len(methods)], http.MethodOptions), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", allow)
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", strconv.Itoa(86400))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
