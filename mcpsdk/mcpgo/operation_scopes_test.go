package mcpgo_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcpsdk/internal/sdktest"
	"github.com/mcpoauth/mcpoauth/mcpsdk/mcpgo"
)

// TestOperationScopes: bearer.Options.OperationScopes in front of mcp-go's
// StreamableHTTPServer and BindSessions: the middleware reads the JSON-RPC
// body and puts it back, so mcp-go still runs the call it lets through, and
// it refuses the others with the challenges MCP clients step up on.
func TestOperationScopes(t *testing.T) {
	v := sdktest.Verifier{
		"tools": sdktest.User("alice", "app", "mcp:tools"),
		"write": sdktest.User("alice", "app", "mcp:tools", "files:write"),
		"admin": sdktest.User("alice", "app", "mcp:tools", "files:admin"),
	}
	s := server.NewMCPServer("test", "1.0.0")
	for _, name := range []string{"whoami", "delete"} {
		s.AddTool(mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(name), nil
		})
	}
	protect := bearer.RequireBearerAuth(bearer.Options{
		Verifier: v, RequiredScopes: []string{"mcp:tools"},
		Resource: sdktest.Resource, ResourceMetadataURL: sdktest.ResourceMetadataURL,
		OperationScopes: sdktest.Requirements.Scopes, ImpliedScopes: sdktest.Implied,
	})
	ts := httptest.NewServer(protect(mcpgo.BindSessions(mcpgo.BindOptions{})(server.NewStreamableHTTPServer(s))))
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
		t.Run("mcp-go client/"+tc.name, func(t *testing.T) {
			c := connect(t, url, sdktest.NewBearer(tc.token))
			res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tc.tool}})
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.False(t, res.IsError)
			require.Equal(t, tc.tool, res.Content[0].(mcp.TextContent).Text)
		})
	}

	sdktest.RequireRawOperationScopes(t, url, connect(t, url, sdktest.NewBearer("tools")).GetSessionId())
}
