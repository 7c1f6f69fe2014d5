package bearer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// opRequirements is the operation-scope table of the tests below: reading
// files needs files:read, deleting one files:write, and every tools/call
// mcp:tools (which is also the RequiredScopes of the middleware).
var opRequirements = ScopeRequirements{
	Methods:   map[string][]string{"tools/call": {"mcp:tools"}, "resources/list": {"files:read"}},
	Tools:     map[string][]string{"read_file": {"files:read"}, "delete_file": {"files:write"}, "purge": {"files:write", "audit"}},
	Prompts:   map[string][]string{"summarize": {"prompts"}},
	Resources: map[string][]string{"file:///secret": {"files:read"}},
}

// hierarchy: files:admin → files:write → files:read.
func hierarchy(scope string) []string {
	switch scope {
	case "files:admin":
		return []string{"files:write"}
	case "files:write":
		return []string{"files:read"}
	}
	return nil
}

// opServer is RequireBearerAuth with opRequirements in front of a handler
// that echoes the body it got; the bearer token names the granted scopes,
// separated by '~' and with '/' for ':' (b64token has no ':'), e.g.
// "Bearer mcp/tools~files/read".
func opServer(t *testing.T, mod func(*Options)) http.Handler {
	t.Helper()
	opts := Options{
		Verifier: VerifierFunc(func(_ context.Context, token string) (*AuthInfo, error) {
			scopes := strings.Split(strings.ReplaceAll(token, "/", ":"), "~")
			return info(func(i *AuthInfo) { i.Scopes = scopes }), nil
		}),
		RequiredScopes:      []string{testScope},
		ResourceMetadataURL: testPRM,
		Resource:            testResource,
		Now:                 func() time.Time { return testNow },
		OperationScopes:     opRequirements.Scopes,
		ImpliedScopes:       hierarchy,
	}
	if mod != nil {
		mod(&opts)
	}
	return RequireBearerAuth(opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		_, _ = w.Write(b)
	}))
}

func toolCall(name string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + name + `","arguments":{"path":"/a"}}}`
}

func challengeFor(scope string) string {
	return `Bearer error="insufficient_scope", error_description="` + descInsufficientScope + `", resource_metadata="` + testPRM + `", scope="` + scope + `"`
}

func TestOperationScopes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mod       func(*Options)
		method    string // default POST
		token     string
		body      string
		headers   map[string]string
		status    int
		challenge string // for 403
		rpcCode   int    // for a JSON-RPC error body
	}{
		{name: "tools/call by name: a tool without requirement needs only RequiredScopes",
			token: "mcp/tools", body: toolCall("whoami"), status: 200},
		{name: "tools/call by name: read_file needs files:read",
			token: "mcp/tools~files/read", body: toolCall("read_file"), status: 200},
		{name: "SEP-2350 complete challenge: every needed scope plus the held ones, in one 403",
			token: "mcp/tools~profile", body: toolCall("purge"), status: 403,
			challenge: challengeFor("mcp:tools files:write audit profile")},
		{name: "SEP-2350 complete challenge: held scopes are kept so step-up loses nothing",
			token: "mcp/tools~files/read", body: toolCall("delete_file"), status: 403,
			challenge: challengeFor("mcp:tools files:write files:read")},
		{name: "SEP-2350 complete challenge: a missing RequiredScope is listed with the operation's",
			token: "files/read", body: toolCall("delete_file"), status: 403,
			challenge: challengeFor("mcp:tools files:write files:read")},
		{name: "SEP-2207: offline_access is not put in the challenge",
			token: "mcp/tools~offline_access", body: toolCall("read_file"), status: 403,
			challenge: challengeFor("mcp:tools files:read")},
		{name: "hierarchy: files:write passes a files:read requirement",
			token: "mcp/tools~files/write", body: toolCall("read_file"), status: 200},
		{name: "hierarchy: transitive, files:admin passes files:read",
			token: "mcp/tools~files/admin", body: toolCall("read_file"), status: 200},
		{name: "hierarchy: files:read does not pass files:write",
			token: "mcp/tools~files/read", body: toolCall("delete_file"), status: 403,
			challenge: challengeFor("mcp:tools files:write files:read")},
		{name: "hierarchy: ScopeSatisfied default without ImpliedScopes is exact",
			mod:   func(o *Options) { o.ImpliedScopes = nil },
			token: "mcp/tools~files/write", body: toolCall("read_file"), status: 403,
			challenge: challengeFor("mcp:tools files:read files:write")},
		{name: "method requirement: resources/list needs files:read",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`, status: 403,
			challenge: challengeFor("mcp:tools files:read")},
		{name: "resources/read by URI",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///secret"}}`, status: 403,
			challenge: challengeFor("mcp:tools files:read")},
		{name: "prompts/get by name",
			token: "mcp/tools~prompts", body: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize"}}`, status: 200},
		{name: "a notification and a response need only RequiredScopes",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, status: 200},
		{name: "a JSON-RPC response from the client needs only RequiredScopes",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":3,"result":{}}`, status: 200},
		{name: "GET (a stream) has no operation: RequiredScopes only, body unread",
			method: http.MethodGet, token: "mcp/tools", status: 200},
		{name: "batch: the union of every message's requirements",
			token: "mcp/tools~files/read", body: `[` + toolCall("read_file") + `,` + toolCall("delete_file") + `]`, status: 403,
			challenge: challengeFor("mcp:tools files:read files:write")},
		{name: "header vs body: matching Mcp-Method and Mcp-Name pass",
			token: "mcp/tools~files/read", body: toolCall("read_file"),
			headers: map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "read_file"}, status: 200},
		{name: "header vs body: the body decides, a header naming a cheaper tool is refused 400 -32001",
			token: "mcp/tools~files/read", body: toolCall("delete_file"),
			headers: map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "read_file"}, status: 400, rpcCode: -32001},
		{name: "header vs body: Mcp-Method disagreeing with the body is refused 400 -32001",
			token: "mcp/tools", body: toolCall("whoami"),
			headers: map[string]string{"Mcp-Method": "tools/list"}, status: 400, rpcCode: -32001},
		{name: "header vs body: Mcp-Name on a method that names nothing is refused",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			headers: map[string]string{"Mcp-Name": "read_file"}, status: 400, rpcCode: -32001},
		{name: "header vs body: absent headers (clients before 2026-07-28) are accepted",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, status: 200},
		{name: "fail closed: a case-folded duplicate method a lenient decoder would run is refused",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call","params":{"name":"delete_file"}}`,
			status: 400, rpcCode: -32700},
		{name: "fail closed: a case-folded duplicate tool name is refused",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","Name":"delete_file"}}`,
			status: 400, rpcCode: -32700},
		{name: "fail closed: a case-variant key counts as the key Go's decoder maps it to",
			token: "mcp/tools", body: `{"jsonrpc":"2.0","id":1,"Method":"tools/call","Params":{"NAME":"delete_file"}}`,
			status: 403, challenge: challengeFor("mcp:tools files:write")},
		{name: "fail closed: trailing data is refused",
			token: "mcp/tools", body: toolCall("whoami") + `{"method":"tools/call"}`, status: 400, rpcCode: -32700},
		{name: "fail closed: malformed JSON is refused",
			token: "mcp/tools", body: `{"method":`, status: 400, rpcCode: -32700},
		{name: "a body over MaxMessageBytes is refused 413",
			mod:   func(o *Options) { o.MaxMessageBytes = 16 },
			token: "mcp/tools", body: toolCall("whoami"), status: 413, rpcCode: -32600},
		{name: "no requirement configured: unchanged behaviour, body not parsed",
			mod:   func(o *Options) { o.OperationScopes = nil },
			token: "mcp/tools", body: `not json`, status: 200},
		{name: "no requirement configured: unchanged 403 with the static challenge",
			mod:   func(o *Options) { o.OperationScopes = nil },
			token: "files/read", body: toolCall("delete_file"), status: 403, challenge: chInsufficient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(method, "/mcp", body)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			opServer(t, tc.mod).ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			switch {
			case tc.status == 200:
				// The handler behind reads the body the middleware read.
				require.Equal(t, tc.body, rec.Body.String())
			case tc.status == 403:
				require.Equal(t, tc.challenge, rec.Header().Get("WWW-Authenticate"))
				require.JSONEq(t, `{"error":"insufficient_scope","error_description":"`+descInsufficientScope+`"}`, rec.Body.String())
			case tc.rpcCode != 0:
				var resp struct {
					Error struct{ Code int } `json:"error"`
				}
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
				require.Equal(t, tc.rpcCode, resp.Error.Code)
				require.Empty(t, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestOperationScopesInvalidScopeIsServerError(t *testing.T) {
	var reported error
	h := opServer(t, func(o *Options) {
		o.OperationScopes = func(string, string) []string { return []string{`bad"scope`} }
		o.ErrorHandler = func(_ *http.Request, err error) { reported = err }
	})
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(toolCall("x")))
	req.Header.Set("Authorization", "Bearer mcp/tools")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.ErrorIs(t, reported, errInvalidOperationScope)
}

func TestImpliedScopesAndScopeSatisfiedConflict(t *testing.T) {
	require.Panics(t, func() {
		RequireBearerAuth(Options{
			Verifier:       VerifierFunc(func(context.Context, string) (*AuthInfo, error) { return nil, nil }),
			ImpliedScopes:  hierarchy,
			ScopeSatisfied: hasScope,
		})
	})
}

func TestHasScope(t *testing.T) {
	cycle := func(s string) []string {
		return map[string][]string{"a": {"b"}, "b": {"a"}}[s]
	}
	for _, tc := range []struct {
		name     string
		granted  []string
		required string
		implied  func(string) []string
		want     bool
	}{
		{"exact membership without hierarchy", []string{"x", "y"}, "y", nil, true},
		{"RFC 6749 §3.3: scope tokens are case-sensitive", []string{"Files:read"}, "files:read", hierarchy, false},
		{"hierarchy: direct implication", []string{"files:write"}, "files:read", hierarchy, true},
		{"hierarchy: transitive implication", []string{"files:admin"}, "files:read", hierarchy, true},
		{"hierarchy: implication is one-way", []string{"files:read"}, "files:write", hierarchy, false},
		{"hierarchy: cycles terminate", []string{"a"}, "c", cycle, false},
		{"nothing granted", nil, "a", hierarchy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, HasScope(tc.granted, tc.required, tc.implied))
		})
	}
}

func TestScopeRequirementsScopes(t *testing.T) {
	require.Equal(t, []string{"mcp:tools", "files:write", "audit"}, opRequirements.Scopes("tools/call", "purge"))
	require.Equal(t, []string{"mcp:tools"}, opRequirements.Scopes("tools/call", "whoami"))
	require.Equal(t, []string{"prompts"}, opRequirements.Scopes("prompts/get", "summarize"))
	require.Nil(t, opRequirements.Scopes("tools/list", "purge"), "a name counts only for the method that names it")
	require.Nil(t, ScopeRequirements{}.Scopes("tools/call", "x"))
}

// With operation scopes configured, a request with a valid token that needs
// nothing more still allocates little: the body read and its copy.
func BenchmarkRequireBearerAuthOperationScopes(b *testing.B) {
	h := RequireBearerAuth(Options{
		Verifier: VerifierFunc(func(context.Context, string) (*AuthInfo, error) {
			return info(func(i *AuthInfo) { i.Scopes = []string{"mcp:tools", "files:read"} }), nil
		}),
		RequiredScopes:  []string{testScope},
		Now:             func() time.Time { return testNow },
		OperationScopes: opRequirements.Scopes,
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	body := toolCall("read_file")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer x")
		h.ServeHTTP(w, req)
	}
}
