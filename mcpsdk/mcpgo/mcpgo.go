// Package mcpgo plugs mcpoauth into github.com/mark3labs/mcp-go (tested
// with v1.2.1).
//
// mcp-go's StreamableHTTPServer runs each message's handlers (tool calls
// included) under the context of the HTTP request that carried it, so
// mcpoauth's middleware needs no adapter: mount it in front, and tools call
// bearer.FromContext(ctx):
//
//	mcpServer := server.NewMCPServer("demo", "1.0.0")
//	mcpServer.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
//		info, _ := bearer.FromContext(ctx)
//		return mcp.NewToolResultText(info.UserID), nil
//	})
//	mux.Handle("/mcp", srv.RequireBearerAuth("mcp:tools")(
//		mcpgo.BindSessions(mcpgo.BindOptions{})(server.NewStreamableHTTPServer(mcpServer))))
//
// Scopes per MCP method and tool come from the same middleware
// (bearer.Options.OperationScopes, Config.OperationScopes): it reads the
// JSON-RPC body and hands it on unread to mcp-go.
//
// What mcp-go lacks is a binding of MCP sessions to the caller: it accepts
// any well-formed Mcp-Session-Id from any authenticated client, and opens a
// GET stream under whatever id it is given. BindSessions adds the binding.
package mcpgo

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpoauth/mcpoauth/bearer"
)

// sessionHeader is the streamable HTTP transport's session header.
const sessionHeader = "Mcp-Session-Id"

// Defaults of BindOptions.
const (
	DefaultIdleTimeout         = 24 * time.Hour
	DefaultMaxSessionsPerOwner = 64
)

// BindOptions configures BindSessions. The zero value is usable.
type BindOptions struct {
	// IdleTimeout is how long a session may go without a request before its
	// binding is forgotten, after which the session id is refused with 404
	// and the client starts a new session (as the MCP transport
	// specification tells it to). Default DefaultIdleTimeout; keep it at
	// least as long as the server's own session idle TTL.
	IdleTimeout time.Duration
	// MaxSessionsPerOwner bounds the sessions one user of one client holds;
	// beyond it the least recently used binding of that owner is forgotten.
	// It keeps one caller from growing the table without bound, without
	// letting it evict anybody else's sessions. Default
	// DefaultMaxSessionsPerOwner.
	MaxSessionsPerOwner int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// BindSessions returns middleware that binds every MCP session to the user
// and the client of the bearer token that created it. It sits behind
// bearer.RequireBearerAuth (it reads bearer.FromContext; a request without
// an AuthInfo is answered 500) and in front of the MCP handler:
//
//   - a response that hands out a session id (the Mcp-Session-Id header of
//     a 2xx answer to initialize) binds that id to the request's user and
//     client;
//   - a request naming a session is passed on only if the id is bound to
//     the same user and client; an id bound to someone else is refused with
//     403, an unknown or forgotten one with 404, before the MCP handler
//     sees it (so no GET stream can be opened, and no message sent, under
//     another caller's session);
//   - a successful DELETE of a session forgets its binding.
//
// Requests without a session id (initialize, and the sessionless protocol
// of 2026-07-28) pass unchanged. Bindings live in memory: after a restart
// clients get 404 and start new sessions.
func BindSessions(opts BindOptions) func(http.Handler) http.Handler {
	b := &binder{
		idle:     opts.IdleTimeout,
		maxOwned: opts.MaxSessionsPerOwner,
		now:      opts.Now,
		sessions: map[string]*binding{},
		owned:    map[string]map[string]struct{}{},
	}
	if b.idle <= 0 {
		b.idle = DefaultIdleTimeout
	}
	if b.maxOwned <= 0 {
		b.maxOwned = DefaultMaxSessionsPerOwner
	}
	if b.now == nil {
		b.now = time.Now
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("mcpgo: BindSessions: nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.serve(w, r, next) })
	}
}

// Owner is the key BindSessions binds a session to: the token's user and
// client, each quoted so that no two pairs share a key.
func Owner(info *bearer.AuthInfo) string {
	return strconv.Quote(info.UserID) + " " + strconv.Quote(info.ClientID)
}

type binding struct {
	owner    string
	lastSeen time.Time
}

type binder struct {
	idle     time.Duration
	maxOwned int
	now      func() time.Time

	mu        sync.Mutex
	sessions  map[string]*binding            // by session id
	owned     map[string]map[string]struct{} // owner -> its session ids
	lastSweep time.Time
}

// Fixed bodies: nothing of the request is echoed.
const (
	msgNoAuthInfo   = "internal error: BindSessions must sit behind bearer.RequireBearerAuth"
	msgNotFound     = "session not found"
	msgOtherCaller  = "session belongs to another user or client"
	msgBadSessionID = "more than one Mcp-Session-Id header"
)

func (b *binder) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	info, ok := bearer.FromContext(r.Context())
	if !ok {
		http.Error(w, msgNoAuthInfo, http.StatusInternalServerError)
		return
	}
	owner := Owner(info)
	ids := r.Header.Values(sessionHeader)
	if len(ids) > 1 {
		http.Error(w, msgBadSessionID, http.StatusBadRequest)
		return
	}
	var id string
	if len(ids) == 1 {
		id = ids[0]
		if status := b.check(id, owner); status != 0 {
			msg := msgNotFound
			if status == http.StatusForbidden {
				msg = msgOtherCaller
			}
			http.Error(w, msg, status)
			return
		}
	}
	bw := &bindingWriter{ResponseWriter: w, b: b, owner: owner, requested: id, delete: r.Method == http.MethodDelete}
	next.ServeHTTP(bw, r)
}

// check answers whether owner may use session id: 0 if so (and the session
// is touched), else the status to refuse with.
func (b *binder) check(id, owner string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[id]
	now := b.now()
	switch {
	case !ok:
		return http.StatusNotFound
	case now.Sub(s.lastSeen) >= b.idle:
		b.forgetLocked(id)
		return http.StatusNotFound
	case s.owner != owner:
		return http.StatusForbidden
	}
	s.lastSeen = now
	return 0
}

// bind records that owner holds session id.
func (b *binder) bind(id, owner string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(b.lastSweep) >= b.idle/2 {
		b.sweepLocked(now)
	}
	if s, ok := b.sessions[id]; ok {
		if s.owner != owner {
			// A fresh id colliding with someone else's: keep the first
			// binding, never hand a session over.
			return
		}
		s.lastSeen = now
		return
	}
	ids := b.owned[owner]
	if ids == nil {
		ids = map[string]struct{}{}
		b.owned[owner] = ids
	}
	for len(ids) >= b.maxOwned {
		var oldest string
		for other := range ids {
			if oldest == "" || b.sessions[other].lastSeen.Before(b.sessions[oldest].lastSeen) {
				oldest = other
			}
		}
		b.forgetLocked(oldest)
	}
	b.sessions[id] = &binding{owner: owner, lastSeen: now}
	ids[id] = struct{}{}
}

// forget drops the binding of session id if owner holds it.
func (b *binder) forget(id, owner string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.sessions[id]; ok && s.owner == owner {
		b.forgetLocked(id)
	}
}

func (b *binder) forgetLocked(id string) {
	s, ok := b.sessions[id]
	if !ok {
		return
	}
	delete(b.sessions, id)
	if ids := b.owned[s.owner]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(b.owned, s.owner)
		}
	}
}

// sweepLocked forgets every idle binding; bind runs it at most twice per
// IdleTimeout, so its cost is spread over the bindings it removes.
func (b *binder) sweepLocked(now time.Time) {
	b.lastSweep = now
	for id, s := range b.sessions {
		if now.Sub(s.lastSeen) >= b.idle {
			b.forgetLocked(id)
		}
	}
}

// bindingWriter watches the status and the Mcp-Session-Id header of the MCP
// handler's response.
type bindingWriter struct {
	http.ResponseWriter
	b           *binder
	owner       string
	requested   string // the request's session id, "" for none
	delete      bool
	wroteHeader bool
}

func (w *bindingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		w.observe(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *bindingWriter) observe(code int) {
	if code < 200 || code > 299 {
		return
	}
	if id := w.Header().Get(sessionHeader); id != "" && id != w.requested {
		w.b.bind(id, w.owner)
	}
	if w.delete && w.requested != "" {
		w.b.forget(w.requested, w.owner)
	}
}

func (w *bindingWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes flushes through, for SSE streams; mcp-go streams only
// through a writer that implements http.Flusher.
func (w *bindingWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer (deadlines).
func (w *bindingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
