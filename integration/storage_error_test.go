package integration_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// errStorage carries internals that must never reach a client.
var errStorage = errors.New("pq: connection refused to db-internal-7.corp:5432 (password=hunter2)")

// brokenModel fails every call once broken is set.
type brokenModel struct {
	*mcpoauth.MemoryModel
	broken atomic.Bool
}

func (m *brokenModel) fail() error {
	if m.broken.Load() {
		return errStorage
	}
	return nil
}

func (m *brokenModel) GetClient(ctx context.Context, id string) (*mcpoauth.Client, error) {
	if err := m.fail(); err != nil {
		return nil, err
	}
	return m.MemoryModel.GetClient(ctx, id)
}

func (m *brokenModel) RegisterClient(ctx context.Context, c *mcpoauth.Client) error {
	if err := m.fail(); err != nil {
		return err
	}
	return m.MemoryModel.RegisterClient(ctx, c)
}

func (m *brokenModel) SaveAuthorizationRequest(ctx context.Context, r *mcpoauth.AuthorizationRequest) error {
	if err := m.fail(); err != nil {
		return err
	}
	return m.MemoryModel.SaveAuthorizationRequest(ctx, r)
}

func (m *brokenModel) GetToken(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.Token, error) {
	if err := m.fail(); err != nil {
		return nil, err
	}
	return m.MemoryModel.GetToken(ctx, d)
}

func (m *brokenModel) GetAuthorizationCode(ctx context.Context, d mcpoauth.Digest) (*mcpoauth.AuthorizationCode, error) {
	if err := m.fail(); err != nil {
		return nil, err
	}
	return m.MemoryModel.GetAuthorizationCode(ctx, d)
}

// TestStorageErrorsAreServerErrors: a Model failure becomes a 500
// server_error with a fixed body (on the bearer path a 503 with
// Retry-After), and reaches ErrorHandler with its cause (docs/production.md,
// "When the database fails").
func TestStorageErrorsAreServerErrors(t *testing.T) {
	bm := &brokenModel{}
	h := newHarness(t, withModel(bm, &bm.MemoryModel))
	id, sec := h.confidentialClient()
	tr := h.tokens(h.publicClient())
	bm.broken.Store(true)

	for name, do := range map[string]func() *httptest.ResponseRecorder{
		"token": func() *httptest.ResponseRecorder {
			return h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, id, sec)
		},
		"register": func() *httptest.ResponseRecorder {
			return h.register(`{"redirect_uris":["https://client.example.com/cb"]}`)
		},
		"authorize": func() *httptest.ResponseRecorder {
			return h.authorize(&browser{}, authorizeParams(id))
		},
		"bearer": func() *httptest.ResponseRecorder {
			return h.callMCP(tr.AccessToken)
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := do()
			code, body, hdr := w.Code, w.Body.String(), w.Header()
			if name == "bearer" {
				// The bearer path cannot tell a client whether its token
				// is good: 503 with Retry-After, so that it keeps the
				// token and tries again.
				require.Equal(t, http.StatusServiceUnavailable, code, body)
				require.Equal(t, "1", hdr.Get("Retry-After"))
				require.Contains(t, body, `"error":"temporarily_unavailable"`)
				require.Empty(t, hdr.Values("WWW-Authenticate"))
				return
			}
			require.Equal(t, http.StatusInternalServerError, code, body)
			if strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
				// The error page of a browser-facing step.
				require.Contains(t, body, `<code id="error">server_error</code>`)
			} else {
				require.Contains(t, body, `"error":"server_error"`)
			}
			require.NotContains(t, body, "hunter2")
			require.NotContains(t, body, "db-internal")
			require.NotContains(t, strings.Join(hdr.Values("WWW-Authenticate"), " "), "hunter2")
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var found bool
	for _, e := range h.errs {
		found = found || errors.Is(e, errStorage)
	}
	require.True(t, found, "ErrorHandler receives the storage error")
}
