package grants

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// JWTAccessTokenType is the typ header of an RFC 9068 access token (§2.1).
const JWTAccessTokenType = "at+jwt"

// TokenSigner signs a JWT payload and answers its compact serialization.
// internal/jose.KeySet is one; grants never sees a key.
type TokenSigner interface {
	Sign(payload []byte) (string, error)
	// PublishedKeyOf reports whether the kid in the header of a token the
	// server issued names a key still published: a token its removed key
	// signed is no longer accepted.
	PublishedKeyOf(token string) bool
}

// JWTAccessTokens makes access tokens RFC 9068 JWTs. The server still
// stores each one's digest, so verification, revocation and replay
// detection work as for opaque tokens.
type JWTAccessTokens struct {
	// Issuer is the iss claim.
	Issuer string
	// Signer signs the tokens.
	Signer TokenSigner
}

// jwtAccessTokenClaims are the RFC 9068 §2.2 claims.
type jwtAccessTokenClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	// Cnf binds the token to a DPoP key (RFC 9449 §6.1).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the RFC 7800 cnf claim of a DPoP-bound token.
type confirmation struct {
	JKT string `json:"jkt"`
}

// mintBoundAccessToken creates an access token record for a grant: opaque
// by default, a signed JWT when JWTAccessTokens is set; bound to the DPoP
// key of thumbprint jkt ("" for none): stored with the record, and a cnf
// claim in a JWT (RFC 9449 §6).
func (s *Service) mintBoundAccessToken(clientID, userID, grantID string, scopes []string, res, jkt string, now, grantExpires time.Time) (issued, *oautherr.Error) {
	t := s.mintToken(record.AccessToken, clientID, userID, grantID, scopes, res, now, grantExpires)
	t.record.JKT = jkt
	if s.JWTAccessTokens == nil {
		return t, nil
	}
	sub := userID
	if sub == "" {
		// RFC 9068 §2.2: with no resource owner (client credentials), sub
		// is the client's identifier.
		sub = clientID
	}
	var cnf *confirmation
	if jkt != "" {
		cnf = &confirmation{JKT: jkt}
	}
	payload, err := json.Marshal(jwtAccessTokenClaims{
		Iss:      s.JWTAccessTokens.Issuer,
		Sub:      sub,
		Aud:      res,
		Exp:      t.record.ExpiresAt.Unix(),
		Iat:      now.Unix(),
		Jti:      secret.NewID(),
		ClientID: clientID,
		Scope:    strings.Join(scopes, " "),
		Cnf:      cnf,
	})
	if err != nil {
		return issued{}, storeError(err)
	}
	v, err := s.JWTAccessTokens.Signer.Sign(payload)
	if err != nil {
		return issued{}, oautherr.ServerError(err)
	}
	t.value = v
	t.record.Digest = secret.Digest(v)
	return t, nil
}
