// OAuth 2.0 / OpenID Connect authorization server for svc's integration
// tests, backed by a real `oidc-provider` instance. Grants: client_credentials
// (the default), and per client authorization_code with PKCE through a
// loopback redirect (RFC 8252), the device authorization grant (RFC 8628) and
// refresh_token. Client authentication: client_secret_basic,
// client_secret_post, none (public clients) and private_key_jwt (RFC 7523
// section 2.2; RS256, PS256, ES256, EdDSA). Token introspection (RFC 7662),
// revocation (RFC 7009) and discovery (/.well-known/openid-configuration)
// are enabled. People log in and consent through oidc-provider's own
// development pages (any login, any password), which
// tests/browser/consent.js drives.
//
//   node tests/servers/oidc.js '<json config>'
//
// Config (every key but "clients" optional; a client without "grant_types"
// is a client_credentials client, exactly as before):
//   {"clients": [
//      {"client_id": "...", "client_secret": "...",
//       "token_endpoint_auth_method": "client_secret_basic" | "client_secret_post"
//                                     | "none" | "private_key_jwt",
//       "scope": "optional space separated scopes",
//       "grant_types": ["client_credentials"],      // default; or any of
//           // "authorization_code", "refresh_token", "client_credentials",
//           // "urn:ietf:params:oauth:grant-type:device_code"
//       "redirect_uris": ["http://127.0.0.1/callback"],   // authorization_code only
//       "application_type": "native" | "web",      // default: native when every
//           // redirect URI is http on a loopback host, else web
//       "pkce_required": true,                     // default true (S256 only)
//       "refresh_tokens": "offline_access" | "always",   // default offline_access
//       "rotate_refresh_token": true | false,      // default: oidc-provider's rule
//       "device_code_ttl": 600,                    // seconds, overrides the global one
//       "jwks": {"keys": [JWK, ...]},              // private_key_jwt: the public keys
//       "public_keys": ["-----BEGIN PUBLIC KEY-----...", {"pem": "...", "kid": "k1"}],
//       "token_endpoint_auth_signing_alg": "RS256"}],   // private_key_jwt, optional
//    "access_token_ttl": 600,       // seconds, every access token (default 600)
//    "refresh_token_ttl": 1209600,  // seconds (default 14 days)
//    "device_code_ttl": 600,        // seconds, device codes (default 600)
//    "device_poll_interval": 5,     // seconds: "interval" in device authorization
//                                   // answers (default: none sent, which means 5)
//    "device_slow_down": false,     // answer slow_down to a device_code poll that
//                                   // comes sooner than the interval after the last
//    "strict_auth_method": true}    // see below
//
// client_secret is required for client_secret_basic and client_secret_post
// and not allowed for none. private_key_jwt needs "jwks" or "public_keys"
// (PEM SPKI, or PEM private keys, of which only the public half is kept;
// private members of a JWK are dropped too). A key registered with a "kid"
// only verifies assertions whose header names that kid; a key without a kid
// verifies assertions with or without one only when the header has no kid,
// as oidc-provider selects keys.
//
// Loopback redirects: a client whose redirect URIs are all http on
// 127.0.0.1, [::1] or localhost is registered as a native client, and
// oidc-provider then accepts any port in the redirect_uri of an authorization
// request for those hosts (RFC 8252 section 7.3): register
// "http://127.0.0.1/callback" and request "http://127.0.0.1:PORT/callback".
// Scheme, host, path and query must match.
//
// Refresh tokens: with "offline_access" (oidc-provider's rule) an
// authorization_code grant gives a refresh token only when the client may
// use the refresh_token grant and offline_access was granted, which
// oidc-provider only does when the authorization request had
// prompt=consent (without it offline_access is silently dropped); the device
// flow needs just the offline_access scope. With "always", every
// authorization_code and device_code grant of a client that may use the
// refresh_token grant gives one. Either way "offline_access" must be in the
// client's "scope" if the client asks for it (all of a client's scopes are
// registered with the provider, and "openid" and "offline_access" always are).
//
// oidc-provider itself accepts client_secret_basic and client_secret_post
// interchangeably for a client registered with either. With
// "strict_auth_method" (the default) this wrapper insists on the method the
// client is registered with, at the token, introspection, revocation and
// device authorization endpoints, so a test can tell which one the client
// under test used: the other one gets 401 {"error":"invalid_client"}.
//
// Listens on 127.0.0.1 on a free port and, once ready, prints exactly one line
// of JSON to stdout:
//   {"issuer":"http://127.0.0.1:PORT","token_endpoint":"http://127.0.0.1:PORT/token",
//    "introspection_endpoint":"http://127.0.0.1:PORT/token/introspection",
//    "authorization_endpoint":"http://127.0.0.1:PORT/auth",
//    "revocation_endpoint":"http://127.0.0.1:PORT/token/revocation",
//    "jwks_uri":"http://127.0.0.1:PORT/jwks",
//    "discovery":"http://127.0.0.1:PORT/.well-known/openid-configuration",
//    "stats_endpoint":"http://127.0.0.1:PORT/stats",
//    "device_authorization_endpoint":"http://127.0.0.1:PORT/device/auth",   // with a device client
//    "verification_uri":"http://127.0.0.1:PORT/device"}                     // with a device client
// GET /stats answers what happened (see `stats` below). Nothing else is ever
// written to stdout. Exits when stdin closes, or on SIGTERM / SIGINT / SIGHUP.

import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

// Everything that is not the ready line goes to stderr. oidc-provider prints
// its notices with console.info, which would otherwise end up on stdout.
for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => console.error(...args);
}
// Warnings that are expected here and would only be noise in a test's
// output: the strict auth method check below reads request bodies before
// oidc-provider does; the development interactions are what the browser
// tests drive on purpose.
const EXPECTED_WARNINGS = [
  'already parsed request body detected',
  'a quick start development-only feature devInteractions is enabled',
  'default features.deviceFlow.',
];
const consoleWarn = console.warn;
const consoleError = console.error;
console.warn = (...args) => {
  if (EXPECTED_WARNINGS.some((w) => String(args[0]).includes(w))) return;
  consoleWarn(...args);
};
console.error = (...args) => {
  if (EXPECTED_WARNINGS.some((w) => String(args[0]).includes(w))) return;
  consoleError(...args);
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

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const GRANT_TYPES = new Set(['client_credentials', 'authorization_code', 'refresh_token', DEVICE_GRANT]);
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
const AUTH_METHODS = new Set([...SECRET_METHODS, 'none', 'private_key_jwt']);
const JWT_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

let config;
try {
  config = JSON.parse(process.argv[2] ?? '');
} catch (err) {
  die(`expected a JSON config as the first argument: ${err.message}`);
}
if (!config || !Array.isArray(config.clients) || config.clients.length === 0) {
  die('config must have a non-empty "clients" array');
}

function positiveInteger(value, name, fallback) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) die(`"${name}" must be a positive integer`);
  return value;
}

function isLoopbackHttp(uri) {
  try {
    const u = new URL(uri);
    return u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname);
  } catch {
    return false;
  }
}

// A public JWK from a PEM (SPKI or private key) or a JWK (private members dropped).
function publicJwk(entry, label) {
  let jwk;
  let kid;
  let alg;
  try {
    if (typeof entry === 'string' || (entry && typeof entry.pem === 'string')) {
      const pem = typeof entry === 'string' ? entry : entry.pem;
      jwk = createPublicKey(pem).export({ format: 'jwk' });
      if (typeof entry === 'object') ({ kid, alg } = entry);
    } else if (entry && typeof entry === 'object' && typeof entry.kty === 'string') {
      jwk = { ...entry };
      for (const member of PRIVATE_JWK_MEMBERS) delete jwk[member];
      // Checks that it is a usable public key at all.
      createPublicKey({ key: jwk, format: 'jwk' });
    } else {
      throw new Error('expected a PEM string, {"pem": "...", "kid": "..."} or a JWK');
    }
  } catch (err) {
    die(`${label}: ${err.message}`);
  }
  if (jwk.kty === 'oct') die(`${label}: a symmetric key cannot be used for private_key_jwt`);
  if (kid !== undefined) jwk.kid = kid;
  if (alg !== undefined) jwk.alg = alg;
  return jwk;
}

const scopes = new Set(['openid', 'offline_access']);
const clientOptions = new Map(); // client_id -> { pkceRequired, refreshTokens, rotate, deviceCodeTtl }
let anyInteractive = false;
let anyDevice = false;
const clients = config.clients.map((c, i) => {
  const label = `clients[${i}]`;
  if (typeof c.client_id !== 'string' || !c.client_id) die(`${label}.client_id must be a non-empty string`);
  if (clientOptions.has(c.client_id)) die(`${label}.client_id ${c.client_id} appears twice`);
  const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
  if (!AUTH_METHODS.has(method)) die(`${label}.token_endpoint_auth_method must be one of ${[...AUTH_METHODS].join(', ')}`);
  if (SECRET_METHODS.has(method)) {
    if (typeof c.client_secret !== 'string' || !c.client_secret) die(`${label}.client_secret must be a non-empty string`);
  } else if (method === 'none' && c.client_secret !== undefined) {
    die(`${label}: a public client (token_endpoint_auth_method none) has no client_secret`);
  } else if (c.client_secret !== undefined && (typeof c.client_secret !== 'string' || !c.client_secret)) {
    die(`${label}.client_secret must be a non-empty string`);
  }

  const grantTypes = c.grant_types ?? ['client_credentials'];
  if (!Array.isArray(grantTypes) || grantTypes.length === 0 || !grantTypes.every((g) => GRANT_TYPES.has(g))) {
    die(`${label}.grant_types must be a non-empty array of ${[...GRANT_TYPES].join(', ')}`);
  }
  const code = grantTypes.includes('authorization_code');
  const device = grantTypes.includes(DEVICE_GRANT);
  if (grantTypes.includes('client_credentials') && method === 'none') {
    die(`${label}: a public client cannot use the client_credentials grant`);
  }
  const redirectUris = c.redirect_uris ?? [];
  if (!Array.isArray(redirectUris) || !redirectUris.every((u) => typeof u === 'string')) {
    die(`${label}.redirect_uris must be an array of strings`);
  }
  if (code && redirectUris.length === 0) die(`${label}: an authorization_code client needs redirect_uris`);
  if (!code && redirectUris.length > 0) die(`${label}: redirect_uris need the authorization_code grant`);
  anyInteractive ||= code || device;
  anyDevice ||= device;

  const client = {
    client_id: c.client_id,
    token_endpoint_auth_method: method,
    grant_types: grantTypes,
    response_types: code ? ['code'] : [],
    redirect_uris: redirectUris,
  };
  if (c.client_secret !== undefined) client.client_secret = c.client_secret;
  const applicationType = c.application_type
    ?? (redirectUris.length > 0 && redirectUris.every(isLoopbackHttp) ? 'native' : 'web');
  if (!['native', 'web'].includes(applicationType)) die(`${label}.application_type must be native or web`);
  client.application_type = applicationType;

  if (c.scope !== undefined) {
    if (typeof c.scope !== 'string') die(`${label}.scope must be a string`);
    client.scope = c.scope;
    for (const s of c.scope.split(' ').filter(Boolean)) scopes.add(s);
  }

  if (method === 'private_key_jwt') {
    const keys = [];
    if (c.jwks !== undefined) {
      if (!c.jwks || !Array.isArray(c.jwks.keys)) die(`${label}.jwks must be {"keys": [...]}`);
      c.jwks.keys.forEach((k, j) => keys.push(publicJwk(k, `${label}.jwks.keys[${j}]`)));
    }
    if (c.public_keys !== undefined) {
      if (!Array.isArray(c.public_keys)) die(`${label}.public_keys must be an array`);
      c.public_keys.forEach((k, j) => keys.push(publicJwk(k, `${label}.public_keys[${j}]`)));
    }
    if (keys.length === 0) die(`${label}: private_key_jwt needs "jwks" or "public_keys"`);
    client.jwks = { keys };
    if (c.token_endpoint_auth_signing_alg !== undefined) {
      if (!JWT_ALGS.includes(c.token_endpoint_auth_signing_alg)) {
        die(`${label}.token_endpoint_auth_signing_alg must be one of ${JWT_ALGS.join(', ')}`);
      }
      client.token_endpoint_auth_signing_alg = c.token_endpoint_auth_signing_alg;
    }
  } else if (c.jwks !== undefined || c.public_keys !== undefined) {
    die(`${label}: keys are only for private_key_jwt clients`);
  }

  const pkceRequired = c.pkce_required ?? true;
  if (typeof pkceRequired !== 'boolean') die(`${label}.pkce_required must be a boolean`);
  const refreshTokens = c.refresh_tokens ?? 'offline_access';
  if (!['offline_access', 'always'].includes(refreshTokens)) die(`${label}.refresh_tokens must be offline_access or always`);
  const rotate = c.rotate_refresh_token;
  if (rotate !== undefined && typeof rotate !== 'boolean') die(`${label}.rotate_refresh_token must be a boolean`);
  const deviceCodeTtl = positiveInteger(c.device_code_ttl, `${label}.device_code_ttl`, undefined);
  clientOptions.set(c.client_id, { pkceRequired, refreshTokens, rotate, deviceCodeTtl });
  return client;
});
const accessTokenTtl = positiveInteger(config.access_token_ttl, 'access_token_ttl', 600);
const refreshTokenTtl = positiveInteger(config.refresh_token_ttl, 'refresh_token_ttl', 14 * 24 * 3600);
const deviceCodeTtl = positiveInteger(config.device_code_ttl, 'device_code_ttl', 600);
const devicePollInterval = positiveInteger(config.device_poll_interval, 'device_poll_interval', undefined);
const deviceSlowDown = config.device_slow_down ?? false;
if (typeof deviceSlowDown !== 'boolean') die('"device_slow_down" must be a boolean');
const strictAuthMethod = config.strict_auth_method ?? true;
if (typeof strictAuthMethod !== 'boolean') die('"strict_auth_method" must be a boolean');
const registeredMethod = new Map(clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));

// ---- what happened, for GET /stats -------------------------------------------------

const stats = {
  authorization_requests: 0, // requests to the authorization endpoint, whatever came of them
  authorization_errors: {}, // error code -> count (redirected or rendered)
  authorizations: 0, // codes issued (or device codes approved)
  device_authorizations: 0, // device authorization requests answered
  device_polls: 0, // device_code grants asked for, whatever the answer
  slow_down: 0, // device_code polls answered slow_down
  grants: {}, // successful token requests by grant_type
  grant_errors: {}, // failed token requests by error code
  introspections: 0,
  revocations: 0,
  // The parameters of the last request to the authorization endpoint (no
  // secrets in them; code_challenge is a hash).
  last_authorization_request: null,
  // The last token request: grant type, client, authentication method, status.
  last_token_request: null,
  // The last failed token request: error, error_description and the detail
  // oidc-provider does not send (such as why a client assertion failed).
  last_grant_error: null,
};
const bump = (map, key) => { map[key] = (map[key] ?? 0) + 1; };

// ---- in-memory storage adapter ----------------------------------------------
// (oidc-provider's built-in one works too, but warns on every start, and
// forgets a device code the moment it expires, so that polling it gives
// invalid_grant rather than the expired_token RFC 8628 asks for.)

const storage = new Map(); // "Model:id" -> { payload, expiresAt }
const sessionByUid = new Map(); // uid -> session id
const deviceByUserCode = new Map(); // user code -> device code id
// Models that oidc-provider checks for expiry itself: kept past their
// expiry so that it can tell "expired" from "unknown".
const KEEP_EXPIRED_MS = { DeviceCode: 10 * 60 * 1000 };

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 + (KEEP_EXPIRED_MS[this.model] ?? 0) : undefined;
    storage.set(this.key(id), { payload, expiresAt });
    if (this.model === 'Session' && payload.uid) sessionByUid.set(payload.uid, id);
    if (this.model === 'DeviceCode' && payload.userCode) deviceByUserCode.set(payload.userCode, id);
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

  async findByUserCode(userCode) {
    const id = deviceByUserCode.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid) {
    const id = sessionByUid.get(uid);
    return id === undefined ? undefined : this.find(id);
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

// A fresh signing key per process: it signs the ID tokens of the code and
// device flows (access and refresh tokens are opaque), and the provider's
// built-in development keys come with a warning. EC, because an EC key is
// generated in well under a millisecond (RSA takes 0.1-0.5 s).
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid: 'test' }] };

const { default: Provider } = await import('oidc-provider');

const routes = {
  authorization: '/auth',
  token: '/token',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  device_authorization: '/device/auth',
  code_verification: '/device',
  jwks: '/jwks',
};
const STATS_PATH = '/stats';
// Where a client authenticates: the strict auth method check applies there.
const AUTHENTICATED_PATHS = new Set([routes.token, routes.introspection, routes.revocation, routes.device_authorization]);

const server = http.createServer();
server.on('error', (err) => die(`server error: ${err.message}`));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const options = (client) => clientOptions.get(client.clientId) ?? {};

  const provider = new Provider(issuer, {
    clients,
    scopes: [...scopes],
    adapter: MemoryAdapter,
    jwks,
    // The default (RS256) would need an RSA key.
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    routes,
    // Any account id logs in; its only claim is sub.
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    pkce: {
      methods: ['S256'],
      required: (ctx, client) => options(client).pkceRequired ?? true,
    },
    issueRefreshToken: async (ctx, client, code) => {
      if (!client.grantTypeAllowed('refresh_token')) return false;
      return options(client).refreshTokens === 'always' || code.scopes.has('offline_access');
    },
    rotateRefreshToken: (ctx) => {
      const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
      const rotate = options(client).rotate;
      if (rotate !== undefined) return rotate;
      // oidc-provider's own rule.
      if (client.clientAuthMethod === 'none' && !refreshToken.isSenderConstrained()) return true;
      return refreshToken.ttlPercentagePassed() >= 70;
    },
    features: {
      clientCredentials: { enabled: true },
      // Any authenticated client may introspect any token: this is a test server.
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true },
      // No `resource` parameter: tokens are opaque and stored, so they can
      // be introspected.
      resourceIndicators: { enabled: false },
      devInteractions: { enabled: anyInteractive },
      deviceFlow: { enabled: anyDevice },
    },
    ttl: {
      AccessToken: () => accessTokenTtl,
      ClientCredentials: () => accessTokenTtl,
      RefreshToken: () => refreshTokenTtl,
      DeviceCode: (ctx, token, client) => options(client).deviceCodeTtl ?? deviceCodeTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 24 * 3600,
      Grant: refreshTokenTtl,
    },
    // Errors go to the client as JSON, also in a browser (the page shows
    // it); keep them off the console.
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`oidc.js: server_error: ${err.stack}\n`));
  provider.on('authorization.error', (ctx, err) => bump(stats.authorization_errors, err.error ?? 'server_error'));
  provider.on('authorization.success', () => { stats.authorizations += 1; });
  provider.on('device_authorization.success', () => { stats.device_authorizations += 1; });
  provider.on('grant.success', (ctx) => bump(stats.grants, ctx.oidc.params.grant_type));
  provider.on('grant.error', (ctx, err) => {
    bump(stats.grant_errors, err.error ?? 'server_error');
    // oidc-provider keeps the reason out of the answer ("client
    // authentication failed"); it is here.
    stats.last_grant_error = { error: err.error, error_description: err.error_description, detail: err.error_detail };
  });
  // Requests to the authorization and token endpoints, whatever their
  // outcome; the device authorization endpoint's "interval".
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === routes.authorization) {
      stats.authorization_requests += 1;
      const params = {};
      for (const [k, v] of Object.entries(ctx.oidc?.params ?? ctx.query)) if (v !== undefined) params[k] = v;
      stats.last_authorization_request = params;
    } else if (ctx.path === routes.token && ctx.method === 'POST' && ctx.oidc?.params) {
      stats.last_token_request = {
        grant_type: ctx.oidc.params.grant_type,
        client_id: ctx.oidc.client?.clientId ?? ctx.oidc.authorization?.clientId,
        auth_method: authMethodOf(ctx),
        status: ctx.status,
      };
    } else if (ctx.path === routes.introspection && ctx.status === 200) {
      stats.introspections += 1;
    } else if (ctx.path === routes.revocation && ctx.status === 200) {
      stats.revocations += 1;
    } else if (ctx.path === routes.device_authorization && ctx.status === 200
      && devicePollInterval !== undefined && ctx.body && typeof ctx.body === 'object') {
      // oidc-provider leaves "interval" out, which means 5 s (RFC 8628 section 3.2).
      ctx.body = { ...ctx.body, interval: devicePollInterval };
    }
  });

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === STATS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(stats));
      return;
    }
    const strict = strictAuthMethod && AUTHENTICATED_PATHS.has(path);
    const polls = anyDevice && path === routes.token;
    if (req.method === 'POST' && (strict || polls)) {
      readBody(req).then((body) => {
        req.body = body;
        if (strict && !checkAuthMethod(req, res, body)) return;
        if (polls && !checkPollInterval(req, res, body)) return;
        callback(req, res);
      }, (err) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid_request', error_description: err.message }));
      });
    } else {
      callback(req, res);
    }
  });

  const ready = {
    issuer,
    token_endpoint: `${issuer}${routes.token}`,
    introspection_endpoint: `${issuer}${routes.introspection}`,
    authorization_endpoint: `${issuer}${routes.authorization}`,
    revocation_endpoint: `${issuer}${routes.revocation}`,
    jwks_uri: `${issuer}${routes.jwks}`,
    discovery: `${issuer}/.well-known/openid-configuration`,
    stats_endpoint: `${issuer}${STATS_PATH}`,
  };
  if (anyDevice) {
    ready.device_authorization_endpoint = `${issuer}${routes.device_authorization}`;
    ready.verification_uri = `${issuer}${routes.code_verification}`;
  }
  process.stdout.write(`${JSON.stringify(ready)}\n`);
});

// ---- request bodies, auth methods, device polling ---------------------------------

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

function formOf(req, body) {
  if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    return new URLSearchParams();
  }
  return new URLSearchParams(body.toString('utf8'));
}

// The client authentication method a token request used, as far as it can
// be told from the request.
function authMethodOf(ctx) {
  if (ctx.headers.authorization !== undefined) return 'client_secret_basic';
  const params = ctx.oidc.params ?? {};
  if (params.client_assertion !== undefined) {
    return ctx.oidc.client?.clientAuthMethod === 'client_secret_jwt' ? 'client_secret_jwt' : 'private_key_jwt';
  }
  if (params.client_secret !== undefined) return 'client_secret_post';
  return 'none';
}

// Rejects a registered client that authenticates with the other of the two
// secret methods. Returns whether the request should go on to oidc-provider.
function checkAuthMethod(req, res, body) {
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
  } else {
    const params = formOf(req, body);
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

// device_code -> when it was last polled (ms). With "device_slow_down", a
// poll sooner than the interval (5 s when none is configured) after the
// previous one gets 400 slow_down (RFC 8628 section 3.5), and counts as the
// last poll.
const lastPoll = new Map();
function checkPollInterval(req, res, body) {
  const params = formOf(req, body);
  if (params.get('grant_type') !== DEVICE_GRANT) return true;
  stats.device_polls += 1;
  const deviceCode = params.get('device_code');
  if (!deviceCode) return true;
  const now = Date.now();
  const previous = lastPoll.get(deviceCode);
  lastPoll.set(deviceCode, now);
  // A little leeway for timers that fire a few milliseconds early.
  if (!deviceSlowDown || previous === undefined || now - previous >= (devicePollInterval ?? 5) * 1000 - 50) return true;
  stats.slow_down += 1;
  bump(stats.grant_errors, 'slow_down');
  res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify({
    error: 'slow_down',
    error_description: `polled ${now - previous} ms after the previous poll; the interval is ${devicePollInterval ?? 5} s`,
  }));
  return false;
}
