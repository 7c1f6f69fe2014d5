-- wrk script for bench/load.sh: one request shape per run, configured by
-- the environment, and a one-line machine-readable summary.
--
--   BENCH_METHOD  GET (default) or POST
--   BENCH_CTYPE   Content-Type header, if any
--   BENCH_AUTH    Authorization header, if any
--   BENCH_BODY    request body, if any
--
-- Prints: LOAD ops=N seconds=S p50_us=X p99_us=Y errors=E
-- errors counts socket errors and responses with status >= 400.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local ctype = os.getenv("BENCH_CTYPE") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local body = os.getenv("BENCH_BODY") or ""
if ctype ~= "" then wrk.headers["Content-Type"] = ctype end
if auth ~= "" then wrk.headers["Authorization"] = auth end
if body ~= "" then wrk.body = body end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LOAD ops=%d seconds=%.3f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
