#!/usr/bin/env bash
# govulncheck, offline: the public vulnerability database host is not
# reachable from CI, but its source, golang.org/x/vulndb, is a Go module the
# module proxy serves. This script downloads that module, builds a database
# from its OSV entries (cached per vulndb version), and scans the module with
# govulncheck against it. It exits non-zero when govulncheck reports a
# vulnerability that our code reaches.
#
# The scan runs with a newer toolchain (GOVULNCHECK_TOOLCHAIN, default
# go1.27.3) so that the findings are the library's own: the standard library
# of the go.mod toolchain (1.26.8) carries net/http advisories fixed in
# 1.26.9, which are a matter of the user's toolchain, not of this code. Set
# GOVULNCHECK_TOOLCHAIN=local to scan with the installed toolchain instead.
#
# Environment:
#   GOVULNCHECK_CACHE      where databases are kept (default: the user cache dir)
#   GOVULNCHECK_TOOLCHAIN  toolchain for the scan (default go1.27.3)
#   GOVULNCHECK_VERSION    govulncheck version (default v1.9.0)
#   VULNDB_VERSION         golang.org/x/vulndb version (default latest)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

toolchain=${GOVULNCHECK_TOOLCHAIN:-go1.27.3}
govulncheck_version=${GOVULNCHECK_VERSION:-v1.9.0}
vulndb_version=${VULNDB_VERSION:-latest}
cache=${GOVULNCHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpoauth-govulncheck}
mkdir -p "$cache"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Download outside any module, so that go.mod and go.sum stay untouched.
info=$(cd "$work" && GOFLAGS=-mod=mod GO111MODULE=on go mod download -json "golang.org/x/vulndb@$vulndb_version")
field() { printf '%s\n' "$info" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p"; }
version=$(field Version)
dir=$(field Dir)
if [ -z "$version" ] || [ ! -d "$dir/data/osv" ]; then
  echo "govulncheck.sh: could not download golang.org/x/vulndb@$vulndb_version" >&2
  printf '%s\n' "$info" >&2
  exit 2
fi

db="$cache/db-$version"
if [ ! -f "$db/index/db.json" ]; then
  echo "building the vulnerability database from golang.org/x/vulndb@$version"
  rm -rf "$db" "$db.tmp"
  mkdir -p "$work/osv"
  cp -R "$dir/data/osv/." "$work/osv/"
  (cd "$dir" && go run ./cmd/indexdb -vulns "$work/osv" -out "$db.tmp")
  if [ ! -f "$db.tmp/index/db.json" ]; then
    echo "govulncheck.sh: indexdb wrote no index/db.json" >&2
    exit 2
  fi
  mv "$db.tmp" "$db"
fi
echo "database: golang.org/x/vulndb@$version ($(find "$db/ID" -name '*.json' | wc -l) entries)"

# govulncheck exits 3 when it finds a vulnerability the code reaches.
cd "$root"
GOTOOLCHAIN=$toolchain go version
GOTOOLCHAIN=$toolchain go run "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version" -db "file://$db" ./... ./integration/... ./postgres/... ./sqlite/... ./mcpsdk/gosdk/... ./mcpsdk/mcpgo/... ./example/... ./interop/... ./upstream/... ./redislimit/... ./bench/server/...
