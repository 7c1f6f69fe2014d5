package grants

import (
	"context"
	"testing"
)

// revokeRecorder is a Store that records the context RevokeGrant ran in.
type revokeRecorder struct {
	Store
	revoked string
	ctxErr  error
	hasEnd  bool
}

func (r *revokeRecorder) RevokeGrant(ctx context.Context, grantID string) error {
	r.revoked, r.ctxErr = grantID, ctx.Err()
	_, r.hasEnd = ctx.Deadline()
	return ctx.Err()
}

// TestDiscardGrantOutlivesTheRequest: a grant whose tokens were never
// handed out is revoked even when the request's context has ended (the
// client hung up, which is often why the save failed), and within a
// deadline of its own.
func TestDiscardGrantOutlivesTheRequest(t *testing.T) {
	store := &revokeRecorder{}
	s := &Service{Store: store}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.discardGrant(ctx, "g1")
	if store.revoked != "g1" || store.ctxErr != nil {
		t.Fatalf("RevokeGrant(%q) ran with context error %v; want g1 and a live context", store.revoked, store.ctxErr)
	}
	if !store.hasEnd {
		t.Fatal("RevokeGrant ran without a deadline")
	}
}
