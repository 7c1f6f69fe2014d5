package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
)

// liveServer runs the library on a loopback port, as an MCP server embeds
// it: Router at the root, a consent page, the MCP endpoint behind bearer
// auth. Its issuer is the server's own http://127.0.0.1:PORT.
type liveServer struct {
	*httptest.Server
	issuer, resource string
	srv              *mcpoauth.OAuthServer
}

func newLiveServer(t *testing.T, mutate ...func(issuer string, c *mcpoauth.Config)) *liveServer {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	ls := &liveServer{Server: ts, issuer: issuer, resource: issuer + "/mcp"}
	cfg := mcpoauth.Config{
		Issuer:            issuer,
		AuthorizationURL:  issuer + "/consent",
		ResourceServerURL: ls.resource,
		ScopesSupported:   []string{testScope},
	}
	for _, m := range mutate {
		m(issuer, &cfg)
	}
	srv, err := mcpoauth.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	ls.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		p, err := srv.PendingAuthorization(r)
		if err != nil {
			http.Error(w, "no pending request", http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	})
	mux.Handle("POST /consent", srv.AuthenticateHandler(func(r *http.Request) (string, error) {
		if u := r.PostFormValue("username"); u != "" {
			return u, nil
		}
		return "", errors.New("not signed in")
	}))
	mux.Handle("/mcp", srv.RequireBearerAuth(testScope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": info.UserID, "client": info.ClientID})
	})))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return ls
}

// userAgent is a browser: a cookie jar, redirects not followed.
func userAgent(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn plays the user: open the authorization URL, read the consent page,
// approve. It returns the redirect the client receives.
func signIn(t *testing.T, authURL string) *url.URL {
	t.Helper()
	ua := userAgent(t)
	resp, err := ua.Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	consent := resp.Header.Get("Location")
	resp, err = ua.Get(consent)
	require.NoError(t, err)
	var p mcpoauth.PendingAuthorization
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	resp.Body.Close()
	u, _ := url.Parse(consent)
	u.RawQuery = ""
	resp, err = ua.PostForm(u.String(), url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"approve"}, "username": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

// TestIntegrationOAuth2Client drives the real router over loopback with
// golang.org/x/oauth2 as the client: DCR, authorize, consent, token, bearer
// call, refresh, revoke; for a public client and for a confidential one
// authenticating with HTTP Basic.
func TestIntegrationOAuth2Client(t *testing.T) {
	for _, tc := range []struct {
		name       string
		authMethod string
		style      oauth2.AuthStyle
	}{
		{"public client", "none", oauth2.AuthStyleInParams},
		{"client_secret_basic", "client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", "client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLiveServer(t)
			ctx := context.Background()

			// Discovery: the 401 names the protected resource metadata.
			resp, err := http.Get(ls.resource)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			prmURL := ls.issuer + "/.well-known/oauth-protected-resource/mcp"
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+prmURL+`"`)
			var prm struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
			}
			getJSON(t, prmURL, &prm)
			require.Equal(t, ls.resource, prm.Resource)
			var meta struct {
				Issuer, AuthorizationEndpoint, TokenEndpoint, RegistrationEndpoint, RevocationEndpoint string
			}
			getJSON(t, prm.AuthorizationServers[0]+"/.well-known/oauth-authorization-server", &struct {
				Issuer                *string `json:"issuer"`
				AuthorizationEndpoint *string `json:"authorization_endpoint"`
				TokenEndpoint         *string `json:"token_endpoint"`
				RegistrationEndpoint  *string `json:"registration_endpoint"`
				RevocationEndpoint    *string `json:"revocation_endpoint"`
			}{&meta.Issuer, &meta.AuthorizationEndpoint, &meta.TokenEndpoint, &meta.RegistrationEndpoint, &meta.RevocationEndpoint})
			require.Equal(t, ls.issuer, meta.Issuer)

			// DCR.
			redirectURI := "http://127.0.0.1/callback"
			body, _ := json.Marshal(map[string]any{
				"redirect_uris": []string{redirectURI}, "grant_types": []string{"authorization_code", "refresh_token"},
				"token_endpoint_auth_method": tc.authMethod, "client_name": "x/oauth2 test", "application_type": "native",
			})
			resp, err = http.Post(meta.RegistrationEndpoint, "application/json", bytes.NewReader(body))
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			var reg struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
			resp.Body.Close()

			cfg := &oauth2.Config{
				ClientID:     reg.ClientID,
				ClientSecret: reg.ClientSecret,
				Endpoint:     oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: tc.style},
				RedirectURL:  "http://127.0.0.1:43210/callback", // any loopback port (RFC 8252 §7.3)
				Scopes:       []string{testScope},
			}
			verifier := oauth2.GenerateVerifier()
			resourceOpt := oauth2.SetAuthURLParam("resource", ls.resource)
			loc := signIn(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), resourceOpt))
			require.Equal(t, "st4te", loc.Query().Get("state"))
			require.Equal(t, ls.issuer, loc.Query().Get("iss"))

			tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier), resourceOpt)
			require.NoError(t, err)
			require.Equal(t, "Bearer", tok.TokenType)
			require.NotEmpty(t, tok.RefreshToken)

			whoami := func(tok *oauth2.Token) int {
				resp, err := cfg.Client(ctx, tok).Get(ls.resource)
				require.NoError(t, err)
				defer resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					var who map[string]string
					require.NoError(t, json.NewDecoder(resp.Body).Decode(&who))
					require.Equal(t, map[string]string{"user": "alice", "client": reg.ClientID}, who)
				}
				return resp.StatusCode
			}
			require.Equal(t, http.StatusOK, whoami(tok))

			// Refresh as x/oauth2 does it: no resource parameter.
			stale := &oauth2.Token{RefreshToken: tok.RefreshToken}
			refreshed, err := cfg.TokenSource(ctx, stale).Token()
			require.NoError(t, err)
			require.NotEqual(t, tok.RefreshToken, refreshed.RefreshToken)
			require.Equal(t, http.StatusOK, whoami(refreshed))

			// Revoke the refresh token: the whole grant goes.
			form := url.Values{"token": {refreshed.RefreshToken}, "token_type_hint": {"refresh_token"}}
			if tc.authMethod != "client_secret_basic" {
				form.Set("client_id", reg.ClientID)
				if reg.ClientSecret != "" {
					form.Set("client_secret", reg.ClientSecret)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, meta.RevocationEndpoint, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.authMethod == "client_secret_basic" {
				req.SetBasicAuth(url.QueryEscape(reg.ClientID), url.QueryEscape(reg.ClientSecret))
			}
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, http.StatusUnauthorized, whoami(refreshed))
			_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token()
			var re *oauth2.RetrieveError
			require.ErrorAs(t, err, &re)
			require.Equal(t, "invalid_grant", re.ErrorCode)
		})
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}
