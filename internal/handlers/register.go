package handlers

import (
	"errors"
	"mime"
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// MaxRegistrationBytes bounds a registration request body.
const MaxRegistrationBytes = 64 << 10

// Register serves RFC 7591 dynamic client registration: POST with a JSON
// body decoded strictly (case-sensitive keys, no duplicates, no NUL, no
// trailing data), validated, defaults applied, and
// answered 201 with every registered field, client_id_issued_at, and the
// secret with client_secret_expires_at when one is issued (RFC 7591 §3.2.1).
// The registration policy, if any, sees the validated metadata first; the
// client_credentials grant is refused unless it allows it.
func Register(env *Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			env.fail(w, r, "register", oautherr.InvalidClientMetadata("content type must be application/json"))
			return
		}
		m, err := metadata.DecodeClientMetadata(http.MaxBytesReader(w, r.Body, MaxRegistrationBytes), MaxRegistrationBytes)
		if err != nil {
			oerr := oautherr.InvalidClientMetadata("malformed client metadata")
			if errors.Is(err, metadata.ErrTooLarge) {
				oerr.Status, oerr.Description = http.StatusRequestEntityTooLarge, "request body too large"
			}
			env.fail(w, r, "register", oerr.WithCause(err))
			return
		}
		var policy grants.RegistrationPolicy
		if env.RegistrationPolicy != nil {
			policy = func(m *metadata.ClientMetadata) (bool, *oautherr.Error) { return env.RegistrationPolicy(r, m) }
		}
		info, oerr := env.Grants.Register(r.Context(), env.Registrar, m, policy)
		if oerr != nil {
			env.fail(w, r, "register", oerr)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, info)
	})
}
