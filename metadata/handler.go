package metadata

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Handler returns an http.Handler that serves doc (typically an
// AuthorizationServer or a ProtectedResource) as JSON. The document is
// marshalled once, here, so a marshalling error surfaces at construction and
// every request is served the same bytes; it is an error if doc does not
// marshal to a JSON object.
//
// GET and HEAD answer 200 with Content-Type application/json (HEAD without a
// body). The response carries a strong ETag and "Cache-Control: no-cache":
// clients may cache the document but revalidate it each time, cheaply with
// If-None-Match (304), so a configuration change is seen at once. Metadata is
// public and may be fetched cross-origin by browser-based clients (RFC 9700
// §2.6 allows CORS here), so every GET and HEAD response carries
// "Access-Control-Allow-Origin: *", and OPTIONS answers a CORS preflight with
// 204. Any other method gets 405 with "Allow: GET, HEAD" and an OAuth-style
// JSON error body.
func Handler(doc any) (http.Handler, error) {
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("metadata: marshalling document: %w", err)
	}
	if len(body) == 0 || body[0] != '{' {
		return nil, errors.New("metadata: document is not a JSON object")
	}
	sum := sha256.Sum256(body)
	return &docHandler{
		body: body,
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
	}, nil
}

// docHandler serves one pre-marshalled document.
type docHandler struct {
	body []byte
	etag string
}

// methodNotAllowedBody is the fixed 405 body.
var methodNotAllowedBody = []byte(`{"error":"method_not_allowed","error_description":"The method is not allowed for this endpoint"}`)

func (h *docHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		hdr.Set("Access-Control-Allow-Origin", "*")
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("ETag", h.etag)
		if etagMatches(r.Header.Values("If-None-Match"), h.etag) {
			// RFC 9110 §13.1.2: If-None-Match on GET/HEAD answers 304.
			w.WriteHeader(http.StatusNotModified)
			return
		}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Content-Length", strconv.Itoa(len(h.body)))
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(h.body)
		}
	case http.MethodOptions:
		// CORS preflight (Fetch standard). Credentials are never allowed,
		// so the "*" wildcards are honoured by browsers.
		hdr.Set("Access-Control-Allow-Origin", "*")
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "*")
		hdr.Set("Access-Control-Max-Age", "86400")
		hdr.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	default:
		hdr.Set("Allow", "GET, HEAD")
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write(methodNotAllowedBody)
	}
}

// etagMatches applies the weak comparison of If-None-Match (RFC 9110
// §13.1.2) to the field values: "*" or any listed tag equal to etag once
// a "W/" prefix is ignored.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
