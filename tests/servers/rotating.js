// OAuth 2.0 authorization server for svc's integration tests that rotates
// refresh tokens: every refresh_token grant revokes the presented refresh
// token and issues a new one. Built on @node-oauth/oauth2-server with an
// in-memory model and plain node:http.
//
//   node tests/servers/rotating.js '<json config>'
//
// Config:
//   {"clients": [{"client_id": "...", "client_secret": "..."}],
//    "access_token_lifetime": 3600,        // optional, seconds (default 3600)
//    "refresh_token_lifetime": 1209600,    // optional, seconds (default 14 days)
//    "answer_delay_ms": 0}                 // optional: a refresh is answered this
//                                          // long after the token was rotated
//
// POST /config {"answer_delay_ms": N} changes the delay while it runs: a slow
// provider that has already rotated the token when its answer is late.
//
// Listens on 127.0.0.1 on a free port and, once ready, prints exactly one line
// of JSON to stdout:
//   {"token_endpoint":"http://127.0.0.1:PORT/token",
//    "introspection_endpoint":"http://127.0.0.1:PORT/introspect",
//    "seed_endpoint":"http://127.0.0.1:PORT/seed"}
// Also serves GET http://127.0.0.1:PORT/stats. Nothing else is ever written to
// stdout. Exits when stdin closes, or on SIGTERM / SIGINT / SIGHUP.

import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

import OAuth2Server from '@node-oauth/oauth2-server';

const { Request, Response, InvalidGrantError, OAuthError } = OAuth2Server;

for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

function die(message) {
  process.stderr.write(`rotating.js: ${message}\n`);
  process.exit(2);
}

// A parent that dies (or simply drops our stdin) must not leave us running.
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => process.exit(0));
}

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
const clients = new Map();
config.clients.forEach((c, i) => {
  if (typeof c.client_id !== 'string' || !c.client_id) die(`clients[${i}].client_id must be a non-empty string`);
  if (typeof c.client_secret !== 'string' || !c.client_secret) die(`clients[${i}].client_secret must be a non-empty string`);
  clients.set(c.client_id, { id: c.client_id, secret: c.client_secret });
});
const accessTokenLifetime = config.access_token_lifetime ?? 3600;
const refreshTokenLifetime = config.refresh_token_lifetime ?? 14 * 24 * 3600;
for (const [name, value] of [['access_token_lifetime', accessTokenLifetime], ['refresh_token_lifetime', refreshTokenLifetime]]) {
  if (!Number.isInteger(value) || value <= 0) die(`"${name}" must be a positive integer`);
}

// ---- in-memory model -----------------------------------------------------------

const accessTokens = new Map(); // value -> { accessToken, accessTokenExpiresAt, scope, client, user }
const refreshTokens = new Map(); // value -> { refreshToken, refreshTokenExpiresAt, scope, client, user, revoked }
let answerDelayMs = config.answer_delay_ms ?? 0;
const stats = {
  received_refresh_grants: 0, // refresh_token grants received, before any answer
  refresh_grants: 0, // refresh_token grants that succeeded
  rejected_refresh_grants: 0, // refresh_token grants rejected with invalid_grant
  reused_refresh_tokens: 0, // ... of which presented an already rotated (revoked) refresh token
  invalid_client: 0, // token requests rejected with invalid_client
};

function newToken(prefix) {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

function secretMatches(actual, expected) {
  if (typeof actual !== 'string') return false;
  const a = createHash('sha256').update(actual).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

const model = {
  async getClient(clientId, clientSecret) {
    const client = clients.get(clientId);
    if (!client || !secretMatches(clientSecret, client.secret)) return null;
    return { id: client.id, grants: ['refresh_token'] };
  },

  async generateAccessToken() {
    return newToken('at');
  },

  async generateRefreshToken() {
    return newToken('rt');
  },

  async getRefreshToken(value) {
    const token = refreshTokens.get(value);
    if (!token) return null;
    if (token.revoked) {
      stats.reused_refresh_tokens += 1;
      throw new InvalidGrantError('Invalid grant: refresh token was already used (rotated) and has been revoked');
    }
    return { ...token };
  },

  // Check-and-set in one synchronous step: of two concurrent grants with the
  // same refresh token exactly one wins, the other gets invalid_grant.
  async revokeToken(token) {
    const stored = refreshTokens.get(token.refreshToken);
    if (!stored || stored.revoked) {
      stats.reused_refresh_tokens += 1;
      return false;
    }
    stored.revoked = true;
    return true;
  },

  async saveToken(token, client, user) {
    const saved = { ...token, client: { id: client.id }, user };
    accessTokens.set(token.accessToken, {
      accessToken: token.accessToken,
      accessTokenExpiresAt: token.accessTokenExpiresAt,
      scope: token.scope,
      client: saved.client,
      user,
    });
    if (token.refreshToken) {
      refreshTokens.set(token.refreshToken, {
        refreshToken: token.refreshToken,
        refreshTokenExpiresAt: token.refreshTokenExpiresAt,
        scope: token.scope,
        client: saved.client,
        user,
        revoked: false,
      });
    }
    return saved;
  },
};

const oauth = new OAuth2Server({
  model,
  accessTokenLifetime,
  refreshTokenLifetime,
  alwaysIssueNewRefreshToken: true,
});

// ---- HTTP ----------------------------------------------------------------------

function send(res, status, body, headers = {}) {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

class HttpError extends Error {
  constructor(status, error, description) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new HttpError(413, 'invalid_request', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isForm(req) {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

// application/x-www-form-urlencoded body -> object; a repeated parameter is an
// invalid_request (RFC 6749 section 3.2).
function parseForm(text) {
  const out = {};
  for (const [key, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(out, key)) throw new HttpError(400, 'invalid_request', `parameter ${key} is repeated`);
    out[key] = value;
  }
  return out;
}

function formDecode(value) {
  return decodeURIComponent(value.replace(/\+/g, '%20'));
}

// RFC 6749 section 2.3.1: client_id and client_secret are form-urlencoded
// before they are put in the Basic credentials. oauth2-server's basic-auth
// parser does not undo that (and cannot take a client_id with a colon), so the
// Basic credentials are decoded here (as oidc-provider does) and handed to
// oauth2-server as client_id/client_secret body parameters. Returns whether
// Basic was used, so an invalid_client can still be answered with a 401.
function moveBasicToBody(headers, body) {
  const authorization = headers.authorization;
  if (authorization === undefined) return false;
  const [scheme, value] = authorization.split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) {
    throw new HttpError(400, 'invalid_request', 'invalid authorization header value format');
  }
  const basic = Buffer.from(value, 'base64').toString('utf8');
  const i = basic.indexOf(':');
  if (i === -1) throw new HttpError(400, 'invalid_request', 'invalid authorization header value format');
  let id;
  let secret;
  try {
    id = formDecode(basic.slice(0, i));
    secret = formDecode(basic.slice(i + 1));
  } catch {
    throw new HttpError(400, 'invalid_request', 'client_id and client_secret in the authorization header are not properly encoded');
  }
  if (body.client_secret !== undefined) {
    throw new HttpError(400, 'invalid_request', 'client authentication must only be provided using one mechanism');
  }
  if (body.client_id !== undefined && body.client_id !== id) {
    throw new HttpError(400, 'invalid_request', 'mismatch in body and authorization client ids');
  }
  body.client_id = id;
  body.client_secret = secret;
  return true;
}

async function token(req, res) {
  const text = await readBody(req);
  const body = isForm(req) ? parseForm(text) : {};
  const usedBasic = moveBasicToBody(req.headers, body);
  const { authorization, ...headers } = req.headers;
  const request = new Request({ method: req.method, headers, query: {}, body });
  const response = new Response();
  const isRefresh = body.grant_type === 'refresh_token';
  if (isRefresh) stats.received_refresh_grants += 1;
  try {
    await oauth.token(request, response);
    if (isRefresh) stats.refresh_grants += 1;
    if (isRefresh && answerDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, answerDelayMs));
    }
    // oauth2-server computes expires_in from the expiry time it just stored,
    // rounding down (3599 for 3600); report the configured lifetime instead.
    response.body.expires_in = accessTokenLifetime;
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    if (err.name === 'invalid_client') {
      stats.invalid_client += 1;
      if (usedBasic) {
        response.status = 401;
        response.set('WWW-Authenticate', 'Basic realm="rotating.js"');
      }
    }
    if (isRefresh && err.name === 'invalid_grant') stats.rejected_refresh_grants += 1;
  }
  send(res, response.status, response.body, response.headers);
}

function introspect(req, res, body) {
  const value = body.token;
  if (typeof value !== 'string' || !value) throw new HttpError(400, 'invalid_request', 'missing parameter: token');
  const now = new Date();
  const at = accessTokens.get(value);
  if (at) {
    const active = at.accessTokenExpiresAt > now;
    return send(res, 200, {
      active,
      token_type: 'access_token',
      ...(active ? {
        client_id: at.client.id,
        scope: at.scope?.join(' ') || undefined,
        exp: Math.floor(at.accessTokenExpiresAt.getTime() / 1000),
      } : {}),
    });
  }
  const rt = refreshTokens.get(value);
  if (rt) {
    const active = !rt.revoked && (!rt.refreshTokenExpiresAt || rt.refreshTokenExpiresAt > now);
    return send(res, 200, {
      active,
      token_type: 'refresh_token',
      ...(active ? {
        client_id: rt.client.id,
        scope: rt.scope?.join(' ') || undefined,
        exp: rt.refreshTokenExpiresAt ? Math.floor(rt.refreshTokenExpiresAt.getTime() / 1000) : undefined,
      } : {}),
    });
  }
  return send(res, 200, { active: false });
}

function seed(req, res, body) {
  const client = clients.get(body.client_id);
  if (!client) throw new HttpError(400, 'invalid_client', `unknown client_id: ${JSON.stringify(body.client_id)}`);
  let scope;
  if (body.scope !== undefined) {
    if (typeof body.scope !== 'string') throw new HttpError(400, 'invalid_request', 'scope must be a string');
    scope = body.scope.split(' ').filter(Boolean);
    if (scope.length === 0) scope = undefined;
  }
  const value = newToken('rt');
  refreshTokens.set(value, {
    refreshToken: value,
    refreshTokenExpiresAt: new Date(Date.now() + refreshTokenLifetime * 1000),
    scope,
    client: { id: client.id },
    user: { id: `user-of-${client.id}` },
    revoked: false,
  });
  send(res, 200, { refresh_token: value });
}

const routes = {
  'POST /token': token,
  'POST /introspect': async (req, res) => {
    const text = await readBody(req);
    if (!isForm(req)) throw new HttpError(400, 'invalid_request', 'content must be application/x-www-form-urlencoded');
    introspect(req, res, parseForm(text));
  },
  'POST /seed': async (req, res) => {
    const text = await readBody(req);
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'invalid_request', 'body must be JSON');
    }
    seed(req, res, body ?? {});
  },
  'GET /stats': async (req, res) => send(res, 200, stats),
  'POST /config': async (req, res) => {
    const text = await readBody(req);
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'invalid_request', 'body must be JSON');
    }
    const delay = body?.answer_delay_ms;
    if (!Number.isInteger(delay) || delay < 0) throw new HttpError(400, 'invalid_request', 'answer_delay_ms must be a non-negative integer');
    answerDelayMs = delay;
    send(res, 200, { answer_delay_ms: answerDelayMs });
  },
};

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const handler = routes[`${req.method} ${path}`];
  if (!handler) {
    const known = Object.keys(routes).some((r) => r.endsWith(` ${path}`));
    send(res, known ? 405 : 404, { error: known ? 'method_not_allowed' : 'not_found' });
    return;
  }
  handler(req, res).catch((err) => {
    if (err instanceof HttpError) {
      send(res, err.status, { error: err.error, error_description: err.message });
    } else {
      process.stderr.write(`rotating.js: ${err.stack}\n`);
      send(res, 500, { error: 'server_error', error_description: String(err.message) });
    }
  });
});
server.on('error', (err) => die(`server error: ${err.message}`));
server.listen(0, '127.0.0.1', () => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`${JSON.stringify({
    token_endpoint: `${origin}/token`,
    introspection_endpoint: `${origin}/introspect`,
    seed_endpoint: `${origin}/seed`,
  })}\n`);
});
