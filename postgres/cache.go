package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcpoauth/mcpoauth"
)

const (
	// DefaultCacheSize is the most access tokens the verification cache
	// holds unless Options.CacheSize says otherwise.
	DefaultCacheSize = 100_000
	// DefaultCacheStaleness is the verification cache's staleness bound
	// unless Options.CacheStaleness says otherwise: how long after a
	// revocation another replica may still accept the token while its
	// notification connection is down.
	DefaultCacheStaleness = 5 * time.Second
	// cacheMaxAge bounds the life of an entry even while notifications
	// flow, so that a fault nobody foresaw cannot keep a revoked token
	// alive for the rest of its lifetime.
	cacheMaxAge = 5 * time.Minute
	// listenRetryMax bounds the wait between two attempts to reconnect
	// the notification connection.
	listenRetryMax = time.Second
)

// notifyChannelSQL names the channel of revocation notifications: one per
// schema (a database holding several deployments, each in its own schema,
// keeps their notifications apart), hashed because a channel name has at
// most 63 bytes.
const notifyChannelSQL = `'mcpoauth_' || md5(current_schema())`

// notifySQL sends the revocation notifications $1 (one payload each) on
// the schema's channel. Run in the revoking transaction: PostgreSQL
// delivers them only once it commits, and never if it rolls back.
const notifySQL = `SELECT pg_notify(` + notifyChannelSQL + `, p) FROM unnest($1::text[]) AS p`

// The payloads of revocation notifications: a kind byte, then the key.
// None carries a credential: a token is named by the hex of its digest.
const (
	notifyToken  = 't' // + hex of the token's digest
	notifyGrant  = 'g' // + grant ID
	notifyClient = 'c' // + client ID
	notifyAll    = '*' // every entry: an ID too long for a payload
	// maxNotifyID is the longest ID a payload carries (PostgreSQL limits a
	// payload to 8000 bytes); a longer one flushes every cache.
	maxNotifyID = 1000
)

func tokenPayload(d mcpoauth.Digest) string { return string(notifyToken) + hex.EncodeToString(d[:]) }

func idPayload(kind byte, id string) string {
	if len(id) > maxNotifyID {
		return string(notifyAll)
	}
	return string(kind) + id
}

// notify sends the payloads in tx (see notifySQL).
func notify(ctx context.Context, tx pgx.Tx, op string, payloads ...string) error {
	if _, err := tx.Exec(ctx, notifySQL, payloads); err != nil {
		return errs.Storage(ctx, op+": notify", err)
	}
	return nil
}

// cacheEntry is one cached access token.
type cacheEntry struct {
	tok    *mcpoauth.Token
	stored time.Duration // monotonic, when it was read from the database
	until  time.Duration // monotonic, when it must be read again
}

// verificationCache holds access tokens GetToken found, evicted by the
// revocations of every replica (LISTEN/NOTIFY). See Options.VerificationCache.
type verificationCache struct {
	size      int
	staleness time.Duration
	clock     func() time.Time // the Model's, for the tokens' ExpiresAt

	mu      sync.RWMutex
	entries map[mcpoauth.Digest]cacheEntry
	// epoch counts evictions: a GetToken that read the database stores
	// its answer only if no eviction happened since it started, so that a
	// read racing a revocation cannot put the revoked token back.
	epoch atomic.Uint64

	// listening is true while the notification connection is up;
	// aliveAt (monotonic) is when it was last known to be delivering:
	// every notification committed before it has been received.
	listening atomic.Bool
	aliveAt   atomic.Int64
}

// monoBase anchors the cache's monotonic clock.
var monoBase = time.Now()

func mono() time.Duration { return time.Since(monoBase) }

func newVerificationCache(size int, staleness time.Duration, clock func() time.Time) *verificationCache {
	return &verificationCache{size: size, staleness: staleness, clock: clock, entries: make(map[mcpoauth.Digest]cacheEntry)}
}

// get returns the cached token, if it may be served: younger than the
// staleness bound, or the notification connection confirmed to be
// delivering within that bound.
func (c *verificationCache) get(d mcpoauth.Digest) (*mcpoauth.Token, bool) {
	c.mu.RLock()
	e, ok := c.entries[d]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	now := mono()
	if now >= e.until {
		return nil, false
	}
	if now-e.stored < c.staleness || c.delivering(now) {
		return e.tok, true
	}
	return nil, false
}

// delivering reports whether, at now, every revocation committed more than
// the staleness bound ago has reached this cache.
func (c *verificationCache) delivering(now time.Duration) bool {
	return c.listening.Load() && now-time.Duration(c.aliveAt.Load()) < c.staleness
}

// put stores an access token read from the database, unless an eviction
// happened since epoch was read; readAt is when the read began, which the
// entry's age counts from.
func (c *verificationCache) put(t *mcpoauth.Token, epoch uint64, readAt time.Duration) {
	if t.Kind != mcpoauth.AccessToken {
		return // refresh tokens change (rotation): always read
	}
	now := mono()
	life := min(t.ExpiresAt.Sub(c.clock()), cacheMaxAge)
	if life <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	if len(c.entries) >= c.size {
		// Make room: the expired entries met first, or else one
		// arbitrary entry (map order).
		n := 0
		for d, e := range c.entries {
			if n == 0 || now >= e.until {
				delete(c.entries, d)
				n++
			}
			if n >= 8 {
				break
			}
		}
	}
	c.entries[t.Digest] = cacheEntry{tok: t, stored: readAt, until: readAt + life}
}

// evict applies one revocation payload.
func (c *verificationCache) evict(payload string) {
	if payload == "" {
		return
	}
	kind, key := payload[0], payload[1:]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch.Add(1)
	switch kind {
	case notifyToken:
		var d mcpoauth.Digest
		if n, err := hex.Decode(d[:], []byte(key)); err == nil && n == len(d) {
			delete(c.entries, d)
			return
		}
	case notifyGrant:
		for d, e := range c.entries {
			if e.tok.GrantID == key {
				delete(c.entries, d)
			}
		}
		return
	case notifyClient:
		for d, e := range c.entries {
			if e.tok.ClientID == key {
				delete(c.entries, d)
			}
		}
		return
	}
	// notifyAll, or a payload this version does not know: forget all.
	clear(c.entries)
}

// flush forgets every entry.
func (c *verificationCache) flush() { c.evict(string(notifyAll)) }

// listener keeps a connection LISTENing on the schema's revocation
// channel until ctx is done, reconnecting after every failure, and
// flushing the cache each time it (re)connects: notifications sent while
// it was down are lost.
func (m *Model) listener(ctx context.Context) {
	defer close(m.listenDone)
	c := m.cache
	// A ping every third of the staleness bound keeps the connection
	// confirmed within it; a ping that does not answer in that time ends
	// the connection.
	ping := max(c.staleness/3, time.Millisecond)
	wait := 10 * time.Millisecond
	failing := false // since the last connection that listened
	for ctx.Err() == nil {
		if m.holdListener.Load() {
			sleep(ctx, 10*time.Millisecond)
			continue
		}
		listened, err := m.listen(ctx, ping)
		c.listening.Store(false)
		m.listenerPID.Store(0)
		if ctx.Err() != nil {
			return
		}
		if listened {
			failing, wait = false, 10*time.Millisecond
		}
		if !failing {
			slog.Default().Warn("mcpoauth postgres: verification cache: notification connection lost; cached tokens are served for at most the staleness bound until it is back",
				"err", err, "staleness", c.staleness)
			failing = true
		}
		sleep(ctx, wait)
		wait = min(2*wait, listenRetryMax)
	}
}

// listen runs one notification connection until it fails; listened
// reports whether it got as far as listening.
func (m *Model) listen(ctx context.Context, ping time.Duration) (listened bool, err error) {
	c := m.cache
	cfg := m.pool.Config().ConnConfig.Copy()
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		c.evict(n.Payload)
	}
	cctx, cancel := context.WithTimeout(ctx, max(ping, 5*time.Second))
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+notifyChannelSQL).Scan(&channel); err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, err
	}
	// Listening from here on: what was revoked before is in the
	// database, so forget what may predate it.
	c.aliveAt.Store(int64(mono()))
	c.flush()
	c.listening.Store(true)
	m.listenerPID.Store(conn.PgConn().PID())
	next := mono() + ping
	for {
		if d := next - mono(); d > 0 {
			wctx, cancel := context.WithTimeout(ctx, d)
			err := conn.PgConn().WaitForNotification(wctx)
			cancel()
			switch {
			case ctx.Err() != nil:
				return true, ctx.Err()
			case err == nil:
				continue
			case !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err):
				return true, err
			}
		}
		// A round trip every ping interval, busy or quiet, proves the
		// connection delivers: notifications committed before it was
		// sent arrive before its answer.
		sent := mono()
		pctx, cancel := context.WithTimeout(ctx, ping)
		err := conn.PgConn().Exec(pctx, "SELECT 1").Close()
		cancel()
		if err != nil {
			return true, err
		}
		c.aliveAt.Store(int64(sent))
		next = sent + ping
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
