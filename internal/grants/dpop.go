package grants

import (
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// ErrDPoPProofRequired refuses a token request without a DPoP proof from a
// client that must send one: the server requires DPoP, or the client
// registered dpop_bound_access_tokens (RFC 9449 §5.2), or the refresh
// token presented is bound (§5).
var ErrDPoPProofRequired = &oautherr.Error{Code: "invalid_dpop_proof", Description: "a DPoP proof is required", Status: http.StatusBadRequest}

// errWrongDPoPKey refuses a bound refresh token presented with a proof of
// another key (RFC 9449 §5).
var errWrongDPoPKey = &oautherr.Error{Code: "invalid_dpop_proof", Description: "the refresh token is bound to another DPoP key", Status: http.StatusBadRequest}

// ProofRequired reports whether a token request of client must carry a DPoP
// proof: the server requires DPoP, or the client registered
// dpop_bound_access_tokens (RFC 9449 §5.2).
func (s *Service) ProofRequired(c *record.Client) bool {
	return s.DPoPRequired || c.Metadata.DPoPBoundAccessTokens
}

// refreshBinding is the key a new refresh token is bound to: RFC 9449 §5
// binds the refresh tokens of public clients, which have no other proof
// of possession; a confidential client's refresh token is bound to its
// authentication.
func refreshBinding(c *record.Client, jkt string) string {
	if c.IsPublic() {
		return jkt
	}
	return ""
}
