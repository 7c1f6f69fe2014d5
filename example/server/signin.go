package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/upstream"
)

// upstreamSignIn is the sign-in step through an upstream OpenID provider
// (-upstream-issuer): the consent and device pages link to /login, and
// their decisions ask its GetUser.
type upstreamSignIn struct {
	*upstream.SignIn
	// host is the provider's host, shown on the sign-in link.
	host string
	// loginURL is <issuer>/login, logoutPath the local path of /logout.
	loginURL, logoutPath string
}

// newUpstreamSignIn discovers the provider. The user's upstream tokens go
// to the vault in model (the upstream_userinfo tool uses them). The cookie
// and vault keys are random bytes generated now: sessions end with the
// process (a restart signs everybody out), and a restart on PostgreSQL
// leaves vault entries nobody can open, which suits a demo; a deployment
// loads both keys from a secret store.
func newUpstreamSignIn(ctx context.Context, opts options, model mcpoauth.UpstreamTokenStore, issuer, issuerPath string, logger *slog.Logger) (*upstreamSignIn, error) {
	u, err := url.Parse(opts.upstreamIssuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-upstream-issuer %q is not an absolute URL", opts.upstreamIssuer)
	}
	cookieKey, vaultKey := make([]byte, 32), make([]byte, 32)
	rand.Read(cookieKey) // crypto/rand.Read never fails
	rand.Read(vaultKey)
	s, err := upstream.NewOIDC(ctx, upstream.Options{
		Issuer:       opts.upstreamIssuer,
		ClientID:     opts.upstreamClientID,
		ClientSecret: opts.upstreamClientSecret,
		RedirectURL:  issuer + "/login/callback",
		CookieKey:    cookieKey,
		TokenStore:   model,
		TokenKeys:    []upstream.TokenKey{{ID: "example", Key: vaultKey}},
		Logger:       logger,
	})
	if err != nil {
		return nil, fmt.Errorf("-upstream-issuer: %w", err)
	}
	return &upstreamSignIn{SignIn: s, host: u.Host, loginURL: issuer + "/login", logoutPath: issuerPath + "/logout"}, nil
}

// signInView is what the consent and device pages show of the upstream
// sign-in; nil on a page means the demo username field.
type signInView struct {
	// Host is the provider's host, for "Sign in with <host>".
	Host string
	// LoginURL is <issuer>/login?return_to=<this page's local URL>.
	LoginURL string
	// User is the signed-in user (email, else the user id); "" when
	// nobody is signed in.
	User string
	// Refused: the provider's user signed in but may not use this server.
	Refused bool
	// LogoutPath and ReturnTo make the sign-out button.
	LogoutPath, ReturnTo string
}

// view is the sign-in as the page of r shows it; nil s (no upstream) is a
// nil view.
func (s *upstreamSignIn) view(r *http.Request) *signInView {
	if s == nil {
		return nil
	}
	id, err := s.Identity(r)
	return s.viewOf(r, id, err)
}

// viewOf is view from the session as Identity read it: id, or err.
func (s *upstreamSignIn) viewOf(r *http.Request, id upstream.Identity, err error) *signInView {
	returnTo := r.URL.RequestURI()
	v := &signInView{
		Host:       s.host,
		LoginURL:   s.loginURL + "?" + url.Values{upstream.ReturnToParam: {returnTo}}.Encode(),
		LogoutPath: s.logoutPath,
		ReturnTo:   returnTo,
	}
	switch {
	case err == nil && id.Email != "":
		v.User = id.Email
	case err == nil:
		v.User = id.UserID()
	case errors.Is(err, mcpoauth.ErrAccessDenied):
		v.Refused = true
	}
	return v
}

// getUser is who approves on the consent and device pages: the upstream
// session's user, or the demo username field.
func (s *upstreamSignIn) getUser() mcpoauth.GetUserFunc {
	if s == nil {
		return username
	}
	return s.GetUser
}
