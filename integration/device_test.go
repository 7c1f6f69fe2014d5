package integration_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// testDevicePage is the device verification page of the test deployment.
const testDevicePage = testIssuer + "/activate"

// withAllGrants enables every grant, with the device verification page.
func withAllGrants(c *mcpoauth.Config) {
	c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken, mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode}
	c.DeviceAuthorizationURL = testDevicePage
}

// devicePage is what the test verification page answers: the form's CSRF
// token, and the pending authorization named by ?user_code, or the error
// the lookup gave ("too_many" for the rate limit, else the OAuth code).
type devicePage struct {
	CSRFToken string                               `json:"csrf_token"`
	Pending   *mcpoauth.PendingDeviceAuthorization `json:"pending"`
	Error     string                               `json:"error"`
}

// newDeviceHarness is a harness with every grant enabled and a device
// verification page mounted as an application would: GET /activate renders
// (as JSON), POST /activate/approve and /activate/deny are the library's
// handlers, and POST /activate/decide dispatches on a decision field after
// parsing the form itself, as a single HTML form with two buttons does.
func newDeviceHarness(t *testing.T, mutate ...func(*mcpoauth.Config)) *harness {
	t.Helper()
	h := newHarness(t, append([]func(*mcpoauth.Config){withAllGrants}, mutate...)...)
	approve := h.srv.ApproveDeviceAuthorizationHandler(testSignIn)
	deny := h.srv.DenyDeviceAuthorizationHandler(testSignIn)
	mux := http.NewServeMux()
	mux.Handle("/", h.handler)
	mux.HandleFunc("GET /activate", func(w http.ResponseWriter, r *http.Request) {
		page := devicePage{CSRFToken: h.srv.DeviceFormToken(w, r)}
		if uc := r.URL.Query().Get(mcpoauth.FormUserCode); uc != "" {
			p, err := h.srv.PendingDeviceAuthorization(r, uc)
			var oerr *mcpoauth.OAuthError
			switch {
			case err == nil:
				page.Pending = p
			case errors.Is(err, mcpoauth.ErrTooManyUserCodeAttempts):
				page.Error = "too_many"
			case errors.As(err, &oerr):
				page.Error = oerr.Code
			default:
				page.Error = err.Error()
			}
		}
		_ = json.NewEncoder(w).Encode(page)
	})
	mux.Handle("/activate/approve", approve)
	mux.Handle("/activate/deny", deny)
	mux.HandleFunc("POST /activate/decide", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		switch r.PostForm.Get("decision") {
		case "approve":
			approve.ServeHTTP(w, r)
		case "deny":
			deny.ServeHTTP(w, r)
		default:
			http.Error(w, "bad decision", http.StatusBadRequest)
		}
	})
	h.handler = mux
	return h
}

// deviceClient registers a public client for the device and refresh grants.
func (h *harness) deviceClient() string {
	out := h.registerClient(map[string]any{
		"grant_types":                []string{mcpoauth.GrantDeviceCode, "refresh_token"},
		"token_endpoint_auth_method": "none",
		"client_name":                "Smart TV",
	})
	return out["client_id"].(string)
}

// deviceAuth is the RFC 8628 §3.2 response.
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// deviceForm is a valid device authorization request of a public client.
func deviceForm(clientID string) url.Values {
	return url.Values{"client_id": {clientID}, "scope": {testScope}, "resource": {testResource}}
}

// startDevice runs the device authorization request for a public client.
func (h *harness) startDevice(clientID string) deviceAuth {
	h.t.Helper()
	w := h.postForm("/device", deviceForm(clientID))
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	var da deviceAuth
	require.NoError(h.t, json.Unmarshal(w.Body.Bytes(), &da))
	return da
}

func devicePollForm(clientID, deviceCode string) url.Values {
	return url.Values{"grant_type": {mcpoauth.GrantDeviceCode}, "client_id": {clientID}, "device_code": {deviceCode}}
}

// pollDevice polls the token endpoint as a public device client.
func (h *harness) pollDevice(clientID, deviceCode string) *httptest.ResponseRecorder {
	return h.postForm("/token", devicePollForm(clientID, deviceCode))
}

// openDevicePage loads the verification page in a browser, for a user code
// or ("") for the empty form.
func (h *harness) openDevicePage(b *browser, userCode string) devicePage {
	h.t.Helper()
	r := httptest.NewRequest(http.MethodGet, testDevicePage+"?"+url.Values{"user_code": {userCode}}.Encode(), nil)
	b.send(r)
	w := h.do(r)
	b.keep(w)
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	var p devicePage
	require.NoError(h.t, json.Unmarshal(w.Body.Bytes(), &p))
	return p
}

// postDecision posts the verification form from a browser to
// /activate/<action> (approve, deny or decide).
func (h *harness) postDecision(b *browser, action string, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testDevicePage+"/"+action, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.send(r)
	return h.do(r)
}

// decideDevice plays the user: open the page for the code, then approve or
// deny it signed in as user. It returns the decision's response.
func (h *harness) decideDevice(userCode, action, user string) *httptest.ResponseRecorder {
	h.t.Helper()
	b := &browser{}
	p := h.openDevicePage(b, userCode)
	return h.postDecision(b, action, url.Values{"user_code": {userCode}, "csrf_token": {p.CSRFToken}, "username": {user}})
}

// decidedDevice starts a device authorization for clientID and has user
// decide it (approve or deny) on the verification page.
func (h *harness) decidedDevice(clientID, action, user string) deviceAuth {
	h.t.Helper()
	da := h.startDevice(clientID)
	w := h.decideDevice(da.UserCode, action, user)
	require.Equal(h.t, http.StatusSeeOther, w.Code, w.Body.String())
	return da
}

// deviceDigest is the digest under which a device code is stored.
func deviceDigest(deviceCode string) mcpoauth.Digest { return sha256.Sum256([]byte(deviceCode)) }

// userCodeDigest is the digest under which a user code is stored.
func userCodeDigest(userCode string) mcpoauth.Digest {
	return sha256.Sum256([]byte(strings.ToUpper(strings.ReplaceAll(userCode, "-", ""))))
}

// storedDevice reads the stored device authorization, nil if there is none.
func storedDevice(t *testing.T, m mcpoauth.DeviceStore, deviceCode string) *mcpoauth.DeviceAuthorization {
	t.Helper()
	d, err := m.GetDeviceAuthorization(context.Background(), deviceDigest(deviceCode))
	if errors.Is(err, mcpoauth.ErrNotFound) {
		return nil
	}
	require.NoError(t, err)
	return d
}

// TestDeviceAuthorizationResponse: RFC 8628 §3.2: exactly the six members,
// no-store, a high-entropy device code (§5.2), a user code of eight letters
// from the §6.1 alphabet shown as XXXX-XXXX, verification_uri_complete
// carrying it (§3.3.1), the configured lifetime and interval. Neither code
// is stored in the clear.
func TestDeviceAuthorizationResponse(t *testing.T) {
	h := newDeviceHarness(t)
	w := h.postForm("/device", deviceForm(h.deviceClient()))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.ElementsMatch(t, []string{"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"}, mapKeys(body))
	var da deviceAuth
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &da))
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, da.DeviceCode)
	require.Regexp(t, `^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`, da.UserCode)
	require.Equal(t, testDevicePage, da.VerificationURI)
	require.Equal(t, testDevicePage+"?user_code="+da.UserCode, da.VerificationURIComplete)
	require.EqualValues(t, 900, da.ExpiresIn)
	require.EqualValues(t, 5, da.Interval)

	d := storedDevice(t, h.model, da.DeviceCode)
	require.NotNil(t, d)
	require.Equal(t, mcpoauth.DevicePending, d.Status)
	require.Equal(t, userCodeDigest(da.UserCode), d.UserCodeDigest)
	require.NotEmpty(t, d.GrantID)
	stored := fmt.Sprintf("%+v", *d)
	for _, secret := range []string{da.DeviceCode, da.UserCode, strings.ReplaceAll(da.UserCode, "-", "")} {
		require.NotContains(t, stored, secret, "stored only as a digest")
	}
}

// TestDeviceAuthorizationConfig: the configured page (a path resolves
// against the issuer; its query is kept), lifetime and interval.
func TestDeviceAuthorizationConfig(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.DeviceAuthorizationURL = "/activate?lang=en"
		c.DeviceAuthorizationLifetime = 10 * time.Minute
		c.DevicePollInterval = 2 * time.Second
	})
	da := h.startDevice(h.deviceClient())
	require.Equal(t, testIssuer+"/activate?lang=en", da.VerificationURI)
	require.Equal(t, testIssuer+"/activate?lang=en&user_code="+da.UserCode, da.VerificationURIComplete)
	require.EqualValues(t, 600, da.ExpiresIn)
	require.EqualValues(t, 2, da.Interval)
}

// TestDeviceConfigValidation: New refuses a device grant it cannot serve.
func TestDeviceConfigValidation(t *testing.T) {
	base := func() mcpoauth.Config {
		return mcpoauth.Config{
			Issuer: testIssuer, ResourceServerURL: testResource,
			GrantTypes:             []string{mcpoauth.GrantDeviceCode},
			DeviceAuthorizationURL: testDevicePage,
		}
	}
	srv, err := mcpoauth.New(base())
	require.NoError(t, err, "the device grant alone needs no consent page")
	require.NoError(t, srv.Close())

	for name, tc := range map[string]struct {
		mutate func(*mcpoauth.Config)
		want   []string
	}{
		"no device page":     {func(c *mcpoauth.Config) { c.DeviceAuthorizationURL = "" }, []string{"DeviceAuthorizationURL"}},
		"page with fragment": {func(c *mcpoauth.Config) { c.DeviceAuthorizationURL = testDevicePage + "#x" }, []string{"DeviceAuthorizationURL"}},
		"relative page":      {func(c *mcpoauth.Config) { c.DeviceAuthorizationURL = "activate" }, []string{"DeviceAuthorizationURL"}},
		"model without DeviceStore": {func(c *mcpoauth.Config) {
			c.Model = modelOnly{mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})}
			c.DisableDynamicClientRegistration = true
		}, []string{"DeviceStore", "SaveDeviceAuthorization", "ConsumeDeviceAuthorization", "RecordDevicePoll"}},
		"fractional interval": {func(c *mcpoauth.Config) { c.DevicePollInterval = 1500 * time.Millisecond }, []string{"DevicePollInterval"}},
		"interval beyond lifetime": {func(c *mcpoauth.Config) {
			c.DevicePollInterval = time.Minute
			c.DeviceAuthorizationLifetime = time.Minute
		}, []string{"DevicePollInterval"}},
		"negative lifetime":      {func(c *mcpoauth.Config) { c.DeviceAuthorizationLifetime = -time.Minute }, []string{"DeviceAuthorizationLifetime"}},
		"bad verification limit": {func(c *mcpoauth.Config) { c.RateLimits.DeviceVerification = mcpoauth.RateLimit{Requests: -1} }, []string{"RateLimits.DeviceVerification"}},
		"bad device limit":       {func(c *mcpoauth.Config) { c.RateLimits.Device = mcpoauth.RateLimit{Requests: 1} }, []string{"RateLimits.Device"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			_, err := mcpoauth.New(c)
			require.ErrorIs(t, err, mcpoauth.ErrInvalidConfig)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// modelOnly exposes only the Model methods of a MemoryModel: a store
// without the device capability.
type modelOnly struct{ mcpoauth.Model }

// TestDeviceMetadata: RFC 8628 §4 device_authorization_endpoint, advertised
// only when the grant is on; grant_types_supported is exactly the enabled
// grants.
func TestDeviceMetadata(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate   func(*mcpoauth.Config)
		grants   []string
		endpoint string
	}{
		"default": {func(*mcpoauth.Config) {}, []string{"authorization_code", "refresh_token"}, ""},
		"all":     {withAllGrants, []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"}, testIssuer + "/device"},
		"device only": {func(c *mcpoauth.Config) {
			c.GrantTypes = []string{mcpoauth.GrantDeviceCode}
			c.DeviceAuthorizationURL = testDevicePage
		}, []string{"urn:ietf:params:oauth:grant-type:device_code"}, testIssuer + "/device"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.mutate)
			w := h.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", nil))
			require.Equal(t, http.StatusOK, w.Code)
			var m struct {
				GrantTypes []string `json:"grant_types_supported"`
				Device     *string  `json:"device_authorization_endpoint"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
			require.Equal(t, tc.grants, m.GrantTypes)
			if tc.endpoint == "" {
				require.Nil(t, m.Device)
				require.Equal(t, http.StatusNotFound, h.postForm("/device", url.Values{}).Code, "the endpoint is not mounted")
				return
			}
			require.NotNil(t, m.Device)
			require.Equal(t, tc.endpoint, *m.Device)
		})
	}
}

// TestDeviceAuthorizationRejections: client authentication as at the token
// endpoint (RFC 8628 §3.1), the client's registered grant, scope and
// resource; a refused request stores nothing.
func TestDeviceAuthorizationRejections(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) { c.StrictResource = true })
	public := h.deviceClient()
	conf := h.registerClient(map[string]any{"grant_types": []string{mcpoauth.GrantDeviceCode}})
	confID, confSecret := conf["client_id"].(string), conf["client_secret"].(string)
	codeOnly := h.publicClient()
	for name, tc := range map[string]struct {
		form   url.Values
		basic  []string
		status int
		code   string
	}{
		"unknown client":              {deviceForm("nope"), nil, 401, "invalid_client"},
		"missing client_id":           {url.Values{"scope": {testScope}, "resource": {testResource}}, nil, 401, "invalid_client"},
		"confidential without secret": {deviceForm(confID), nil, 401, "invalid_client"},
		"confidential wrong secret":   {deviceForm(""), []string{confID, "wrong"}, 401, "invalid_client"},
		"public client with secret":   {withParam(deviceForm(public), "client_secret", "x"), nil, 401, "invalid_client"},
		"client without the grant":    {deviceForm(codeOnly), nil, 400, "unauthorized_client"},
		"unsupported scope":           {withParam(deviceForm(public), "scope", "mcp:root"), nil, 400, "invalid_scope"},
		"malformed scope":             {withParam(deviceForm(public), "scope", "a  b"), nil, 400, "invalid_scope"},
		"missing resource (strict)":   {withParam(deviceForm(public), "resource", ""), nil, 400, "invalid_target"},
		"other resource":              {withParam(deviceForm(public), "resource", "https://other.example.com/mcp"), nil, 400, "invalid_target"},
		"two resources":               {addParam(deviceForm(public), "resource", testResource), nil, 400, "invalid_target"},
		"repeated scope":              {addParam(deviceForm(public), "scope", testScope), nil, 400, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.postForm("/device", tc.form, tc.basic...)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Equal(t, tc.code, oauthError(t, w))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		})
	}
	require.Zero(t, h.model.Stats().DeviceAuthorizations, "a refused request stores nothing")

	r := newRequest(http.MethodPost, "/device", `{"client_id":"`+public+`"}`)
	r.Header.Set("Content-Type", "application/json")
	require.Equal(t, "invalid_request", oauthError(t, h.do(r)))
	w := h.do(newRequest(http.MethodGet, "/device", ""))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, "POST", w.Header().Get("Allow"))

	// A confidential client authenticates with either method.
	f := deviceForm("")
	f.Del("client_id")
	require.Equal(t, http.StatusOK, h.postForm("/device", f, confID, confSecret).Code)
	f = deviceForm(confID)
	f.Set("client_secret", confSecret)
	require.Equal(t, http.StatusOK, h.postForm("/device", f).Code)
}

// addParam returns a copy of v with one more value of k.
func addParam(v url.Values, k, val string) url.Values {
	c := withParam(v, k, v.Get(k))
	c.Add(k, val)
	return c
}

// TestDeviceFlow: approve on the page, poll, get tokens once (RFC 8628 §3.5
// success; the device code is single use), bound to the user, the
// resource and a grant, with a refresh token the client registered for.
func TestDeviceFlow(t *testing.T) {
	h := newDeviceHarness(t)
	id := h.deviceClient()
	da := h.startDevice(id)
	require.Equal(t, "authorization_pending", oauthError(t, h.pollDevice(id, da.DeviceCode)))

	w := h.decideDevice(da.UserCode, "approve", "alice")
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	require.Equal(t, testDevicePage+"?result=approved", w.Header().Get("Location"))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))

	h.clock.Advance(5 * time.Second)
	tok := h.pollDevice(id, da.DeviceCode)
	require.Equal(t, http.StatusOK, tok.Code, tok.Body.String())
	require.Equal(t, "no-store", tok.Header().Get("Cache-Control"))
	tr := decodeTokens(t, tok)
	require.NotEmpty(t, tr.RefreshToken)
	require.Equal(t, testScope, tr.Scope)
	mcp := h.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusOK, mcp.Code, mcp.Body.String())
	require.Contains(t, mcp.Body.String(), `"user":"alice"`)
	info, err := h.srv.VerifyAccessToken(context.Background(), tr.AccessToken)
	require.NoError(t, err)
	require.Equal(t, testResource, info.Resource)
	require.NotEmpty(t, info.GrantID)

	h.clock.Advance(5 * time.Second)
	require.Equal(t, "invalid_grant", oauthError(t, h.pollDevice(id, da.DeviceCode)), "single use")
	require.Zero(t, h.model.Stats().DeviceAuthorizations, "consumed")

	// The grant refreshes like any other.
	rf := h.postForm("/token", refreshForm(id, tr.RefreshToken))
	require.Equal(t, http.StatusOK, rf.Code, rf.Body.String())
}

// TestDeviceFlowRefreshOnlyWhenRegistered: no refresh token for a client
// that did not register the refresh grant.
func TestDeviceFlowRefreshOnlyWhenRegistered(t *testing.T) {
	h := newDeviceHarness(t)
	out := h.registerClient(map[string]any{"grant_types": []string{mcpoauth.GrantDeviceCode}, "token_endpoint_auth_method": "none"})
	id := out["client_id"].(string)
	da := h.decidedDevice(id, "approve", "alice")
	w := h.pollDevice(id, da.DeviceCode)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Empty(t, decodeTokens(t, w).RefreshToken)
}

// TestDevicePollErrors: each error of RFC 8628 §3.5, and invalid_grant for
// unknown codes and other clients' codes. All are 400 with no-store.
func TestDevicePollErrors(t *testing.T) {
	for name, tc := range map[string]func(t *testing.T, h *harness, id string, da deviceAuth){
		"authorization_pending": func(t *testing.T, h *harness, id string, da deviceAuth) {
			requirePoll(t, h, id, da, "authorization_pending")
			h.clock.Advance(5 * time.Second)
			requirePoll(t, h, id, da, "authorization_pending")
		},
		"slow_down grows the interval by 5s for this and later polls": func(t *testing.T, h *harness, id string, da deviceAuth) {
			requirePoll(t, h, id, da, "authorization_pending")
			h.clock.Advance(4 * time.Second)
			requirePoll(t, h, id, da, "slow_down") // interval now 10 s
			h.clock.Advance(9 * time.Second)
			requirePoll(t, h, id, da, "slow_down") // 9 < 10; interval now 15 s
			require.Equal(t, 15*time.Second, storedDevice(t, h.model, da.DeviceCode).Interval)
			h.clock.Advance(14 * time.Second)
			requirePoll(t, h, id, da, "slow_down") // 14 < 15; interval now 20 s
			h.clock.Advance(20 * time.Second)
			requirePoll(t, h, id, da, "authorization_pending")
			require.Equal(t, 20*time.Second, storedDevice(t, h.model, da.DeviceCode).Interval)
		},
		"slow_down interval is capped at a minute": func(t *testing.T, h *harness, id string, da deviceAuth) {
			requirePoll(t, h, id, da, "authorization_pending")
			for range 20 {
				requirePoll(t, h, id, da, "slow_down")
			}
			require.Equal(t, time.Minute, storedDevice(t, h.model, da.DeviceCode).Interval)
			h.clock.Advance(time.Minute)
			requirePoll(t, h, id, da, "authorization_pending")
		},
		"access_denied, once": func(t *testing.T, h *harness, id string, da deviceAuth) {
			require.Equal(t, http.StatusSeeOther, h.decideDevice(da.UserCode, "deny", "alice").Code)
			requirePoll(t, h, id, da, "access_denied")
			requirePoll(t, h, id, da, "invalid_grant")
		},
		"expired_token": func(t *testing.T, h *harness, id string, da deviceAuth) {
			h.clock.Advance(15 * time.Minute)
			requirePoll(t, h, id, da, "expired_token")
		},
		"expired_token even when approved": func(t *testing.T, h *harness, id string, da deviceAuth) {
			require.Equal(t, http.StatusSeeOther, h.decideDevice(da.UserCode, "approve", "alice").Code)
			h.clock.Advance(15 * time.Minute)
			requirePoll(t, h, id, da, "expired_token")
		},
		"unknown device code": func(t *testing.T, h *harness, id string, _ deviceAuth) {
			w := h.pollDevice(id, strings.Repeat("x", 43))
			require.Equal(t, "invalid_grant", oauthError(t, w))
		},
		"missing device_code": func(t *testing.T, h *harness, id string, _ deviceAuth) {
			w := h.pollDevice(id, "")
			require.Equal(t, "invalid_request", oauthError(t, w))
		},
		"another client's device code changes nothing": func(t *testing.T, h *harness, id string, da deviceAuth) {
			other := h.deviceClient()
			require.Equal(t, "invalid_grant", oauthError(t, h.pollDevice(other, da.DeviceCode)))
			require.True(t, storedDevice(t, h.model, da.DeviceCode).LastPolledAt.IsZero(), "no poll recorded")
			// The owner's first poll is still a first poll, not slow_down.
			requirePoll(t, h, id, da, "authorization_pending")
			// Approved, it is still refused to the other client and not burned.
			require.Equal(t, http.StatusSeeOther, h.decideDevice(da.UserCode, "approve", "alice").Code)
			require.Equal(t, "invalid_grant", oauthError(t, h.pollDevice(other, da.DeviceCode)))
			require.Equal(t, http.StatusOK, h.pollDevice(id, da.DeviceCode).Code)
		},
		"approved without a user (a broken store) is a server error": func(t *testing.T, h *harness, id string, da deviceAuth) {
			require.NoError(t, h.model.ResolveDeviceAuthorization(context.Background(), userCodeDigest(da.UserCode), mcpoauth.DeviceDecision{Status: mcpoauth.DeviceApproved}))
			w := h.pollDevice(id, da.DeviceCode)
			require.Equal(t, http.StatusInternalServerError, w.Code)
			require.Equal(t, "server_error", oauthError(t, w))
			require.Zero(t, h.model.Stats().Tokens, "no token without its user")
		},
		"client no longer allowed the grant": func(t *testing.T, h *harness, _ string, da deviceAuth) {
			codeOnly := h.publicClient()
			require.Equal(t, "unauthorized_client", oauthError(t, h.pollDevice(codeOnly, da.DeviceCode)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newDeviceHarness(t)
			id := h.deviceClient()
			tc(t, h, id, h.startDevice(id))
		})
	}
}

func requirePoll(t *testing.T, h *harness, id string, da deviceAuth, code string) {
	t.Helper()
	w := h.pollDevice(id, da.DeviceCode)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Equal(t, code, oauthError(t, w))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
}

// TestDeviceDecisionRules: the approve and deny handlers.
func TestDeviceDecisionRules(t *testing.T) {
	type env struct {
		t  *testing.T
		h  *harness
		id string
		da deviceAuth
		b  *browser
		p  devicePage
	}
	form := func(e env, extra ...string) url.Values {
		f := url.Values{"user_code": {e.da.UserCode}, "csrf_token": {e.p.CSRFToken}, "username": {"alice"}}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "" {
				f.Del(extra[i])
			} else {
				f.Set(extra[i], extra[i+1])
			}
		}
		return f
	}
	for name, tc := range map[string]struct {
		// action is the handler the decision goes to: approve, deny or
		// decide.
		action string
		// edit sets (or, with "", deletes) fields of the valid decision
		// form, in pairs, when post is nil.
		edit []string
		// post, when set, sends the request itself.
		post   func(e env) *httptest.ResponseRecorder
		status int
		code   string // OAuth error, or "" for success
		after  mcpoauth.DeviceStatus
	}{
		"approve":                        {"approve", nil, nil, 303, "", mcpoauth.DeviceApproved},
		"deny":                           {"deny", nil, nil, 303, "", mcpoauth.DeviceDenied},
		"approve needs a signed-in user": {"approve", []string{"username", ""}, nil, 403, "access_denied", mcpoauth.DevicePending},
		"deny needs a signed-in user (the TypeScript original let anyone deny)": {"deny", []string{"username", ""}, nil, 403, "access_denied", mcpoauth.DevicePending},
		"missing CSRF token": {"approve", []string{"csrf_token", ""}, nil, 403, "access_denied", mcpoauth.DevicePending},
		"wrong CSRF token":   {"deny", []string{"csrf_token", strings.Repeat("A", 43)}, nil, 403, "access_denied", mcpoauth.DevicePending},
		"cross-site post: token but no cookie": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			return e.h.postDecision(&browser{}, "approve", form(e))
		}, 403, "access_denied", mcpoauth.DevicePending},
		"another browser's token": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			other := &browser{}
			e.h.openDevicePage(other, "")
			return e.h.postDecision(other, "approve", form(e))
		}, 403, "access_denied", mcpoauth.DevicePending},
		"user_code only in the query": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, testDevicePage+"/approve?user_code="+e.da.UserCode, strings.NewReader(form(e, "user_code", "").Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			e.b.send(r)
			return e.h.do(r)
		}, 400, "invalid_request", mcpoauth.DevicePending},
		"lowercase, no dash": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			return e.h.postDecision(e.b, "approve", form(e, "user_code", strings.ToLower(strings.ReplaceAll(e.da.UserCode, "-", ""))))
		}, 303, "", mcpoauth.DeviceApproved},
		"spaces instead of the dash": {"deny", nil, func(e env) *httptest.ResponseRecorder {
			return e.h.postDecision(e.b, "deny", form(e, "user_code", " "+strings.ReplaceAll(e.da.UserCode, "-", " ")+" "))
		}, 303, "", mcpoauth.DeviceDenied},
		"unknown user code": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			return e.h.postDecision(e.b, "approve", form(e, "user_code", otherUserCode(e.da.UserCode)))
		}, 400, "invalid_grant", mcpoauth.DevicePending},
		"malformed user code": {"approve", []string{"user_code", "AEIO-UAEI"}, nil, 400, "invalid_grant", mcpoauth.DevicePending},
		"missing user code":   {"deny", []string{"user_code", ""}, nil, 400, "invalid_request", mcpoauth.DevicePending},
		"repeated user code": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			f := form(e)
			f.Add("user_code", e.da.UserCode)
			return e.h.postDecision(e.b, "approve", f)
		}, 400, "invalid_request", mcpoauth.DevicePending},
		"expired": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			e.h.clock.Advance(15 * time.Minute)
			return e.h.postDecision(e.b, "approve", form(e))
		}, 400, "expired_token", mcpoauth.DevicePending},
		"approved already": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			require.Equal(e.t, http.StatusSeeOther, e.h.postDecision(e.b, "approve", form(e)).Code)
			return e.h.postDecision(e.b, "approve", form(e, "username", "mallory"))
		}, 400, "invalid_grant", mcpoauth.DeviceApproved},
		"denied already, approve refused": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			require.Equal(e.t, http.StatusSeeOther, e.h.postDecision(e.b, "deny", form(e)).Code)
			return e.h.postDecision(e.b, "approve", form(e))
		}, 400, "invalid_grant", mcpoauth.DeviceDenied},
		"application parsed the form (one form, two buttons)": {"decide", []string{"decision", "approve"}, nil, 303, "", mcpoauth.DeviceApproved},
		"GET": {"approve", nil, func(e env) *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodGet, testDevicePage+"/approve?"+form(e).Encode(), nil)
			e.b.send(r)
			return e.h.do(r)
		}, 405, "method_not_allowed", mcpoauth.DevicePending},
	} {
		t.Run(name, func(t *testing.T) {
			h := newDeviceHarness(t)
			e := env{t: t, h: h, id: h.deviceClient(), b: &browser{}}
			e.da = h.startDevice(e.id)
			e.p = h.openDevicePage(e.b, e.da.UserCode)
			var w *httptest.ResponseRecorder
			if tc.post != nil {
				w = tc.post(e)
			} else {
				w = h.postDecision(e.b, tc.action, form(e, tc.edit...))
			}
			require.Equal(t, tc.status, w.Code, w.Body.String())
			if w.Code != http.StatusMethodNotAllowed {
				require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			}
			if tc.code == "" {
				result := map[mcpoauth.DeviceStatus]string{mcpoauth.DeviceApproved: "approved", mcpoauth.DeviceDenied: "denied"}[tc.after]
				require.Equal(t, testDevicePage+"?result="+result, w.Header().Get("Location"))
			} else {
				require.Equal(t, tc.code, oauthError(t, w))
			}
			d := storedDevice(t, h.model, e.da.DeviceCode)
			require.NotNil(t, d)
			require.Equal(t, tc.after, d.Status)
			if tc.after == mcpoauth.DevicePending {
				require.Empty(t, d.UserID)
			} else {
				require.Equal(t, "alice", d.UserID, "the decision records who decided")
			}
		})
	}
}

// otherUserCode returns a well-formed user code different from uc.
func otherUserCode(uc string) string {
	if strings.HasPrefix(uc, "B") {
		return "C" + uc[1:]
	}
	return "B" + uc[1:]
}

// TestDeviceLookup: RFC 8628 §5.4: before deciding, the page can show
// which client asks for which scopes on which resource, and until when.
func TestDeviceLookup(t *testing.T) {
	h := newDeviceHarness(t)
	id := h.deviceClient()
	da := h.startDevice(id)
	p := h.openDevicePage(&browser{}, strings.ToLower(da.UserCode))
	require.Empty(t, p.Error)
	require.NotEmpty(t, p.CSRFToken)
	require.Equal(t, &mcpoauth.PendingDeviceAuthorization{
		UserCode:   da.UserCode,
		ClientID:   id,
		ClientName: "Smart TV",
		Scopes:     []string{testScope},
		Resource:   testResource,
		ExpiresAt:  h.clock.Now().Add(15 * time.Minute),
	}, p.Pending)

	for name, tc := range map[string]struct {
		code  string
		setup func()
		want  string
	}{
		"unknown":   {otherUserCode(da.UserCode), func() {}, "invalid_grant"},
		"malformed": {"hello", func() {}, "invalid_grant"},
		"decided": {da.UserCode, func() {
			require.Equal(t, http.StatusSeeOther, h.decideDevice(da.UserCode, "deny", "bob").Code)
		}, "invalid_grant"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.setup()
			p := h.openDevicePage(&browser{}, tc.code)
			require.Nil(t, p.Pending)
			require.Equal(t, tc.want, p.Error)
		})
	}
	da = h.startDevice(id)
	h.clock.Advance(15 * time.Minute)
	require.Equal(t, "expired_token", h.openDevicePage(&browser{}, da.UserCode).Error)

	r := httptest.NewRequest(http.MethodGet, testDevicePage, nil)
	_, err := h.srv.PendingDeviceAuthorization(r, "")
	require.ErrorIs(t, err, mcpoauth.ErrNoPendingDeviceAuthorization)
	_, err = h.srv.PendingDeviceAuthorization(r, da.UserCode)
	require.ErrorIs(t, err, mcpoauth.ErrNoPendingDeviceAuthorization)
	require.ErrorIs(t, err, &mcpoauth.OAuthError{Code: "expired_token"})
}

// TestDeviceVerificationRateLimit: RFC 8628 §5.1: user code entry is rate
// limited per client IP, and the lookup, approve and deny share one budget
// (each alone would be a guessing oracle).
func TestDeviceVerificationRateLimit(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{DeviceVerification: mcpoauth.RateLimit{Requests: 3, Window: 15 * time.Minute}}
	})
	id := h.deviceClient()
	da := h.startDevice(id)
	b := &browser{}
	p := h.openDevicePage(b, otherUserCode(da.UserCode)) // 1
	require.Equal(t, "invalid_grant", p.Error)
	guess := url.Values{"user_code": {otherUserCode(da.UserCode)}, "csrf_token": {p.CSRFToken}, "username": {"mallory"}}
	require.Equal(t, http.StatusBadRequest, h.postDecision(b, "approve", guess).Code) // 2
	require.Equal(t, http.StatusBadRequest, h.postDecision(b, "deny", guess).Code)    // 3
	w := h.postDecision(b, "approve", guess)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.NotEmpty(t, w.Header().Get("Retry-After"))
	require.Equal(t, http.StatusTooManyRequests, h.postDecision(b, "deny", guess).Code)
	require.Equal(t, "too_many", h.openDevicePage(b, da.UserCode).Error)
	// Even the right code waits: the limit does not tell right from wrong.
	right := url.Values{"user_code": {da.UserCode}, "csrf_token": {p.CSRFToken}, "username": {"alice"}}
	require.Equal(t, http.StatusTooManyRequests, h.postDecision(b, "approve", right).Code)

	h.clock.Advance(5 * time.Minute) // one attempt refilled
	require.Equal(t, http.StatusSeeOther, h.postDecision(b, "approve", right).Code)
}

// TestDeviceUserCodeCollision: a user code names one authorization: a code
// the store reports taken is drawn again; a store that keeps refusing is a
// server_error after a bounded number of draws.
func TestDeviceUserCodeCollision(t *testing.T) {
	for name, tc := range map[string]struct {
		conflicts int32
		status    int
	}{
		"retried": {3, http.StatusOK},
		"give up": {1000, http.StatusInternalServerError},
	} {
		t.Run(name, func(t *testing.T) {
			m := &conflictingModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})}
			m.conflicts.Store(tc.conflicts)
			h := newDeviceHarness(t, func(c *mcpoauth.Config) { c.Model = m })
			w := h.postForm("/device", deviceForm(h.deviceClient()))
			require.Equal(t, tc.status, w.Code, w.Body.String())
			if tc.status != http.StatusOK {
				require.Equal(t, "server_error", oauthError(t, w))
				require.Greater(t, m.conflicts.Load(), int32(900), "bounded attempts")
			}
		})
	}
}

// conflictingModel reports ErrConflict for its first saves of a device
// authorization, as a store does when a user code is taken.
type conflictingModel struct {
	*mcpoauth.MemoryModel
	conflicts atomic.Int32
}

func (m *conflictingModel) SaveDeviceAuthorization(ctx context.Context, d *mcpoauth.DeviceAuthorization) error {
	if m.conflicts.Add(-1) >= 0 {
		return fmt.Errorf("user code taken: %w", mcpoauth.ErrConflict)
	}
	return m.MemoryModel.SaveDeviceAuthorization(ctx, d)
}

// TestDevicePollLosesToDecision: the TypeScript original's lost update (its
// poll re-saved the whole record it had read). A poll that read "pending"
// just before the user decided must neither write "pending" back nor answer
// authorization_pending: its conditional update fails, and it answers by the
// decision. The model injects the decision between the poll's read and its
// update, deterministically.
func TestDevicePollLosesToDecision(t *testing.T) {
	for _, decision := range []mcpoauth.DeviceStatus{mcpoauth.DeviceApproved, mcpoauth.DeviceDenied} {
		t.Run(decision.String(), func(t *testing.T) {
			m := &decisionInjectingModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})}
			h := newDeviceHarness(t, func(c *mcpoauth.Config) { c.Model = m })
			id := h.deviceClient()
			da := h.startDevice(id)
			m.inject(func() {
				require.NoError(t, m.MemoryModel.ResolveDeviceAuthorization(context.Background(), userCodeDigest(da.UserCode),
					mcpoauth.DeviceDecision{Status: decision, UserID: "alice", GrantExpiresAt: h.clock.Now().Add(time.Hour)}))
			})
			w := h.pollDevice(id, da.DeviceCode)
			require.True(t, m.injected.Load(), "the decision landed between read and update")
			if decision == mcpoauth.DeviceApproved {
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				require.Equal(t, http.StatusOK, h.callMCP(decodeTokens(t, w).AccessToken).Code)
				require.Nil(t, storedDevice(t, m, da.DeviceCode), "consumed")
			} else {
				require.Equal(t, "access_denied", oauthError(t, w))
				require.Nil(t, storedDevice(t, m, da.DeviceCode), "reported and removed")
			}
		})
	}
}

// decisionInjectingModel runs an injected function once, just before the
// next poll bookkeeping update reaches the store.
type decisionInjectingModel struct {
	*mcpoauth.MemoryModel
	mu       sync.Mutex
	pending  func()
	injected atomic.Bool
}

func (m *decisionInjectingModel) inject(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = f
}

func (m *decisionInjectingModel) RecordDevicePoll(ctx context.Context, deviceCode mcpoauth.Digest, clientID string, seen, next mcpoauth.DevicePoll) error {
	m.mu.Lock()
	f := m.pending
	m.pending = nil
	m.mu.Unlock()
	if f != nil {
		f()
		m.injected.Store(true)
	}
	return m.MemoryModel.RecordDevicePoll(ctx, deviceCode, clientID, seen, next)
}

// TestDeviceErrorsReachErrorHandler: a storage failure at /device is a
// server_error without internals, and reaches ErrorHandler with its cause.
func TestDeviceErrorsReachErrorHandler(t *testing.T) {
	m := &conflictingModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})}
	m.conflicts.Store(1 << 20)
	h := newDeviceHarness(t, func(c *mcpoauth.Config) { c.Model = m })
	w := h.postForm("/device", deviceForm(h.deviceClient()))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.NotContains(t, w.Body.String(), "user code taken")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.errs)
	require.ErrorIs(t, h.errs[len(h.errs)-1], mcpoauth.ErrConflict)
}

// TestDeviceEndpointRateLimit: the device authorization endpoint has its
// own per-IP limit (RateLimits.Device), like the token endpoint.
func TestDeviceEndpointRateLimit(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{Device: mcpoauth.RateLimit{Requests: 2, Window: 15 * time.Minute}}
	})
	id := h.deviceClient()
	h.startDevice(id)
	h.startDevice(id)
	w := h.postForm("/device", deviceForm(id))
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "too_many_requests", oauthError(t, w))
}

// TestDeviceGrantLifetimeStartsAtApproval: the user's approval is the
// consent: the grant's absolute lifetime runs from it, and caps the tokens.
func TestDeviceGrantLifetimeStartsAtApproval(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.GrantLifetime = 30 * time.Minute
		c.AccessTokenLifetime = time.Hour
	})
	id := h.deviceClient()
	da := h.startDevice(id)
	h.clock.Advance(10 * time.Minute)
	require.Equal(t, http.StatusSeeOther, h.decideDevice(da.UserCode, "approve", "alice").Code)
	w := h.pollDevice(id, da.DeviceCode)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.EqualValues(t, 1800, decodeTokens(t, w).ExpiresIn)
}

// verificationStoreDown is a shared rate-limit store that cannot be
// reached for the user code budget (its keys start with the limit's name),
// and allows every other request.
type verificationStoreDown struct{}

func (verificationStoreDown) TakeRateLimit(_ context.Context, key string, l mcpoauth.RateLimit, _ time.Time) (mcpoauth.RateLimitDecision, error) {
	if strings.HasPrefix(key, "device_verification") {
		return mcpoauth.RateLimitDecision{}, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	return mcpoauth.RateLimitDecision{Allowed: true, Remaining: l.Requests - 1}, nil
}

// TestDeviceVerificationStoreDown: with the shared rate-limit store down
// and FailClosed, the user code budget cannot be read: the verification
// page's lookup is a server_error (a storage failure), not "too many
// attempts", which would blame the user, and the decision handlers answer
// 503 with Retry-After like every other limited endpoint.
func TestDeviceVerificationStoreDown(t *testing.T) {
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{
			DeviceVerification: mcpoauth.RateLimit{Requests: 3, Window: 15 * time.Minute},
			Store:              verificationStoreDown{}, FailClosed: true,
		}
	})
	id := h.deviceClient()
	da := h.startDevice(id)
	b := &browser{}
	p := h.openDevicePage(b, da.UserCode)
	require.Equal(t, "server_error", p.Error)
	w := h.postDecision(b, "approve", url.Values{"user_code": {da.UserCode}, "csrf_token": {p.CSRFToken}, "username": {"alice"}})
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.NotEmpty(t, w.Header().Get("Retry-After"))
}
