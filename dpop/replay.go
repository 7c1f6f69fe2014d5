package dpop

import (
	"sync"
	"time"
)

// replayCache remembers the proofs a Verifier accepted, keyed by key
// thumbprint and jti (RFC 9449 §11.1: a jti is unique per key), until they
// are too old to be accepted again. It is bounded: when full it forgets the
// entry accepted first, and from then on refuses every proof whose iat is not
// later than that entry's, so that nothing forgotten can be replayed. Proofs
// are made just before they are sent, so a client's next proof is later.
type replayCache struct {
	mu    sync.Mutex
	seen  map[replayKey]struct{}
	order []replayEntry // a ring, in the order of acceptance
	head  int           // oldest entry
	n     int
	// floor is the latest iat forgotten while it could still be accepted.
	floor time.Time
}

type replayKey struct{ jkt, jti string }

type replayEntry struct {
	key     replayKey
	iat     time.Time
	expires time.Time
}

func (c *replayCache) init(size int) {
	c.seen = make(map[replayKey]struct{}, min(size, 1024))
	c.order = make([]replayEntry, size)
}

// add records a proof accepted at now, reporting false when it was seen
// before (or may have been, having been forgotten).
func (c *replayCache) add(jkt, jti string, iat, expires, now time.Time) bool {
	k := replayKey{jkt, jti}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget what expired, oldest first.
	for c.n > 0 && !now.Before(c.order[c.head].expires) {
		c.pop()
	}
	if _, ok := c.seen[k]; ok || !iat.After(c.floor) {
		return false
	}
	if c.n == len(c.order) {
		if e := c.order[c.head]; e.iat.After(c.floor) {
			c.floor = e.iat
		}
		c.pop()
		if !iat.After(c.floor) {
			return false
		}
	}
	c.order[(c.head+c.n)%len(c.order)] = replayEntry{key: k, iat: iat, expires: expires}
	c.n++
	c.seen[k] = struct{}{}
	return true
}

func (c *replayCache) pop() {
	delete(c.seen, c.order[c.head].key)
	c.order[c.head] = replayEntry{}
	c.head = (c.head + 1) % len(c.order)
	c.n--
}
