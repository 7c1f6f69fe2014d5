package bearer

import (
	"errors"
	"fmt"
	"strings"
)

// MaxAuthorizationLength is the longest Authorization header value, in bytes,
// that ParseAuthorization and RequireBearerAuth look at. Longer values are
// refused before any parsing, so a hostile header costs bounded work and
// memory (the lesson of CVE-2025-22868 in golang.org/x/oauth2). Real access
// tokens, JWTs included, are far shorter.
const MaxAuthorizationLength = 8 << 10

// ErrNoBearerToken is returned by ParseAuthorization when the header carries
// no bearer credentials: it is empty, or it uses another authentication
// scheme (e.g. Basic). RFC 6750 §3.1: such a request gets a challenge without
// an error code.
var ErrNoBearerToken = errors.New("bearer: no bearer token")

// ErrMalformedAuthorization is returned by ParseAuthorization for a Bearer
// header that does not match RFC 6750 §2.1; the request is answered with 400
// invalid_request. The error never includes the header.
var ErrMalformedAuthorization = errors.New("bearer: malformed Authorization header")

// ErrAuthorizationTooLarge is returned by ParseAuthorization for a header
// longer than MaxAuthorizationLength. It wraps ErrMalformedAuthorization.
var ErrAuthorizationTooLarge = fmt.Errorf("%w: longer than %d bytes", ErrMalformedAuthorization, MaxAuthorizationLength)

// ParseAuthorization extracts the access token from an Authorization header
// value per RFC 6750 §2.1:
//
//	credentials = "Bearer" 1*SP b64token
//	b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//
// The scheme is matched case-insensitively (RFC 9110 §11.1); one or more
// spaces may separate it from the token, and nothing may follow the token
// (so "Bearer a junk" is refused). It returns ErrNoBearerToken for an empty
// header or another scheme, ErrAuthorizationTooLarge for a header longer
// than MaxAuthorizationLength, and ErrMalformedAuthorization otherwise. It
// is exported so SDK adapters parse exactly as RequireBearerAuth does. It
// does not allocate.
func ParseAuthorization(header string) (token string, err error) {
	scheme, token, err := ParseCredentials(header)
	if err == nil && scheme != "Bearer" {
		return "", ErrNoBearerToken
	}
	return token, err
}

// ParseCredentials is ParseAuthorization for the two schemes of an access
// token: Bearer (RFC 6750 §2.1) and DPoP (RFC 9449 §7.1, the same token
// syntax). It returns the scheme as spelt here ("Bearer" or "DPoP") and the
// token, ErrNoBearerToken for an empty header or another scheme, and the
// errors of ParseAuthorization otherwise. It does not allocate.
func ParseCredentials(header string) (scheme, token string, err error) {
	if len(header) > MaxAuthorizationLength {
		return "", "", ErrAuthorizationTooLarge
	}
	if header == "" {
		return "", "", ErrNoBearerToken
	}
	// auth-scheme = token (RFC 9110 §11.1, §5.6.2).
	n := 0
	for n < len(header) && isTchar[header[n]] {
		n++
	}
	if n == 0 {
		return "", "", ErrMalformedAuthorization
	}
	switch {
	case strings.EqualFold(header[:n], "Bearer"):
		scheme = "Bearer"
	case strings.EqualFold(header[:n], "DPoP"):
		scheme = "DPoP"
	default:
		// Credentials for another scheme are no bearer credentials; we do
		// not judge their syntax.
		return "", "", ErrNoBearerToken
	}
	i := n
	for i < len(header) && header[i] == ' ' {
		i++
	}
	if i == n { // "Bearer" alone, or followed by something other than SP
		return "", "", ErrMalformedAuthorization
	}
	token = header[i:]
	if !isB64Token(token) {
		return "", "", ErrMalformedAuthorization
	}
	return scheme, token, nil
}

// isB64Token reports whether s matches RFC 6750 §2.1 b64token: at least one
// character of the token alphabet, then only "=" padding.
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && isB64Char[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

var (
	isTchar   [256]bool // RFC 9110 §5.6.2 tchar
	isB64Char [256]bool // RFC 6750 §2.1 b64token characters before the padding
)

func init() {
	for c := 0; c < 256; c++ {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		isTchar[c] = alnum || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
		isB64Char[c] = alnum || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
}

// ChallengeParams are the auth-params of a Bearer challenge. Empty fields are
// omitted from the challenge.
type ChallengeParams struct {
	// Error is the RFC 6750 §3.1 error code: "invalid_request",
	// "invalid_token" or "insufficient_scope". Leave it empty when the
	// request carried no credentials (RFC 6750 §3: SHOULD NOT include one).
	Error string
	// ErrorDescription is a human-readable explanation for developers;
	// RFC 6750 §3 restricts it to printable ASCII without '"' and '\'.
	ErrorDescription string
	// Scope is the space-separated list of scopes the request needs
	// (RFC 6750 §3; MCP asks for all of them in one challenge).
	Scope string
	// ResourceMetadata is the URL of the RFC 9728 protected resource
	// metadata document (RFC 9728 §5.1), from which MCP clients discover
	// the authorization server.
	ResourceMetadata string
}

// Challenge builds the value of a WWW-Authenticate header for the Bearer
// scheme, e.g.
//
//	Bearer error="insufficient_scope", error_description="...", resource_metadata="https://rs/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
//
// Parameters appear in the order error, error_description,
// resource_metadata, scope; empty ones are left out, and with none at all the
// value is just "Bearer". Every value is sent as an RFC 9110 §5.6.4
// quoted-string: '"' and '\' are escaped with a backslash, and control
// characters (which a quoted-string cannot carry, and which could split the
// header) are dropped. It is exported so SDK adapters emit the same
// challenges as RequireBearerAuth.
func Challenge(params ChallengeParams) string { return challenge("Bearer", params, "") }

// DPoPChallenge builds the value of a WWW-Authenticate header for the DPoP
// scheme (RFC 9449 §7.1), as Challenge does for Bearer, with the algs
// parameter last: the space-separated algorithms a proof may be signed with.
// error may also be "invalid_dpop_proof" or "use_dpop_nonce".
func DPoPChallenge(params ChallengeParams, algs string) string {
	return challenge("DPoP", params, algs)
}

func challenge(scheme string, params ChallengeParams, algs string) string {
	var b strings.Builder
	b.Grow(len(scheme) + len(params.Error) + len(params.ErrorDescription) +
		len(params.ResourceMetadata) + len(params.Scope) + len(algs) + 90)
	b.WriteString(scheme)
	first := true
	param := func(name, value string) {
		if value == "" {
			return
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		writeQuoted(&b, value)
		b.WriteByte('"')
	}
	param("error", params.Error)
	param("error_description", params.ErrorDescription)
	param("resource_metadata", params.ResourceMetadata)
	param("scope", params.Scope)
	param("algs", algs)
	return b.String()
}

// writeQuoted writes the content of an RFC 9110 §5.6.4 quoted-string:
// qdtext as is, '"' and '\' as quoted-pairs, and CTLs other than HTAB (not
// allowed even in a quoted-pair) dropped.
func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t' || c == 0x7f:
			// dropped
		default:
			b.WriteByte(c)
		}
	}
}
