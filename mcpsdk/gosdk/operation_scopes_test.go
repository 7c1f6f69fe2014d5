package gosdk_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcpsdk/gosdk"
	"github.com/mcpoauth/mcpoauth/mcpsdk/internal/sdktest"
)

// TestOperationScopes: bearer.Options.OperationScopes in front of the SDK's
// handler: the middleware reads the JSON-RPC body and puts it back, so the
// SDK still runs the call it lets through, and it refuses the others with
// the challenges MCP clients step up on.
func TestOperationScopes(t *testing.T) {
	v := sdktest.Verifier{
		"tools": sdktest.User("alice", "app", "mcp:tools"),
		"write": sdktest.User("alice", "app", "mcp:tools", "files:write"),
		"admin": sdktest.User("alice", "app", "mcp:tools", "files:admin"),
	}
	getServer := func(*http.Request) *mcp.Server {
		s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "v1"}, nil)
		s.AddReceivingMiddleware(gosdk.AuthInfoMiddleware)
		for _, name := range []string{"whoami", "delete"} {
			mcp.AddTool(s, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, map[string]any, error) {
				return nil, map[string]any{"tool": name}, nil
			})
		}
		return s
	}
	protect := bearer.RequireBearerAuth(bearer.Options{
		Verifier: v, RequiredScopes: []string{"mcp:tools"},
		Resource: sdktest.Resource, ResourceMetadataURL: sdktest.ResourceMetadataURL,
		OperationScopes: sdktest.Requirements.Scopes, ImpliedScopes: sdktest.Implied,
	})
	ts := httptest.NewServer(protect(gosdk.ForwardAuthInfo(gosdk.Options{})(mcp.NewStreamableHTTPHandler(getServer, nil))))
	t.Cleanup(ts.Close)
	url := ts.URL + "/mcp"

	for _, tc := range []struct {
		name, token, tool string
		ok                bool
	}{
		{"tools/call by name: whoami needs only the required scope", "tools", "whoami", true},
		{"tools/call by name: delete with files:write", "write", "delete", true},
		{"hierarchy: files:admin implies files:write", "admin", "delete", true},
		{"tools/call by name: delete without files:write is refused", "tools", "delete", false},
	} {
		t.Run("SDK client/"+tc.name, func(t *testing.T) {
			cs := connect(t, url, sdktest.NewBearer(tc.token))
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool})
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.False(t, res.IsError)
			require.Equal(t, map[string]any{"tool": tc.tool}, res.StructuredContent)
		})
	}

	sdktest.RequireRawOperationScopes(t, url, connect(t, url, sdktest.NewBearer("tools")).ID())
}
