// Drives the mcpoauth example server with oauth4webapi (panva), a
// certified OAuth 2 / OpenID client library, as a confidential service
// client authenticating with private_key_jwt (RFC 7523):
//
//   node o4w.mjs <issuer> <MCP URL> <token file>   (private JWK on stdin)
//
// 1. discovery (RFC 8414) of the issuer's metadata;
// 2. a client_credentials grant with resource (RFC 8707) and scope
//    mcp:tools, the client authenticating with a PrivateKeyJwt assertion
//    signed with the ES256 key read from stdin (a private JWK with
//    client_id and kid members);
// 3. validateJwtAccessToken (RFC 9068) on the access token, against the
//    jwks_uri of the metadata, with the MCP URL as expected audience.
//
// It writes the access token to <token file> (mode 0600) for the Go test
// to call the MCP endpoint with, and prints one JSON summary on stdout,
// never the token. Exit status 0 on success.
import { readFileSync, writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { script } from './script.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;

const { log, fail } = script('o4w.mjs', OVERALL_TIMEOUT_MS);

// The claims of a compact JWS, unverified (for the summary only).
function decodePart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

async function main() {
  const [issuerArg, mcpURL, tokenFile] = process.argv.slice(2);
  if (!issuerArg || !mcpURL || !tokenFile) {
    throw new Error('usage: node o4w.mjs <issuer> <MCP URL> <token file> < private.jwk');
  }
  const jwk = JSON.parse(readFileSync(0, 'utf8'));
  const { client_id: clientID, kid } = jwk;
  delete jwk.client_id;
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);

  // The example server runs on http://127.0.0.1 in the tests.
  const insecure = { [oauth.allowInsecureRequests]: true, signal: () => AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
  const issuer = new URL(issuerArg);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
  );
  log('discovered', as.issuer, 'token endpoint', as.token_endpoint, 'jwks_uri', as.jwks_uri);

  let assertion;
  const clientAuth = oauth.PrivateKeyJwt(
    { key, kid },
    {
      [oauth.modifyAssertion]: (header, payload) => {
        assertion = { header: { ...header }, payload: { ...payload } };
      },
    },
  );
  const client = { client_id: clientID };
  const response = await oauth.clientCredentialsGrantRequest(
    as,
    client,
    clientAuth,
    new URLSearchParams({ scope: 'mcp:tools', resource: mcpURL }),
    insecure,
  );
  const tokenStatus = response.status;
  const sentBody = await response.clone().text().catch(() => '');
  const tr = await oauth.processClientCredentialsResponse(as, client, response).catch((err) => {
    log('token response', tokenStatus, sentBody);
    throw err;
  });
  log('token response', tokenStatus, 'token_type', tr.token_type, 'scope', tr.scope, 'expires_in', tr.expires_in);
  writeFileSync(tokenFile, tr.access_token, { mode: 0o600 });

  const parts = tr.access_token.split('.');
  const header = parts.length === 3 ? decodePart(parts[0]) : null;
  const request = new Request(mcpURL, { headers: { authorization: `Bearer ${tr.access_token}` } });
  const claims = await oauth.validateJwtAccessToken(as, request, mcpURL, {
    ...insecure,
    signingAlgorithms: ['ES256'],
  });

  process.stdout.write(
    JSON.stringify({
      ok: true,
      issuer: as.issuer,
      jwks_uri: as.jwks_uri,
      token_endpoint_auth_methods_supported: as.token_endpoint_auth_methods_supported,
      token_endpoint_auth_signing_alg_values_supported: as.token_endpoint_auth_signing_alg_values_supported,
      assertion: assertion && {
        alg: assertion.header.alg,
        kid: assertion.header.kid,
        iss: assertion.payload.iss,
        sub: assertion.payload.sub,
        aud: assertion.payload.aud,
        has_jti: typeof assertion.payload.jti === 'string',
        has_exp: typeof assertion.payload.exp === 'number',
      },
      token_status: tokenStatus,
      token_type: tr.token_type,
      scope: tr.scope,
      expires_in: tr.expires_in,
      has_refresh_token: tr.refresh_token !== undefined,
      token_header: header && { typ: header.typ, alg: header.alg, has_kid: typeof header.kid === 'string' },
      claims: {
        iss: claims.iss,
        sub: claims.sub,
        aud: claims.aud,
        client_id: claims.client_id,
        scope: claims.scope,
        exp: claims.exp,
        iat: claims.iat,
        has_jti: typeof claims.jti === 'string',
      },
    }) + '\n',
  );
}

main().catch(fail);
