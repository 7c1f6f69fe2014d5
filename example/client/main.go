// Command client is the mcpoauth example MCP client. It signs in to an MCP
// server as real MCP clients do, then lists the server's tools and calls
// whoami:
//
//	go run ./example/server &                 # http://localhost:3000
//	go run ./example/client                   # authorization code + PKCE, in the browser
//	go run ./example/client -device           # device flow: enter a code on another device
//	go run ./example/client -client-id ID -client-secret SECRET   # client credentials
//
// Discovery starts from the MCP server's 401 (WWW-Authenticate
// resource_metadata → RFC 9728 protected resource metadata → RFC 8414
// authorization server metadata); the client registers itself dynamically
// (RFC 7591) unless given -client-id. The OAuth requests are made with
// golang.org/x/oauth2, the MCP requests with the official MCP Go SDK.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/mcpoauth/mcpoauth/example/internal/cli"
)

const (
	defaultURL     = "http://localhost:3000/mcp"
	defaultTimeout = 5 * time.Minute
)

func main() { cli.Main("client", run) }

// options are the command-line settings.
type options struct {
	// url is the MCP server's endpoint.
	url string
	// device selects the device authorization grant (RFC 8628).
	device bool
	// clientID, when set, is a pre-registered client used instead of
	// dynamic registration; with clientSecret (and without device) it
	// selects the client credentials grant.
	clientID, clientSecret string
	// scope overrides the scopes to request (space-separated).
	scope string
	// noBrowser leaves opening the printed URL to the user.
	noBrowser bool
	// callbackPort is the loopback port of the redirect URI; 0 picks one.
	callbackPort int
	// timeout bounds the whole run, the user's sign-in included.
	timeout time.Duration
}

// grant is the OAuth grant a run uses.
type grant int

const (
	grantAuthorizationCode grant = iota
	grantDevice
	grantClientCredentials
)

func (o options) grant() grant {
	switch {
	case o.device:
		return grantDevice
	case o.clientSecret != "":
		return grantClientCredentials
	default:
		return grantAuthorizationCode
	}
}

const usageIntro = `Usage: client [flags]

Connects to an MCP server, signs in with OAuth as MCP clients do, lists the
server's tools and calls whoami (and upstream_userinfo, when the server has
it). Progress and sign-in instructions go to stderr; the tools and the
answers go to stdout. Tokens are never printed.

How it signs in:
  (default)            authorization code + PKCE: a browser sign-in that
                       returns to a listener on http://127.0.0.1:PORT/callback;
                       the URL is always printed, and opened when possible
  -device              device authorization grant (RFC 8628): prints a URL and
                       a code to enter on any device, then waits
  -client-id ID -client-secret SECRET
                       client credentials grant, for a confidential client
                       registered with grant_types ["client_credentials"]

Without -client-id, the client registers itself dynamically (RFC 7591) as a
public native client. -client-id alone names a pre-registered public client
for the authorization code or device flow (its redirect URI for the former:
http://127.0.0.1/callback, any port).

Flags:
`

// parseFlags reads args into options. -h prints the usage to stderr and
// returns flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", defaultURL, "the MCP server's endpoint `URL`: https, or http on a loopback host")
	fs.BoolVar(&o.device, "device", false, "sign in with the device authorization grant")
	fs.StringVar(&o.clientID, "client-id", "", "a pre-registered client `ID` (default: register dynamically)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "the pre-registered confidential client's `SECRET`; selects the client credentials grant\n(a demo: command lines are visible to other local users)")
	fs.StringVar(&o.scope, "scope", "", "space-separated `SCOPES` to request (default: the scope of the server's challenge,\nelse the protected resource metadata's scopes_supported)")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "do not try to open a browser; only print the URL")
	fs.IntVar(&o.callbackPort, "callback-port", 0, "loopback `PORT` of the redirect URI http://127.0.0.1:PORT/callback (0: any free port)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "give up after this `DURATION`, the sign-in included")
	// Not "return o, cli.Parse(...)": o would be read in no set order.
	err := cli.Parse(fs, usageIntro, args, stderr, o.check)
	return o, err
}

// check vets the options parsed.
func (o *options) check() error {
	switch {
	case o.clientSecret != "" && o.clientID == "":
		return errors.New("-client-secret needs -client-id")
	case o.clientSecret != "" && o.device:
		// x/oauth2 sends no client authentication with the device
		// authorization request.
		return errors.New("-device signs in a public client: drop -client-secret")
	case o.callbackPort < 0 || o.callbackPort > 65535:
		return fmt.Errorf("-callback-port %d is not a port", o.callbackPort)
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	if _, err := url.Parse(o.url); err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	return nil
}

// run parses args, signs in, lists the tools and calls whoami.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	c := newClient(opts, stdout, stderr)
	httpClient, err := c.signIn(ctx)
	if err != nil {
		return err
	}
	return c.useTools(ctx, httpClient)
}
