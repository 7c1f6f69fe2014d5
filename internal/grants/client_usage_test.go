package grants

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// fakeUsage records the uses it is asked to record and answers err.
type fakeUsage struct {
	calls []string
	err   error
}

func (f *fakeUsage) RecordClientUse(_ context.Context, clientID string, at time.Time) error {
	f.calls = append(f.calls, fmt.Sprintf("%s@%s", clientID, at.Format(time.RFC3339)))
	return f.err
}

// fakeDocuments makes documents enabled; it resolves nothing.
type fakeDocuments struct{}

func (fakeDocuments) Resolve(context.Context, string) (metadata.ClientMetadata, error) {
	return metadata.ClientMetadata{}, errors.New("not resolved")
}

func TestRecordUse(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	storeFailure := errors.New("connection reset")
	for _, tc := range []struct {
		name      string
		noUsage   bool
		client    record.Client
		storeErr  error
		wantCalls int
		wantErr   *oautherr.Error
		reported  bool
	}{
		{name: "used a day ago: recorded", client: record.Client{ID: "c", LastUsedAt: now.Add(-ClientUseResolution)}, wantCalls: 1},
		{name: "used within the day: no write", client: record.Client{ID: "c", LastUsedAt: now.Add(-ClientUseResolution + time.Second)}},
		{name: "use unknown: recorded", client: record.Client{ID: "c"}, wantCalls: 1},
		{name: "idle clients kept: no write", noUsage: true, client: record.Client{ID: "c"}},
		{name: "document client: not stored, no write", client: record.Client{ID: "https://app.example.com/client.json"}},
		{name: "client gone: invalid_client", client: record.Client{ID: "c"}, storeErr: fmt.Errorf("x: %w", record.ErrNotFound), wantCalls: 1, wantErr: errClientGone},
		{name: "store failure: reported, tokens handed out", client: record.Client{ID: "c"}, storeErr: storeFailure, wantCalls: 1, reported: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			usage := &fakeUsage{err: tc.storeErr}
			var got []error
			s := &Service{Policy: Policy{Now: func() time.Time { return now }}, Documents: fakeDocuments{}}
			if !tc.noUsage {
				s.Usage = usage
				s.UseNotRecorded = func(_ context.Context, err error) { got = append(got, err) }
			}
			oerr := s.recordUse(t.Context(), &tc.client, now)
			require.Equal(t, tc.wantErr, oerr)
			require.Len(t, usage.calls, tc.wantCalls)
			if tc.reported {
				require.Equal(t, []error{storeFailure}, got)
			} else {
				require.Empty(t, got)
			}
		})
	}
}
