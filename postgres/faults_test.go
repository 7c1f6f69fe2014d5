package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/postgres"
)

// tcpProxy forwards loopback connections to the database, and can be taken
// down (every open connection is cut, new ones are closed at once) and
// brought back: the database as the server sees it becomes unreachable and
// returns, and the real database, which other tests use, is left alone.
// Armed with cutAfterCommit, it lets the next COMMIT through and cuts that
// connection when the database acknowledges it, before the acknowledgement
// reaches the server: the transaction committed, and the server cannot know.
type tcpProxy struct {
	ln     net.Listener
	target string
	// armed: cut the connection that sends the next COMMIT; cut receives a
	// value once it is done.
	armed atomic.Bool
	cut   chan struct{}

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target, up: true, conns: map[net.Conn]struct{}{}, cut: make(chan struct{}, 1)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() (host string, port uint16) {
	a := p.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), uint16(a.Port)
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve pipes one client connection to the database while the proxy is up.
func (p *tcpProxy) serve(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c) {
		c.Close()
		return
	}
	defer p.untrack(c)
	d, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(d) {
		d.Close()
		return
	}
	defer p.untrack(d)
	var cutting atomic.Bool // this connection sent the COMMIT to lose
	done := make(chan struct{}, 2)
	go func() { // client to database
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		var tail []byte // the end of the previous read, for a message split in two
		for {
			n, err := c.Read(buf)
			if n > 0 {
				// pgx sends COMMIT as a simple query: 'Q', length, "commit\x00".
				seen := append(tail, buf[:n]...)
				if bytes.Contains(seen, []byte("commit\x00")) && p.armed.CompareAndSwap(true, false) {
					cutting.Store(true)
				}
				tail = append(tail[:0], seen[max(0, len(seen)-8):]...)
				if _, werr := d.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // database to client
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := d.Read(buf)
			if n > 0 && cutting.Load() {
				// The acknowledgement of the COMMIT: the transaction is
				// durable; the server never hears of it.
				c.Close()
				d.Close()
				p.cut <- struct{}{}
				return
			}
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	<-done // either side ended: end both
}

// cutAfterCommit arms the proxy to lose the acknowledgement of the next
// COMMIT any connection sends.
func (p *tcpProxy) cutAfterCommit() { p.armed.Store(true) }

// track registers an open connection; false if the proxy is down.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

// setUp takes the proxy down (cutting every connection) or brings it back.
func (p *tcpProxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.setUp(false)
	p.wg.Wait()
}

// newProxiedPool returns a pool on a fresh schema whose connections go
// through a tcpProxy, in plain text so that the proxy can see a COMMIT.
func newProxiedPool(t *testing.T) (*tcpProxy, *pgxpool.Pool) {
	t.Helper()
	_, admin := postgres.AdminDatabase(t)
	db := admin.Config().ConnConfig
	proxy := newTCPProxy(t, net.JoinHostPort(db.Host, strconv.Itoa(int(db.Port))))
	pools := postgres.NewSharedTestPools(t, 1, func(c *pgxpool.Config) {
		c.ConnConfig.Host, c.ConnConfig.Port = proxy.addr()
		// No TLS, and no fallback configuration, which would bypass the
		// proxy.
		c.ConnConfig.TLSConfig, c.ConnConfig.Fallbacks = nil, nil
		c.ConnConfig.ConnectTimeout = 2 * time.Second
		c.MaxConns = 4
	})
	return proxy, pools[0]
}

// internals are strings of the storage layer that must never reach a client.
var internals = []string{"postgres", "pgx", "pgconn", "SQLSTATE", "dial", "connect", "EOF", "127.0.0.1", "mcpoauth_", "tcp", "broken pipe", "reset"}

// requireServerError checks a reply is a bare 500 server_error: fixed
// description, no internals in the body or the headers, no challenge that
// would tell the client its token is bad.
func requireServerError(t *testing.T, r reply, extra ...string) {
	t.Helper()
	require.Equal(t, http.StatusInternalServerError, r.Status, r.String())
	require.Equal(t, "server_error", r.errorCode(), r.String())
	require.Equal(t, "internal server error", r.errorDescription())
	for _, s := range append(internals, extra...) {
		require.NotContains(t, strings.ToLower(string(r.Body)), strings.ToLower(s))
		for name, vals := range r.Header {
			require.NotContains(t, strings.ToLower(strings.Join(vals, " ")), strings.ToLower(s), name)
		}
	}
	require.NotContains(t, r.Header.Get("WWW-Authenticate"), "invalid_token")
}

// requireUnavailable checks a reply is the bearer path's 503: Retry-After,
// fixed body, no internals, no challenge.
func requireUnavailable(t *testing.T, r reply, extra ...string) {
	t.Helper()
	require.Equal(t, http.StatusServiceUnavailable, r.Status, r.String())
	require.Equal(t, "temporarily_unavailable", r.errorCode(), r.String())
	require.Equal(t, "1", r.Header.Get("Retry-After"))
	require.Empty(t, r.Header.Values("WWW-Authenticate"))
	for _, s := range append(internals, extra...) {
		require.NotContains(t, strings.ToLower(string(r.Body)), strings.ToLower(s))
	}
}

// TestDatabaseUnreachable: with the database unreachable (the proxy in
// front of it down, every connection cut), every endpoint that needs it
// answers 500 server_error (the bearer path 503 with Retry-After) with no
// internals, reports the cause to ErrorHandler, and nothing panics: a bearer token is not called invalid,
// a revocation is not claimed, an introspection is not "inactive". Nothing
// is burnt either: once the database is reachable again, the very
// credentials refused meanwhile work, without restarting anything.
// (ISSUE 5 item 4.)
func TestDatabaseUnreachable(t *testing.T) {
	proxy, pool := newProxiedPool(t)
	model := postgres.NewTestModelOn(t, pool, postgres.Options{SweepInterval: postgres.NoSweep})
	const rsID, rsSecret = "resource-server", "rs-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	rep := newReplica(t, model, nil, func(c *mcpoauth.Config) { c.IntrospectionClients = []string{rsID} })
	_, err := rep.srv.RegisterClient(context.Background(), rsClient(rsID, rsSecret))
	require.NoError(t, err)

	// Everything a client holds when the database goes away.
	ua := newAgent()
	pubID, _, err := ua.register(rep.base, publicCodeClient())
	require.NoError(t, err)
	// A machine client is pre-registered: /register refuses client_credentials.
	const confID, confSecret = "m2m", "m2m-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	_, err = rep.srv.RegisterClient(context.Background(), rsClient(confID, confSecret))
	require.NoError(t, err)
	devID, _, err := ua.register(rep.base, map[string]any{
		"grant_types": []string{"urn:ietf:params:oauth:grant-type:device_code"}, "token_endpoint_auth_method": "none", "client_name": "TV",
	})
	require.NoError(t, err)
	tok := ua.mustLogin(t, pubID, rep, rep, rep, rep)
	spare := ua.mustCode(t, pubID, rep, rep, rep) // redeemed only after the outage
	// A pending authorization request, decided during the outage.
	r, err := ua.get(authorizeURL(rep.base, pubID))
	requireStatus(t, r, err, http.StatusFound, "")
	page, err := onReplica(rep.base, r.Header.Get("Location"))
	require.NoError(t, err)
	r, err = ua.get(page)
	requireStatus(t, r, err, http.StatusOK, "")
	pendingID, pendingCSRF := r.str("RequestID"), r.str("CSRFToken")
	r, err = ua.postForm(rep.base+"/device", url.Values{"client_id": {devID}, "resource": {clusterResource}})
	requireStatus(t, r, err, http.StatusOK, "")
	userCode := r.str("user_code")
	r, err = ua.get(rep.base + "/activate")
	requireStatus(t, r, err, http.StatusOK, "")
	deviceCSRF := r.str("csrf_token")

	// Each request, and what it answers once the database is back.
	requests := []struct {
		name string
		do   func() (reply, error)
		ok   int
	}{
		{"register", func() (reply, error) { return ua.postJSON(rep.base+"/register", publicCodeClient()) }, http.StatusCreated},
		{"authorize", func() (reply, error) { return ua.get(authorizeURL(rep.base, pubID)) }, http.StatusFound},
		{"consent page", func() (reply, error) { return ua.get(page) }, http.StatusOK},
		{"consent decision", func() (reply, error) {
			return ua.postForm(rep.base+"/consent", url.Values{"request_id": {pendingID}, "csrf_token": {pendingCSRF}, "decision": {"approve"}, "username": {"alice"}})
		}, http.StatusSeeOther},
		{"token: authorization_code", func() (reply, error) { return ua.postForm(rep.base+"/token", exchangeForm(pubID, spare)) }, http.StatusOK},
		{"token: refresh_token", func() (reply, error) { return ua.postForm(rep.base+"/token", refreshForm(pubID, tok.refresh)) }, http.StatusOK},
		{"token: client_credentials", func() (reply, error) {
			return ua.postForm(rep.base+"/token", url.Values{"grant_type": {"client_credentials"}}, confID, confSecret)
		}, http.StatusOK},
		{"device authorization", func() (reply, error) {
			return ua.postForm(rep.base+"/device", url.Values{"client_id": {devID}, "resource": {clusterResource}})
		}, http.StatusOK},
		{"device approval", func() (reply, error) {
			return ua.postForm(rep.base+"/activate/approve", url.Values{"user_code": {userCode}, "csrf_token": {deviceCSRF}, "username": {"alice"}})
		}, http.StatusSeeOther},
		{"introspect", func() (reply, error) {
			return ua.postForm(rep.base+"/introspect", url.Values{"token": {tok.access}}, rsID, rsSecret)
		}, http.StatusOK},
		{"bearer", func() (reply, error) { return ua.bearer(rep.base, tok.access) }, http.StatusOK},
		{"revoke", func() (reply, error) {
			return ua.postForm(rep.base+"/revoke", url.Values{"client_id": {pubID}, "token": {tok.access}})
		}, http.StatusOK},
	}

	proxy.setUp(false)
	host, port := proxy.addr()
	for _, tc := range requests {
		t.Run("down/"+tc.name, func(t *testing.T) {
			r, err := tc.do()
			require.NoError(t, err)
			if tc.name == "bearer" {
				// The bearer path answers 503 with Retry-After: the
				// client keeps its token (a 401 would make it drop it).
				requireUnavailable(t, r, host, strconv.Itoa(int(port)))
				return
			}
			requireServerError(t, r, host, strconv.Itoa(int(port)))
		})
	}
	errs := rep.serverErrors()
	require.NotEmpty(t, errs)
	for _, err := range errs {
		require.Error(t, errors.Unwrap(err), "ErrorHandler gets the cause: %v", err)
	}

	proxy.setUp(true)
	for _, tc := range requests {
		t.Run("back/"+tc.name, func(t *testing.T) {
			r, err := tc.do()
			require.NoError(t, err)
			require.Equal(t, tc.ok, r.Status, r.String())
			switch tc.name {
			case "introspect":
				require.Equal(t, true, r.json()["active"])
			case "bearer":
				require.Equal(t, "alice", r.str("user"))
			case "consent decision":
				loc, err := url.Parse(r.Header.Get("Location"))
				require.NoError(t, err)
				require.NotEmpty(t, loc.Query().Get("code"), "the pending request survived the outage")
			}
		})
	}
	require.Len(t, rep.serverErrors(), len(errs), "no server error once the database is back")
	// The access token was revoked last: gone now.
	r, err = ua.bearer(rep.base, tok.access)
	requireStatus(t, r, err, http.StatusUnauthorized, "invalid_token")
}

// TestLostCommitAcknowledgement: the database commits a redemption but the
// connection breaks before the server hears of it (the proxy cuts it right
// after the COMMIT's acknowledgement). The client gets a bare 500 and
// retries. A retry can never mint a second set of tokens: the credential is
// consumed, so the retry is a replay, answered invalid_grant, and it
// revokes the grant, the tokens nobody received included (RFC 9700
// §4.14.2: the server cannot tell a retry from a replay). A revocation
// whose acknowledgement was lost is simply repeated: 200. (ISSUE 5 item 4.)
func TestLostCommitAcknowledgement(t *testing.T) {
	proxy, pool := newProxiedPool(t)
	rep := newReplica(t, postgres.NewTestModelOn(t, pool, postgres.Options{SweepInterval: postgres.NoSweep}), nil)
	ua := newAgent()
	clientID, _, err := ua.register(rep.base, publicCodeClient())
	require.NoError(t, err)
	tokensNow := func(t *testing.T) tokenPair {
		return ua.mustLogin(t, clientID, rep, rep, rep, rep)
	}
	grantRows := func(t *testing.T, grantID string) int {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM mcpoauth_tokens WHERE grant_id = $1`, grantID).Scan(&n))
		return n
	}
	grantOf := func(t *testing.T, token string) string {
		var g string
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT grant_id FROM mcpoauth_tokens WHERE digest = $1`, digest(token)).Scan(&g))
		return g
	}

	for _, tc := range []struct {
		name string
		// prepare returns the request whose acknowledgement is lost, the
		// grant it belongs to and an access token of that grant.
		prepare     func(t *testing.T) (form url.Values, path, grantID, access string)
		retryStatus int
		retryCode   string
		lostRows    int // the grant's token rows once the commit is lost
	}{
		{"code redemption", func(t *testing.T) (url.Values, string, string, string) {
			code := ua.mustCode(t, clientID, rep, rep, rep)
			var g string
			require.NoError(t, pool.QueryRow(context.Background(), `SELECT grant_id FROM mcpoauth_authorization_codes WHERE digest = $1`, digest(code)).Scan(&g))
			return exchangeForm(clientID, code), "/token", g, ""
		}, http.StatusBadRequest, "invalid_grant", 2},
		{"refresh rotation", func(t *testing.T) (url.Values, string, string, string) {
			tok := tokensNow(t)
			return refreshForm(clientID, tok.refresh), "/token", grantOf(t, tok.access), tok.access
		}, http.StatusBadRequest, "invalid_grant", 4},
		{"revocation of a refresh token", func(t *testing.T) (url.Values, string, string, string) {
			tok := tokensNow(t)
			return url.Values{"client_id": {clientID}, "token": {tok.refresh}}, "/revoke", grantOf(t, tok.access), tok.access
		}, http.StatusOK, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form, path, grantID, access := tc.prepare(t)
			proxy.cutAfterCommit()
			r, err := ua.postForm(rep.base+path, form)
			require.NoError(t, err)
			<-proxy.cut
			requireServerError(t, r)
			require.Equal(t, tc.lostRows, grantRows(t, grantID), "the transaction committed")

			r, err = ua.postForm(rep.base+path, form)
			requireStatus(t, r, err, tc.retryStatus, tc.retryCode)
			require.Zero(t, grantRows(t, grantID), "nothing of the grant is left")
			if access != "" {
				r, err = ua.bearer(rep.base, access)
				requireStatus(t, r, err, http.StatusUnauthorized, "invalid_token")
			}
		})
	}
}

// grantRecord is what a load worker knows of one grant.
type grantRecord struct {
	access   []string // every access token received, in order
	refresh  string   // the refresh token it holds
	rotated  int      // successful rotations
	replayed bool     // a retry after a lost answer revoked the grant
}

// loadStats counts what the load saw, and kicks the terminator every
// kickEvery requests, so that faults keep pace with the load however fast
// the machine runs it.
type loadStats struct {
	requests, serverErrors, lostAnswers, redemptions, rotations, flowRestarts atomic.Int64
	kickEvery                                                                 int64
	kick                                                                      chan struct{}
}

// request counts a request about to be sent.
func (s *loadStats) request() {
	if s.requests.Add(1)%s.kickEvery == 0 {
		select {
		case s.kick <- struct{}{}:
		default: // a round is due already
		}
	}
}

// loadWorker runs code flows and refreshes against the replicas in turn,
// retrying each step after a 5xx, as a client would.
type loadWorker struct {
	ua       *agent
	replicas []*replica
	clientID string
	stats    *loadStats
	next     int
	grants   []*grantRecord
}

// pick returns the replica for the next request (round robin).
func (w *loadWorker) pick() *replica {
	r := w.replicas[w.next%len(w.replicas)]
	w.next++
	return r
}

// maxAttempts bounds the retries of one step.
const maxAttempts = 200

// code obtains an authorization code, restarting the flow after a failed
// step (a 5xx, or a step whose request a lost answer consumed).
func (w *loadWorker) code() (string, error) {
	for range maxAttempts {
		code, r, err := w.ua.codeVia(w.clientID, w.pick(), w.pick(), w.pick())
		switch {
		case err != nil:
			return "", err
		case code != "":
			return code, nil
		case r.Status >= 500:
			if r.errorCode() != "server_error" || r.errorDescription() != "internal server error" {
				return "", errors.New("5xx without a bare server_error: " + r.String())
			}
		case redirectError(r) == "server_error":
			// Redirected to the client, as OAuth 2.1 §4.1.2.1 has it.
			if strings.Contains(r.Header.Get("Location"), "127.0.0.1:") {
				return "", errors.New("internals in the redirect: " + r.Header.Get("Location"))
			}
		default:
			return "", errors.New("code flow step failed: " + r.String())
		}
		w.stats.serverErrors.Add(1)
		w.stats.flowRestarts.Add(1)
	}
	return "", errors.New("code flow: no success in the attempts allowed")
}

// redeem posts a token request until it is answered for good: 200, or
// invalid_grant after a 5xx whose request did commit (the retry is then a
// replay, which revokes the grant). Any other answer is an error.
func (w *loadWorker) redeem(form url.Values) (tokenPair, bool, error) {
	lost := false
	for range maxAttempts {
		r, err := w.ua.postForm(w.pick().base+"/token", form)
		switch {
		case err != nil:
			return tokenPair{}, false, err
		case r.Status == http.StatusOK:
			return tokenPair{access: r.str("access_token"), refresh: r.str("refresh_token")}, true, nil
		case r.Status >= 500:
			if r.errorCode() != "server_error" || r.errorDescription() != "internal server error" {
				return tokenPair{}, false, errors.New("5xx without a bare server_error: " + r.String())
			}
			w.stats.serverErrors.Add(1)
			lost = true
		case lost && r.Status == http.StatusBadRequest && r.errorCode() == "invalid_grant":
			w.stats.lostAnswers.Add(1)
			return tokenPair{}, false, nil
		default:
			return tokenPair{}, false, errors.New("unexpected answer: " + r.String())
		}
	}
	return tokenPair{}, false, errors.New("token request: no answer in the attempts allowed")
}

// run performs ops redemptions and rotations: per grant, one code
// redemption and up to rotationsPerGrant refreshes.
func (w *loadWorker) run(ops, rotationsPerGrant int) error {
	var g *grantRecord
	for done := 0; done < ops; done++ {
		if g == nil || g.replayed || g.rotated == rotationsPerGrant {
			code, err := w.code()
			if err != nil {
				return err
			}
			tok, ok, err := w.redeem(exchangeForm(w.clientID, code))
			if err != nil {
				return err
			}
			if !ok {
				// The code was redeemed by the attempt whose answer was
				// lost; the retry revoked that grant: none to hold.
				g = nil
				continue
			}
			w.stats.redemptions.Add(1)
			g = &grantRecord{access: []string{tok.access}, refresh: tok.refresh}
			w.grants = append(w.grants, g)
			continue
		}
		tok, ok, err := w.redeem(refreshForm(w.clientID, g.refresh))
		if err != nil {
			return err
		}
		if !ok {
			g.replayed = true
			continue
		}
		w.stats.rotations.Add(1)
		g.access = append(g.access, tok.access)
		g.refresh = tok.refresh
		g.rotated++
	}
	return nil
}

// TestTerminateBackendsUnderLoad: two replicas on one database serve a
// bounded load (8 clients, 100 code redemptions or refresh rotations each,
// every step on the replicas in turn) while every connection the replicas
// hold is terminated (pg_terminate_backend) after every 32 requests, the
// requests going on meanwhile. Requests caught by a termination fail with a
// bare 500 server_error (or, at /authorize and the consent decision, a
// redirect to the client with error=server_error); clients retry; the pools
// reconnect by themselves. Afterwards no grant was lost or duplicated:
// every token a client received works on both replicas (unless a retry
// after a lost answer revoked its grant, as a replay must); the database
// holds, per grant, exactly the tokens its client received (one live
// refresh token, one rotated per rotation seen); and no grant the client
// does not know has any token. (ISSUE 5 item 4.)
func TestTerminateBackendsUnderLoad(t *testing.T) {
	const (
		workers           = 8
		opsPerWorker      = 100
		rotationsPerGrant = 4
		terminateEvery    = 32 // requests
		budget            = 2 * time.Minute
	)
	postgres.RequirePostgres(t)
	dbName, admin := postgres.AdminDatabase(t)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	appName := "mcpoauth-faults-" + hex.EncodeToString(suffix[:])
	pools := postgres.NewSharedTestPools(t, 2, func(c *pgxpool.Config) {
		// Only this test's connections are terminated.
		c.ConnConfig.RuntimeParams["application_name"] = appName
		c.ConnConfig.ConnectTimeout = 5 * time.Second
		c.ConnConfig.TLSConfig, c.ConnConfig.Fallbacks = nil, nil
		c.MaxConns = 8
	})
	replicas := make([]*replica, len(pools))
	for i, pool := range pools {
		replicas[i] = newReplica(t, postgres.NewTestModelOn(t, pool, postgres.Options{SweepInterval: postgres.NoSweep}), nil)
	}
	clientID, _, err := newAgent().register(replicas[0].base, publicCodeClient())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	stats := &loadStats{kickEvery: terminateEvery, kick: make(chan struct{}, 1)}
	var terminations, rounds atomic.Int64
	stopTerminator := make(chan struct{})
	terminatorDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopTerminator:
				terminatorDone <- nil
				return
			case <-stats.kick:
			}
			var n int64
			err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
				FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()`,
				dbName, appName).Scan(&n)
			if err != nil {
				terminatorDone <- err
				return
			}
			terminations.Add(n)
			rounds.Add(1)
		}
	}()

	ws := make([]*loadWorker, workers)
	errs := make(chan error, workers)
	start := time.Now()
	for i := range ws {
		ua := newAgent()
		ua.onRequest = stats.request
		ws[i] = &loadWorker{ua: ua, replicas: replicas, clientID: clientID, stats: stats, next: i}
		go func() { errs <- ws[i].run(opsPerWorker, rotationsPerGrant) }()
	}
	for range ws {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatalf("the load did not finish within %v", budget)
		}
	}
	elapsed := time.Since(start)
	close(stopTerminator)
	require.NoError(t, <-terminatorDone)
	t.Logf("%d workers × %d ops in %v: %d requests, %d terminations in %d rounds, %d answered 500 server_error; "+
		"%d code redemptions and %d rotations succeeded, %d answers lost (retry was a replay, grant revoked), %d code flows restarted",
		workers, opsPerWorker, elapsed.Round(time.Millisecond), stats.requests.Load(), terminations.Load(), rounds.Load(),
		stats.serverErrors.Load(), stats.redemptions.Load(), stats.rotations.Load(), stats.lostAnswers.Load(), stats.flowRestarts.Load())
	require.Positive(t, terminations.Load(), "connections were terminated during the load")
	require.Positive(t, stats.serverErrors.Load(), "some requests met a terminated connection")

	// The database's view, read after the load.
	type row struct {
		grant   string
		kind    int16
		used    bool
		present bool
	}
	tokens := map[string]row{} // by hex digest
	grantsInDB := map[string]bool{}
	// The terminator's last round may have killed idle connections of the
	// pool: this read is the test's, not the Model's retried one, so it
	// starts on fresh connections.
	pools[0].Reset()
	rows, err := pools[0].Query(ctx, `SELECT digest, grant_id, kind, used FROM mcpoauth_tokens`)
	require.NoError(t, err)
	for rows.Next() {
		var d []byte
		var r row
		require.NoError(t, rows.Scan(&d, &r.grant, &r.kind, &r.used))
		r.present = true
		tokens[hex.EncodeToString(d)] = r
		grantsInDB[r.grant] = true
	}
	require.NoError(t, rows.Err())
	lookup := func(credential string) row { return tokens[hex.EncodeToString(digest(credential))] }

	ua := newAgent()
	known := map[string]bool{}
	var live, revoked int
	for _, w := range ws {
		for _, g := range w.grants {
			if g.replayed {
				// A retry after a lost answer revoked the grant: none of
				// its tokens is left, and none works.
				revoked++
				for _, a := range g.access {
					require.False(t, lookup(a).present)
				}
				require.False(t, lookup(g.refresh).present)
				r, err := ua.bearer(replicas[revoked%2].base, g.access[len(g.access)-1])
				requireStatus(t, r, err, http.StatusUnauthorized, "invalid_token")
				continue
			}
			live++
			first := lookup(g.access[0])
			require.True(t, first.present, "a token a client received is stored")
			known[first.grant] = true
			// Exactly what the client received: its access tokens, the
			// refresh tokens it rotated, the one it holds.
			var access, usedRefresh, liveRefresh int
			for _, r := range tokens {
				switch {
				case r.grant != first.grant:
				case r.kind == int16(mcpoauth.AccessToken):
					access++
				case r.used:
					usedRefresh++
				default:
					liveRefresh++
				}
			}
			require.Equal(t, len(g.access), access, "no access token issued beyond those received")
			require.Equal(t, g.rotated, usedRefresh, "one rotated refresh token per rotation seen")
			require.Equal(t, 1, liveRefresh, "one live refresh token")
			require.Equal(t, row{grant: first.grant, kind: int16(mcpoauth.RefreshToken), present: true}, lookup(g.refresh))
			for _, a := range g.access {
				require.Equal(t, first.grant, lookup(a).grant)
			}
			for _, rep := range replicas {
				r, err := ua.bearer(rep.base, g.access[len(g.access)-1])
				requireStatus(t, r, err, http.StatusOK, "")
			}
		}
	}
	for g := range grantsInDB {
		require.True(t, known[g], "every grant with tokens is one a client holds")
	}
	require.Equal(t, int(stats.redemptions.Load()), live+revoked)
	t.Logf("afterwards: %d live grants verified on both replicas, %d grants revoked by a replayed retry, %d token rows", live, revoked, len(tokens))
}

// rsClient is a confidential resource server client for RegisterClient.
func rsClient(id, secret string) metadata.ClientInformation {
	return metadata.ClientInformation{
		ClientID: id, ClientSecret: secret,
		ClientMetadata: metadata.ClientMetadata{ClientName: "resource server", GrantTypes: []string{mcpoauth.GrantClientCredentials}},
	}
}
