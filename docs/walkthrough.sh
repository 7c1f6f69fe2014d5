#!/usr/bin/env bash
# The curl walk-through (docs/walkthrough.md): drives the example server the
# way an MCP client and a browser would, one HTTP request at a time.
#
#   go run ./example/server            # in one terminal
#   bash docs/walkthrough.sh           # in another; or: bash docs/walkthrough.sh ISSUER
#
# Needs curl, openssl and sed. Its files (cookie jar, consent page, tokens)
# go to a temporary directory, removed at the end.
set -euo pipefail

AS=${1:-http://localhost:3000}
REDIRECT=http://127.0.0.1:8765/callback
# json FIELD: print a string member of the one-line JSON on stdin.
json() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# 1. Discovery: what an MCP client reads first.
curl -s $AS/.well-known/oauth-protected-resource/mcp; echo
curl -s $AS/.well-known/oauth-authorization-server; echo

# 2. Register a public client (RFC 7591).
CLIENT_ID=$(curl -s $AS/register -H 'Content-Type: application/json' -d '{
  "client_name": "curl walk-through",
  "redirect_uris": ["http://127.0.0.1:8765/callback"],
  "grant_types": ["authorization_code", "refresh_token"],
  "token_endpoint_auth_method": "none"}' | json client_id)
echo "client_id: $CLIENT_ID"

# 3. A PKCE pair (RFC 7636): a random verifier and its S256 challenge.
VERIFIER=$(openssl rand -hex 32)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')

# 4. The authorization request. The server answers 302 to its consent page
#    and sets the browser-binding cookie, which the jar keeps.
CONSENT=$(curl -s -c jar -b jar -o /dev/null -w '%{redirect_url}' -G $AS/authorize \
  -d response_type=code --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode scope=mcp:tools \
  --data-urlencode "resource=$AS/mcp" -d "code_challenge=$CHALLENGE" \
  -d code_challenge_method=S256 -d state=xyz)
echo "consent page: $CONSENT"

# 5. The consent page: read its hidden fields.
curl -s -c jar -b jar "$CONSENT" > consent.html
REQUEST_ID=$(sed -n 's/.*name="request_id" value="\([^"]*\)".*/\1/p' consent.html)
CSRF_TOKEN=$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' consent.html)

# 6. Sign in as alice and approve: a 303 whose Location is the client's
#    redirect URI with the code.
CALLBACK=$(curl -s -c jar -b jar -o /dev/null -w '%{redirect_url}' $AS/consent \
  --data-urlencode "request_id=$REQUEST_ID" --data-urlencode "csrf_token=$CSRF_TOKEN" \
  -d username=alice -d decision=approve)
echo "redirected to: $CALLBACK"
CODE=$(printf '%s' "$CALLBACK" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')

# 7. Exchange the code for tokens, proving possession of the verifier.
curl -s $AS/token -d grant_type=authorization_code --data-urlencode "client_id=$CLIENT_ID" \
  -d "code=$CODE" -d "code_verifier=$VERIFIER" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode "resource=$AS/mcp" > token.json
cat token.json; echo
ACCESS_TOKEN=$(json access_token < token.json)
REFRESH_TOKEN=$(json refresh_token < token.json)

# 8. Call the protected MCP endpoint (streamable HTTP): without a token it
#    answers 401 with the challenge; with it, initialize a session, then call
#    the whoami tool in it. Answers come as server-sent events.
curl -s -i -X POST $AS/mcp | grep -i -e '^HTTP' -e '^www-authenticate'
mcp() { curl -s $AS/mcp -H "Authorization: Bearer $ACCESS_TOKEN" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' ${SESSION:+-H "Mcp-Session-Id: $SESSION"} "$@"; }
SESSION=
SESSION=$(mcp -o /dev/null -D - -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{
  "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' |
  tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')
mcp -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
mcp -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}' | sed -n 's/^data: //p'

# 9. Refresh: the refresh token is rotated, the old one is spent. The
#    session belongs to alice through this client, so the new token may use it.
curl -s $AS/token -d grant_type=refresh_token --data-urlencode "client_id=$CLIENT_ID" \
  -d "refresh_token=$REFRESH_TOKEN" > token.json
ACCESS_TOKEN=$(json access_token < token.json)
REFRESH_TOKEN=$(json refresh_token < token.json)
mcp -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}' | sed -n 's/^data: //p'

# 10. Revoke the refresh token (RFC 7009): the whole grant goes with it.
curl -s -o /dev/null -w 'revoke: %{http_code}\n' $AS/revoke \
  --data-urlencode "client_id=$CLIENT_ID" -d "token=$REFRESH_TOKEN"
mcp -o /dev/null -w 'mcp after revocation: %{http_code}\n' -d '{"jsonrpc":"2.0","id":4,"method":"tools/list"}'
