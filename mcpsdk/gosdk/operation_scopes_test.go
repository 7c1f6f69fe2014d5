package gosdk_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/mcpsdk/gosdk"
	"github.com/mcpoauth/mcpoauth/mcpsdk/internal/sdktest"
)

// TestOperationScopes: bearer.Options.OperationScopes in front of the SDK's
// handler: the middleware reads the JSON-RPC body and puts it back, so the
// SDK still runs the call it lets through, and it refuses the others with
// the challenges MCP clients step up on.
func TestOperationScopes(t *testing.T) {
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
	protect := sdktest.OperationScopesAuth()
	ts := httptest.NewServer(protect(gosdk.ForwardAuthInfo(gosdk.Options{})(mcp.NewStreamableHTTPHandler(getServer, nil))))
	t.Cleanup(ts.Close)
	url := ts.URL + "/mcp"

	sdktest.RequireOperationScopes(t, "SDK client", func(t *testing.T, token, tool string) error {
		cs := connect(t, url, sdktest.NewBearer(token))
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool})
		if err != nil {
			return err
		}
		require.False(t, res.IsError)
		require.Equal(t, map[string]any{"tool": tool}, res.StructuredContent)
		return nil
	})
	sdktest.RequireRawOperationScopes(t, url, connect(t, url, sdktest.NewBearer("tools")).ID())
}
