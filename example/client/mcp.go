package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// whoamiTool is the tool the client calls; userInfoTool it calls too when
// the server has it (the example server does when users sign in through an
// upstream provider).
const (
	whoamiTool   = "whoami"
	userInfoTool = "upstream_userinfo"
)

// useTools connects to the MCP server over streamable HTTP with httpClient
// (which carries the token), prints the tools and calls whoami, and
// upstream_userinfo when the server has it.
func (c *client) useTools(ctx context.Context, httpClient *http.Client) error {
	transport := &mcp.StreamableClientTransport{
		Endpoint:   c.opts.url,
		HTTPClient: httpClient,
		// A one-shot client needs no stream for server-initiated messages.
		DisableStandaloneSSE: true,
	}
	mc := mcp.NewClient(&mcp.Implementation{Name: "mcpoauth-example-client", Version: "0.1.0"}, nil)
	session, err := mc.Connect(ctx, transport, nil)
	if err != nil {
		return fmt.Errorf("MCP connect: %w", err)
	}
	defer session.Close()

	fmt.Fprintln(c.stdout, "tools:")
	found, userInfo := false, false
	for tool, err := range session.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("MCP tools/list: %w", err)
		}
		found = found || tool.Name == whoamiTool
		userInfo = userInfo || tool.Name == userInfoTool
		line := "  " + clean(tool.Name)
		if tool.Description != "" {
			line += ": " + clean(tool.Description)
		}
		fmt.Fprintln(c.stdout, line)
	}
	if !found {
		return fmt.Errorf("the MCP server has no %s tool", whoamiTool)
	}

	if err := c.callTool(ctx, session, whoamiTool); err != nil {
		return err
	}
	if userInfo {
		return c.callTool(ctx, session, userInfoTool)
	}
	return nil
}

// callTool calls a tool without arguments and prints its answer.
func (c *client) callTool(ctx context.Context, session *mcp.ClientSession, name string) error {
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
	if err != nil {
		return fmt.Errorf("MCP tools/call %s: %w", name, err)
	}
	text := resultText(res)
	if res.IsError {
		return fmt.Errorf("%s failed: %s", name, text)
	}
	fmt.Fprintf(c.stdout, "%s: %s\n", name, text)
	return nil
}

// resultText renders a tool result for the terminal: its text content, else
// its structured content as JSON.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, content := range res.Content {
		if t, ok := content.(*mcp.TextContent); ok {
			parts = append(parts, clean(t.Text))
		}
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			parts = append(parts, clean(string(b)))
		}
	}
	if len(parts) == 0 {
		return "(no text content)"
	}
	return strings.Join(parts, " ")
}
