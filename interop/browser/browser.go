// Package browser is a scripted stand-in for the user's web browser, for the
// interop tests and the example client's tests: it keeps cookies, follows
// redirects within one origin as a browser would, reads the HTML forms of a
// page and submits them with a chosen button. It runs no JavaScript; the
// example server's consent and device pages need none.
//
// It is test support, not an API: it knows the example's HTTP contract (the
// consent form with username and decision=approve|deny, the device form
// with user_code as well) and nothing more.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxBody bounds a page read into memory.
const maxBody = 1 << 20

// maxRedirects bounds the redirects followed for one navigation.
const maxRedirects = 10

// Browser is a cookie-keeping user agent. Its zero value is not usable; use
// New.
type Browser struct {
	client *http.Client
}

// New returns a browser with an empty cookie jar whose requests each time out
// after timeout.
func New(timeout time.Duration) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err) // cookiejar.New fails only for a bad PublicSuffixList
	}
	return &Browser{client: &http.Client{
		Jar:       jar,
		Timeout:   timeout,
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// Navigate follows redirects itself, so that it can stop at the
		// first one that leaves the origin.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// CloseIdleConnections closes the browser's idle connections, so that a
// server's graceful shutdown does not wait for them.
func (b *Browser) CloseIdleConnections() { b.client.CloseIdleConnections() }

// Page is a loaded document, or the redirect that left the origin.
type Page struct {
	// URL is the page's address (after same-origin redirects).
	URL *url.URL
	// Status is the HTTP status of the final response.
	Status int
	// Header is the final response's header.
	Header http.Header
	// Body is the response body, at most 1 MiB.
	Body []byte
	// Redirect is where a redirect to another origin pointed; the browser
	// did not follow it. Nil when the page is a document.
	Redirect *url.URL
}

// Get navigates to u; see Page for where it stops.
func (b *Browser) Get(ctx context.Context, u string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return b.navigate(req)
}

// navigate sends req and follows redirects while they stay on req's origin:
// the authorization server's own hops (authorize → consent, decision → device
// result page). A redirect to another origin, such as the client's redirect
// URI, is returned as Page.Redirect, unfollowed.
func (b *Browser) navigate(req *http.Request) (*Page, error) {
	origin := originOf(req.URL)
	for i := 0; ; i++ {
		resp, err := b.client.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", redact(req.URL), err)
		}
		page := &Page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: body}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return page, nil
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("bad Location from %s: %w", redact(req.URL), err)
		}
		if originOf(next) != origin {
			page.Redirect = next
			return page, nil
		}
		if i == maxRedirects {
			return nil, fmt.Errorf("more than %d redirects from %s", maxRedirects, redact(req.URL))
		}
		// Every redirect the AS uses (302, 303) turns into a GET.
		req, err = http.NewRequestWithContext(req.Context(), http.MethodGet, next.String(), nil)
		if err != nil {
			return nil, err
		}
	}
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// redact drops the query of a URL for an error message: it may carry a code.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment = "", ""
	return c.String()
}

// Form is an HTML form of a page.
type Form struct {
	// Action is the absolute URL the form posts to.
	Action *url.URL
	// Method is GET or POST.
	Method string
	// Fields are the successful controls other than buttons, as the page
	// filled them in (hidden fields, pre-filled text fields).
	Fields url.Values
	// Buttons are the submit buttons.
	Buttons []Button
}

// Button is a submit button: <button> (type submit, the default) or
// <input type=submit>.
type Button struct {
	Name, Value string
	// FormAction overrides the form's action when set.
	FormAction string
}

// Forms parses every <form> of the page.
func (p *Page) Forms() ([]*Form, error) {
	doc, err := html.Parse(bytes.NewReader(p.Body))
	if err != nil {
		return nil, err
	}
	var forms []*Form
	var walk func(n *html.Node, f *Form) error
	walk = func(n *html.Node, f *Form) error {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Form:
				action, err := p.URL.Parse(attr(n, "action"))
				if err != nil {
					return fmt.Errorf("form action: %w", err)
				}
				method := strings.ToUpper(attr(n, "method"))
				if method != http.MethodPost {
					method = http.MethodGet
				}
				f = &Form{Action: action, Method: method, Fields: url.Values{}}
				forms = append(forms, f)
			case atom.Input:
				if f != nil {
					addInput(f, n)
				}
			case atom.Button:
				if f != nil {
					if t := strings.ToLower(attr(n, "type")); t == "" || t == "submit" {
						f.Buttons = append(f.Buttons, Button{Name: attr(n, "name"), Value: attr(n, "value"), FormAction: attr(n, "formaction")})
					}
				}
			case atom.Textarea:
				if f != nil && attr(n, "name") != "" {
					var text strings.Builder
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						if c.Type == html.TextNode {
							text.WriteString(c.Data)
						}
					}
					f.Fields.Add(attr(n, "name"), text.String())
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if err := walk(c, f); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(doc, nil); err != nil {
		return nil, err
	}
	return forms, nil
}

func addInput(f *Form, n *html.Node) {
	name := attr(n, "name")
	switch strings.ToLower(attr(n, "type")) {
	case "submit":
		f.Buttons = append(f.Buttons, Button{Name: name, Value: attr(n, "value"), FormAction: attr(n, "formaction")})
	case "checkbox", "radio":
		if name != "" && hasAttr(n, "checked") {
			v := attr(n, "value")
			if !hasAttr(n, "value") {
				v = "on"
			}
			f.Fields.Add(name, v)
		}
	case "button", "reset", "image", "file":
	default:
		if name != "" && !hasAttr(n, "disabled") {
			f.Fields.Add(name, attr(n, "value"))
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return true
		}
	}
	return false
}

// Link returns the target of the page's first link (<a href>) whose text,
// its whitespace collapsed, starts with text: "Sign in with" on the
// example's consent page under -upstream-issuer.
func (p *Page) Link(text string) (*url.URL, error) {
	doc, err := html.Parse(bytes.NewReader(p.Body))
	if err != nil {
		return nil, err
	}
	var found *html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if found != nil {
			return
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.A && hasAttr(n, "href") &&
			strings.HasPrefix(strings.Join(strings.Fields(textOf(n)), " "), text) {
			found = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		return nil, fmt.Errorf("no link %q on %s (status %d): %s", text, redact(p.URL), p.Status, snippet(p.Body))
	}
	return p.URL.Parse(attr(found, "href"))
}

// textOf is the text content of n.
func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
	}
	return b.String()
}

// FormWithButton returns the page's form that has a submit button named name
// with value value.
func (p *Page) FormWithButton(name, value string) (*Form, *Button, error) {
	forms, err := p.Forms()
	if err != nil {
		return nil, nil, err
	}
	for _, f := range forms {
		for i := range f.Buttons {
			if f.Buttons[i].Name == name && f.Buttons[i].Value == value {
				return f, &f.Buttons[i], nil
			}
		}
	}
	return nil, nil, fmt.Errorf("no form with a %s=%s button on %s (status %d): %s", name, value, redact(p.URL), p.Status, snippet(p.Body))
}

// Submit submits form with button, after setting the fields in set (which
// replace what the page filled in), as a browser does when the user clicks
// the button.
func (b *Browser) Submit(ctx context.Context, form *Form, button *Button, set map[string]string) (*Page, error) {
	values := url.Values{}
	for k, v := range form.Fields {
		values[k] = append([]string(nil), v...)
	}
	for k, v := range set {
		values.Set(k, v)
	}
	action := form.Action
	if button != nil {
		if button.Name != "" {
			values.Set(button.Name, button.Value)
		}
		if button.FormAction != "" {
			a, err := action.Parse(button.FormAction)
			if err != nil {
				return nil, fmt.Errorf("formaction: %w", err)
			}
			action = a
		}
	}
	var req *http.Request
	var err error
	if form.Method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(values.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			// A browser sends Origin on a form POST.
			req.Header.Set("Origin", originOf(action))
		}
	} else {
		u := *action
		u.RawQuery = values.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return nil, err
	}
	return b.navigate(req)
}

// Decisions of the example's consent and device pages.
const (
	Approve = "approve"
	Deny    = "deny"
)

// Consent plays the user on an authorization request: it opens authURL (the
// client's /authorize URL), signs in as user on the consent page and clicks
// the decision button. It returns the authorization response: the redirect
// to the client's redirect URI (with code or error, state and iss), which
// it does not follow.
func (b *Browser) Consent(ctx context.Context, authURL, user, decision string) (*url.URL, error) {
	page, err := b.Get(ctx, authURL)
	if err != nil {
		return nil, err
	}
	if page.Redirect != nil {
		// The AS answered the client without asking the user (an error
		// redirect).
		return page.Redirect, nil
	}
	form, button, err := page.FormWithButton("decision", decision)
	if err != nil {
		return nil, fmt.Errorf("consent page: %w", err)
	}
	page, err = b.Submit(ctx, form, button, map[string]string{"username": user})
	if err != nil {
		return nil, err
	}
	if page.Redirect == nil {
		return nil, fmt.Errorf("consent decision: no redirect to the client but status %d at %s: %s", page.Status, redact(page.URL), snippet(page.Body))
	}
	return page.Redirect, nil
}

// Device plays the user on a device authorization: it opens the
// verification URI (verification_uri_complete pre-fills the code), enters
// userCode when the form has no code yet, signs in as user and clicks the
// decision button. It returns the page the browser ends on; an error unless
// the page reports the decision (result=approved or result=denied).
func (b *Browser) Device(ctx context.Context, verificationURI, userCode, user, decision string) (*Page, error) {
	page, err := b.Get(ctx, verificationURI)
	if err != nil {
		return nil, err
	}
	if page.Redirect != nil {
		return nil, fmt.Errorf("device page redirected to another origin: %s", redact(page.Redirect))
	}
	form, button, err := page.FormWithButton("decision", decision)
	if err != nil {
		return nil, fmt.Errorf("device page: %w", err)
	}
	set := map[string]string{"username": user}
	if form.Fields.Get("user_code") == "" {
		set["user_code"] = userCode
	}
	page, err = b.Submit(ctx, form, button, set)
	if err != nil {
		return nil, err
	}
	want := "approved"
	if decision == Deny {
		want = "denied"
	}
	if page.Redirect != nil || page.Status != http.StatusOK || page.URL.Query().Get("result") != want {
		return page, fmt.Errorf("device decision: want a page with result=%s, got status %d at %s: %s", want, page.Status, page.URL, snippet(page.Body))
	}
	return page, nil
}

// snippet is the start of a body, for an error message.
func snippet(b []byte) string {
	const n = 300
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// ErrNoCode is returned by Code for an authorization response without code.
var ErrNoCode = errors.New("authorization response has no code")

// Code returns the code of an authorization response, or an error carrying
// its error and error_description.
func Code(resp *url.URL) (string, error) {
	q := resp.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("authorization response: error=%s error_description=%q", e, q.Get("error_description"))
	}
	if q.Get("code") == "" {
		return "", ErrNoCode
	}
	return q.Get("code"), nil
}
