// Drives an MCP server protected by mcpoauth with the official TypeScript
// MCP SDK client, as an MCP host application would:
//
//   node client.mjs <MCP URL>
//
// 1. connect: the server answers 401; the SDK discovers the authorization
//    server (RFC 9728, RFC 8414), registers a client (RFC 7591) and starts
//    the authorization code flow with PKCE and resource (RFC 8707);
// 2. redirectToAuthorization plays the user: a cookie-keeping fetch opens
//    the authorization URL, follows it to the consent page, submits the
//    HTML form (username, decision=approve) and takes the code from the
//    303 to the redirect URI, checking state and iss (RFC 9207);
// 3. transport.finishAuth(code) exchanges the code; a new connection lists
//    the tools and calls whoami;
// 4. the access token is replaced by a bogus one: the server's 401 makes
//    the SDK refresh the token (refresh_token grant), and whoami is called
//    again.
//
// It prints one JSON summary on stdout, which interop_test.go checks, and a
// log of every HTTP exchange on stderr. Exit status 0 on success.
//
// Options:
//   --user-on-stdio   the user is played outside (upstream_test.go, where
//                     signing in goes through an upstream OpenID provider):
//                     the authorization URL is printed on stderr as
//                     "[client.mjs] authorize: URL" and the authorization
//                     response (the URL the browser was redirected to) is
//                     read as one line from stdin, instead of step 2's
//                     scripted consent;
//   --call-tool NAME  after whoami, call the tool NAME (no arguments) too if
//                     the server lists it; its result goes in the summary's
//                     called_tools (repeatable).
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { script } from './script.mjs';

const REQUEST_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 90_000;
const USER = 'ts-user';

const { log, fail } = script('client.mjs', OVERALL_TIMEOUT_MS);

// --- HTTP log: every exchange the SDK makes, for the Go test's diagnostics.

const exchanges = [];

// loggingFetch is the fetch the transport (and with it the SDK's OAuth code)
// uses: bounded, and recorded. Error bodies are kept; request bodies are
// recorded for the token and registration endpoints without credentials.
async function loggingFetch(input, init = {}) {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const entry = { method, path: url.pathname };
  if (init.body instanceof URLSearchParams || typeof init.body === 'string') {
    const params = init.body instanceof URLSearchParams ? init.body : tryParams(init.body);
    if (params && params.get('grant_type')) {
      entry.grant_type = params.get('grant_type');
      entry.params = [...params.keys()].sort();
      entry.resource = params.get('resource');
    }
  }
  const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const resp = await fetch(input, { ...init, signal });
  entry.status = resp.status;
  const wwwAuth = resp.headers.get('www-authenticate');
  if (wwwAuth) entry.www_authenticate = wwwAuth;
  if (resp.status >= 400) {
    entry.body = (await resp.clone().text()).slice(0, 500);
  }
  exchanges.push(entry);
  log(method, url.pathname, '->', resp.status, wwwAuth ? `WWW-Authenticate: ${wwwAuth}` : '', entry.body || '');
  return resp;
}

function tryParams(s) {
  try {
    return new URLSearchParams(s);
  } catch {
    return undefined;
  }
}

// --- The "browser": a cookie-keeping fetch that submits HTML forms.

class Browser {
  constructor() {
    this.cookies = new Map(); // origin -> Map(name -> value)
  }

  async fetch(url, init = {}) {
    const u = new URL(url);
    const jar = this.cookies.get(u.origin) || new Map();
    const headers = new Headers(init.headers || {});
    if (jar.size > 0) {
      headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const resp = await fetch(u, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    for (const sc of resp.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) {
        jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
    }
    this.cookies.set(u.origin, jar);
    log('browser', init.method || 'GET', u.pathname, '->', resp.status);
    return resp;
  }

  // navigate follows redirects within the origin; a redirect elsewhere (to
  // the client's redirect URI) is returned unfollowed.
  async navigate(url, init = {}) {
    let current = new URL(url);
    const origin = current.origin;
    let resp = await this.fetch(current, init);
    for (let i = 0; i < 10; i++) {
      if (resp.status < 300 || resp.status > 399) {
        return { url: current, resp, body: await resp.text() };
      }
      const next = new URL(resp.headers.get('location'), current);
      if (next.origin !== origin) {
        return { url: current, resp, redirect: next };
      }
      current = next;
      resp = await this.fetch(current);
    }
    throw new Error('too many redirects');
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'" };

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z0-9]+);/g, (m, e) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(n);
    }
    return ENTITIES[e] ?? m;
  });
}

function attributes(tag) {
  const attrs = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner)) !== null) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

// parseForms reads the forms of a page: action, method, the fields the page
// filled in, and the submit buttons.
function parseForms(html, pageURL) {
  const forms = [];
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)) {
    const formTag = m[0].match(/^<form\b[^>]*>/i)[0];
    const fa = attributes(formTag);
    const form = {
      action: new URL(fa.action || '', pageURL),
      method: (fa.method || 'get').toUpperCase(),
      fields: new URLSearchParams(),
      buttons: [],
    };
    for (const t of m[1].matchAll(/<(input|button)\b[^>]*>/gi)) {
      const a = attributes(t[0]);
      const type = (a.type || (t[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
      if (type === 'submit') {
        form.buttons.push({ name: a.name, value: a.value ?? '', formaction: a.formaction });
      } else if (a.name && !['button', 'reset', 'image', 'file', 'checkbox', 'radio'].includes(type)) {
        form.fields.append(a.name, a.value ?? '');
      }
    }
    forms.push(form);
  }
  return forms;
}

// consent plays the user on the authorization URL and returns the
// authorization response (the redirect to the client's redirect URI).
async function consent(authorizationUrl) {
  const browser = new Browser();
  const page = await browser.navigate(authorizationUrl);
  if (page.redirect) {
    return page.redirect; // an error response without a consent page
  }
  if (page.resp.status !== 200) {
    throw new Error(`consent page: status ${page.resp.status}: ${page.body.slice(0, 300)}`);
  }
  const form = parseForms(page.body, page.url).find((f) => f.buttons.some((b) => b.name === 'decision' && b.value === 'approve'));
  if (!form) {
    throw new Error(`no consent form with decision=approve at ${page.url.pathname}: ${page.body.slice(0, 300)}`);
  }
  const button = form.buttons.find((b) => b.name === 'decision' && b.value === 'approve');
  const values = new URLSearchParams(form.fields);
  values.set('username', USER);
  values.set(button.name, button.value);
  const action = button.formaction ? new URL(button.formaction, form.action) : form.action;
  if (form.method !== 'POST') {
    throw new Error(`consent form method ${form.method}, want POST`);
  }
  const result = await browser.navigate(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: action.origin },
    body: values.toString(),
  });
  if (!result.redirect) {
    throw new Error(`consent decision: status ${result.resp.status}, no redirect to the client: ${(result.body || '').slice(0, 300)}`);
  }
  if (result.resp.status !== 303 && result.resp.status !== 302) {
    throw new Error(`consent decision: status ${result.resp.status}, want 303`);
  }
  return result.redirect;
}

// externalConsent hands the authorization URL to whoever plays the user
// (--user-on-stdio) and waits for the authorization response on stdin.
async function externalConsent(authorizationUrl) {
  log(`authorize: ${authorizationUrl.href}`);
  const lines = createInterface({ input: process.stdin });
  try {
    for await (const line of lines) {
      if (line.trim() !== '') {
        return new URL(line.trim());
      }
    }
  } finally {
    lines.close();
  }
  throw new Error('stdin ended before the authorization response');
}

// --- The OAuthClientProvider: in memory, one session.

class InMemoryOAuthProvider {
  constructor(redirectUrl, userOnStdio) {
    this._redirectUrl = redirectUrl;
    this._userOnStdio = userOnStdio;
    this.tokenHistory = [];
    this.invalidations = [];
    this.authorizationRequests = [];
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'mcpoauth interop: TypeScript MCP SDK',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokenHistory.push(tokens);
  }

  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }

  codeVerifier() {
    return this._codeVerifier;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  invalidateCredentials(scope) {
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }

  // redirectToAuthorization is where a host opens the browser. Here the
  // scripted browser consents at once and keeps the code for finishAuth.
  async redirectToAuthorization(authorizationUrl) {
    const q = authorizationUrl.searchParams;
    this.authorizationRequests.push(Object.fromEntries([...q].filter(([k]) => k !== 'code_challenge' && k !== 'state')));
    const response = this._userOnStdio ? await externalConsent(authorizationUrl) : await consent(authorizationUrl);
    const r = response.searchParams;
    for (const p of ['code', 'state', 'iss']) {
      if (r.getAll(p).length !== 1) {
        throw new Error(`authorization response has ${r.getAll(p).length} ${p} parameters: ${r.get('error') || ''} ${r.get('error_description') || ''}`);
      }
    }
    if (r.get('state') !== this._state) {
      throw new Error('authorization response state does not match');
    }
    const issuer = this._discovery?.authorizationServerMetadata?.issuer;
    if (!issuer || r.get('iss') !== issuer) {
      throw new Error(`authorization response iss ${r.get('iss')}, want ${issuer}`);
    }
    this.authorizationResponse = { redirect_uri: `${response.origin}${response.pathname}`, iss: r.get('iss'), state_ok: true };
    this.code = r.get('code');
  }
}

function toolText(res) {
  return res.content.filter((c) => c.type === 'text').map((c) => c.text).join(' ');
}

async function callWhoami(client) {
  const res = await client.callTool({ name: 'whoami', arguments: {} });
  if (res.isError) {
    throw new Error(`whoami failed: ${JSON.stringify(res.content)}`);
  }
  return { text: toolText(res), structured: res.structuredContent ?? null };
}

async function main() {
  const { values: opts, positionals } = parseArgs({
    options: {
      'user-on-stdio': { type: 'boolean', default: false },
      'call-tool': { type: 'string', multiple: true, default: [] },
    },
    allowPositionals: true,
  });
  const mcpUrl = new URL(positionals[0] || 'http://localhost:3000/mcp');
  // Nothing listens at the redirect URI: the scripted browser stops at the
  // redirect. Any loopback port is allowed (RFC 8252 §7.3).
  const provider = new InMemoryOAuthProvider('http://127.0.0.1:33418/callback', opts['user-on-stdio']);
  const info = { name: 'mcpoauth-interop-ts', version: '0.0.0' };

  // 1-2: the first connection meets the 401 and runs the authorization.
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: loggingFetch });
  let unauthorized = false;
  try {
    await new Client(info).connect(first);
    throw new Error('connected without authorization');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    unauthorized = true;
  }
  if (!provider.code) {
    throw new Error('the SDK did not start the authorization');
  }
  // 3: exchange the code, reconnect.
  await first.finishAuth(provider.code);
  await first.close();
  const tokensAfterCode = provider.tokens();

  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: loggingFetch });
  const client = new Client(info);
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const whoami = await callWhoami(client);
  const calledTools = {};
  for (const name of opts['call-tool']) {
    if (tools.includes(name)) {
      const res = await client.callTool({ name, arguments: {} });
      calledTools[name] = { is_error: Boolean(res.isError), text: toolText(res), structured: res.structuredContent ?? null };
    }
  }

  // 4: a bogus access token makes the server answer 401 invalid_token; the
  // SDK refreshes with the refresh token and retries.
  provider._tokens = { ...provider._tokens, access_token: 'bogus-' + randomBytes(16).toString('base64url') };
  const whoamiAfterRefresh = await callWhoami(client);
  const tokensAfterRefresh = provider.tokens();
  await client.close();

  const summary = {
    ok: true,
    unauthorized_first: unauthorized,
    issuer: provider._discovery?.authorizationServerMetadata?.issuer,
    resource: provider._discovery?.resourceMetadata?.resource,
    client_id: provider.clientInformation()?.client_id,
    client_secret_issued: Boolean(provider.clientInformation()?.client_secret),
    token_endpoint_auth_method: provider.clientInformation()?.token_endpoint_auth_method,
    authorization_request: provider.authorizationRequests[0],
    authorization_response: provider.authorizationResponse,
    token_type: tokensAfterCode?.token_type,
    scope: tokensAfterCode?.scope,
    expires_in: tokensAfterCode?.expires_in,
    has_refresh_token: Boolean(tokensAfterCode?.refresh_token),
    refreshed: provider.tokenHistory.length >= 2 && tokensAfterRefresh.access_token !== tokensAfterCode.access_token && !tokensAfterRefresh.access_token.startsWith('bogus-'),
    refresh_token_rotated: Boolean(tokensAfterRefresh?.refresh_token) && tokensAfterRefresh.refresh_token !== tokensAfterCode.refresh_token,
    invalidations: provider.invalidations,
    tools,
    whoami,
    called_tools: calledTools,
    whoami_after_refresh: whoamiAfterRefresh,
    token_requests: exchanges.filter((e) => e.grant_type).map(({ grant_type, params, resource, status }) => ({ grant_type, params, resource, status })),
    errors: exchanges.filter((e) => e.status >= 400),
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => fail(err),
);
