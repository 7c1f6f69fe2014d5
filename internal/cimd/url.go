// Package cimd resolves OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, "CIMD"): a client_id that
// is an https URL names a JSON document, served at that URL, holding the
// client's RFC 7591 metadata. The authorization server fetches the document
// instead of looking the client up in its own storage.
//
// Fetching a URL that any client chooses is a server-side request forgery
// hazard, so everything here is defensive (draft §8.6, §8.7). Section numbers
// here are those of draft-ietf-oauth-client-id-metadata-document-02:
//
//   - the URL is checked before anything is fetched (ValidateClientIDURL);
//   - the fetch uses https only, connects only to public addresses (checked
//     on the address actually connected, in the dialer, so DNS rebinding
//     cannot slip past a check made earlier), follows no redirects, sends no
//     cookies or credentials, ignores proxy settings, reads at most
//     MaxDocumentBytes and gives up after a short timeout;
//   - the document is decoded strictly, must name itself as client_id, and
//     must not use shared-secret client authentication;
//   - documents are cached in a bounded cache for as long as Cache-Control
//     allows, within bounds; errors and invalid documents are never cached;
//     concurrent lookups of one URL share one fetch.
package cimd

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLength bounds a client_id URL.
const MaxURLLength = 2048

// ErrInvalidURL is wrapped by every error of ValidateClientIDURL.
var ErrInvalidURL = errors.New("cimd: client_id is not a valid client ID metadata document URL")

// reservedSuffixes are special-use domain names (RFC 6761, RFC 6762,
// RFC 7686, RFC 8375, and ICANN's .internal) that never name a public
// document. Refusing them by name is defence in depth: the dialer refuses
// non-public addresses whatever a name resolves to.
var reservedSuffixes = []string{"localhost", "local", "localdomain", "internal", "home.arpa", "invalid", "test", "onion"}

// IsURLClientID reports whether a client_id is meant as a client ID metadata
// document URL: it begins with "https://" (in any case, so that a miscased
// scheme is refused by ValidateClientIDURL rather than looked up as an
// ordinary client).
func IsURLClientID(clientID string) bool {
	return len(clientID) >= len("https://") && strings.EqualFold(clientID[:len("https://")], "https://")
}

// ValidateClientIDURL checks a client_id URL before anything is fetched
// (draft §3): https, a host, and a path other than "/"; no userinfo, no
// fragment, no "." or ".." path segment (percent-encoded ones included). It
// is stricter than the draft where strictness costs legitimate clients
// nothing and removes ambiguity:
//
//   - no query (the draft says SHOULD NOT);
//   - the URL is printable ASCII, with the scheme and host in lowercase, so
//     one document has one spelling and the host shown to users is plain;
//   - the host is a DNS name of at least two labels, not an IP literal and
//     not a special-use name such as localhost (a port is allowed, §3);
//   - no percent-encoded "/" or "\" in the path, which servers disagree on.
//
// Errors wrap ErrInvalidURL and never echo the URL.
func ValidateClientIDURL(raw string) (*url.URL, error) {
	switch {
	case raw == "" || len(raw) > MaxURLLength:
		return nil, invalidURL("length")
	case !strings.HasPrefix(raw, "https://"):
		return nil, invalidURL("the scheme must be https, in lowercase")
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' || c == '}' || c == '|' || c == '^' {
			return nil, invalidURL("a character that is not printable ASCII or not allowed in a URL")
		}
	}
	if strings.Contains(raw, "#") {
		return nil, invalidURL("a fragment")
	}
	if strings.Contains(raw, "?") {
		return nil, invalidURL("a query")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Opaque != "" {
		return nil, invalidURL("not an absolute https URL")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return nil, invalidURL("userinfo")
	}
	if err := checkHost(u.Hostname(), u.Port(), u.Host); err != nil {
		return nil, err
	}
	path := u.EscapedPath()
	if path == "" || path == "/" || !strings.HasPrefix(path, "/") {
		return nil, invalidURL("the path is required")
	}
	for _, seg := range strings.Split(path[1:], "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return nil, invalidURL("a malformed percent-encoding")
		}
		if dec == "." || dec == ".." {
			return nil, invalidURL("a dot segment")
		}
		if strings.ContainsAny(dec, "/\\") {
			return nil, invalidURL("an encoded slash or backslash")
		}
	}
	return u, nil
}

// checkHost checks the host part of a client_id URL.
func checkHost(host, port, hostport string) error {
	if host == "" || len(host) > 253 {
		return invalidURL("the host is required")
	}
	if _, err := netip.ParseAddr(host); err == nil || strings.HasPrefix(hostport, "[") {
		return invalidURL("an IP address literal host")
	}
	if port == "" && hostport != host || port != "" && hostport != host+":"+port {
		return invalidURL("a malformed host")
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return invalidURL("a single-label host")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return invalidURL("a malformed host")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return invalidURL("a host that is not a lowercase DNS name")
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		// An all-numeric last label is an IPv4 address in some notation,
		// never a top-level domain.
		return invalidURL("an IP address literal host")
	}
	for _, s := range reservedSuffixes {
		if host == s || strings.HasSuffix(host, "."+s) {
			return invalidURL("a special-use host name")
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return invalidURL("a malformed port")
		}
	}
	return nil
}

func invalidURL(reason string) error {
	return &urlError{reason: reason}
}

// urlError is a refused client_id URL; its message names the rule, never
// the URL.
type urlError struct{ reason string }

func (e *urlError) Error() string { return ErrInvalidURL.Error() + ": " + e.reason }
func (e *urlError) Unwrap() error { return ErrInvalidURL }

// ClientIDHost returns the host (with its port, if any) of a client_id that
// is a valid client ID metadata document URL, for a consent page to show
// (draft §8.5, MCP: the user must see who the client claims to be); "" for
// any other client_id.
func ClientIDHost(clientID string) string {
	if !IsURLClientID(clientID) {
		return ""
	}
	u, err := ValidateClientIDURL(clientID)
	if err != nil {
		return ""
	}
	return u.Host
}
