package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// TestDefaultErrorPage: the one page the library serves shows the error's
// status, code and escaped description, and cannot be framed (RFC 9700
// §4.16), cached or sniffed.
func TestDefaultErrorPage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *oautherr.Error
		want int
	}{
		{"the error's status", oautherr.InvalidRequest("bad <b>thing</b>"), http.StatusBadRequest},
		{"status 0 is 400", &oautherr.Error{Code: "invalid_request"}, http.StatusBadRequest},
		{"a 403", &oautherr.Error{Code: "access_denied", Status: http.StatusForbidden}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			DefaultErrorPage(w, httptest.NewRequest(http.MethodGet, "/authorize", nil), tc.err)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			for header, want := range map[string]string{
				"Content-Type":           "text/html; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
			} {
				if got := w.Header().Get(header); got != want {
					t.Errorf("%s = %q, want %q", header, got, want)
				}
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
			body := w.Body.String()
			if !strings.Contains(body, `<code id="error">`+tc.err.Code+`</code>`) {
				t.Errorf("no error code in %s", body)
			}
			if strings.Contains(body, "<b>") {
				t.Errorf("description not escaped: %s", body)
			}
		})
	}
}
