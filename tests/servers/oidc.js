// OAuth 2.0 authorization server for svc's integration tests, backed by a real
// `oidc-provider` instance. Grants: client_credentials only. Token
// introspection (RFC 7662) is enabled.
//
//   node tests/servers/oidc.js '<json config>'
//
// Config:
//   {"clients": [{"client_id": "...", "client_secret": "...",
//                 "token_endpoint_auth_method": "client_secret_basic" | "client_secret_post",
//                 "scope": "optional space separated scopes"}],
//    "access_token_ttl": 600,            // optional, seconds (default 600)
//    "strict_auth_method": true}         // optional (default true), see below
//
// oidc-provider itself accepts client_secret_basic and client_secret_post
// interchangeably for a client registered with either. With
// "strict_auth_method" (the default) this wrapper insists on the method the
// client is registered with, at the token and introspection endpoints, so a
// test can tell which one the client under test used: the other one gets
// 401 {"error":"invalid_client"}.
//
// Listens on 127.0.0.1 on a free port and, once ready, prints exactly one line
// of JSON to stdout:
//   {"issuer":"http://127.0.0.1:PORT","token_endpoint":"http://127.0.0.1:PORT/token",
//    "introspection_endpoint":"http://127.0.0.1:PORT/token/introspection"}
// Nothing else is ever written to stdout. Exits when stdin closes, or on
// SIGTERM / SIGINT / SIGHUP.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

// Everything that is not the ready line goes to stderr. oidc-provider prints
// its notices with console.info, which would otherwise end up on stdout.
for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => console.error(...args);
}
// The strict auth method check below reads request bodies before
// oidc-provider does, which makes it print a one-off warning; it is expected.
const consoleWarn = console.warn;
console.warn = (...args) => {
  if (String(args[0]).includes('already parsed request body detected')) return;
  consoleWarn(...args);
};

function die(message) {
  process.stderr.write(`oidc.js: ${message}\n`);
  process.exit(2);
}

// A parent that dies (or simply drops our stdin) must not leave us running.
function exitOnStdinClose() {
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => process.exit(0));
}
exitOnStdinClose();

// ---- configuration ---------------------------------------------------------

let config;
try {
  config = JSON.parse(process.argv[2] ?? '');
} catch (err) {
  die(`expected a JSON config as the first argument: ${err.message}`);
}
if (!config || !Array.isArray(config.clients) || config.clients.length === 0) {
  die('config must have a non-empty "clients" array');
}
const AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
const scopes = new Set();
const clients = config.clients.map((c, i) => {
  if (typeof c.client_id !== 'string' || !c.client_id) die(`clients[${i}].client_id must be a non-empty string`);
  if (typeof c.client_secret !== 'string' || !c.client_secret) die(`clients[${i}].client_secret must be a non-empty string`);
  const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
  if (!AUTH_METHODS.has(method)) die(`clients[${i}].token_endpoint_auth_method must be one of ${[...AUTH_METHODS].join(', ')}`);
  const client = {
    client_id: c.client_id,
    client_secret: c.client_secret,
    token_endpoint_auth_method: method,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  };
  if (c.scope !== undefined) {
    if (typeof c.scope !== 'string') die(`clients[${i}].scope must be a string`);
    client.scope = c.scope;
    for (const s of c.scope.split(' ').filter(Boolean)) scopes.add(s);
  }
  return client;
});
const accessTokenTtl = config.access_token_ttl ?? 600;
if (!Number.isInteger(accessTokenTtl) || accessTokenTtl <= 0) die('"access_token_ttl" must be a positive integer');
const strictAuthMethod = config.strict_auth_method ?? true;
if (typeof strictAuthMethod !== 'boolean') die('"strict_auth_method" must be a boolean');
const registeredMethod = new Map(clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));

// ---- in-memory storage adapter ----------------------------------------------
// (oidc-provider's built-in one works too, but warns on every start.)

const storage = new Map();
class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    storage.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = storage.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      storage.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode() {
    return undefined;
  }

  async findByUid() {
    return undefined;
  }

  async consume(id) {
    const entry = storage.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of storage) {
      if (entry.payload.grantId === grantId) storage.delete(key);
    }
  }
}

// ---- provider ------------------------------------------------------------------

// A fresh signing key per process: nothing here signs anything a test looks
// at (tokens are opaque), but the provider needs one and its built-in
// development keys come with a warning. EC, because an EC key is generated in
// well under a millisecond (RSA takes 0.1-0.5 s).
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid: 'test' }] };

const { default: Provider } = await import('oidc-provider');

const routes = { token: '/token', introspection: '/token/introspection' };

const server = http.createServer();
server.on('error', (err) => die(`server error: ${err.message}`));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients,
    scopes: ['openid', ...scopes],
    adapter: MemoryAdapter,
    jwks,
    // The default (RS256) would need an RSA key; nothing here issues ID tokens.
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    routes,
    features: {
      clientCredentials: { enabled: true },
      // Any authenticated client may introspect any token: this is a test server.
      introspection: { enabled: true, allowedPolicy: async () => true },
      // No `resource` parameter: client_credentials tokens are opaque and
      // stored, so they can be introspected.
      resourceIndicators: { enabled: false },
      devInteractions: { enabled: false },
    },
    ttl: {
      ClientCredentials: () => accessTokenTtl,
    },
    // Errors go to the client as JSON; keep them off the console.
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`oidc.js: server_error: ${err.stack}\n`));

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    if (strictAuthMethod && req.method === 'POST' && (path === routes.token || path === routes.introspection)) {
      checkAuthMethod(req, res).then((ok) => ok && callback(req, res), (err) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid_request', error_description: err.message }));
      });
    } else {
      callback(req, res);
    }
  });

  process.stdout.write(`${JSON.stringify({
    issuer,
    token_endpoint: `${issuer}${routes.token}`,
    introspection_endpoint: `${issuer}${routes.introspection}`,
  })}\n`);
});

// ---- strict client authentication method ----------------------------------------

function formDecode(value) {
  return decodeURIComponent(value.replace(/\+/g, '%20'));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 56 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// Reads the body (handing it on to oidc-provider as req.body, which it parses
// exactly like a streamed one) and rejects a registered client that
// authenticates with the other of the two secret methods. Returns whether the
// request should go on to oidc-provider.
async function checkAuthMethod(req, res) {
  const body = await readBody(req);
  req.body = body;

  let used;
  let clientId;
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const [scheme, value] = authorization.split(' ');
    if (scheme?.toLowerCase() !== 'basic' || !value) return true; // oidc-provider rejects it
    const basic = Buffer.from(value, 'base64').toString('utf8');
    const i = basic.indexOf(':');
    if (i === -1) return true;
    try {
      clientId = formDecode(basic.slice(0, i));
    } catch {
      return true;
    }
    used = 'client_secret_basic';
  } else if ((req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const params = new URLSearchParams(body.toString('utf8'));
    if (params.has('client_secret')) {
      used = 'client_secret_post';
      clientId = params.get('client_id');
    }
  }

  const registered = registeredMethod.get(clientId);
  if (!used || !registered || used === registered) return true;

  res.writeHead(401, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(used === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="oidc.js", error="invalid_client"' } : {}),
  });
  res.end(JSON.stringify({
    error: 'invalid_client',
    error_description: `client ${clientId} is registered for ${registered} but authenticated with ${used}`,
  }));
  return false;
}
