// Token server for svc's integration tests that takes JWTs signed by the
// client: the JWT-bearer authorization grant (RFC 7523 section 2.1, the way
// Google service accounts get tokens) and JWT client assertions for the
// client_credentials grant (RFC 7523 section 2.2, private_key_jwt). Plain
// node:http and node:crypto; signatures RS256/384/512, PS256/384/512,
// ES256/384 and EdDSA (Ed25519).
//
//   node tests/servers/jwt-bearer.js '<json config>'
//
// Config (at least one issuer or client):
//   {"issuers": [{"iss": "robot@project.example",     // the assertion's iss
//                 "sub": "alice@example.com",          // optional: the assertion's sub must be this
//                 "key": "-----BEGIN PUBLIC KEY-----...",  // or a JWK, or {"pem": "...", "kid": "..."}
//                 "keys": [...],                       // instead of "key": several (rotation)
//                 "alg": "RS256"}],                    // optional: the only alg accepted
//    "clients": [{"client_id": "svc-client", "key": ..., "keys": [...], "alg": "ES256"}],
//    "audience": ["https://also.accepted/aud"],       // optional: besides the token URL
//    "access_token_ttl": 3600,                         // optional, seconds (default 3600)
//    "max_assertion_lifetime": 3600,                   // optional, seconds: exp - iat at most (default 3600)
//    "clock_skew": 30}                                 // optional, seconds: iat/nbf this far ahead are fine (default 30)
//
// A key is PEM (a public key, or a private key of which the public half is
// used) or a JWK (private members ignored). A key with a kid verifies only
// JWTs whose header has that kid or no kid; a key without one verifies any.
//
// POST /token, application/x-www-form-urlencoded:
//   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT[&scope=...]
//     The assertion must be signed by a key of the issuer its iss names,
//     with an alg that fits the key (and the issuer's "alg"), and have: aud
//     the token URL (http://127.0.0.1:PORT/token; a string, or an array that
//     holds it) or an "audience" value; exp in the future and at most
//     max_assertion_lifetime after iat; iat not more than clock_skew ahead;
//     nbf (if any) passed; sub equal to the issuer's "sub" when one is
//     configured; a jti not seen before (from any issuer or client, for the
//     life of the server). Otherwise 400 {"error":"invalid_grant",
//     "error_description":"..."} (a replayed jti: "jti ... was already used").
//     A client assertion may come along (client_assertion_type and
//     client_assertion, as below); it is then checked too.
//   grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=JWT[&client_id=...][&scope=...]
//     The client assertion must have iss = sub = a configured client_id
//     (equal to client_id when that is sent), be signed by that client's key
//     and meet the same aud, exp, iat, nbf and jti rules. Otherwise 401
//     {"error":"invalid_client",...}.
//   Success: 200 {"access_token":"jb_...","token_type":"Bearer","expires_in":3600[,"scope":"..."]}
//   (scope: the form's scope, else the assertion's "scope" claim, if any).
//   Other grant types: 400 unsupported_grant_type; missing parameters: 400 invalid_request.
// POST /introspect, form token=...: {"active":true,"iss":...,"sub":...,"client_id":...,
//   "scope":...,"exp":...,"iat":...,"token_type":"Bearer"} for a live token it issued,
//   {"active":false} for anything else. No authentication.
// GET /stats: {"tokens_issued":N,"jwt_bearer_grants":N,"client_credentials_grants":N,
//   "rejected":{"invalid_grant":N,...},"replays":N,"last_error":{...}|null,
//   "last_assertion":{"header":{...},"claims":{...}}|null,"last_client_assertion":...|null}
//   (the last accepted ones, to check what the client signed).
//
// Listens on 127.0.0.1 on a free port and, once ready, prints exactly one line
// of JSON to stdout:
//   {"issuer":"http://127.0.0.1:PORT","token_endpoint":"http://127.0.0.1:PORT/token",
//    "introspection_endpoint":"http://127.0.0.1:PORT/introspect",
//    "stats_endpoint":"http://127.0.0.1:PORT/stats"}
// Nothing else is ever written to stdout. Exits when stdin closes, or on
// SIGTERM / SIGINT / SIGHUP.

import { constants, createPublicKey, randomBytes, verify } from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

function die(message) {
  process.stderr.write(`jwt-bearer.js: ${message}\n`);
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

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// ---- configuration ---------------------------------------------------------

let config;
try {
  config = JSON.parse(process.argv[2] ?? '');
} catch (err) {
  die(`expected a JSON config as the first argument: ${err.message}`);
}
if (!config || typeof config !== 'object') die('config must be a JSON object');

function positiveInteger(value, name, fallback) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) die(`"${name}" must be a positive integer`);
  return value;
}

// The algorithms a public key can verify.
function algorithmsFor(key) {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      return [];
    }
    case 'ed25519': return ['EdDSA'];
    default: return [];
  }
}

function loadKey(entry, label) {
  let key;
  let kid;
  try {
    if (typeof entry === 'string') {
      key = createPublicKey(entry);
    } else if (entry && typeof entry.pem === 'string') {
      key = createPublicKey(entry.pem);
      kid = entry.kid;
    } else if (entry && typeof entry === 'object' && typeof entry.kty === 'string') {
      const jwk = { ...entry };
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth']) delete jwk[member];
      key = createPublicKey({ key: jwk, format: 'jwk' });
      kid = entry.kid;
    } else {
      throw new Error('expected a PEM string, {"pem": "...", "kid": "..."} or a JWK');
    }
  } catch (err) {
    die(`${label}: ${err.message}`);
  }
  const algs = algorithmsFor(key);
  if (algs.length === 0) die(`${label}: unsupported key type ${key.asymmetricKeyType}`);
  if (kid !== undefined && (typeof kid !== 'string' || !kid)) die(`${label}: kid must be a non-empty string`);
  return { key, kid, algs };
}

function loadKeys(entry, label) {
  if ((entry.key === undefined) === (entry.keys === undefined)) die(`${label}: give "key" or "keys"`);
  const list = entry.keys ?? [entry.key];
  if (!Array.isArray(list) || list.length === 0) die(`${label}.keys must be a non-empty array`);
  const keys = list.map((k, i) => loadKey(k, `${label}.${entry.keys ? `keys[${i}]` : 'key'}`));
  if (entry.alg !== undefined && !keys.every((k) => k.algs.includes(entry.alg))) {
    die(`${label}.alg ${entry.alg} does not fit its key(s)`);
  }
  return keys;
}

if (!Array.isArray(config.issuers ?? []) || !Array.isArray(config.clients ?? [])) die('"issuers" and "clients" must be arrays');
const issuers = new Map(); // iss -> { sub, keys, alg }
for (const [i, entry] of (config.issuers ?? []).entries()) {
  const label = `issuers[${i}]`;
  if (typeof entry?.iss !== 'string' || !entry.iss) die(`${label}.iss must be a non-empty string`);
  if (issuers.has(entry.iss)) die(`${label}.iss ${entry.iss} appears twice`);
  if (entry.sub !== undefined && (typeof entry.sub !== 'string' || !entry.sub)) die(`${label}.sub must be a non-empty string`);
  issuers.set(entry.iss, { sub: entry.sub, keys: loadKeys(entry, label), alg: entry.alg });
}
const clients = new Map(); // client_id -> { keys, alg }
for (const [i, entry] of (config.clients ?? []).entries()) {
  const label = `clients[${i}]`;
  if (typeof entry?.client_id !== 'string' || !entry.client_id) die(`${label}.client_id must be a non-empty string`);
  if (clients.has(entry.client_id)) die(`${label}.client_id ${entry.client_id} appears twice`);
  clients.set(entry.client_id, { keys: loadKeys(entry, label), alg: entry.alg });
}
if (issuers.size === 0 && clients.size === 0) die('config needs at least one of "issuers" and "clients"');
const extraAudience = config.audience ?? [];
if (!Array.isArray(extraAudience) || !extraAudience.every((a) => typeof a === 'string')) die('"audience" must be an array of strings');
const accessTokenTtl = positiveInteger(config.access_token_ttl, 'access_token_ttl', 3600);
const maxLifetime = positiveInteger(config.max_assertion_lifetime, 'max_assertion_lifetime', 3600);
const clockSkew = config.clock_skew ?? 30;
if (!Number.isInteger(clockSkew) || clockSkew < 0) die('"clock_skew" must be a non-negative integer');

// ---- state -----------------------------------------------------------------------

const tokens = new Map(); // access token -> { iss, sub, client_id, scope, exp, iat }
const seenJti = new Set(); // `${iss}\0${jti}`
const stats = {
  tokens_issued: 0,
  jwt_bearer_grants: 0,
  client_credentials_grants: 0,
  rejected: {}, // error code -> count
  replays: 0,
  last_error: null,
  last_assertion: null,
  last_client_assertion: null,
};

class OAuthError extends Error {
  constructor(status, error, description) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

// ---- JWT verification -----------------------------------------------------------------

const HASHES = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

function verifySignature(alg, key, data, signature) {
  const bits = alg.slice(2);
  try {
    if (alg === 'EdDSA') return verify(null, data, key, signature);
    if (alg.startsWith('RS')) return verify(HASHES[bits], data, key, signature);
    if (alg.startsWith('PS')) {
      return verify(HASHES[bits], data, {
        key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(bits) / 8,
      }, signature);
    }
    if (alg.startsWith('ES')) return verify(HASHES[bits], data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
  return false;
}

function decodePart(part, what, fail) {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value;
  } catch {
    throw fail(`the JWT ${what} is not base64url-encoded JSON`);
  }
}

// Checks a JWT's signature against one of `owner`'s keys and its claims;
// `fail(description)` makes the error to throw. Returns { header, claims }.
function verifyJwt(jwt, owner, fail, tokenUrl) {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw fail('not a compact JWS (three base64url parts)');
  const header = decodePart(parts[0], 'header', fail);
  const claims = decodePart(parts[1], 'payload', fail);
  if (typeof header.alg !== 'string' || header.alg === 'none') throw fail(`alg ${JSON.stringify(header.alg)} is not accepted`);
  if (owner.alg !== undefined && header.alg !== owner.alg) throw fail(`alg ${header.alg} is not the registered ${owner.alg}`);
  const candidates = owner.keys.filter((k) => k.algs.includes(header.alg)
    && (header.kid === undefined || k.kid === undefined || k.kid === header.kid));
  if (candidates.length === 0) {
    throw fail(`no registered key for alg ${header.alg}${header.kid !== undefined ? ` and kid ${header.kid}` : ''}`);
  }
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2], 'base64url');
  if (!candidates.some((k) => verifySignature(header.alg, k.key, data, signature))) {
    throw fail('the signature does not verify');
  }

  const now = Math.floor(Date.now() / 1000);
  const accepted = [tokenUrl, ...extraAudience];
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.aud === undefined) throw fail('no aud claim');
  if (!aud.some((a) => accepted.includes(a))) throw fail(`aud ${JSON.stringify(claims.aud)} is not ${tokenUrl}`);
  if (typeof claims.exp !== 'number') throw fail('no numeric exp claim');
  if (claims.exp <= now) throw fail(`expired: exp ${claims.exp} is not after now (${now})`);
  if (typeof claims.iat !== 'number') throw fail('no numeric iat claim');
  if (claims.iat > now + clockSkew) throw fail(`iat ${claims.iat} is in the future (now ${now})`);
  if (claims.exp - claims.iat > maxLifetime) {
    throw fail(`exp is ${claims.exp - claims.iat} s after iat; at most ${maxLifetime} s are accepted`);
  }
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + clockSkew)) {
    throw fail(`nbf ${claims.nbf} has not passed (now ${now})`);
  }
  if (typeof claims.jti !== 'string' || !claims.jti) throw fail('no jti claim');
  return { header, claims };
}

// Remembers a jti; a second use is a replay.
function spendJti(iss, jti, fail) {
  const key = `${iss}\u0000${jti}`;
  if (seenJti.has(key)) {
    stats.replays += 1;
    throw fail(`jti ${jti} was already used`);
  }
  seenJti.add(key);
}

function checkClientAssertion(params, tokenUrl) {
  const fail = (d) => new OAuthError(401, 'invalid_client', d);
  const type = params.get('client_assertion_type');
  const assertion = params.get('client_assertion');
  if (type !== CLIENT_ASSERTION_TYPE) throw fail(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`);
  if (!assertion) throw new OAuthError(400, 'invalid_request', 'client_assertion is missing');
  let claims;
  try {
    const parts = assertion.split('.');
    claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    throw fail('client_assertion is not a JWT');
  }
  const clientId = claims?.iss;
  const client = clients.get(clientId);
  if (!client) throw fail(`unknown client ${JSON.stringify(clientId)} (the assertion's iss)`);
  if (claims.sub !== clientId) throw fail(`sub ${JSON.stringify(claims.sub)} is not the client_id ${clientId}`);
  if (params.has('client_id') && params.get('client_id') !== clientId) {
    throw fail(`client_id ${params.get('client_id')} is not the assertion's iss ${clientId}`);
  }
  const verified = verifyJwt(assertion, client, fail, tokenUrl);
  spendJti(clientId, claims.jti, fail);
  stats.last_client_assertion = verified;
  return clientId;
}

function issue(res, fields, scope) {
  const accessToken = `jb_${randomBytes(24).toString('base64url')}`;
  const iat = Math.floor(Date.now() / 1000);
  tokens.set(accessToken, { ...fields, scope, iat, exp: iat + accessTokenTtl });
  stats.tokens_issued += 1;
  const body = { access_token: accessToken, token_type: 'Bearer', expires_in: accessTokenTtl };
  if (scope) body.scope = scope;
  send(res, 200, body);
}

function token(params, res, tokenUrl) {
  const grantType = params.get('grant_type');
  if (!grantType) throw new OAuthError(400, 'invalid_request', 'grant_type is missing');
  const hasClientAssertion = params.has('client_assertion') || params.has('client_assertion_type');
  if (grantType === JWT_BEARER) {
    const assertion = params.get('assertion');
    if (!assertion) throw new OAuthError(400, 'invalid_request', 'assertion is missing');
    const clientId = hasClientAssertion ? checkClientAssertion(params, tokenUrl) : undefined;
    const fail = (d) => new OAuthError(400, 'invalid_grant', d);
    let claims;
    try {
      claims = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8'));
    } catch {
      throw fail('the assertion is not a JWT');
    }
    const issuer = issuers.get(claims?.iss);
    if (!issuer) throw fail(`unknown issuer ${JSON.stringify(claims?.iss)}`);
    if (issuer.sub !== undefined && claims.sub !== issuer.sub) {
      throw fail(`sub ${JSON.stringify(claims.sub)} is not ${issuer.sub}`);
    }
    const verified = verifyJwt(assertion, issuer, fail, tokenUrl);
    spendJti(claims.iss, claims.jti, fail);
    stats.last_assertion = verified;
    stats.jwt_bearer_grants += 1;
    const scope = params.get('scope') ?? (typeof claims.scope === 'string' ? claims.scope : undefined);
    issue(res, { iss: claims.iss, sub: claims.sub ?? claims.iss, client_id: clientId }, scope);
    return;
  }
  if (grantType === 'client_credentials') {
    if (!hasClientAssertion) {
      throw new OAuthError(401, 'invalid_client', 'this server authenticates clients by client_assertion (private_key_jwt) only');
    }
    const clientId = checkClientAssertion(params, tokenUrl);
    stats.client_credentials_grants += 1;
    issue(res, { iss: clientId, sub: clientId, client_id: clientId }, params.get('scope') ?? undefined);
    return;
  }
  throw new OAuthError(400, 'unsupported_grant_type', `grant_type ${grantType} is not supported`);
}

function introspect(params, res) {
  const entry = tokens.get(params.get('token') ?? '');
  if (!entry || entry.exp <= Math.floor(Date.now() / 1000)) {
    send(res, 200, { active: false });
    return;
  }
  const body = { active: true, token_type: 'Bearer' };
  for (const [k, v] of Object.entries(entry)) if (v !== undefined) body[k] = v;
  send(res, 200, body);
}

// ---- HTTP --------------------------------------------------------------------------

function send(res, status, body) {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  res.end(JSON.stringify(body));
}

async function readForm(req) {
  if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new OAuthError(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new OAuthError(400, 'invalid_request', 'request body too large');
    chunks.push(chunk);
  }
  const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  for (const key of new Set(params.keys())) {
    if (params.getAll(key).length > 1) throw new OAuthError(400, 'invalid_request', `${key} is repeated`);
  }
  return params;
}

const server = http.createServer();
server.on('error', (err) => die(`server error: ${err.message}`));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  const tokenUrl = `${base}/token`;
  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    const handle = async () => {
      if (req.method === 'GET' && path === '/stats') {
        send(res, 200, stats);
      } else if (req.method === 'POST' && path === '/token') {
        token(await readForm(req), res, tokenUrl);
      } else if (req.method === 'POST' && path === '/introspect') {
        introspect(await readForm(req), res);
      } else {
        send(res, 404, { error: 'not_found' });
      }
    };
    handle().catch((err) => {
      if (!(err instanceof OAuthError)) {
        process.stderr.write(`jwt-bearer.js: ${err.stack}\n`);
        err = new OAuthError(500, 'server_error', 'internal error');
      }
      stats.rejected[err.error] = (stats.rejected[err.error] ?? 0) + 1;
      stats.last_error = { error: err.error, error_description: err.message };
      const body = { error: err.error, error_description: err.message };
      if (err.status === 401) res.setHeader('www-authenticate', `Bearer error="${err.error}"`);
      send(res, err.status, body);
    });
  });
  process.stdout.write(`${JSON.stringify({
    issuer: base,
    token_endpoint: tokenUrl,
    introspection_endpoint: `${base}/introspect`,
    stats_endpoint: `${base}/stats`,
  })}\n`);
});
