package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpoauth/mcpoauth/grants"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// minStaticSecretLength bounds how weak a pre-registered secret may be: 128
// bits of hex, or 96 of base64.
const minStaticSecretLength = 32

// RegisterClient pre-registers a client (a static client of a
// configuration file), validated like a dynamic registration. info.ClientID
// is required; a confidential client with no ClientSecret gets a fresh one,
// returned in the result, which is the only place it appears. A given secret
// must have at least 32 characters; it expires at
// info.ClientSecretExpiresAt (absent or 0: never).
func (s *OAuthServer) RegisterClient(ctx context.Context, info metadata.ClientInformation) (*metadata.ClientInformation, error) {
	reg, ok := s.cfg.Model.(ClientRegistrar)
	if !ok {
		return nil, errors.New("mcpoauth: the Model does not implement ClientRegistrar")
	}
	if info.ClientID == "" {
		return nil, errors.New("mcpoauth: client_id is required")
	}
	if s.grants.IsDocumentClientID(info.ClientID) {
		// It would never be looked up: such ids name metadata documents.
		return nil, fmt.Errorf("mcpoauth: client %q: with ClientIDMetadataDocuments enabled, a client_id beginning with https:// names a metadata document and cannot be registered", info.ClientID)
	}
	m, oerr := s.grants.ValidateClientMetadata(info.ClientMetadata)
	if oerr != nil {
		return nil, fmt.Errorf("mcpoauth: client %q: %w", info.ClientID, oerr)
	}
	if m.TokenEndpointAuthMethod == grants.AuthMethodNone && info.ClientSecret != "" {
		return nil, fmt.Errorf("mcpoauth: client %q: a public client (token_endpoint_auth_method none) has no secret", info.ClientID)
	}
	if info.ClientSecret != "" && len(info.ClientSecret) < minStaticSecretLength {
		return nil, fmt.Errorf("mcpoauth: client %q: client_secret must have at least %d characters", info.ClientID, minStaticSecretLength)
	}
	c, out := s.grants.NewClient(m, info.ClientID, info.ClientSecret)
	if out.ClientSecretExpiresAt != nil {
		// A static client's secret is the operator's: it expires when the
		// client information says (0 or absent: never), not after
		// ClientSecretLifetime.
		var exp int64
		c.SecretExpiresAt = time.Time{}
		if info.ClientSecretExpiresAt != nil && *info.ClientSecretExpiresAt > 0 {
			exp = *info.ClientSecretExpiresAt
			c.SecretExpiresAt = time.Unix(exp, 0)
		}
		out.ClientSecretExpiresAt = &exp
	}
	if err := reg.RegisterClient(ctx, c); err != nil {
		return nil, fmt.Errorf("mcpoauth: register client %q: %w", info.ClientID, err)
	}
	return out, nil
}
