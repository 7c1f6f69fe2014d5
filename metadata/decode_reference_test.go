package metadata

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The decoder that DecodeClientMetadata replaced, which walked the body
// with json.Decoder tokens: kept as the reference its successor must agree
// with on every input (FuzzDecodeMatchesReference).

func referenceDecode(body []byte) (ClientMetadata, error) {
	if err := refCheckStrict(body); err != nil {
		return ClientMetadata{}, err
	}
	return refDecodeMembers(body)
}

func refCheckStrict(body []byte) error {
	if !utf8.Valid(body) {
		return invalid("the body is not valid UTF-8")
	}
	if err := checkEscapes(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return errMalformed
	}
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	stack := []frame{{object: true, wantKey: true}}
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return errMalformed
		}
		top := &stack[len(stack)-1]
		if top.object && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return errMalformed
			}
			if _, dup := top.keys[key]; dup {
				// RFC 8259 §4: names SHOULD be unique; parsers disagree
				// on which duplicate wins, so refuse them all.
				if len(stack) == 1 && isKnownMember(key) {
					return invalid("duplicate member " + key)
				}
				return invalid("duplicate member name")
			}
			if top.keys == nil {
				top.keys = make(map[string]struct{})
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return invalid("the body is nested too deeply")
			}
			stack = append(stack, frame{object: tok == json.Delim('{'), wantKey: true})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("unexpected data after the JSON object")
	}
	return nil
}

func refDecodeMembers(body []byte) (ClientMetadata, error) {
	var md ClientMetadata
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ClientMetadata{}, errMalformed
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ClientMetadata{}, errMalformed
		}
		key, ok := tok.(string)
		if !ok {
			return ClientMetadata{}, errMalformed
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ClientMetadata{}, errMalformed
		}
		kind, known := knownMembers[key]
		if !known {
			continue // RFC 7591 §2: ignore members not understood
		}
		raw = bytes.TrimSpace(raw)
		if string(raw) == "null" {
			continue // null is treated as absent
		}
		switch kind {
		case kindString:
			s, err := refDecodeString(raw, key)
			if err != nil {
				return ClientMetadata{}, err
			}
			*stringField(&md, key) = s
		case kindStrings:
			ss, err := refDecodeStrings(raw, key)
			if err != nil {
				return ClientMetadata{}, err
			}
			*stringsField(&md, key) = ss
		case kindBool:
			// RFC 9449 §5.2: a JSON boolean.
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return ClientMetadata{}, invalid(key + " must be a boolean")
			}
			md.DPoPBoundAccessTokens = b
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
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return ClientMetadata{}, errMalformed
	}
	if md.JWKS != nil && md.JWKSURI != "" {
		// RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
		return ClientMetadata{}, invalid("jwks and jwks_uri must not both be present")
	}
	return md, nil
}

func refDecodeString(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", invalid(name + " must be a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(name + " must be a string")
	}
	if hasControl(s) {
		return "", invalid(name + " contains a control or bidirectional formatting character")
	}
	return s, nil
}

// refDecodeStrings decodes a JSON array of strings of member name; null
// elements are refused (encoding/json would turn them into "").
func refDecodeStrings(raw json.RawMessage, name string) ([]string, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, invalid(name + " must be an array of strings")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, invalid(name + " must be an array of strings")
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		e = bytes.TrimSpace(e)
		if len(e) == 0 || e[0] != '"' {
			return nil, invalid(name + " must be an array of strings")
		}
		var s string
		if err := json.Unmarshal(e, &s); err != nil {
			return nil, invalid(name + " must be an array of strings")
		}
		if hasControl(s) {
			return nil, invalid(name + " contains a control or bidirectional formatting character")
		}
		out = append(out, s)
	}
	return out, nil
}

// FuzzDecodeMatchesReference checks that DecodeClientMetadata accepts
// exactly what the reference decoder accepts, with the same values.
func FuzzDecodeMatchesReference(f *testing.F) {
	deep := strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32)
	for _, s := range []string{
		`{}`, ` {} `, `{} {}`, `[]`, `{"a":1,}`, `{"a" 1}`, `{"a":[1,2,{"b":[]}]}`,
		`{"redirect_uris":["https://a/cb"],"client_name":"n","grant_types":[]}`,
		`{"redirect_uris":[ "a" , "b" ]}`, `{"redirect_uris":["a",null]}`, `{"redirect_uris":null}`,
		`{"Redirect_Uris":["https://evil/cb"]}`, `{"redirect\u005furis":["x"]}`,
		`{"redirect_uris":["a"],"redirect_uris":["b"]}`, `{"x":{"a":1,"\u0061":2}}`,
		`{"client_name":"a\"b\\c\/\u00e9\n"}`, `{"client_name":"\u0000"}`, `{"client_name":"\ud800"}`,
		`{"client_name":"\ud83d\ude00"}`, "{\"client_name\":\"\u202e\"}", `{"client_name":"\u202e"}`,
		`{"jwks":{"keys":[ {"kty" : "EC"} ]}}`, `{"jwks":[]}`, `{"jwks":{},"jwks_uri":"https://a"}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18}`,
		`{"scope":-1.5e3,"x":true,"y":false,"z":null}`, deep, "{" + deep[1:] + "}", deep + "x",
		`{"dpop_bound_access_tokens":true}`, `{"dpop_bound_access_tokens":false}`, `{"dpop_bound_access_tokens":"true"}`, `{"dpop_bound_access_tokens":1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		want, wantErr := referenceDecode([]byte(body))
		got, err := DecodeClientMetadata(strings.NewReader(body), 1<<20)
		if wantErr != nil {
			require.Error(t, err, "reference refused it: %v", wantErr)
			require.ErrorIs(t, err, ErrInvalidClientMetadata)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}
