// Drives the mcpoauth example server with oauth4webapi (panva), which
// implements RFC 9449 DPoP, as a public client binding its tokens to a key:
//
//   node o4w_dpop.mjs <issuer> <MCP URL>
//
// 1. discovery (RFC 8414): dpop_signing_alg_values_supported is listed;
// 2. dynamic registration (RFC 7591) of a public client;
// 3. the authorization code flow with PKCE, the user played by a
//    cookie-keeping fetch that submits the consent form;
// 4. the code exchanged with a DPoP proof of an ES256 key: the server
//    answers use_dpop_nonce with a DPoP-Nonce, oauth4webapi keeps the nonce
//    and the retry gets a DPoP-bound token (token_type DPoP);
// 5. the MCP endpoint called with the DPoP scheme and a proof (ath), from a
//    fresh DPoP handle that holds no nonce yet: the resource server's 401
//    use_dpop_nonce challenge is answered by a retry with its nonce;
// 6. the same token presented as Bearer, which must be refused (401);
// 7. a refresh with a proof of the same key, and the MCP endpoint again.
//
// It prints one JSON summary on stdout, never a token. Exit status 0 on
// success.
import * as oauth from 'oauth4webapi';
import { script } from './script.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

const { log, fail } = script('o4w_dpop.mjs', OVERALL_TIMEOUT_MS);

const [issuerArg, mcpArg] = process.argv.slice(2);
if (!issuerArg || !mcpArg) {
  fail(new Error('usage: node o4w_dpop.mjs <issuer> <MCP URL>'));
}
const issuer = new URL(issuerArg);
const mcpURL = new URL(mcpArg);
const insecure = { [oauth.allowInsecureRequests]: true };
const summary = { ok: false, nonce_challenges: { token: 0, mcp: 0 } };

// retryOnNonce runs request, and once more if the server asked for a DPoP
// nonce (RFC 9449 §8, §9): oauth4webapi keeps the nonce of the answer.
async function retryOnNonce(where, request) {
  try {
    return await request();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) {
      throw err;
    }
    summary.nonce_challenges[where]++;
    log(where, 'use_dpop_nonce: retrying with the server nonce');
    return await request();
  }
}

// consent plays the user: /authorize, the consent page, the approve button.
async function consent(authorizationURL) {
  const cookies = [];
  const get = async (u, init = {}) => {
    const headers = new Headers(init.headers || {});
    if (cookies.length) headers.set('cookie', cookies.join('; '));
    const resp = await fetch(u, { ...init, headers, redirect: 'manual' });
    for (const sc of resp.headers.getSetCookie()) cookies.push(sc.split(';')[0]);
    log('browser', init.method || 'GET', new URL(u).pathname, '->', resp.status);
    return resp;
  };
  let resp = await get(authorizationURL);
  let url = new URL(resp.headers.get('location'), authorizationURL);
  while (url.origin === issuer.origin) {
    resp = await get(url);
    if (resp.status < 300 || resp.status > 399) break;
    url = new URL(resp.headers.get('location'), url);
  }
  const html = await resp.text();
  const form = html.match(/<form\b[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
  if (!form) throw new Error(`no consent form: ${html.slice(0, 300)}`);
  const values = new URLSearchParams();
  for (const m of form[2].matchAll(/<input\b[^>]*type="hidden"[^>]*>/gi)) {
    const name = m[0].match(/name="([^"]*)"/)[1];
    const value = (m[0].match(/value="([^"]*)"/) || [, ''])[1].replace(/&amp;/g, '&').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'");
    values.append(name, value);
  }
  values.set('username', 'dpop-user');
  values.set('decision', 'approve');
  const action = new URL(form[1].replace(/&amp;/g, '&'), url);
  resp = await get(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: action.origin },
    body: values,
  });
  if (resp.status !== 303) throw new Error(`consent decision: status ${resp.status}`);
  return new URL(resp.headers.get('location'));
}

// callMCP posts an MCP initialize request with the DPoP scheme.
async function callMCP(token, DPoP) {
  const body = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'o4w-dpop', version: '1' } },
  });
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
  const resp = await retryOnNonce('mcp', () => oauth.protectedResourceRequest(token, 'POST', mcpURL, headers, body, { DPoP, ...insecure }));
  await resp.body?.cancel();
  return resp.status;
}

try {
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  summary.dpop_signing_alg_values_supported = as.dpop_signing_alg_values_supported;

  const reg = await fetch(as.registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'oauth4webapi DPoP', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'mcp:tools',
    }),
  });
  if (reg.status !== 201) throw new Error(`registration: ${reg.status} ${await reg.text()}`);
  const client = { client_id: (await reg.json()).client_id, token_endpoint_auth_method: 'none' };

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authURL = new URL(as.authorization_endpoint);
  authURL.search = new URLSearchParams({
    client_id: client.client_id, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'mcp:tools', state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: mcpURL.href,
  }).toString();
  const callback = await consent(authURL);
  const params = oauth.validateAuthResponse(as, client, callback, state);

  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);
  const tokens = await retryOnNonce('token', async () => oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT_URI, verifier, { DPoP, ...insecure })));
  summary.token_type = tokens.token_type;
  summary.has_refresh_token = Boolean(tokens.refresh_token);

  // A handle with the same key and no nonce yet: the resource server asks.
  summary.mcp_status = await callMCP(tokens.access_token, oauth.DPoP(client, keyPair));

  const asBearer = await fetch(mcpURL, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' }, body: '{}' });
  summary.bearer_status = asBearer.status;
  summary.bearer_challenge = asBearer.headers.get('www-authenticate');

  const refreshed = await retryOnNonce('token', async () => oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, { DPoP, ...insecure })));
  summary.refreshed_token_type = refreshed.token_type;
  summary.mcp_status_after_refresh = await callMCP(refreshed.access_token, DPoP);
  summary.ok = true;
  process.stdout.write(JSON.stringify(summary) + '\n');
} catch (err) {
  fail(err);
}
