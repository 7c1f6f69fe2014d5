package grants

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// ClientDocuments resolves client_ids that are URLs of client ID metadata
// documents (draft-ietf-oauth-client-id-metadata-document) to their
// validated metadata. *cimd.Resolver implements it.
type ClientDocuments interface {
	Resolve(ctx context.Context, clientID string) (metadata.ClientMetadata, error)
}

// Errors of GetClient. Their descriptions are fixed; the cause, for
// ErrorHandler, says what exactly failed.
var (
	// ErrUnknownClient: no client has this client_id.
	ErrUnknownClient = &oautherr.Error{Code: oautherr.CodeInvalidClient, Description: "unknown client_id", Status: http.StatusBadRequest}
	// ErrClientIDURL: the client_id is an https URL, but not one a client
	// ID metadata document may have (draft §3).
	ErrClientIDURL = &oautherr.Error{Code: oautherr.CodeInvalidClient, Description: "client_id is not a valid client ID metadata document URL", Status: http.StatusBadRequest}
	// ErrClientIDNotAllowed: the application's policy refused the client_id.
	ErrClientIDNotAllowed = &oautherr.Error{Code: oautherr.CodeInvalidClient, Description: "client_id is not allowed by this server", Status: http.StatusBadRequest}
	// ErrClientDocument: the client ID metadata document could not be
	// fetched, or is invalid.
	ErrClientDocument = &oautherr.Error{Code: oautherr.CodeInvalidClient, Description: "the client ID metadata document could not be fetched or is invalid", Status: http.StatusBadRequest}
)

// IsDocumentClientID reports whether a client_id is resolved through its
// client ID metadata document: documents are enabled and it begins with
// https://. The store is never asked about such an id.
func (s *Service) IsDocumentClientID(clientID string) bool {
	return s.Documents != nil && cimd.IsURLClientID(clientID)
}

// GetClient resolves a client_id: through its metadata document when it is
// a URL and documents are enabled (a public or private_key_jwt client, with
// the document's metadata validated like a registration), else through the
// store. Every handler and grant resolves clients here, so both kinds
// behave alike. An unknown client is ErrUnknownClient; an unusable document
// is one of the other invalid_client errors above, wrapping the cause; a
// storage failure is server_error.
func (s *Service) GetClient(ctx context.Context, clientID string) (*record.Client, *oautherr.Error) {
	if s.IsDocumentClientID(clientID) {
		m, err := s.Documents.Resolve(ctx, clientID)
		switch {
		case err == nil:
			return &record.Client{ID: clientID, Metadata: m}, nil
		case errors.Is(err, cimd.ErrInvalidURL):
			return nil, ErrClientIDURL.WithCause(err)
		case errors.Is(err, cimd.ErrNotAllowed):
			return nil, ErrClientIDNotAllowed.WithCause(err)
		case errors.Is(err, cimd.ErrFetch):
			s.Telemetry.Emit(ctx, audit.Event{Type: audit.MetadataDocumentFetchFailed, ClientID: clientID, Outcome: audit.Failure, Reason: "fetch_failed"})
		case errors.Is(err, cimd.ErrInvalidDocument):
			s.Telemetry.Emit(ctx, audit.Event{Type: audit.MetadataDocumentFetchFailed, ClientID: clientID, Outcome: audit.Failure, Reason: "invalid_document"})
		}
		return nil, ErrClientDocument.WithCause(err)
	}
	c, err := s.Store.GetClient(ctx, clientID)
	if err != nil {
		if isNotFound(err) {
			return nil, ErrUnknownClient
		}
		return nil, storeError(err)
	}
	return c, nil
}

// ValidateDocumentMetadata checks the metadata of a client ID metadata
// document as a registration is checked (ValidateClientMetadata: redirect
// URI and URI schemes, grant and response types, scope, keys), for a public
// client, or for a private_key_jwt one when the document names that method:
// the document's grant_types default to authorization_code, so a document
// without them can redeem its codes.
//
// A document that names private_key_jwt binds its client to it, as a
// registration does (RFC 7591 §2): every request that authenticates the
// client must carry an assertion, and one with the client_id alone is
// invalid_client. A client that would also work as a public one (ChatGPT
// falls back to none where private_key_jwt is not advertised) names the
// method it means to use; a server that accepted the document's URL alone
// would let anyone who read the document redeem a code the client was
// issued, which is what its keys are there to prevent. On a server whose
// Model cannot record assertion ids, such a document is invalid.
func (s *Service) ValidateDocumentMetadata(m metadata.ClientMetadata) (metadata.ClientMetadata, error) {
	if m.TokenEndpointAuthMethod != AuthMethodPrivateKeyJWT {
		m.TokenEndpointAuthMethod = AuthMethodNone
	}
	out, oerr := s.ValidateClientMetadata(m)
	if oerr != nil {
		return out, oerr
	}
	return out, nil
}
