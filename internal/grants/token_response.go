package grants

import (
	"strconv"
	"strings"
	"time"
)

// TokenResponse is the RFC 6749 §5.1 success response: exactly these members.
type TokenResponse struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	Scopes       []string
	// DPoP marks an access token bound to a DPoP key: token_type DPoP
	// (RFC 9449 §5.1).
	DPoP bool
}

// AppendJSON appends the response as JSON. Every value is safe to write
// without escaping: tokens are base64url and scope tokens exclude '"' and '\'
// (RFC 6749 §3.3), so the token endpoint needs no reflection.
func (t *TokenResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"access_token":"`...)
	b = append(b, t.AccessToken...)
	// RFC 6750 §4 spells the type "Bearer", RFC 9449 §5.1 "DPoP"; clients
	// compare case-insensitively.
	if t.DPoP {
		b = append(b, `","token_type":"DPoP","expires_in":`...)
	} else {
		b = append(b, `","token_type":"Bearer","expires_in":`...)
	}
	b = strconv.AppendInt(b, int64(t.ExpiresIn/time.Second), 10)
	if t.RefreshToken != "" {
		b = append(b, `,"refresh_token":"`...)
		b = append(b, t.RefreshToken...)
		b = append(b, '"')
	}
	b = append(b, `,"scope":"`...)
	for i, s := range t.Scopes {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return append(b, `"}`...)
}

// Scope returns the scopes space-joined.
func (t *TokenResponse) Scope() string { return strings.Join(t.Scopes, " ") }
