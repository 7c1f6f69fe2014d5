package mcpoauth

import (
	"context"
	"time"
)

// memoryAssertions are the client assertion ids MemoryModel has seen
// (AssertionReplayStore): digest → when it may be forgotten.
type memoryAssertions struct {
	ids map[Digest]time.Time
}

// UseAssertionID records a client assertion's jti until expiresAt, or
// returns ErrAlreadyUsed if it is recorded. Sweep forgets it after
// expiresAt; until then it is never replaced, whatever the model's clock
// says, so that a server whose clock differs still sees every replay.
func (m *MemoryModel) UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := AssertionIDDigest(clientID, jti)
	m.assertionsMu.Lock()
	defer m.assertionsMu.Unlock()
	if _, ok := m.assertions.ids[d]; ok {
		return errMemAssertionUsed
	}
	if m.assertions.ids == nil {
		m.assertions.ids = make(map[Digest]time.Time)
	}
	m.assertions.ids[d] = expiresAt
	return nil
}

// sweepAssertions forgets the assertion ids that expired before now.
func (m *MemoryModel) sweepAssertions(now time.Time) {
	m.assertionsMu.Lock()
	defer m.assertionsMu.Unlock()
	for d, until := range m.assertions.ids {
		if until.Before(now) {
			delete(m.assertions.ids, d)
		}
	}
}
