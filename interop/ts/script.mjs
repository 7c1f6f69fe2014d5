// What the interop scripts share: a log on stderr tagged with the script's
// name, and a failure reported as the one JSON summary on stdout,
// {"ok":false,"error":...}, with exit status 1. The Go tests read both.

// script sets up the script named name ("o4w.mjs"), which gives up after
// overallTimeoutMs, and returns its log and fail.
export function script(name, overallTimeoutMs) {
  function log(...args) {
    console.error(`[${name}]`, ...args);
  }

  function fail(err) {
    let detail = String(err && err.stack ? err.stack : err);
    if (err && err.cause !== undefined) {
      detail += `\ncause: ${JSON.stringify(err.cause)}`;
    }
    process.stdout.write(JSON.stringify({ ok: false, error: detail }) + '\n');
    process.exit(1);
  }

  setTimeout(() => fail(new Error(`gave up after ${overallTimeoutMs} ms`)), overallTimeoutMs).unref();
  return { log, fail };
}
