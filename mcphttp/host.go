package mcphttp

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrHostNotAllowed is the error CheckHost hands to HostOptions.ErrorHandler
// for a request whose Host header names a host the server does not answer
// for: the mark of a DNS rebinding attempt.
var ErrHostNotAllowed = errors.New("mcphttp: host not allowed")

// HostOptions configures CheckHost: the Host header values the server
// answers for.
type HostOptions struct {
	// URLs are the server's own absolute http(s) URLs, such as its issuer
	// and MCP endpoint; only scheme, host and port count. A request may
	// name the host of any of them with its port, or without the port when
	// it is the scheme's default (Host: mcp.example.com and
	// mcp.example.com:443 for https://mcp.example.com). Names compare
	// case-insensitively.
	URLs []string

	// LoopbackPort, if not empty, also admits "localhost" and every
	// loopback IP literal (127.0.0.1, [::1], ...) with this port: the names
	// a local client uses for a server listening on loopback, whatever the
	// URLs say. Set it to the port the server listens on.
	LoopbackPort string

	// ErrorHandler, if set, is called with every refused request and an
	// error wrapping ErrHostNotAllowed, for logging; r.Host is the refused
	// name, chosen by the client. The request has no Authorization or
	// Cookie header. It must not write a response.
	ErrorHandler func(r *http.Request, err error)
}

// CheckHost returns middleware that answers 421 Misdirected Request (RFC
// 9110 §15.5.20) to a request whose Host header names a host other than
// those HostOptions admits. It is the DNS rebinding defence of a server on
// a loopback address: any web page can make attacker.example resolve to
// 127.0.0.1 and send requests there, but the browser still sends
// "Host: attacker.example". Mount it around the whole server, the MCP
// endpoint included (a rebinding page holds no token, so the check belongs
// before bearer auth, as it comes before everything).
//
// A server on a public address is reached through its real names and
// through proxies that may rewrite Host; whether it needs the check is the
// application's choice (IsLoopback tells a loopback listener).
//
// It panics if a URL is not an absolute http(s) URL with a host or if
// LoopbackPort is not a port (1-65535); the returned function panics if
// given a nil handler.
func CheckHost(opts HostOptions) func(http.Handler) http.Handler {
	c := newHostCheck(opts)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("mcphttp: CheckHost: nil next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !c.allowed(r.Host) {
				report(c.errorHandler, r, ErrHostNotAllowed)
				http.Error(w, "misdirected request: unknown host", http.StatusMisdirectedRequest)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// hostCheck is HostOptions compiled: the admitted Host values, lowercase.
type hostCheck struct {
	hosts        map[string]struct{}
	loopbackPort string
	errorHandler func(r *http.Request, err error)
}

func newHostCheck(opts HostOptions) *hostCheck {
	c := &hostCheck{hosts: make(map[string]struct{}), errorHandler: opts.ErrorHandler}
	for _, raw := range opts.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			panic("mcphttp: CheckHost: invalid URL " + strconv.Quote(raw) + ": want an absolute http(s) URL")
		}
		defaultPort := "443"
		if u.Scheme == "http" {
			defaultPort = "80"
		}
		name, port := strings.ToLower(u.Hostname()), u.Port()
		if port == "" {
			port = defaultPort
		}
		c.hosts[net.JoinHostPort(name, port)] = struct{}{}
		if port == defaultPort {
			// The host as a client writes it, brackets of an IPv6
			// literal kept.
			c.hosts[strings.ToLower(strings.TrimSuffix(u.Host, ":"+port))] = struct{}{}
		}
	}
	if opts.LoopbackPort != "" {
		if !isPort(opts.LoopbackPort) {
			panic("mcphttp: CheckHost: invalid LoopbackPort " + strconv.Quote(opts.LoopbackPort))
		}
		c.loopbackPort = opts.LoopbackPort
	}
	return c
}

// allowed reports whether a request's Host may be served.
func (c *hostCheck) allowed(host string) bool {
	host = strings.ToLower(host)
	if _, ok := c.hosts[host]; ok {
		return true
	}
	if c.loopbackPort == "" {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	return err == nil && port == c.loopbackPort && IsLoopback(name)
}
