package mcpgo_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/mcpsdk/internal/sdktest"
	"github.com/mcpoauth/mcpoauth/mcpsdk/mcpgo"
)

// TestOperationScopes: bearer.Options.OperationScopes in front of mcp-go's
// StreamableHTTPServer and BindSessions: the middleware reads the JSON-RPC
// body and puts it back, so mcp-go still runs the call it lets through, and
// it refuses the others with the challenges MCP clients step up on.
func TestOperationScopes(t *testing.T) {
	s := server.NewMCPServer("test", "1.0.0")
	for _, name := range []string{"whoami", "delete"} {
		s.AddTool(mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(name), nil
		})
	}
	protect := sdktest.OperationScopesAuth()
	ts := httptest.NewServer(protect(mcpgo.BindSessions(mcpgo.BindOptions{})(server.NewStreamableHTTPServer(s))))
	t.Cleanup(ts.Close)
	url := ts.URL + "/mcp"

	sdktest.RequireOperationScopes(t, "mcp-go client", func(t *testing.T, token, tool string) error {
		c := connect(t, url, sdktest.NewBearer(token))
		res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool}})
		if err != nil {
			return err
		}
		require.False(t, res.IsError)
		require.Equal(t, tool, res.Content[0].(mcp.TextContent).Text)
		return nil
	})
	sdktest.RequireRawOperationScopes(t, url, connect(t, url, sdktest.NewBearer("tools")).GetSessionId())
}
