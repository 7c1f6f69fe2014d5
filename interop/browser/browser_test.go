package browser

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const consentHTML = `<!doctype html><title>x</title>
<form method="get" action="/search"><input name="q" value="ignored"><button>Go</button></form>
<form method="POST" action="/decide?x=1">
<input type="hidden" name="request_id" value="r&amp;1">
<input type=hidden name=csrf_token value='t"2'>
<input type="text" name="username">
<input type="checkbox" name="remember" checked>
<input type="checkbox" name="unchecked" value="v">
<input type="text" name="off" disabled value="d">
<textarea name="note">a &lt;b&gt;</textarea>
<input type="submit" name="other" value="x">
<button type="button" name="decision" value="help">Help</button>
<button type="submit" name="decision" value="approve">Approve</button>
<button name="decision" value="deny" formaction="/deny">Deny</button>
</form>`

// fakeAS is an authorization server's browser side: /authorize sets a
// cookie and redirects to /consent; the decision needs the cookie and
// redirects to the client.
func fakeAS(t *testing.T, client string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "b", Value: "secret", Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/consent?request_id=r1", http.StatusFound)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(consentHTML))
	})
	decide := func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("b"); err != nil || c.Value != "secret" {
			http.Error(w, "no cookie", http.StatusForbidden)
			return
		}
		if r.Header.Get("Origin") == "" || r.FormValue("username") == "" || r.PostFormValue("request_id") != "r&1" ||
			r.PostFormValue("csrf_token") != `t"2` || r.PostFormValue("remember") != "on" || r.PostForm.Has("unchecked") ||
			r.PostForm.Has("off") || r.PostFormValue("note") != "a <b>" || r.PostForm.Has("other") ||
			r.URL.Path == "/decide" && r.URL.Query().Get("x") != "1" {
			http.Error(w, "bad form: "+r.PostForm.Encode(), http.StatusBadRequest)
			return
		}
		if r.PostFormValue("decision") == "approve" {
			http.Redirect(w, r, client+"?code=c1&state=s&iss=as", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, client+"?error=access_denied&state=s&iss=as", http.StatusSeeOther)
	}
	mux.HandleFunc("POST /decide", decide)
	mux.HandleFunc("POST /deny", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("decision") != "deny" {
			http.Error(w, "formaction lost the button", http.StatusBadRequest)
			return
		}
		decide(w, r)
	})
	mux.HandleFunc("GET /loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestConsent(t *testing.T) {
	as := fakeAS(t, "http://127.0.0.1:1/callback")
	resp, err := New(5*time.Second).Consent(testContext(t), as.URL+"/authorize", "alice", Approve)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1/callback?code=c1&state=s&iss=as", resp.String())
	code, err := Code(resp)
	require.NoError(t, err)
	assert.Equal(t, "c1", code)

	resp, err = New(5*time.Second).Consent(testContext(t), as.URL+"/authorize", "alice", Deny)
	require.NoError(t, err)
	_, err = Code(resp)
	assert.ErrorContains(t, err, "error=access_denied")

	_, err = Code(&url.URL{RawQuery: "state=s"})
	assert.ErrorIs(t, err, ErrNoCode)

	_, err = New(5*time.Second).Consent(testContext(t), as.URL+"/authorize", "alice", "maybe")
	assert.ErrorContains(t, err, "no form with a decision=maybe button")
}

// TestConsentNeedsCookie: the browser keeps the cookie /authorize set; a
// new browser on the consent page has none.
func TestConsentNeedsCookie(t *testing.T) {
	as := fakeAS(t, "http://127.0.0.1:1/callback")
	_, err := New(5*time.Second).Consent(testContext(t), as.URL+"/consent", "alice", Approve)
	assert.ErrorContains(t, err, "status 403")
}

func TestForms(t *testing.T) {
	page := &Page{URL: &url.URL{Scheme: "http", Host: "h", Path: "/consent"}, Body: []byte(consentHTML)}
	forms, err := page.Forms()
	require.NoError(t, err)
	require.Len(t, forms, 2)
	assert.Equal(t, "GET", forms[0].Method)
	assert.Equal(t, "http://h/search", forms[0].Action.String())
	assert.Equal(t, []Button{{}}, forms[0].Buttons)
	f := forms[1]
	assert.Equal(t, "POST", f.Method)
	assert.Equal(t, "http://h/decide?x=1", f.Action.String())
	assert.Equal(t, url.Values{"request_id": {"r&1"}, "csrf_token": {`t"2`}, "username": {""}, "remember": {"on"}, "note": {"a <b>"}}, f.Fields)
	assert.Equal(t, []Button{{Name: "other", Value: "x"}, {Name: "decision", Value: "approve"}, {Name: "decision", Value: "deny", FormAction: "/deny"}}, f.Buttons)
}

func TestNavigate(t *testing.T) {
	as := fakeAS(t, "http://127.0.0.1:1/callback")
	_, err := New(5*time.Second).Get(testContext(t), as.URL+"/loop")
	assert.ErrorContains(t, err, "more than 10 redirects")

	page, err := New(5*time.Second).Get(testContext(t), as.URL+"/nowhere")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, page.Status)
	assert.Nil(t, page.Redirect)
}

func TestDevice(t *testing.T) {
	mux := http.NewServeMux()
	var got url.Values
	mux.HandleFunc("GET /activate", func(w http.ResponseWriter, r *http.Request) {
		if res := r.URL.Query().Get("result"); res != "" {
			_, _ = w.Write([]byte("<p>" + res + "</p>"))
			return
		}
		_, _ = w.Write([]byte(`<form method="post"><input name="user_code" value="` + r.URL.Query().Get("user_code") + `">
<input type="hidden" name="csrf_token" value="t"><input name="username">
<button name="decision" value="approve">A</button><button name="decision" value="deny">D</button></form>`))
	})
	mux.HandleFunc("POST /activate", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = r.PostForm
		result := "approved"
		if r.PostFormValue("decision") == "deny" {
			result = "denied"
		}
		http.Redirect(w, r, "/activate?result="+result, http.StatusSeeOther)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	_, err := New(5*time.Second).Device(testContext(t), ts.URL+"/activate?user_code=ABCD-EFGH", "", "bob", Approve)
	require.NoError(t, err)
	assert.Equal(t, url.Values{"user_code": {"ABCD-EFGH"}, "csrf_token": {"t"}, "username": {"bob"}, "decision": {"approve"}}, got)

	_, err = New(5*time.Second).Device(testContext(t), ts.URL+"/activate", "WXYZ-2345", "bob", Deny)
	require.NoError(t, err)
	assert.Equal(t, "WXYZ-2345", got.Get("user_code"))
	assert.Equal(t, "deny", got.Get("decision"))
}

// TestLink finds a link by the start of its text, whitespace collapsed,
// resolved against the page's URL.
func TestLink(t *testing.T) {
	base, err := url.Parse("http://127.0.0.1:1/consent?request_id=r1")
	require.NoError(t, err)
	p := &Page{URL: base, Body: []byte(`<p><a href="/account">Account</a>
<a href="/login?return_to=%2Fconsent%3Frequest_id%3Dr1">Sign in
  with <strong>idp.example</strong></a><a>Sign in without href</a>`)}
	u, err := p.Link("Sign in with idp")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1/login?return_to=%2Fconsent%3Frequest_id%3Dr1", u.String())
	_, err = p.Link("Sign out")
	assert.ErrorContains(t, err, `no link "Sign out"`)
}
