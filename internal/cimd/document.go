package cimd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// MaxDocumentBytes caps a metadata document: draft §8.7 recommends 5 KB.
const MaxDocumentBytes = 5 << 10

// ErrInvalidDocument is wrapped by the error for a document that was fetched
// but cannot be used.
var ErrInvalidDocument = errors.New("cimd: invalid client ID metadata document")

// ErrTooLarge is wrapped, with ErrInvalidDocument, by the error for a
// document over MaxDocumentBytes.
var ErrTooLarge = errors.New("cimd: client ID metadata document larger than 5 KB")

// The token endpoint authentication methods a document may name: none (a
// public client; also what no method means) and private_key_jwt (the client
// signs assertions with a key of its jwks or jwks_uri). A shared secret
// cannot be: nobody issued one.
const (
	AuthMethodNone          = "none"
	AuthMethodPrivateKeyJWT = "private_key_jwt"
)

// DecodeDocument decodes a client ID metadata document fetched from
// clientID. It decodes as strictly as dynamic client registration
// (metadata.DecodeClientMetadata: one JSON object, no duplicate or
// case-variant keys, no NUL), and then applies the draft's rules:
//
//   - client_id is present and equals clientID by simple string comparison
//     (draft-ietf-oauth-client-id-metadata-document-02 §4);
//   - no member whose name begins with client_secret (client_secret,
//     client_secret_expires_at: §4.1), and no token_endpoint_auth_method
//     but none and private_key_jwt (§4.1 forbids shared secrets; the MCP
//     authorization specification lets a document use private_key_jwt);
//   - client_name and redirect_uris are present and non-empty (the MCP
//     authorization specification requires them).
//
// The returned metadata has token_endpoint_auth_method "none" (a public
// client) unless the document named private_key_jwt. Semantic checks of the
// values (redirect URI schemes, grant types, keys) are the caller's.
func DecodeDocument(body []byte, clientID string) (metadata.ClientMetadata, error) {
	if len(body) > MaxDocumentBytes {
		return metadata.ClientMetadata{}, fmt.Errorf("%w: %w", ErrInvalidDocument, ErrTooLarge)
	}
	md, err := metadata.DecodeClientMetadata(bytes.NewReader(body), MaxDocumentBytes)
	if err != nil {
		return metadata.ClientMetadata{}, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	// The strict decoder accepted the body, so it is one object with
	// unique member names: this reading cannot disagree with it.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return metadata.ClientMetadata{}, invalidDocument("not a JSON object")
	}
	raw, ok := members["client_id"]
	if !ok {
		return metadata.ClientMetadata{}, invalidDocument("client_id is missing")
	}
	var id string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &id) != nil {
		return metadata.ClientMetadata{}, invalidDocument("client_id is not a string")
	}
	if id != clientID {
		return metadata.ClientMetadata{}, invalidDocument("client_id does not equal the document URL")
	}
	for name := range members {
		if strings.HasPrefix(name, "client_secret") {
			return metadata.ClientMetadata{}, invalidDocument("a document must not contain client_secret or client_secret_expires_at")
		}
	}
	switch m := md.TokenEndpointAuthMethod; {
	case m == "" || m == AuthMethodNone:
		md.TokenEndpointAuthMethod = AuthMethodNone
	case m == AuthMethodPrivateKeyJWT:
	case strings.HasPrefix(m, "client_secret"):
		return metadata.ClientMetadata{}, invalidDocument("shared-secret client authentication is not allowed")
	default:
		return metadata.ClientMetadata{}, invalidDocument("unsupported token_endpoint_auth_method")
	}
	if strings.TrimSpace(md.ClientName) == "" {
		return metadata.ClientMetadata{}, invalidDocument("client_name is required")
	}
	if len(md.RedirectURIs) == 0 {
		return metadata.ClientMetadata{}, invalidDocument("redirect_uris is required")
	}
	return md, nil
}

func invalidDocument(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidDocument, reason)
}
