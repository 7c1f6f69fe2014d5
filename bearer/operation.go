package bearer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Headers of the MCP 2026-07-28 streamable HTTP transport that mirror the
// JSON-RPC body of a POST: the method of every request, and the name of the
// tool, prompt or resource for tools/call, prompts/get and resources/read.
const (
	HeaderMcpMethod = "Mcp-Method"
	HeaderMcpName   = "Mcp-Name"
)

// DefaultMaxMessageBytes is the default Options.MaxMessageBytes.
const DefaultMaxMessageBytes = 4 << 20

// ScopeRequirements is a declarative Options.OperationScopes: the scopes an
// MCP operation needs, by JSON-RPC method and by the name it acts on. Pass
// its Scopes method:
//
//	bearer.Options{OperationScopes: bearer.ScopeRequirements{
//		Tools: map[string][]string{"delete_file": {"files:write"}},
//	}.Scopes}
type ScopeRequirements struct {
	// Methods maps a JSON-RPC method ("tools/call", "resources/list") to
	// the scopes every request of that method needs.
	Methods map[string][]string
	// Tools maps a tool name to the scopes a tools/call of it needs, on top
	// of Methods["tools/call"].
	Tools map[string][]string
	// Prompts maps a prompt name to the scopes a prompts/get of it needs.
	Prompts map[string][]string
	// Resources maps a resource URI to the scopes a resources/read of it
	// needs.
	Resources map[string][]string
}

// Scopes returns the scopes the operation needs: those of its method, then
// those of the tool, prompt or resource it names. The result must not be
// modified.
func (s ScopeRequirements) Scopes(method, name string) []string {
	byMethod := s.Methods[method]
	var byName []string
	switch method {
	case "tools/call":
		byName = s.Tools[name]
	case "prompts/get":
		byName = s.Prompts[name]
	case "resources/read":
		byName = s.Resources[name]
	}
	switch {
	case len(byName) == 0:
		return byMethod
	case len(byMethod) == 0:
		return byName
	}
	return append(append(make([]string, 0, len(byMethod)+len(byName)), byMethod...), byName...)
}

// HasScope reports whether granted satisfies required: it holds required
// itself or a scope that implies it, directly or through a chain of
// implications (files:admin → files:write → files:read). implied returns
// the scopes one scope implies; nil means no hierarchy (exact membership,
// RFC 6749 §3.3 scope tokens being case-sensitive). Cycles are harmless.
func HasScope(granted []string, required string, implied func(scope string) []string) bool {
	if hasScope(granted, required) {
		return true
	}
	if implied == nil {
		return false
	}
	seen := make(map[string]struct{}, len(granted))
	stack := make([]string, 0, len(granted))
	for _, g := range granted {
		if _, ok := seen[g]; !ok {
			seen[g] = struct{}{}
			stack = append(stack, g)
		}
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, n := range implied(s) {
			if n == required {
				return true
			}
			if _, ok := seen[n]; !ok {
				seen[n] = struct{}{}
				stack = append(stack, n)
			}
		}
	}
	return false
}

// operation is what one JSON-RPC message asks for.
type operation struct {
	method string // "" for a response or a message without method
	name   string // params.name, or params.uri for resources/read
	named  bool   // the method is one whose name the Mcp-Name header mirrors
	id     json.RawMessage
}

// Reasons a message is refused before the operation's scopes are checked.
var (
	errMalformedMessage = errors.New("malformed JSON-RPC message")
	errHeaderMismatch   = errors.New("Mcp-Method or Mcp-Name header does not match the body")
	errMessageTooLarge  = errors.New("message too large")
)

// readOperations reads the JSON-RPC body of r, at most limit bytes, puts an
// unread copy back in r.Body for the handler behind, and returns what the
// message (or each message of a batch) asks for.
func readOperations(r *http.Request, limit int64) ([]operation, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, errMalformedMessage
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	orig := r.Body
	r.Body = &replayBody{Reader: bytes.NewReader(body), orig: orig}
	if err != nil {
		return nil, errMalformedMessage
	}
	if int64(len(body)) > limit {
		return nil, errMessageTooLarge
	}
	return parseOperations(body)
}

// replayBody gives the handler the bytes already read; closing it closes the
// original body.
type replayBody struct {
	*bytes.Reader
	orig io.ReadCloser
}

func (b *replayBody) Close() error { return b.orig.Close() }

// parseOperations decodes a JSON-RPC message or batch. It fails closed on
// anything a lenient decoder behind it might read differently: Go's
// encoding/json matches keys case-insensitively and keeps the last of
// duplicates, so {"method":"ping","METHOD":"tools/call"} is refused rather
// than checked as ping and run as tools/call. Trailing data is refused too.
func parseOperations(body []byte) ([]operation, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, errMalformedMessage
	}
	var ops []operation
	switch tok {
	case json.Delim('{'):
		op, err := parseMessage(dec)
		if err != nil {
			return nil, err
		}
		ops = []operation{op}
	case json.Delim('['):
		// JSON-RPC batches (MCP 2025-03-26): every message is checked.
		for dec.More() {
			if t, err := dec.Token(); err != nil || t != json.Delim('{') {
				return nil, errMalformedMessage
			}
			op, err := parseMessage(dec)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		if t, err := dec.Token(); err != nil || t != json.Delim(']') {
			return nil, errMalformedMessage
		}
	default:
		return nil, errMalformedMessage
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errMalformedMessage
	}
	return ops, nil
}

// parseMessage reads one JSON-RPC object whose '{' was consumed, through
// its closing '}'.
func parseMessage(dec *json.Decoder) (operation, error) {
	var op operation
	var params json.RawMessage
	var seenMethod, seenParams, seenID bool
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return op, err
		}
		switch {
		case strings.EqualFold(key, "method"):
			err = decodeOnce(dec, &seenMethod, &op.method)
		case strings.EqualFold(key, "params"):
			err = decodeOnce(dec, &seenParams, &params)
		case strings.EqualFold(key, "id"):
			err = decodeOnce(dec, &seenID, &op.id)
		default:
			err = skipValue(dec)
		}
		if err != nil {
			return op, err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return op, errMalformedMessage
	}
	field := ""
	switch op.method {
	case "tools/call", "prompts/get":
		field = "name"
	case "resources/read":
		field = "uri"
	}
	if field == "" {
		return op, nil
	}
	op.named = true
	name, err := paramsField(params, field)
	if err != nil {
		return op, err
	}
	op.name = name
	return op, nil
}

// paramsField returns the string member field of the params object ("" when
// params or the member is absent or null), refusing duplicates under case
// folding as parseMessage does.
func paramsField(params json.RawMessage, field string) (string, error) {
	if len(params) == 0 || string(params) == "null" {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", errMalformedMessage
	}
	var value string
	seen := false
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return "", err
		}
		if !strings.EqualFold(key, field) {
			if err := skipValue(dec); err != nil {
				return "", err
			}
			continue
		}
		var v *string
		if err := decodeOnce(dec, &seen, &v); err != nil {
			return "", err
		}
		if v != nil {
			value = *v
		}
	}
	return value, nil
}

// decodeOnce decodes the value of a member into v, refusing a member seen
// before (under case folding, the caller's key match): two values of one
// member could be read differently by another parser.
func decodeOnce(dec *json.Decoder, seen *bool, v any) error {
	if *seen {
		return errMalformedMessage
	}
	*seen = true
	if dec.Decode(v) != nil {
		return errMalformedMessage
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", errMalformedMessage
	}
	key, ok := t.(string)
	if !ok {
		return "", errMalformedMessage
	}
	return key, nil
}

func skipValue(dec *json.Decoder) error {
	var skip json.RawMessage
	if err := dec.Decode(&skip); err != nil {
		return errMalformedMessage
	}
	return nil
}

// checkHeaders enforces the MCP 2026-07-28 transport rule that the
// Mcp-Method and Mcp-Name headers, where sent, match the body: a request
// whose headers disagree with it is refused (400), so that nothing that
// routes or authorizes on the headers can be told one operation while the
// server runs another. Absent headers are not required here: clients of
// earlier revisions do not send them, and the scopes are decided from the
// body either way.
func checkHeaders(h http.Header, ops []operation) error {
	methods, names := h.Values(HeaderMcpMethod), h.Values(HeaderMcpName)
	if len(methods) == 0 && len(names) == 0 {
		return nil
	}
	if len(ops) != 1 || len(methods) > 1 || len(names) > 1 {
		return errHeaderMismatch // one header cannot mirror a batch
	}
	op := ops[0]
	if len(methods) == 1 && methods[0] != op.method {
		return errHeaderMismatch
	}
	if len(names) == 1 && (!op.named || names[0] != op.name) {
		return errHeaderMismatch
	}
	return nil
}

// checkOperation decides a POST under Options.OperationScopes: it reads the
// JSON-RPC body, checks the Mcp-Method and Mcp-Name headers against it, and
// checks the token against RequiredScopes plus every scope the operation
// needs. It answers and returns false when the request may not proceed.
func (m *middleware) checkOperation(w http.ResponseWriter, r *http.Request, info *AuthInfo) bool {
	ops, err := readOperations(r, m.maxMessage)
	if err == nil {
		err = checkHeaders(r.Header, ops)
	}
	switch err {
	case nil:
	case errMessageTooLarge:
		writeRPCError(w, http.StatusRequestEntityTooLarge, nil, -32600, "Request too large")
		return false
	case errHeaderMismatch:
		// MCP 2026-07-28 transport: 400 with JSON-RPC error -32001
		// (HeaderMismatch).
		writeRPCError(w, http.StatusBadRequest, ops[0].id, -32001, "Header mismatch: Mcp-Method or Mcp-Name does not match the request body")
		return false
	default:
		writeRPCError(w, http.StatusBadRequest, nil, -32700, "Parse error")
		return false
	}

	needed := m.requiredScopes
	extended := false
	for _, op := range ops {
		if op.method == "" {
			continue // a response or malformed message: the handler answers it
		}
		for _, s := range m.operationScopes(op.method, op.name) {
			if hasScope(needed, s) {
				continue
			}
			if !isScopeToken(s) {
				m.fail(w, r, &m.serverError, errInvalidOperationScope, "")
				return false
			}
			if !extended {
				needed = append([]string(nil), needed...)
				extended = true
			}
			needed = append(needed, s)
		}
	}
	for _, s := range needed {
		if !m.scopeSatisfied(info.Scopes, s) {
			m.insufficient(w, needed, info.Scopes)
			return false
		}
	}
	return true
}

var errInvalidOperationScope = errors.New("bearer: Options.OperationScopes returned an invalid scope-token")

// insufficient answers 403 insufficient_scope with one complete challenge
// (MCP SEP-2350): every scope the operation needs, then those the token
// already holds, so a client that re-authorizes with exactly this list
// loses nothing it had. offline_access is left out: it is no resource
// requirement (MCP SEP-2207).
func (m *middleware) insufficient(w http.ResponseWriter, needed, held []string) {
	scopes := append(make([]string, 0, len(needed)+len(held)), needed...)
	for _, s := range held {
		if s != "offline_access" && isScopeToken(s) && !hasScope(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	resp := m.insufficientScope
	resp.challenge = Challenge(ChallengeParams{
		Error:            "insufficient_scope",
		ErrorDescription: descInsufficientScope,
		Scope:            strings.Join(scopes, " "),
		ResourceMetadata: m.resourceMeta,
	})
	m.write(w, &resp)
}

// writeRPCError answers a message refused before the handler saw it with a
// JSON-RPC error response, as the MCP transport expects.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, message string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	type rpcError struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	body, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, rpcError{code, message}})
	if err != nil { // an id that is not valid JSON cannot come from the decoder
		body = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
