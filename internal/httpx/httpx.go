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
	"unsafe"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// MaxFormBytes bounds a form body. OAuth requests are small; a larger body is
// refused before it is read.
const MaxFormBytes = 64 << 10

// ParseForm returns the parameters of a request: the query of a GET or HEAD,
// the application/x-www-form-urlencoded body of a POST (never the query too,
// so a parameter cannot be smuggled through the URL). The body is size-limited
// and a malformed encoding is invalid_request: url.ParseQuery's error for a
// bad escape, a ';' separator or too many parameters, where r.ParseForm
// would skip the pair and go on. Repeated parameters are kept, for Param to
// refuse.
func ParseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oautherr.Error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		v, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, oautherr.InvalidRequest("malformed query string")
		}
		return v, nil
	}
	const formType = "application/x-www-form-urlencoded"
	// The exact type, as clients send it, needs no parsing.
	if ct := r.Header.Get("Content-Type"); ct != formType {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != formType {
			// OAuth 2.1 §3.2: requests use application/x-www-form-urlencoded;
			// refusing anything else also stops simple cross-site JSON posts.
			return nil, oautherr.InvalidRequest("content type must be application/x-www-form-urlencoded")
		}
	}
	body, oerr := readBody(w, r)
	if oerr != nil {
		return nil, oerr
	}
	v, err := parseQuery(body)
	if err != nil {
		return nil, oautherr.InvalidRequest("malformed form body")
	}
	return v, nil
}

// readBody reads a form body of at most MaxFormBytes. A body of known length
// is read into one buffer of exactly that size, which becomes the string
// without a copy (nothing writes to it afterwards): io.ReadAll would grow a
// buffer from 512 bytes, and string() copy it.
func readBody(w http.ResponseWriter, r *http.Request) (string, *oautherr.Error) {
	if n := r.ContentLength; n > 0 && n <= MaxFormBytes {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return "", oautherr.InvalidRequest("unreadable request body")
		}
		return unsafe.String(&buf[0], len(buf)), nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", &oautherr.Error{Code: oautherr.CodeInvalidRequest, Description: "request body too large", Status: http.StatusRequestEntityTooLarge}
		}
		return "", oautherr.InvalidRequest("unreadable request body")
	}
	return string(body), nil
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
	setPair(w.Header(), "Cache-Control", "no-store", "Pragma", "no-cache")
}

// setPair is h.Set(k1, v1) and h.Set(k2, v2) for canonical header names,
// with one allocation instead of two: the values share a backing array,
// each slice capped at its own element, so that an Add to either copies it
// rather than overwriting the other.
func setPair(h http.Header, k1, v1, k2, v2 string) {
	v := []string{v1, v2}
	h[k1] = v[0:1:1]
	h[k2] = v[1:2:2]
}

// WriteJSON writes v as a JSON response with the given status. nosniff keeps
// a browser from reading a body that echoes client input (a registered
// client_name) as anything but JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error","error_description":"internal server error"}`)
	}
	setPair(w.Header(), "Content-Type", "application/json", "X-Content-Type-Options", "nosniff")
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

// Redirect answers a redirect to the absolute URL location. Unlike
// http.Redirect it writes no HTML body, so the library never serves a page
// that could be framed or sniffed; and it sets Referrer-Policy: no-referrer,
// which a browser applies to the request that follows the redirect
// (Referrer Policy §8.3): the page that led here, such as a consent page
// whose URL carries a request id, is not sent as Referer to the client's
// redirect URI or to the consent page (RFC 9700 §4.2.4). Non-ASCII bytes
// are percent-encoded, as http.Redirect does.
func Redirect(w http.ResponseWriter, location string, status int) {
	setPair(w.Header(), "Location", escapeNonASCII(location), "Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
}

// escapeNonASCII percent-encodes the bytes of s outside ASCII.
func escapeNonASCII(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+16), s[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	if b == nil {
		return s
	}
	return string(b)
}

// Methods guards a handler: other methods get 405 with an Allow header. HEAD
// is allowed wherever GET is (RFC 9110 §9.3.2).
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
		// A browser client must read the nonce it is told to use (RFC 9449 §8).
		h.Set("Access-Control-Expose-Headers", "DPoP-Nonce, WWW-Authenticate")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", allow)
			// DPoP carries proofs (RFC 9449 §4.1).
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version, DPoP")
			h.Set("Access-Control-Max-Age", strconv.Itoa(86400))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
