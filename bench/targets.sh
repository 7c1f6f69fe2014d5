#!/usr/bin/env bash
# Every figure of the performance targets from one run: the in-process Go
# benchmarks (verification, a million live tokens, parallel scaling), then
# the load test (bench/load.sh), then a summary of each figure beside its
# target. Timings are noisy on a shared machine: every figure is a median of
# repetitions, and the comparisons are ratios taken within this run.
#
#   bench/targets.sh            # about 5 minutes; needs wrk (apt-get install -y wrk)
#
# Environment: COUNT (3, repetitions of each Go benchmark), and load.sh's.
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== go test -run '^\$' -bench 'VerifyAccessToken\$|MemoryModelLiveTokens' -benchmem -count $COUNT ./integration" >&2
go test -run '^$' -bench 'VerifyAccessToken$|MemoryModelLiveTokens' -benchmem -count "$COUNT" ./integration |
	tee "$tmp/bench" >&2
# The 1- and 2-core runs alternate (the -cpu list is the outer loop), so
# that the machine's drifting load hits both alike.
cpus=$(printf '1,2,%.0s' $(seq 5))
echo "== go test -run '^\$' -bench 'VerifyParallel\$|ParallelBaseline' -benchmem -cpu ${cpus%,} ./integration" >&2
go test -run '^$' -bench 'VerifyParallel$|ParallelBaseline' -benchmem -cpu "${cpus%,}" ./integration |
	tee "$tmp/parallel" >&2
echo "== bench/load.sh" >&2
bench/load.sh | tee "$tmp/load"

echo
echo "== targets ($(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores)"
awk "$(cat "$(dirname "$0")/median.awk")"'
	# Benchmark lines: name[-GOMAXPROCS] iterations value unit value unit ...
	/^Benchmark/ {
		name = $1
		cpu = 1
		if (match(name, /-[0-9]+$/)) { cpu = substr(name, RSTART + 1); name = substr(name, 1, RSTART - 1) }
		for (i = 3; i < NF; i += 2) {
			k = name SUBSEP cpu SUBSEP $(i + 1)
			v[k, ++n[k]] = $i
		}
	}
	function med(name, cpu, unit,    k, a, i) {
		k = name SUBSEP cpu SUBSEP unit
		for (i = 1; i <= n[k]; i++) a[i] = v[k, i]
		return median(a, n[k])
	}
	# speedup is the median over the alternating runs of ns/op at 1 core
	# divided by ns/op at 2 cores in the run that followed.
	function speedup(name,    k1, k2, a, i) {
		k1 = name SUBSEP 1 SUBSEP "ns/op"; k2 = name SUBSEP 2 SUBSEP "ns/op"
		for (i = 1; i <= n[k2]; i++) a[i] = v[k1, i] / v[k2, i]
		return median(a, n[k2])
	}
	END {
		ns = med("BenchmarkVerifyAccessToken", 2, "ns/op"); al = med("BenchmarkVerifyAccessToken", 2, "allocs/op")
		printf "verification (memory model)          %7.0f ns, %d allocs/op   (≤ 1000 ns, ≤ 2 allocs)  %s\n", ns, al, (ns <= 1000 && al <= 2 ? "met" : "MISSED")
		mb = med("BenchmarkMemoryModelLiveTokens/tokens=1000000/hot", 2, "heap-MB")
		bt = med("BenchmarkMemoryModelLiveTokens/tokens=1000000/hot", 2, "bytes/token")
		printf "1,000,000 live tokens                 %7.0f MB heap (%.0f bytes/token)   (≤ 300 MB)  %s\n", mb, bt, (mb <= 300 ? "met" : "MISSED")
		h1 = med("BenchmarkMemoryModelLiveTokens/tokens=1000/hot", 2, "ns/op"); h2 = med("BenchmarkMemoryModelLiveTokens/tokens=1000000/hot", 2, "ns/op")
		a1 = med("BenchmarkMemoryModelLiveTokens/tokens=1000/all", 2, "ns/op"); a2 = med("BenchmarkMemoryModelLiveTokens/tokens=1000000/all", 2, "ns/op")
		printf "verification 1M ÷ 1k tokens, hot set  %7.2f× (%.0f ÷ %.0f ns)   (unchanged: ≤ 1.1×)  %s\n", h2 / h1, h2, h1, (h2 / h1 <= 1.1 ? "met" : "MISSED")
		g1 = med("BenchmarkMemoryModelLiveTokens/tokens=1000/hot", 2, "gc-ns/op"); g2 = med("BenchmarkMemoryModelLiveTokens/tokens=1000000/hot", 2, "gc-ns/op")
		printf "  of which garbage collection         %+7.0f ns (GC CPU per verification: %.0f at 1M, %.0f at 1k)\n", g2 - g1, g2, g1
		printf "verification 1M ÷ 1k tokens, all      %7.2f× (%.0f ÷ %.0f ns)   (every lookup misses the caches)\n", a2 / a1, a2, a1
		sv = speedup("BenchmarkVerifyParallel"); sb = speedup("BenchmarkParallelBaseline")
		printf "RunParallel speed-up, 1 → 2 cores     %7.2f× (baseline loop: %.2f×)   (≥ 1.6×, or ≥ 0.9× the baseline)  %s\n", sv, sb, (sv >= 1.6 || sv >= 0.9 * sb ? "met" : "MISSED")
	}' "$tmp/bench" "$tmp/parallel"
grep '^target' "$tmp/load"
