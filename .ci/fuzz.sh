#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, for FUZZTIME
# each (default 5s: a smoke run for CI; see docs/testing.md for longer runs).
# Seed corpora live in each package's testdata/fuzz/<FuzzName>/ and run with
# every `go test`; a failure found here is written there as a new file,
# which reproduces it with plain `go test -run '<FuzzName>/<file>' ./<pkg>`.
#
# Environment:
#   FUZZTIME   duration per target, as go test -fuzztime takes it (5s, 60s, 10000x)
#   FUZZ_ONLY  a regular expression: run only the targets whose name matches
#   FUZZMINIMIZETIME  how long to minimise each new interesting input
#              (default 5s; go test's 60s default can stall a short run on
#              one large input, during which nothing else is executed)
#   FUZZ_TOOLCHAIN  the Go toolchain that fuzzes (default go1.27.3, which
#              .ci/govulncheck.sh uses too). Go 1.26's fuzzing coordinator
#              can fail a target with a bare "context deadline exceeded"
#              when -fuzztime ends while a worker is busy, with no failing
#              input (go.dev/issue/75804, fixed in Go 1.27): CI saw it on a
#              loaded machine. The module's own go line stays at 1.25.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-5s}
minimize=${FUZZMINIMIZETIME:-5s}
only=${FUZZ_ONLY:-.}
export GOTOOLCHAIN=${FUZZ_TOOLCHAIN:-go1.27.3}
go version

targets=()
while read -r dir pkg; do
  for f in "$dir"/*_test.go; do
    [ -e "$f" ] || continue
    while read -r name; do
      targets+=("$pkg $name")
    done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f")
  done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' ./... ./integration/... ./postgres/... ./sqlite/... ./mcpsdk/gosdk/... ./mcpsdk/mcpgo/... ./example/... ./interop/... ./upstream/... ./redislimit/... ./bench/server/...)

if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

failed=0
ran=0
for t in "${targets[@]}"; do
  pkg=${t% *}
  name=${t#* }
  [[ $name =~ $only ]] || continue
  ran=$((ran + 1))
  printf '\n== %s %s (%s)\n' "$pkg" "$name" "$fuzztime"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg"; then
    failed=$((failed + 1))
  fi
done
printf '\n%d fuzz targets run, %d failed\n' "$ran" "$failed"
[ "$failed" -eq 0 ]
