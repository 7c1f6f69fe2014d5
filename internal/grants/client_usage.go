package grants

import (
	"context"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// ClientUseResolution is how stale a client's stored LastUsedAt may get
// before issuing a token writes it again: a day, so that a busy client
// costs its store one write a day, not one per token, while the idle
// period (90 days by default) is counted to within a day.
const ClientUseResolution = 24 * time.Hour

// ClientUsageRecorder records that a client was issued a token. The root
// package's ClientUsageRecorder documents the contract.
type ClientUsageRecorder interface {
	RecordClientUse(ctx context.Context, clientID string, at time.Time) error
}

// recordUse notes, after tokens were issued to client at now, that the
// client is in use, so that it is not deleted as idle. It writes only when
// the LastUsedAt read at authentication is a day old (ClientUseResolution),
// never for a client of a metadata document (not stored), and never on the
// bearer path: verifying a token does not write.
//
// A client gone meanwhile (deleted, or swept as idle just before) is
// errClientGone: the delete removed what was issued, so nothing may be
// handed out. Any other failure is reported (UseNotRecorded) but does not
// fail the request: the tokens are saved and a consumed code or rotated
// refresh token cannot be given back, and the next issue tries again.
func (s *Service) recordUse(ctx context.Context, client *record.Client, now time.Time) *oautherr.Error {
	if s.Usage == nil || now.Sub(client.LastUsedAt) < ClientUseResolution || s.IsDocumentClientID(client.ID) {
		return nil
	}
	err := s.Usage.RecordClientUse(ctx, client.ID, now)
	switch {
	case err == nil:
	case isNotFound(err):
		return errClientGone
	case s.UseNotRecorded != nil:
		s.UseNotRecorded(ctx, err)
	}
	return nil
}
