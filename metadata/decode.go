package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidClientMetadata is wrapped by every error of DecodeClientMetadata,
// ValidateURI and ClientMetadata.ValidateURIs. A registration endpoint maps
// it to the RFC 7591 §3.2.2 error invalid_client_metadata.
//
// The messages of these errors name at most a metadata member, never a value
// taken from the input, and contain no quote or backslash, so they may be
// sent as error_description (RFC 6749 §5.2 character set) or logged.
var ErrInvalidClientMetadata = errors.New("invalid client metadata")

// ErrTooLarge is wrapped, together with ErrInvalidClientMetadata, by the
// error of DecodeClientMetadata for a body over the size limit, so a handler
// can answer 413 instead of 400 if it prefers.
var ErrTooLarge = errors.New("request body too large")

// DefaultMaxClientMetadataBytes is the body size limit DecodeClientMetadata
// applies when given a non-positive limit. Real registration requests are a
// few hundred bytes; an inline jwks can make them a few kilobytes.
const DefaultMaxClientMetadataBytes = 64 << 10

// maxDepth bounds the nesting of JSON containers in a registration request;
// legitimate metadata (a jwks) nests four levels deep at most.
const maxDepth = 32

// DecodeClientMetadata decodes an RFC 7591 §2 client registration request
// strictly, so that no JSON parser quirk can smuggle a member past
// validation (the key-smuggling and NUL-handling flaws of other MCP
// implementations):
//
//   - the body must be one JSON object of at most maxBytes bytes (a
//     non-positive maxBytes means DefaultMaxClientMetadataBytes), with
//     nothing but white space after it;
//   - it must be valid UTF-8, and no string anywhere may contain NUL
//     (\u0000) or an unpaired surrogate escape (which encoding/json would
//     silently turn into U+FFFD);
//   - no object anywhere in it may repeat a member name;
//   - members are matched to ClientMetadata fields by exact, case-sensitive
//     name: "Redirect_Uris" is not redirect_uris;
//   - a known member must have its JSON type (a string, an array of
//     strings, or an object for jwks); null counts as absent; strings of
//     known members must not contain control characters (C0 U+0000-U+001F,
//     DEL U+007F, C1 U+0080-U+009F) or bidirectional formatting characters
//     (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), which have no
//     business in names, URIs or e-mail addresses and could forge log
//     lines or display text (Unicode TR 36);
//   - jwks and jwks_uri must not both be present (RFC 7591 §2);
//   - unknown members are ignored (RFC 7591 §2).
//
// An empty array is decoded as an empty, non-nil slice, so a caller can tell
// "redirect_uris": [] from an absent member. Every error wraps
// ErrInvalidClientMetadata; a body over the limit also wraps ErrTooLarge.
// Semantic checks (URI schemes, grant and response type consistency,
// redirect URI rules) are the caller's.
func DecodeClientMetadata(r io.Reader, maxBytes int64) (ClientMetadata, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxClientMetadataBytes
	}
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++ // read one byte more to detect an oversized body
	}
	body, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ClientMetadata{}, errTooLarge
		}
		return ClientMetadata{}, fmt.Errorf("%w: reading the request body: %w", ErrInvalidClientMetadata, err)
	}
	if int64(len(body)) > maxBytes {
		return ClientMetadata{}, errTooLarge
	}
	members, err := checkStrict(body)
	if err != nil {
		return ClientMetadata{}, err
	}
	return decodeMembers(members)
}

// errTooLarge is the error for an oversized body.
var errTooLarge = fmt.Errorf("%w: %w", ErrInvalidClientMetadata, ErrTooLarge)

// invalid returns an error wrapping ErrInvalidClientMetadata with a fixed
// message.
func invalid(msg string) error {
	return fmt.Errorf("%w: %s", ErrInvalidClientMetadata, msg)
}

// errMalformed is the error for a body that is not a single JSON object.
var errMalformed = invalid("the body must be a single well-formed JSON object")

// checkStrict applies the encoding and structure rules that do not depend on
// member names: UTF-8, NUL and surrogate escapes, one top-level object with
// no trailing data, unique member names at every depth, bounded nesting.
// It returns the members of the top-level object, in order, as raw JSON.
//
// json.Valid (encoding/json's own scanner, which allocates nothing) decides
// what is well-formed JSON, so this decoder accepts exactly the syntax the
// one it replaced (a json.Decoder walked token by token) did; the walk that
// follows only ever sees valid JSON and checks names and nesting.
func checkStrict(body []byte) ([]member, error) {
	if !utf8.Valid(body) {
		return nil, invalid("the body is not valid UTF-8")
	}
	if err := checkEscapes(body); err != nil {
		return nil, err
	}
	w := walker{b: body}
	w.space()
	if w.i >= len(w.b) || w.b[w.i] != '{' {
		return nil, errMalformed
	}
	// The nesting bound comes before validity: json.Valid's own bound is
	// far deeper, and a deep body would otherwise be called malformed.
	if tooDeep(body) {
		return nil, invalid("the body is nested too deeply")
	}
	if !json.Valid(body) {
		return nil, errMalformed
	}
	members := make([]member, 0, 8)
	if err := w.object(&members); err != nil {
		return nil, err
	}
	return members, nil
}

// member is a member of the top-level object: its name as written (escapes
// included) and its raw JSON value.
type member struct {
	name, value []byte
}

// tooDeep reports whether the containers of a JSON text nest deeper than
// maxDepth; brackets inside strings do not count.
func tooDeep(b []byte) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i)
		case '{', '[':
			if depth++; depth > maxDepth {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// skipString returns the index of the closing quote of the string whose
// opening quote is at b[i] (len(b) when it is unterminated).
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(b)
}

// walker reads a JSON text that json.Valid accepted.
type walker struct {
	b []byte
	i int
}

func (w *walker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value skips the value at w.i (after white space), checking the member
// names of the objects inside it.
func (w *walker) value() error {
	w.space()
	switch w.b[w.i] {
	case '{':
		return w.object(nil)
	case '[':
		w.i++
		w.space()
		if w.b[w.i] == ']' {
			w.i++
			return nil
		}
		for {
			if err := w.value(); err != nil {
				return err
			}
			w.space()
			c := w.b[w.i]
			w.i++
			if c == ']' {
				return nil
			}
		}
	case '"':
		w.i = skipString(w.b, w.i) + 1
	default: // number, true, false, null
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return nil
			}
			w.i++
		}
	}
	return nil
}

// smallObject is how many member names an object may have before their
// uniqueness is checked with a map rather than by comparing each pair.
const smallObject = 16

// object walks the object at w.i and refuses a repeated member name
// (compared after unescaping, so "a" and "\u0061" are the same name). With
// top set, it appends the object's members to *top.
func (w *walker) object(top *[]member) error {
	w.i++ // '{'
	w.space()
	if w.b[w.i] == '}' {
		w.i++
		return nil
	}
	var (
		small [smallObject][]byte
		n     int
		large map[string]struct{}
	)
	for {
		w.space()
		start := w.i
		w.i = skipString(w.b, w.i) + 1
		raw := w.b[start:w.i]
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return errMalformed
			}
			name = []byte(s)
		}
		dup := false
		if large != nil {
			_, dup = large[string(name)]
			large[string(name)] = struct{}{}
		} else {
			for _, k := range small[:n] {
				if bytes.Equal(k, name) {
					dup = true
					break
				}
			}
			if n < smallObject {
				small[n] = name
				n++
			} else {
				large = make(map[string]struct{}, 2*smallObject)
				for _, k := range small {
					large[string(k)] = struct{}{}
				}
				large[string(name)] = struct{}{}
			}
		}
		if dup {
			// RFC 8259 §4: names SHOULD be unique; parsers disagree on
			// which duplicate wins, so refuse them all.
			if top != nil && isKnownMember(string(name)) {
				return invalid("duplicate member " + string(name))
			}
			return invalid("duplicate member name")
		}
		w.space()
		w.i++ // ':'
		w.space()
		vstart := w.i
		if err := w.value(); err != nil {
			return err
		}
		if top != nil {
			*top = append(*top, member{name: name, value: w.b[vstart:w.i]})
		}
		w.space()
		c := w.b[w.i]
		w.i++
		if c == '}' {
			return nil
		}
	}
}

// checkEscapes scans the strings of a JSON text for \u escapes that
// encoding/json would accept but that must not reach the server: NUL, and
// unpaired UTF-16 surrogates (decoded as U+FFFD, which hides what was sent).
// Syntax errors are left to the decoder.
func checkEscapes(b []byte) error {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(b) {
				return nil
			}
			i++
			if b[i] != 'u' {
				continue
			}
			r, ok := hex4(b, i+1)
			if !ok {
				return nil
			}
			i += 4
			switch {
			case r == 0:
				return invalid("a string contains NUL")
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate must be followed by a low one.
				if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					if lo, ok := hex4(b, i+3); ok && lo >= 0xDC00 && lo < 0xE000 {
						i += 6
						continue
					}
				}
				return invalid("a string contains an unpaired surrogate")
			case r >= 0xDC00 && r < 0xE000:
				return invalid("a string contains an unpaired surrogate")
			}
		}
	}
	return nil
}

// hex4 parses the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// knownMembers are the member names DecodeClientMetadata assigns, with the
// JSON type each must have.
var knownMembers = map[string]memberKind{
	"redirect_uris":              kindStrings,
	"token_endpoint_auth_method": kindString,
	"grant_types":                kindStrings,
	"response_types":             kindStrings,
	"client_name":                kindString,
	"client_uri":                 kindString,
	"logo_uri":                   kindString,
	"scope":                      kindString,
	"contacts":                   kindStrings,
	"tos_uri":                    kindString,
	"policy_uri":                 kindString,
	"jwks_uri":                   kindString,
	"jwks":                       kindObject,
	"software_id":                kindString,
	"software_version":           kindString,
	"application_type":           kindString,
	"dpop_bound_access_tokens":   kindBool,
}

// memberKind is the JSON type of a known member.
type memberKind int

const (
	kindString memberKind = iota
	kindStrings
	kindObject
	kindBool
)

// isKnownMember reports whether name is a member DecodeClientMetadata
// assigns; only such names may appear in error messages.
func isKnownMember(name string) bool {
	_, ok := knownMembers[name]
	return ok
}

// decodeMembers assigns the known members among those of the top-level
// object, which checkStrict returned.
func decodeMembers(members []member) (ClientMetadata, error) {
	var md ClientMetadata
	for _, m := range members {
		kind, known := knownMembers[string(m.name)]
		if !known {
			continue // RFC 7591 §2: ignore members not understood
		}
		key := string(m.name)
		raw := m.value
		if string(raw) == "null" {
			continue // null is treated as absent
		}
		switch kind {
		case kindString:
			s, err := decodeString(raw, key)
			if err != nil {
				return ClientMetadata{}, err
			}
			*stringField(&md, key) = s
		case kindStrings:
			ss, err := decodeStrings(raw, key)
			if err != nil {
				return ClientMetadata{}, err
			}
			*stringsField(&md, key) = ss
		case kindBool:
			// RFC 9449 §5.2: a JSON boolean.
			switch string(raw) {
			case "true":
				md.DPoPBoundAccessTokens = true
			case "false":
			default:
				return ClientMetadata{}, invalid(key + " must be a boolean")
			}
		case kindObject:
			if len(raw) == 0 || raw[0] != '{' {
				return ClientMetadata{}, invalid(key + " must be a JSON object")
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return ClientMetadata{}, errMalformed
			}
			md.JWKS = json.RawMessage(buf.Bytes())
		}
	}
	if md.JWKS != nil && md.JWKSURI != "" {
		// RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
		return ClientMetadata{}, invalid("jwks and jwks_uri must not both be present")
	}
	return md, nil
}

// stringField returns the string field of md that member name maps to.
func stringField(md *ClientMetadata, name string) *string {
	switch name {
	case "token_endpoint_auth_method":
		return &md.TokenEndpointAuthMethod
	case "client_name":
		return &md.ClientName
	case "client_uri":
		return &md.ClientURI
	case "logo_uri":
		return &md.LogoURI
	case "scope":
		return &md.Scope
	case "tos_uri":
		return &md.TOSURI
	case "policy_uri":
		return &md.PolicyURI
	case "jwks_uri":
		return &md.JWKSURI
	case "software_id":
		return &md.SoftwareID
	case "software_version":
		return &md.SoftwareVersion
	case "application_type":
		return &md.ApplicationType
	}
	panic("metadata: no string field for member " + name)
}

// stringsField returns the []string field of md that member name maps to.
func stringsField(md *ClientMetadata, name string) *[]string {
	switch name {
	case "redirect_uris":
		return &md.RedirectURIs
	case "grant_types":
		return &md.GrantTypes
	case "response_types":
		return &md.ResponseTypes
	case "contacts":
		return &md.Contacts
	}
	panic("metadata: no []string field for member " + name)
}

// decodeString decodes a JSON string value of member name.
func decodeString(raw []byte, name string) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", invalid(name + " must be a string")
	}
	s, err := unquote(raw)
	if err != nil {
		return "", invalid(name + " must be a string")
	}
	if hasControl(s) {
		return "", invalid(name + " contains a control or bidirectional formatting character")
	}
	return s, nil
}

// unquote decodes a JSON string (raw, with its quotes) that json.Valid
// accepted. Without a backslash its bytes are the value: valid JSON has no
// raw control character in a string, and the body was checked to be UTF-8.
func unquote(raw []byte) (string, error) {
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// decodeStrings decodes a JSON array of strings of member name; null
// elements are refused (encoding/json would turn them into "").
func decodeStrings(raw []byte, name string) ([]string, error) {
	bad := func() error { return invalid(name + " must be an array of strings") }
	if len(raw) == 0 || raw[0] != '[' {
		return nil, bad()
	}
	w := walker{b: raw, i: 1}
	w.space()
	if w.b[w.i] == ']' {
		return []string{}, nil
	}
	var out []string
	for {
		w.space()
		if w.b[w.i] != '"' {
			return nil, bad()
		}
		start := w.i
		w.i = skipString(w.b, w.i) + 1
		s, err := unquote(w.b[start:w.i])
		if err != nil {
			return nil, bad()
		}
		if hasControl(s) {
			return nil, invalid(name + " contains a control or bidirectional formatting character")
		}
		out = append(out, s)
		w.space()
		c := w.b[w.i]
		w.i++
		if c == ']' {
			return out, nil
		}
	}
}

// hasControl reports whether s contains a character that has no place in
// the text of client metadata, which is shown on the consent and device
// pages, in logs and in other software (Unicode TR 36 and UTS 39 on
// visual spoofing; RFC 7591 §5 on client_name impersonation):
//
//   - C0 controls U+0000-U+001F and DEL U+007F, and C1 controls
//     U+0080-U+009F (U+009B is the one-byte CSI of terminal escape
//     sequences, U+0085 a line break): they forge log lines and break out
//     of the text they sit in;
//   - every character of the Unicode Bidi_Control property (UAX #9 §2):
//     the embeddings and overrides U+202A-U+202E, the isolates
//     U+2066-U+2069, and the marks U+061C (ALM), U+200E (LRM) and U+200F
//     (RLM). They change the order in which text is displayed, so that
//     "\u202Eevil.example" shows as another name, or a client name that
//     imitates a host reads backwards.
//
// The three marks are refused too, though they are not overrides: they act
// as an invisible strong letter, which still reorders the digits and
// punctuation next to them (enough to make "Acme 2.0" or a dotted name read
// differently), and being invisible they let two names that look the same
// differ. A right-to-left client_name still displays without them: the
// pages show each value in its own block, a bidi paragraph of its own, and
// at worst a digit or punctuation mark at its edge sits on the other side,
// a cosmetic cost worth less than an invisible reordering the client
// controls. Refusing the whole property is also one rule a reviewer can
// check against the Unicode data (unicode.Bidi_Control), not a subset.
// Joiners (U+200C, U+200D) are not bidi controls and stay allowed: some
// scripts and emoji need them.
func hasControl(s string) bool {
	for _, r := range s {
		if r < utf8.RuneSelf {
			if r < 0x20 || r == 0x7f {
				return true
			}
			continue
		}
		// unicode.IsControl is C0, DEL and C1; above ASCII, C1 only.
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return true
		}
	}
	return false
}

// ValidateURI checks a URI-valued client metadata member other than
// redirect_uris (client_uri, logo_uri, tos_uri, policy_uri, jwks_uri):
// it must be an absolute http or https URL with a host, without userinfo,
// fragment, white space, control characters or backslashes. Any other
// scheme, javascript:, data:, vbscript: and file: included, is refused:
// these values end up in links and images on the consent page and in
// clients (RFC 7591 §5 and the MCP client RCE CVE-2025-6514). field is the
// member name used in the error message; raw must not be empty (an absent
// member needs no check). Errors wrap ErrInvalidClientMetadata.
func ValidateURI(field, raw string) error {
	bad := invalid(field + " must be an absolute http or https URL without fragment")
	if raw == "" || hasSpaceOrControl(raw) || strings.ContainsAny(raw, "#\\") || !utf8.ValidString(raw) {
		return bad
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad
	}
	// url.Parse lowercases the scheme, so "JavaScript:" is caught too.
	if (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" || u.Host == "" || u.Hostname() == "" || u.User != nil {
		return bad
	}
	return nil
}

// ValidateURIs applies ValidateURI to every non-empty URI member of m other
// than redirect_uris (whose rules are stricter and live with redirect
// matching), and returns the first error.
func (m *ClientMetadata) ValidateURIs() error {
	for _, f := range []struct{ name, value string }{
		{"client_uri", m.ClientURI},
		{"logo_uri", m.LogoURI},
		{"tos_uri", m.TOSURI},
		{"policy_uri", m.PolicyURI},
		{"jwks_uri", m.JWKSURI},
	} {
		if f.value == "" {
			continue
		}
		if err := ValidateURI(f.name, f.value); err != nil {
			return err
		}
	}
	return nil
}

// ValidateText applies the character rule of DecodeClientMetadata (no
// control or bidirectional formatting character, see there) to every string
// member of m, for metadata that did not come through the decoder: clients
// registered from Go with OAuthServer.RegisterClient or a static client
// file, whose names the consent and device pages show just the same. It
// returns the first error, which wraps ErrInvalidClientMetadata and names
// the member only.
func (m *ClientMetadata) ValidateText() error {
	for _, f := range []struct {
		name   string
		values []string
	}{
		{"client_name", []string{m.ClientName}},
		{"client_uri", []string{m.ClientURI}},
		{"logo_uri", []string{m.LogoURI}},
		{"tos_uri", []string{m.TOSURI}},
		{"policy_uri", []string{m.PolicyURI}},
		{"jwks_uri", []string{m.JWKSURI}},
		{"scope", []string{m.Scope}},
		{"software_id", []string{m.SoftwareID}},
		{"software_version", []string{m.SoftwareVersion}},
		{"application_type", []string{m.ApplicationType}},
		{"token_endpoint_auth_method", []string{m.TokenEndpointAuthMethod}},
		{"redirect_uris", m.RedirectURIs},
		{"grant_types", m.GrantTypes},
		{"response_types", m.ResponseTypes},
		{"contacts", m.Contacts},
	} {
		for _, v := range f.values {
			if hasControl(v) {
				return invalid(f.name + " contains a control or bidirectional formatting character")
			}
		}
	}
	return nil
}
