package postgres

import (
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
)

// TestVerificationCachePutRules: a read that raced an eviction (the epoch
// moved between the read's start and its put) is not cached, so a revoked
// token never comes back; refresh tokens are never cached (they change on
// rotation); and an entry's age counts from the read's start.
func TestVerificationCachePutRules(t *testing.T) {
	now := time.Now()
	token := func(kind mcpoauth.TokenKind) *mcpoauth.Token {
		return &mcpoauth.Token{Digest: mcpoauth.Digest{byte(kind)}, Kind: kind, GrantID: "g1", ExpiresAt: now.Add(time.Hour)}
	}
	c := newVerificationCache(10, time.Second, func() time.Time { return now })

	epoch, readAt := c.epoch.Load(), mono()
	c.evict(string(notifyGrant) + "g1") // a revocation during the read
	access := token(mcpoauth.AccessToken)
	c.put(access, epoch, readAt)
	if _, ok := c.get(access.Digest); ok {
		t.Fatal("a read that raced an eviction was cached")
	}

	refresh := token(mcpoauth.RefreshToken)
	c.put(refresh, c.epoch.Load(), mono())
	if _, ok := c.get(refresh.Digest); ok {
		t.Fatal("a refresh token was cached")
	}

	c.put(access, c.epoch.Load(), mono()-2*time.Second) // a read that began before the staleness bound
	if _, ok := c.get(access.Digest); ok {
		t.Fatal("an entry older than the staleness bound was served with no notification connection")
	}
	c.put(access, c.epoch.Load(), mono())
	if _, ok := c.get(access.Digest); !ok {
		t.Fatal("a fresh access token read was not cached")
	}
}
