#!/usr/bin/env bash
# Runs the curl walk-through (docs/walkthrough.sh) against the example
# server, as a reader would, and checks that its output is the one
# docs/walkthrough.md shows. The server is built first and started as its
# own process on a free loopback port (-addr 127.0.0.1:0; it prints its
# issuer once listening), so that it can be stopped by its pid: `go run`
# would leave the compiled server running when killed.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop_server EXIT
fail() {
  echo "walk-through: $*" >&2
  echo "--- server log" >&2; cat "$WORK/server.log" >&2 || true
  exit 1
}

go build -o "$WORK/server" ./example/server
"$WORK/server" -addr 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.log" &
server_pid=$!

# Wait up to 10 s for the line the server prints once it listens.
issuer=
for _ in $(seq 100); do
  issuer=$(sed -n 's/^mcpoauth example server: issuer \([^,]*\),.*/\1/p' "$WORK/server.out")
  [ -n "$issuer" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "the example server exited"
  sleep 0.1
done
[ -n "$issuer" ] || fail "the example server did not start within 10 s"
echo "example server: $issuer"

out=$(timeout 30 bash docs/walkthrough.sh "$issuer") || fail "docs/walkthrough.sh failed"
printf '%s\n' "$out"

expect() { grep -qF -- "$1" <<<"$out" || fail "no line with: $1"; }
expect "{\"resource\":\"$issuer/mcp\",\"authorization_servers\":[\"$issuer\"]"
expect "{\"issuer\":\"$issuer\","
expect "\"code_challenge_methods_supported\":[\"S256\"]"
grep -qE '^client_id: [0-9a-f-]{36}$' <<<"$out" || fail "no client_id"
expect "consent page: $issuer/consent?request_id="
grep -qE '^redirected to: http://127\.0\.0\.1:8765/callback\?code=[A-Za-z0-9_-]+&iss=[^&]+&state=xyz$' <<<"$out" ||
  fail "no redirect with code, iss and state"
expect '"token_type":"Bearer","expires_in":3600,"refresh_token":"'
expect 'HTTP/1.1 401 Unauthorized'
expect "Www-Authenticate: Bearer resource_metadata=\"$issuer/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""
expect '{"jsonrpc":"2.0","id":2,"result":'
expect '{"jsonrpc":"2.0","id":3,"result":'
[ "$(grep -c '"user_id":"alice"}}}$' <<<"$out")" = 2 ] || fail "whoami did not answer alice twice"
expect 'revoke: 200'
expect 'mcp after revocation: 401'

# The server logs no credential (the walk-through prints the first ones).
code=$(sed -n 's/^redirected to: .*[?&]code=\([^&]*\).*/\1/p' <<<"$out")
tokens=$(sed -n 's/.*"access_token":"\([^"]*\)".*"refresh_token":"\([^"]*\)".*/\1 \2/p' <<<"$out")
for secret in $code $tokens; do
  ! grep -qF -- "$secret" "$WORK/server.log" || fail "the server log holds a credential"
done
echo "walk-through: ok"
