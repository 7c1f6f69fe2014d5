package integration_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/together"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Secrets of static clients: long enough for RegisterClient.
const (
	staticSecret1 = "static-secret-one-0123456789abcdefghijklmnop"
	staticSecret2 = "static-secret-two-0123456789abcdefghijklmnop"
)

// staticInfo is the information of a static confidential client of every
// grant but the device's.
func staticInfo(id, secret, name string) metadata.ClientInformation {
	return metadata.ClientInformation{
		ClientID:     id,
		ClientSecret: secret,
		ClientMetadata: metadata.ClientMetadata{
			ClientName:   name,
			RedirectURIs: []string{testRedirect},
			GrantTypes:   []string{"authorization_code", "refresh_token", "client_credentials"},
		},
	}
}

// ccToken asks for a client_credentials token with HTTP Basic credentials.
func (h *harness) ccToken(id, secret string) *httptest.ResponseRecorder {
	return h.postForm("/token", ccForm("scope", testScope), id, secret)
}

// requireCCToken gets a client_credentials access token, which must be
// issued.
func (h *harness) requireCCToken(id, secret string) string {
	h.t.Helper()
	w := h.ccToken(id, secret)
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	return decodeTokens(h.t, w).AccessToken
}

// replica is another server on the harness's model, as another instance
// of a deployment is on a shared database.
func (h *harness) replica() *mcpoauth.OAuthServer {
	h.t.Helper()
	srv, err := mcpoauth.New(mcpoauth.Config{
		Model:             h.model,
		Issuer:            testIssuer,
		AuthorizationURL:  testConsentURL,
		ResourceServerURL: testResource,
		ScopesSupported:   []string{testScope},
		GrantTypes:        []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken, mcpoauth.GrantClientCredentials},
		Now:               h.clock.Now,
		Logger:            slog.New(slog.DiscardHandler),
	})
	require.NoError(h.t, err)
	h.t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestRegisterClientAgainEndsWithTheLatestCall: registering a static client
// again (every restart) succeeds and leaves what the latest call said; the
// client keeps its client_id_issued_at, and tokens issued before stay
// valid.
func TestRegisterClientAgainEndsWithTheLatestCall(t *testing.T) {
	public := metadata.ClientInformation{ClientID: "static", ClientMetadata: metadata.ClientMetadata{
		ClientName: "Public now", RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "none",
	}}
	for name, tc := range map[string]struct {
		again metadata.ClientInformation
		// works and refused are the secrets accepted and refused after.
		works, refused []string
	}{
		"same information": {staticInfo("static", staticSecret1, "First"), []string{staticSecret1}, []string{staticSecret2}},
		"new metadata":     {staticInfo("static", staticSecret1, "Renamed"), []string{staticSecret1}, []string{staticSecret2}},
		"new secret":       {staticInfo("static", staticSecret2, "First"), []string{staticSecret2}, []string{staticSecret1}},
		"turned public":    {public, nil, []string{staticSecret1}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, withAllGrants)
			ctx := t.Context()
			first, err := h.srv.RegisterClient(ctx, staticInfo("static", staticSecret1, "First"))
			require.NoError(t, err)
			access := h.requireCCToken("static", staticSecret1)

			h.clock.Advance(time.Minute)
			out, err := h.srv.RegisterClient(ctx, tc.again)
			require.NoError(t, err)
			require.Equal(t, first.ClientIDIssuedAt, out.ClientIDIssuedAt, "client_id_issued_at is the first registration's")
			require.Equal(t, tc.again.ClientSecret, out.ClientSecret)

			got, err := h.model.GetClient(ctx, "static")
			require.NoError(t, err)
			require.Equal(t, tc.again.ClientName, got.Metadata.ClientName)
			require.Equal(t, tc.again.ClientSecret == "", got.IsPublic())
			for _, sec := range tc.works {
				h.requireCCToken("static", sec)
			}
			for _, sec := range tc.refused {
				caRequireInvalidClient(t, h.ccToken("static", sec))
			}
			require.Equal(t, 1, h.model.Stats().Clients)
			require.Equal(t, http.StatusOK, h.callMCP(access).Code, "a token issued before still works")
		})
	}
}

// TestRegisterClientConcurrentlyAllSucceed: replicas starting together on
// one model register the same static clients at once; every call succeeds
// and one client of each remains, with the secret its file gives.
func TestRegisterClientConcurrentlyAllSucceed(t *testing.T) {
	h := newHarness(t, withAllGrants)
	const replicas = 20
	servers := make([]*mcpoauth.OAuthServer, replicas)
	for i := range servers {
		servers[i] = h.replica()
	}
	ids := []string{"static-a", "static-b"}
	errs := together.Run(replicas*len(ids), func(k int) error {
		id := ids[k%len(ids)]
		_, err := servers[k/len(ids)].RegisterClient(context.Background(), staticInfo(id, staticSecret1, id))
		return err
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, len(ids), h.model.Stats().Clients)
	for _, id := range ids {
		h.requireCCToken(id, staticSecret1)
	}
}

// TestRegisterClientWithoutSecretKeepsTheStoredOne: a confidential client
// registered again with no secret keeps the secret it has (a restart must
// not rotate it) and is told none; one that had no secret gets one.
func TestRegisterClientWithoutSecretKeepsTheStoredOne(t *testing.T) {
	h := newHarness(t, withAllGrants)
	ctx := t.Context()
	first, err := h.srv.RegisterClient(ctx, staticInfo("minted", "", "Minted"))
	require.NoError(t, err)
	require.Len(t, first.ClientSecret, 43, "a confidential client with no secret gets a fresh one")
	stored, err := h.model.GetClient(ctx, "minted")
	require.NoError(t, err)

	again, err := h.srv.RegisterClient(ctx, staticInfo("minted", "", "Minted again"))
	require.NoError(t, err)
	require.Empty(t, again.ClientSecret, "the secret is never told twice")
	require.Equal(t, *first.ClientSecretExpiresAt, *again.ClientSecretExpiresAt)
	got, err := h.model.GetClient(ctx, "minted")
	require.NoError(t, err)
	require.Equal(t, stored.SecretDigest, got.SecretDigest)
	require.Equal(t, "Minted again", got.Metadata.ClientName)
	h.requireCCToken("minted", first.ClientSecret)

	// A public client turned confidential has no secret to keep.
	public := metadata.ClientInformation{ClientID: "was-public", ClientMetadata: metadata.ClientMetadata{
		RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "none",
	}}
	_, err = h.srv.RegisterClient(ctx, public)
	require.NoError(t, err)
	out, err := h.srv.RegisterClient(ctx, staticInfo("was-public", "", "Confidential now"))
	require.NoError(t, err)
	require.NotEmpty(t, out.ClientSecret)
	h.requireCCToken("was-public", out.ClientSecret)
}

// TestUpdateClientChangesOnlyAnExistingClient: UpdateClient validates like
// a registration, replaces an existing client, and never creates one.
func TestUpdateClientChangesOnlyAnExistingClient(t *testing.T) {
	insecure := staticInfo("static", "", "Insecure")
	insecure.RedirectURIs = []string{"http://client.example.com/cb"}
	for name, tc := range map[string]struct {
		info    metadata.ClientInformation
		wantErr error
		name    string // the client's name after
		secret  string // the secret that works after
	}{
		"missing client":       {staticInfo("missing", staticSecret2, "Missing"), mcpoauth.ErrNotFound, "First", staticSecret1},
		"invalid metadata":     {insecure, mcpoauth.ErrInvalidClientInformation, "First", staticSecret1},
		"short secret":         {staticInfo("static", "short", "Short"), mcpoauth.ErrInvalidClientInformation, "First", staticSecret1},
		"no client_id":         {staticInfo("", staticSecret2, "Nobody"), mcpoauth.ErrInvalidClientInformation, "First", staticSecret1},
		"new metadata":         {staticInfo("static", "", "Renamed"), nil, "Renamed", staticSecret1},
		"new metadata, secret": {staticInfo("static", staticSecret2, "Renamed"), nil, "Renamed", staticSecret2},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, withAllGrants)
			ctx := t.Context()
			_, err := h.srv.RegisterClient(ctx, staticInfo("static", staticSecret1, "First"))
			require.NoError(t, err)
			out, err := h.srv.UpdateClient(ctx, tc.info)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, out)
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.info.ClientSecret, out.ClientSecret)
			}
			require.Equal(t, 1, h.model.Stats().Clients, "an update never creates a client")
			got, err := h.model.GetClient(ctx, "static")
			require.NoError(t, err)
			require.Equal(t, tc.name, got.Metadata.ClientName)
			h.requireCCToken("static", tc.secret)
		})
	}
}

// deletingModel deletes a client just before SaveTokens, once, as an
// administrator's DeleteClient may land between a token request's client
// authentication and its save.
type deletingModel struct {
	*mcpoauth.MemoryModel
	deleteOnSave func()
}

func (m *deletingModel) SaveTokens(ctx context.Context, tokens ...*mcpoauth.Token) error {
	if f := m.deleteOnSave; f != nil {
		m.deleteOnSave = nil
		f()
	}
	return m.MemoryModel.SaveTokens(ctx, tokens...)
}

// TestDeleteClientEndsEverythingIssuedToIt: after DeleteClient no token,
// code or pending request of the client works, and its credentials are
// refused; it can be registered again, and the old tokens stay dead.
func TestDeleteClientEndsEverythingIssuedToIt(t *testing.T) {
	h := newHarness(t, withAllGrants)
	ctx := t.Context()
	_, err := h.srv.RegisterClient(ctx, staticInfo("static", staticSecret1, "Static"))
	require.NoError(t, err)
	other := h.publicClient()
	otherTokens := h.tokens(other)

	cc := h.requireCCToken("static", staticSecret1)
	user := h.basicTokens("static", staticSecret1)
	unredeemed := h.code("static")
	b := &browser{}
	pending := h.pending(b, h.authorize(b, authorizeParams("static")))

	require.NoError(t, h.srv.DeleteClient(ctx, "static"))
	for _, tok := range []string{cc, user.AccessToken} {
		require.Equal(t, http.StatusUnauthorized, h.callMCP(tok).Code)
		_, err := h.srv.VerifyAccessToken(ctx, tok)
		require.Error(t, err)
	}
	caRequireInvalidClient(t, h.postForm("/token", refreshForm("static", user.RefreshToken), "static", staticSecret1))
	caRequireInvalidClient(t, h.postForm("/token", basicExchangeForm("static", unredeemed), "static", staticSecret1))
	w := h.decide(b, map[string][]string{"request_id": {pending.RequestID}, "csrf_token": {pending.CSRFToken}, "decision": {"approve"}, "username": {"alice"}})
	require.NotEqual(t, http.StatusSeeOther, w.Code, "the pending request is gone")
	caRequireInvalidClient(t, h.ccToken("static", staticSecret1))
	require.ErrorIs(t, h.srv.DeleteClient(ctx, "static"), mcpoauth.ErrNotFound)

	// Another client's tokens stay; only its own grant is counted.
	require.Equal(t, http.StatusOK, h.callMCP(otherTokens.AccessToken).Code)
	st := h.model.Stats()
	require.Equal(t, mcpoauth.MemoryStats{Clients: 1, Tokens: 2, Grants: 1, AuthorizationCodes: 1}, st, "only the other client's grant (its used code and tokens) remains")

	// Registered again, the client starts afresh: nothing old comes back.
	_, err = h.srv.RegisterClient(ctx, staticInfo("static", staticSecret1, "Static"))
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, h.callMCP(cc).Code)
	caRequireAuthenticated(t, h.postForm("/token", refreshForm("static", user.RefreshToken), "static", staticSecret1))
}

// TestDeleteClientDuringTokenRequestHandsOutNothing: a client_credentials
// request whose client is deleted between its authentication and the save
// of its token gets invalid_client, as a failed authentication (401 with a
// Basic challenge after HTTP Basic), and the token saved after the delete
// is revoked, never handed out.
func TestDeleteClientDuringTokenRequestHandsOutNothing(t *testing.T) {
	for _, basic := range []bool{true, false} {
		t.Run(fmt.Sprintf("basic=%t", basic), func(t *testing.T) {
			m := &deletingModel{}
			h := newHarness(t, withAllGrants, withModel(m, &m.MemoryModel))
			ctx := t.Context()
			_, err := h.srv.RegisterClient(ctx, staticInfo("static", staticSecret1, "Static"))
			require.NoError(t, err)
			m.deleteOnSave = func() { require.NoError(t, h.srv.DeleteClient(ctx, "static")) }

			var w *httptest.ResponseRecorder
			if basic {
				w = h.ccToken("static", staticSecret1)
			} else {
				w = h.postForm("/token", ccForm("scope", testScope, "client_id", "static", "client_secret", staticSecret1))
			}
			caRequireInvalidClient(t, w)
			require.Nil(t, m.deleteOnSave, "test premise: the delete ran during the request")
			require.Equal(t, mcpoauth.MemoryStats{RevokedGrants: 1}, h.model.Stats())
		})
	}
}

// TestRotateClientSecretRefusesTheOldSecret: after RotateClientSecret the
// old secret is refused and the new one, 256 bits told once, works until
// ClientSecretLifetime has passed; tokens issued before stay valid.
func TestRotateClientSecretRefusesTheOldSecret(t *testing.T) {
	h := newHarness(t, withAllGrants)
	ctx := t.Context()
	_, err := h.srv.RegisterClient(ctx, staticInfo("static", staticSecret1, "Static"))
	require.NoError(t, err)
	before := h.requireCCToken("static", staticSecret1)

	fresh, err := h.srv.RotateClientSecret(ctx, "static")
	require.NoError(t, err)
	require.Len(t, fresh, 43, "256 bits of base64url")
	got, err := h.model.GetClient(ctx, "static")
	require.NoError(t, err)
	require.Equal(t, mcpoauth.Digest(sha256.Sum256([]byte(fresh))), got.SecretDigest)
	require.Equal(t, h.clock.Now().Add(mcpoauth.DefaultClientSecretLifetime), got.SecretExpiresAt)
	require.Equal(t, "Static", got.Metadata.ClientName, "the rest of the client is unchanged")

	caRequireInvalidClient(t, h.ccToken("static", staticSecret1))
	h.requireCCToken("static", fresh)
	require.Equal(t, http.StatusOK, h.callMCP(before).Code, "a token issued before still works")
	again, err := h.srv.RotateClientSecret(ctx, "static")
	require.NoError(t, err)
	require.NotEqual(t, fresh, again)
	caRequireInvalidClient(t, h.ccToken("static", fresh))

	h.clock.Advance(mcpoauth.DefaultClientSecretLifetime)
	w := h.ccToken("static", again)
	caRequireInvalidClient(t, w)
	require.Contains(t, w.Body.String(), "expired")
}

// TestRotateClientSecretRefusesClientsWithoutOne: a public client has no
// secret to rotate, and an unknown client is not found; neither changes.
func TestRotateClientSecretRefusesClientsWithoutOne(t *testing.T) {
	h := newHarness(t)
	public := h.publicClient()
	for id, want := range map[string]error{public: mcpoauth.ErrPublicClient, "unknown": mcpoauth.ErrNotFound} {
		secret, err := h.srv.RotateClientSecret(t.Context(), id)
		require.ErrorIs(t, err, want, id)
		require.Empty(t, secret)
	}
	got, err := h.model.GetClient(t.Context(), public)
	require.NoError(t, err)
	require.True(t, got.IsPublic())
}

// TestClientAdministrationNeedsARegistrar: with a Model that cannot store
// clients, every client administration method says so.
func TestClientAdministrationNeedsARegistrar(t *testing.T) {
	m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { _ = m.Close() })
	srv, err := cfgNew(t, func(c *mcpoauth.Config) {
		c.Model = registrarlessModel{Model: m}
		c.DisableDynamicClientRegistration = true
	})
	require.NoError(t, err)
	ctx := t.Context()
	info := staticInfo("static", staticSecret1, "Static")
	for name, call := range map[string]func() error{
		"RegisterClient":     func() error { _, err := srv.RegisterClient(ctx, info); return err },
		"UpdateClient":       func() error { _, err := srv.UpdateClient(ctx, info); return err },
		"DeleteClient":       func() error { return srv.DeleteClient(ctx, "static") },
		"RotateClientSecret": func() error { _, err := srv.RotateClientSecret(ctx, "static"); return err },
	} {
		require.ErrorIs(t, call(), mcpoauth.ErrNoClientRegistrar, name)
	}
}

// ExampleOAuthServer_RegisterClient registers the static clients of a
// configuration at every start: registering one again updates it, so every
// replica of a deployment may run this against the shared database. A
// client whose secret leaked gets a new one; a retired one is deleted, with
// every token it holds.
func ExampleOAuthServer_RegisterClient() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:           "https://mcp.example.com",
		AuthorizationURL: "https://mcp.example.com/consent",
		GrantTypes:       []string{mcpoauth.GrantClientCredentials},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	for range 2 { // two starts
		for _, id := range []string{"reporting", "retired"} {
			_, err := srv.RegisterClient(ctx, metadata.ClientInformation{
				ClientID:       id,
				ClientSecret:   strings.Repeat("s", 43), // from a secret store
				ClientMetadata: metadata.ClientMetadata{GrantTypes: []string{"client_credentials"}},
			})
			if err != nil {
				log.Fatal(err)
			}
		}
	}

	secret, err := srv.RotateClientSecret(ctx, "reporting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(secret)) // hand it to the client: it is not stored
	if err := srv.DeleteClient(ctx, "retired"); err != nil {
		log.Fatal(err)
	}
	err = srv.DeleteClient(ctx, "retired")
	fmt.Println(errors.Is(err, mcpoauth.ErrNotFound))
	// Output:
	// 43
	// true
}
