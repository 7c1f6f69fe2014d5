package handlers

import (
	"errors"
	"net/http"

	"github.com/mcpoauth/mcpoauth/dpop"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// errRepeatedProof refuses a token request with more than one DPoP header
// (RFC 9449 §4.3: exactly one).
var errRepeatedProof = &oautherr.Error{Code: dpop.ErrorInvalidProof, Description: "exactly one DPoP header is allowed", Status: http.StatusBadRequest}

// errUseNonce asks the client to retry with the nonce of the DPoP-Nonce
// header (RFC 9449 §8).
var errUseNonce = &oautherr.Error{Code: dpop.ErrorUseNonce, Description: "use the DPoP nonce the server provided", Status: http.StatusBadRequest}

// checkProof checks the DPoP proof of a token request of an authenticated
// client (RFC 9449 §5): none is fine unless the server or the client asks
// for bound tokens; one must be valid for POST to the token endpoint, carry
// the current nonce, and its key's thumbprint is returned for the grant to
// bind the tokens to ("" without a proof). On failure it answers the request
// (400 invalid_dpop_proof, or use_dpop_nonce with a DPoP-Nonce header) and
// reports false.
func (e *Env) checkProof(w http.ResponseWriter, r *http.Request, client *record.Client) (string, bool) {
	values := r.Header.Values(dpop.Header)
	switch {
	case len(values) > 1:
		e.fail(w, r, "token:dpop", errRepeatedProof)
		return "", false
	case len(values) == 0:
		if e.Grants.ProofRequired(client) {
			e.dpopNonce(w)
			e.fail(w, r, "token:dpop", grants.ErrDPoPProofRequired)
			return "", false
		}
		return "", true
	}
	p, err := e.DPoP.Verify(values[0], dpop.Request{Method: r.Method, URL: e.TokenURL})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		e.dpopNonce(w)
		e.fail(w, r, "token:dpop", errUseNonce)
		return "", false
	case err != nil:
		e.fail(w, r, "token:dpop", &oautherr.Error{Code: dpop.ErrorInvalidProof, Description: "the DPoP proof is invalid", Status: http.StatusBadRequest, Cause: err})
		return "", false
	}
	if p.NewNonce != "" {
		w.Header().Set(dpop.NonceHeader, p.NewNonce)
	}
	return p.JKT, true
}

// dpopNonce offers the current nonce, when nonces are required.
func (e *Env) dpopNonce(w http.ResponseWriter) {
	if e.DPoP.NoncesRequired() {
		w.Header().Set(dpop.NonceHeader, e.DPoP.Nonce())
	}
}
