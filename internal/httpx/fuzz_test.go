package httpx

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

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
