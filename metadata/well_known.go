package metadata

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Well-known URI suffixes registered for OAuth metadata documents.
const (
	// AuthorizationServerSuffix is the RFC 8414 §3 suffix of the
	// authorization server metadata document.
	AuthorizationServerSuffix = "oauth-authorization-server"
	// ProtectedResourceSuffix is the RFC 9728 §3 suffix of the protected
	// resource metadata document.
	ProtectedResourceSuffix = "oauth-protected-resource"
)

// ErrInvalidIdentifier is returned by WellKnownURL and WellKnownPath for an
// identifier that cannot have a well-known URL: not an absolute http(s) URL,
// or one with userinfo or a fragment.
var ErrInvalidIdentifier = errors.New("metadata: identifier is not an absolute http(s) URL without userinfo or fragment")

// WellKnownURL returns the URL of the metadata document of identifier (an
// issuer or a resource identifier) for the given well-known suffix, built by
// path insertion (RFC 8414 §3.1, RFC 9728 §3.1): "/.well-known/" and the
// suffix are inserted between the host and the path, after one terminating
// "/" has been removed from the path. So "https://h/tenant" gives
// "https://h/.well-known/oauth-authorization-server/tenant", and "https://h"
// or "https://h/" give "https://h/.well-known/oauth-authorization-server".
//
// The scheme, host and (escaped) path are kept as written, so the result is
// what a client computes from the same string. A non-empty query is kept
// after the inserted path, as RFC 9728 §3 inserts the suffix "between the
// host component and the path and/or query components" (issuers have no
// query, RFC 8414 §2); an empty query ("https://h/x?") is dropped.
func WellKnownURL(identifier, suffix string) (string, error) {
	u, err := parseIdentifier(identifier, suffix)
	if err != nil {
		return "", err
	}
	s := u.Scheme + "://" + u.Host + wellKnownPath(u, suffix)
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s, nil
}

// WellKnownPath returns only the path of WellKnownURL(identifier, suffix),
// in escaped form: the pattern a router mounts the document handler at.
func WellKnownPath(identifier, suffix string) (string, error) {
	u, err := parseIdentifier(identifier, suffix)
	if err != nil {
		return "", err
	}
	return wellKnownPath(u, suffix), nil
}

// ProtectedResourceMetadataURL returns the RFC 9728 §3.1 well-known URL of the
// protected resource metadata of resource, the value a resource server puts
// in the resource_metadata parameter of its WWW-Authenticate challenge. It
// returns "" when resource is not a valid identifier (see WellKnownURL).
func ProtectedResourceMetadataURL(resource string) string {
	s, err := WellKnownURL(resource, ProtectedResourceSuffix)
	if err != nil {
		return ""
	}
	return s
}

// parseIdentifier parses and checks an identifier and a suffix.
func parseIdentifier(identifier, suffix string) (*url.URL, error) {
	if suffix == "" || strings.ContainsAny(suffix, "/?#%") || hasSpaceOrControl(suffix) {
		return nil, fmt.Errorf("metadata: invalid well-known suffix")
	}
	if identifier == "" || hasSpaceOrControl(identifier) || strings.Contains(identifier, "#") {
		return nil, ErrInvalidIdentifier
	}
	u, err := url.Parse(identifier)
	if err != nil {
		return nil, ErrInvalidIdentifier
	}
	// url.Parse lowercases the scheme; the host stays as written.
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return nil, ErrInvalidIdentifier
	}
	return u, nil
}

// wellKnownPath builds "/.well-known/<suffix><path>" from a parsed
// identifier, dropping one terminating "/" of the path first (RFC 8414 §3.1).
func wellKnownPath(u *url.URL, suffix string) string {
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return "/.well-known/" + suffix + p
}

// hasSpaceOrControl reports whether s contains an ASCII space, an ASCII
// control character or DEL.
func hasSpaceOrControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
