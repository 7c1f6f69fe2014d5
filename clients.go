package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Errors of the client administration methods: RegisterClient,
// UpdateClient, DeleteClient and RotateClientSecret. A client that does not
// exist is an error wrapping ErrNotFound.
var (
	// ErrNoClientRegistrar: the Model does not implement ClientRegistrar,
	// so clients can be neither registered nor changed.
	ErrNoClientRegistrar = errors.New("mcpoauth: the Model does not implement ClientRegistrar")
	// ErrInvalidClientInformation is wrapped by the error for client
	// information that RegisterClient or UpdateClient refuses; the error
	// says what is wrong.
	ErrInvalidClientInformation = errors.New("mcpoauth: invalid client information")
	// ErrPublicClient: RotateClientSecret was asked for a public client
	// (token_endpoint_auth_method none), which has no secret.
	ErrPublicClient = errors.New("mcpoauth: a public client has no secret")
)

// minStaticSecretLength bounds how weak a pre-registered secret may be: 128
// bits of hex, or 96 of base64.
const minStaticSecretLength = 32

// putClientAttempts bounds the rounds of RegisterClient's upsert. A round
// that finds the client registered (or deleted) by someone else since it
// read it starts again from a fresh read; without a concurrent DeleteClient
// two rounds always suffice.
const putClientAttempts = 4

// Client returns a client as the server sees it: a registered one from the
// Model, or, for a client ID metadata document URL (when they are enabled),
// the document's metadata, fetched or cached, exactly as /authorize would
// resolve it. An error wraps ErrNotFound for an unknown client or a
// document that cannot be fetched or is invalid. A page that names clients
// (a "connected apps" page) uses it; show the name as the client's own
// claim.
func (s *OAuthServer) Client(ctx context.Context, clientID string) (*Client, error) {
	c, oerr := s.grants.GetClient(ctx, clientID)
	if oerr != nil {
		if oerr.Code == oautherr.CodeServerError {
			return nil, fmt.Errorf("mcpoauth: get client: %w", oerr)
		}
		return nil, fmt.Errorf("mcpoauth: get client %q: %s: %w", clientID, oerr.Description, ErrNotFound)
	}
	return c, nil
}

// RegisterClient registers a static client (one of a configuration file),
// validated like a dynamic registration, or brings the registered client
// with that client_id up to date: calling it again, at every start of every
// replica, succeeds and leaves the client as the latest call described it
// (metadata, secret, secret expiry); the client keeps its
// client_id_issued_at. Replicas that register the same clients on one
// database at the same instant all succeed.
//
// info.ClientID is required. A given ClientSecret must have at least 32
// characters; it expires at info.ClientSecretExpiresAt (absent or 0:
// never). A confidential client given no ClientSecret keeps the secret it
// has, and that secret's expiry, and the result carries no secret; one that
// is new, or was public until now, gets a fresh secret, returned in the
// result, which is the only place it appears.
//
// A client is read, then written: a call that keeps the stored secret and
// one that sets another, for the same client at the same instant, may end
// with the kept one. Register a client from one place, or with the same
// information everywhere.
func (s *OAuthServer) RegisterClient(ctx context.Context, info metadata.ClientInformation) (*metadata.ClientInformation, error) {
	out, err := s.putClient(ctx, info, true)
	s.emitClientEvent(ctx, audit.ClientRegistered, info.ClientID, "", err)
	return out, err
}

// UpdateClient replaces the registration of an existing client with info,
// validated and applied as RegisterClient does (no ClientSecret keeps the
// stored secret), and answers an error wrapping ErrNotFound, changing
// nothing, if there is no client with info.ClientID. Tokens issued before
// keep the scopes and resource they were issued for: DeleteClient ends
// them.
func (s *OAuthServer) UpdateClient(ctx context.Context, info metadata.ClientInformation) (*metadata.ClientInformation, error) {
	out, err := s.putClient(ctx, info, false)
	s.emitClientEvent(ctx, audit.ClientUpdated, info.ClientID, "", err)
	return out, err
}

// DeleteClient removes a client and, in the same atomic step, everything
// issued to it: access and refresh tokens, authorization codes, pending
// authorization requests and device authorizations. None of them is
// accepted afterwards, nor is a token its token request under way at the
// same instant would have received. It answers an error wrapping
// ErrNotFound, changing nothing, if there is no such client. A static
// client comes back at its next RegisterClient (the next start, if the
// configuration file still lists it).
func (s *OAuthServer) DeleteClient(ctx context.Context, clientID string) error {
	reg, err := s.clientRegistrar()
	if err != nil {
		return err
	}
	if err := reg.DeleteClient(ctx, clientID); err != nil {
		return fmt.Errorf("mcpoauth: delete client %q: %w", clientID, err)
	}
	s.emitClientEvent(ctx, audit.ClientDeleted, clientID, "", nil)
	return nil
}

// RotateClientSecret replaces the secret of a confidential client with a
// fresh 256-bit one and returns it: the only place it appears. The old
// secret is refused from then on; the new one expires ClientSecretLifetime
// later (never with NoExpiry), as a dynamically registered client's does.
// Tokens issued before stay valid (DeleteClient ends them). A static
// client's next RegisterClient with a ClientSecret sets that secret again:
// change the configuration file too. The client is read, then written
// back with the new secret: an UpdateClient of the same client at the same
// instant may be undone. Errors: one wrapping ErrNotFound for an unknown
// client, ErrPublicClient for a public one.
func (s *OAuthServer) RotateClientSecret(ctx context.Context, clientID string) (string, error) {
	reg, err := s.clientRegistrar()
	if err != nil {
		return "", err
	}
	stored, err := s.cfg.Model.GetClient(ctx, clientID)
	if err != nil {
		return "", fmt.Errorf("mcpoauth: rotate the secret of client %q: %w", clientID, err)
	}
	if stored.IsPublic() {
		return "", fmt.Errorf("mcpoauth: rotate the secret of client %q: %w", clientID, ErrPublicClient)
	}
	if !grants.UsesSecret(stored.Metadata.TokenEndpointAuthMethod) {
		// A private_key_jwt client rotates its keys, not a secret.
		return "", fmt.Errorf("mcpoauth: rotate the secret of client %q: it authenticates with %s and has no secret", clientID, stored.Metadata.TokenEndpointAuthMethod)
	}
	c, secret := s.grants.NewClientSecret(stored)
	if err := reg.UpdateClient(ctx, c); err != nil {
		return "", fmt.Errorf("mcpoauth: rotate the secret of client %q: %w", clientID, err)
	}
	s.emitClientEvent(ctx, audit.ClientUpdated, clientID, "secret_rotated", nil)
	return secret, nil
}

// clientRegistrar returns the Model as a ClientRegistrar.
func (s *OAuthServer) clientRegistrar() (ClientRegistrar, error) {
	reg, ok := s.cfg.Model.(ClientRegistrar)
	if !ok {
		return nil, ErrNoClientRegistrar
	}
	return reg, nil
}

// putClient is RegisterClient (create) and UpdateClient: read the client,
// then update it, or register it if create and there is none. A round that
// finds the client taken (ErrConflict: registered since the read) or gone
// (ErrNotFound: deleted since the read) reads again.
func (s *OAuthServer) putClient(ctx context.Context, info metadata.ClientInformation, create bool) (*metadata.ClientInformation, error) {
	op := "update"
	if create {
		op = "register"
	}
	reg, err := s.clientRegistrar()
	if err != nil {
		return nil, err
	}
	m, err := s.validateClientInformation(info)
	if err != nil {
		return nil, err
	}
	for range putClientAttempts {
		stored, err := s.cfg.Model.GetClient(ctx, info.ClientID)
		var out *metadata.ClientInformation
		switch {
		case err == nil:
			var c *Client
			c, out = s.staticClient(m, info, stored, create)
			if err = reg.UpdateClient(ctx, c); create && errors.Is(err, ErrNotFound) {
				continue
			}
		case create && errors.Is(err, ErrNotFound):
			var c *Client
			c, out = s.staticClient(m, info, nil, create)
			if err = reg.RegisterClient(ctx, c); errors.Is(err, ErrConflict) {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("mcpoauth: %s client %q: %w", op, info.ClientID, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("mcpoauth: %s client %q: registered and deleted by others %d times over: %w", op, info.ClientID, putClientAttempts, ErrConflict)
}

// validateClientInformation checks static client information as a
// registration is checked, and returns the metadata with RFC 7591 defaults
// applied.
func (s *OAuthServer) validateClientInformation(info metadata.ClientInformation) (metadata.ClientMetadata, error) {
	if info.ClientID == "" {
		return info.ClientMetadata, fmt.Errorf("%w: client_id is required", ErrInvalidClientInformation)
	}
	if strings.ContainsFunc(info.ClientID, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		// RFC 6749 Appendix A.1: client_id is VSCHAR. A control byte
		// could also pass for the replay store's key of an identity
		// provider (AssertionReplayStore).
		return info.ClientMetadata, fmt.Errorf("%w: client_id must be printable ASCII (RFC 6749 Appendix A.1)", ErrInvalidClientInformation)
	}
	if s.grants.IsDocumentClientID(info.ClientID) {
		// It would never be looked up: such ids name metadata documents.
		return info.ClientMetadata, fmt.Errorf("%w: client %q: with ClientIDMetadataDocuments enabled, a client_id beginning with https:// names a metadata document and cannot be registered", ErrInvalidClientInformation, info.ClientID)
	}
	m, oerr := s.grants.ValidateClientMetadata(info.ClientMetadata)
	if oerr != nil {
		return m, fmt.Errorf("%w: client %q: %w", ErrInvalidClientInformation, info.ClientID, publicError(oerr))
	}
	if !grants.UsesSecret(m.TokenEndpointAuthMethod) && info.ClientSecret != "" {
		return m, fmt.Errorf("%w: client %q: a client whose token_endpoint_auth_method is %s has no secret", ErrInvalidClientInformation, info.ClientID, m.TokenEndpointAuthMethod)
	}
	if info.ClientSecret != "" && len(info.ClientSecret) < minStaticSecretLength {
		return m, fmt.Errorf("%w: client %q: client_secret must have at least %d characters", ErrInvalidClientInformation, info.ClientID, minStaticSecretLength)
	}
	return m, nil
}

// staticClient builds the record to store and the response for validated
// metadata m of info, given the stored record (nil if there is none): the
// stored client_id_issued_at stays, and a confidential client given no
// secret keeps its stored one.
func (s *OAuthServer) staticClient(m metadata.ClientMetadata, info metadata.ClientInformation, stored *Client, create bool) (*Client, *metadata.ClientInformation) {
	c, out := s.clientRecord(m, info, stored)
	c.AuthMethodDefaulted = info.TokenEndpointAuthMethod == ""
	// RegisterClient vouches for the client; UpdateClient changes its
	// metadata and leaves who vetted it as it was.
	c.PreRegistered = create || stored != nil && stored.PreRegistered
	return c, out
}

// clientRecord is staticClient's record and response, before the flags.
func (s *OAuthServer) clientRecord(m metadata.ClientMetadata, info metadata.ClientInformation, stored *Client) (*Client, *metadata.ClientInformation) {
	if stored != nil && !stored.SecretDigest.IsZero() && info.ClientSecret == "" && grants.UsesSecret(m.TokenEndpointAuthMethod) {
		c := &Client{ID: stored.ID, SecretDigest: stored.SecretDigest, SecretExpiresAt: stored.SecretExpiresAt, IssuedAt: stored.IssuedAt, LastUsedAt: stored.LastUsedAt, Metadata: m}
		exp := unixOrZero(c.SecretExpiresAt)
		return c, &metadata.ClientInformation{ClientID: c.ID, ClientIDIssuedAt: unixOrZero(c.IssuedAt), ClientSecretExpiresAt: &exp, ClientMetadata: m}
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
	if stored != nil {
		// An update is no use: an updated dynamic client stays as idle as
		// it was.
		c.IssuedAt, c.LastUsedAt = stored.IssuedAt, stored.LastUsedAt
		out.ClientIDIssuedAt = unixOrZero(stored.IssuedAt)
	}
	return c, out
}

// unixOrZero is t in Unix seconds, with the zero time (unset) as 0, as RFC
// 7591 §3.2.1 writes "never" and "unknown".
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
