package metadata_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

func TestHandler(t *testing.T) {
	doc := metadata.ProtectedResource{
		Resource:             "https://rs.example/mcp",
		AuthorizationServers: []string{"https://as.example"},
	}
	h, err := metadata.Handler(doc)
	require.NoError(t, err)
	wantBody := `{"resource":"https://rs.example/mcp","authorization_servers":["https://as.example"]}`

	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil))
	etag := get.Header().Get("ETag")
	require.NotEmpty(t, etag)

	tests := []struct {
		name        string
		method      string
		header      http.Header
		wantStatus  int
		wantBody    string
		wantHeaders map[string]string
		absent      []string
	}{
		{
			name: "GET", method: http.MethodGet, wantStatus: http.StatusOK, wantBody: wantBody,
			wantHeaders: map[string]string{
				"Content-Type":                "application/json",
				"Access-Control-Allow-Origin": "*",
				"Cache-Control":               "no-cache",
				"ETag":                        etag,
			},
		},
		{
			name: "HEAD has headers but no body", method: http.MethodHead, wantStatus: http.StatusOK, wantBody: "",
			wantHeaders: map[string]string{
				"Content-Type":                "application/json",
				"Access-Control-Allow-Origin": "*",
				"Content-Length":              strconv.Itoa(len(wantBody)),
			},
		},
		{
			name: "conditional GET", method: http.MethodGet, header: http.Header{"If-None-Match": {etag}},
			wantStatus: http.StatusNotModified, wantBody: "",
			wantHeaders: map[string]string{"ETag": etag, "Access-Control-Allow-Origin": "*"},
		},
		{
			name: "conditional GET with weak tag in a list", method: http.MethodGet,
			header:     http.Header{"If-None-Match": {`"other", W/` + etag}},
			wantStatus: http.StatusNotModified,
		},
		{
			name: "conditional GET with stale tag", method: http.MethodGet,
			header:     http.Header{"If-None-Match": {`"stale"`}},
			wantStatus: http.StatusOK, wantBody: wantBody,
		},
		{
			name: "OPTIONS preflight", method: http.MethodOptions,
			header:     http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}},
			wantStatus: http.StatusNoContent, wantBody: "",
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
				"Access-Control-Allow-Headers": "*",
			},
		},
		{
			name: "POST is 405", method: http.MethodPost, wantStatus: http.StatusMethodNotAllowed,
			wantHeaders: map[string]string{"Allow": "GET, HEAD", "Content-Type": "application/json"},
			absent:      []string{"ETag"},
		},
		{
			name: "DELETE is 405", method: http.MethodDelete, wantStatus: http.StatusMethodNotAllowed,
			wantHeaders: map[string]string{"Allow": "GET, HEAD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/.well-known/oauth-protected-resource/mcp", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.wantStatus, rec.Code)
			if tt.wantStatus == http.StatusMethodNotAllowed {
				var body map[string]string
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				require.Equal(t, "method_not_allowed", body["error"])
				require.NotEmpty(t, body["error_description"])
			} else {
				require.Equal(t, tt.wantBody, rec.Body.String())
			}
			for k, v := range tt.wantHeaders {
				require.Equal(t, v, rec.Header().Get(k), k)
			}
			for _, k := range tt.absent {
				require.Empty(t, rec.Header().Get(k), k)
			}
		})
	}
}

func TestHandlerServesSnapshot(t *testing.T) {
	doc := &metadata.AuthorizationServer{Issuer: "https://as.example"}
	h, err := metadata.Handler(doc)
	require.NoError(t, err)
	doc.Issuer = "https://changed.example" // later changes are not served
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.JSONEq(t, `{"issuer":"https://as.example"}`, rec.Body.String())
}

func TestHandlerRejectsBadDocuments(t *testing.T) {
	tests := []struct {
		name string
		doc  any
	}{
		{"nil", nil},
		{"array", []string{"a"}},
		{"string", "x"},
		{"unmarshallable", map[string]any{"f": func() {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := metadata.Handler(tt.doc)
			require.Error(t, err)
			require.Nil(t, h)
		})
	}
}

func TestHandlerOverHTTP(t *testing.T) {
	h, err := metadata.Handler(metadata.AuthorizationServer{Issuer: "https://as.example"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Head(srv.URL)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(len(`{"issuer":"https://as.example"}`)), resp.ContentLength)
}
