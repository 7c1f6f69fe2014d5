package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// alicesIdentity is what the tests' OnApproval says the approving user is
// at the upstream provider.
func alicesIdentity(user string) *mcpoauth.Identity {
	return &mcpoauth.Identity{
		Issuer: "https://idp.example.com", Subject: "sub-" + user, Email: user + "@example.com", Name: "Alice",
		Claims: map[string]any{"groups": []any{"eng"}},
	}
}

// withIdentities makes every approval record alicesIdentity, and counts
// the calls.
func withIdentities(calls *atomic.Int32) func(*mcpoauth.Config) {
	return func(c *mcpoauth.Config) {
		c.OnApproval = func(r *http.Request, g *mcpoauth.Grant) (*mcpoauth.Identity, error) {
			calls.Add(1)
			if g.ID == "" || g.ClientID == "" || g.UserID == "" || g.ExpiresAt.IsZero() {
				return nil, errors.New("OnApproval got an incomplete grant")
			}
			return alicesIdentity(g.UserID), nil
		}
	}
}

// mcpAnswer is what the harness's /mcp handler tells of its caller.
type mcpAnswer struct {
	User     string             `json:"user"`
	Grant    string             `json:"grant"`
	Identity *mcpoauth.Identity `json:"identity"`
}

func (h *harness) mcpAnswer(token string) mcpAnswer {
	h.t.Helper()
	w := h.callMCP(token)
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	var a mcpAnswer
	require.NoError(h.t, json.Unmarshal(w.Body.Bytes(), &a))
	return a
}

// TestGrantIdentityReachesTools: the identity OnApproval returns is stored
// with the grant and told to the protected handler (bearer.AuthInfo) for
// every access token of the grant, refreshed ones included.
func TestGrantIdentityReachesTools(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, withIdentities(&calls))
	id := h.publicClient()
	tr := h.tokens(id)
	a := h.mcpAnswer(tr.AccessToken)
	assert.Equal(t, alicesIdentity("alice"), a.Identity)
	assert.EqualValues(t, 1, calls.Load())

	g, err := h.model.GetGrant(context.Background(), a.Grant)
	require.NoError(t, err)
	assert.Equal(t, "alice", g.UserID)
	assert.Equal(t, id, g.ClientID)
	assert.Equal(t, []string{testScope}, g.Scopes)
	assert.Equal(t, testResource, g.Resource)

	w := h.postForm("/token", refreshForm(id, tr.RefreshToken))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	refreshed := decodeTokens(t, w)
	assert.Equal(t, alicesIdentity("alice"), h.mcpAnswer(refreshed.AccessToken).Identity, "the identity survives refresh")
}

// TestNoIdentityWithoutOnApproval: an application that signs users in
// itself gets no Identity, and the grant is still recorded.
func TestNoIdentityWithoutOnApproval(t *testing.T) {
	h := newHarness(t)
	a := h.mcpAnswer(h.tokens(h.publicClient()).AccessToken)
	assert.Nil(t, a.Identity)
	_, err := h.model.GetGrant(context.Background(), a.Grant)
	assert.NoError(t, err, "the grant is a record even without an identity")
}

// TestOnApprovalFailureIssuesNothing: a hook that fails ends the approval
// with server_error at the client, and no code.
func TestOnApprovalFailureIssuesNothing(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.OnApproval = func(*http.Request, *mcpoauth.Grant) (*mcpoauth.Identity, error) {
			return nil, errors.New("vault unavailable")
		}
	})
	u := h.approve(authorizeParams(h.publicClient()), "alice")
	assert.Equal(t, "server_error", u.Query().Get("error"))
	assert.Empty(t, u.Query().Get("code"))
}

// TestDeviceApprovalRecordsIdentity: the device page's approval makes a
// grant record with the identity too.
func TestDeviceApprovalRecordsIdentity(t *testing.T) {
	var calls atomic.Int32
	h := newDeviceHarness(t, withIdentities(&calls))
	id := h.deviceClient()
	da := h.decidedDevice(id, "approve", "bob")
	w := h.pollDevice(id, da.DeviceCode)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	a := h.mcpAnswer(decodeTokens(t, w).AccessToken)
	assert.Equal(t, alicesIdentity("bob"), a.Identity)
	assert.EqualValues(t, 1, calls.Load())
}

// TestDeviceDeniedRecordsNoGrant: a denial makes no grant record and does
// not ask OnApproval.
func TestDeviceDeniedRecordsNoGrant(t *testing.T) {
	var calls atomic.Int32
	h := newDeviceHarness(t, withIdentities(&calls))
	id := h.deviceClient()
	h.decidedDevice(id, "deny", "bob")
	grants, err := h.model.ListUserGrants(context.Background(), "bob")
	require.NoError(t, err)
	assert.Empty(t, grants)
	assert.Zero(t, calls.Load())
}

// countingGrants counts the grant reads of the bearer path.
type countingGrants struct {
	*mcpoauth.MemoryModel
	reads atomic.Int32
}

func (m *countingGrants) GetGrant(ctx context.Context, id string) (*mcpoauth.Grant, error) {
	m.reads.Add(1)
	return m.MemoryModel.GetGrant(ctx, id)
}

// TestGrantIdentityReadOncePerReplica: the bearer path reads a grant's
// record once, not on every request (grant records never change).
func TestGrantIdentityReadOncePerReplica(t *testing.T) {
	var calls atomic.Int32
	model := &countingGrants{}
	h := newHarness(t, withIdentities(&calls), withModel(model, &model.MemoryModel))
	tr := h.tokens(h.publicClient())
	for range 5 {
		require.NotNil(t, h.mcpAnswer(tr.AccessToken).Identity)
	}
	assert.EqualValues(t, 1, model.reads.Load())
}

// openConsent runs /authorize in a browser signed in as user ("" for
// nobody) and opens the consent page it leads to.
func (h *harness) openConsent(params url.Values, user string) *httptest.ResponseRecorder {
	h.t.Helper()
	b := &browser{}
	if user != "" {
		b.cookies = append(b.cookies, &http.Cookie{Name: signedInCookie, Value: user})
	}
	w := h.authorize(b, params)
	require.Equal(h.t, http.StatusFound, w.Code, w.Body.String())
	r := httptest.NewRequest(http.MethodGet, w.Header().Get("Location"), nil)
	b.send(r)
	return h.do(r)
}

// TestRememberedConsent: a user who approved a client for some scopes is
// not asked again for those (or fewer) with the same client and resource;
// anything else asks (MCP authorization: consent is per client).
func TestRememberedConsent(t *testing.T) {
	both := testScope + " mcp:admin"
	for _, tc := range []struct {
		name string
		// approved is the scope of the first, approved, request.
		approved string
		// user signs in for the second request ("": nobody).
		user string
		// edit changes the second request (and the state before it); nil
		// sends it as it is.
		edit     func(h *harness, other string, params url.Values)
		remember bool
	}{
		{"same client, same scopes: skipped", testScope, "alice", nil, true},
		{"fewer scopes: skipped", both, "alice", nil, true},
		{"a scope increase asks again", testScope, "alice", func(_ *harness, _ string, p url.Values) { p.Set("scope", both) }, false},
		{"another client asks", testScope, "alice", func(_ *harness, other string, p url.Values) { p.Set("client_id", other) }, false},
		{"another user asks", testScope, "bob", nil, false},
		{"nobody signed in: the page", testScope, "", nil, false},
		{"a revoked grant is forgotten", testScope, "alice", func(h *harness, _ string, _ url.Values) {
			grants, err := h.model.ListUserGrants(context.Background(), "alice")
			require.NoError(h.t, err)
			require.Len(h.t, grants, 1)
			require.NoError(h.t, h.model.RevokeGrant(context.Background(), grants[0].ID))
		}, false},
		{"an expired grant is forgotten", testScope, "alice", func(h *harness, _ string, _ url.Values) {
			h.clock.Advance(mcpoauth.DefaultGrantLifetime + 1)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			h := newHarness(t, withIdentities(&calls))
			client, other := h.publicClient(), h.publicClient()
			first := authorizeParams(client)
			first.Set("scope", tc.approved)
			require.NotEmpty(t, h.approve(first, "alice").Query().Get("code"))

			second := authorizeParams(client)
			second.Set("scope", testScope)
			second.Set("state", "second")
			if tc.edit != nil {
				tc.edit(h, other, second)
			}
			w := h.openConsent(second, tc.user)
			if !tc.remember {
				assert.Equal(t, http.StatusOK, w.Code, "the consent page is shown: %s", w.Body.String())
				return
			}
			require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
			u, err := url.Parse(w.Header().Get("Location"))
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(u.String(), testRedirect+"?"), u.String())
			assert.Equal(t, "second", u.Query().Get("state"))
			assert.Equal(t, testIssuer, u.Query().Get("iss"))
			code := u.Query().Get("code")
			require.NotEmpty(t, code)
			assert.EqualValues(t, 2, calls.Load(), "a remembered approval is an approval: OnApproval runs")
			tok := h.postForm("/token", exchangeForm(client, code))
			require.Equal(t, http.StatusOK, tok.Code, tok.Body.String())
			assert.Equal(t, testScope, decodeTokens(t, tok).Scope, "the new grant has the requested scopes, not the remembered ones")
		})
	}
}

// TestRememberedConsentNeedsTheSameBrowser: a remembered approval still
// needs the browser that started the request (the binding cookie).
func TestRememberedConsentNeedsTheSameBrowser(t *testing.T) {
	h := newHarness(t)
	client := h.publicClient()
	require.NotEmpty(t, h.approve(authorizeParams(client), "alice").Query().Get("code"))
	w := h.authorize(&browser{}, authorizeParams(client))
	require.Equal(t, http.StatusFound, w.Code)
	r := httptest.NewRequest(http.MethodGet, w.Header().Get("Location"), nil)
	r.AddCookie(&http.Cookie{Name: signedInCookie, Value: "alice"})
	w = h.do(r)
	assert.Equal(t, http.StatusBadRequest, w.Code, "another browser gets no code: %s", w.Body.String())
}

// TestRememberedConsentNeedsAnIdentifiedClient: a public client whose
// redirect URI is loopback is never approved silently, however often the
// user approved it (RFC 8252 §8.6: any local program can send the browser
// to /authorize with its client_id and a port of its own and would get the
// code); a confidential one is, since its code is useless without its
// secret.
func TestRememberedConsentNeedsAnIdentifiedClient(t *testing.T) {
	const loopback = "http://127.0.0.1/callback"
	for _, tc := range []struct {
		name     string
		meta     metadata.ClientMetadata
		remember bool
	}{
		{"public, loopback redirect", metadata.ClientMetadata{RedirectURIs: []string{loopback}, TokenEndpointAuthMethod: "none"}, false},
		{"public, an https and a loopback redirect", metadata.ClientMetadata{RedirectURIs: []string{testRedirect, loopback}, TokenEndpointAuthMethod: "none"}, false},
		{"public, private-use scheme", metadata.ClientMetadata{RedirectURIs: []string{"com.example.app:/cb"}, TokenEndpointAuthMethod: "none"}, false},
		{"confidential, loopback redirect", metadata.ClientMetadata{RedirectURIs: []string{loopback}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.meta.GrantTypes = []string{"authorization_code", "refresh_token"}
			id, _ := h.preRegister(tc.meta)
			params := authorizeParams(id)
			params.Set("redirect_uri", tc.meta.RedirectURIs[0])
			h.approve(params, "alice")

			if u, err := url.Parse(tc.meta.RedirectURIs[0]); err == nil && u.Hostname() == "127.0.0.1" {
				params.Set("redirect_uri", "http://127.0.0.1:6666/callback") // another program's port
			}
			w := h.openConsent(params, "alice")
			if tc.remember {
				assert.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
			} else {
				assert.Equal(t, http.StatusOK, w.Code, "the consent page is shown: %s", w.Body.String())
			}
		})
	}
}

// TestRememberedConsentYieldsToPrompt: a request whose prompt asks for the
// user (consent, login, select_account; OpenID Connect Core §3.1.2.1)
// shows the page although the approval is remembered; none, or an unknown
// value, does not.
func TestRememberedConsentYieldsToPrompt(t *testing.T) {
	for _, tc := range []struct {
		prompt   string
		remember bool
	}{
		{"consent", false}, {"login", false}, {"select_account", false}, {"none consent", false},
		{"none", true}, {"", true}, {"unknown", true},
	} {
		t.Run("prompt="+tc.prompt, func(t *testing.T) {
			h := newHarness(t)
			client := h.publicClient()
			require.NotEmpty(t, h.approve(authorizeParams(client), "alice").Query().Get("code"))
			params := authorizeParams(client)
			if tc.prompt != "" {
				params.Set("prompt", tc.prompt)
			}
			w := h.openConsent(params, "alice")
			if tc.remember {
				assert.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
			} else {
				assert.Equal(t, http.StatusOK, w.Code, "the consent page is shown: %s", w.Body.String())
			}
		})
	}
}
