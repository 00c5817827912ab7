// Self-test of the test servers: starts oidc.js, rotating.js and
// jwt-bearer.js as child
// processes the way svc's integration tests do (JSON config as argv[1], stdin
// piped, the first stdout line is the ready line) and exercises every feature
// with fetch. Prints one line per check and a closing "N passed, M failed"
// line; exits non-zero if anything failed.
//
//   node tests/servers/selftest.js        (or: npm test --prefix tests/servers)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 5_000;

let passed = 0;
let failed = 0;
const children = new Set();

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok    ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL  ${name}\n      ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n      ')}`);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Starts a server exactly as a test would and waits for its ready line.
async function start(script, config) {
  const started = performance.now();
  const child = spawn(process.execPath, [join(HERE, script), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    })),
  };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { proc.stderr += d; });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      proc.stdout += d;
      if (proc.stdout.includes('\n')) resolve(proc.stdout.slice(0, proc.stdout.indexOf('\n')));
    });
    proc.exited.then(({ code, signal }) => reject(new Error(
      `${script} exited (code ${code}, signal ${signal}) before its ready line; stderr:\n${proc.stderr}`,
    )));
  });
  const line = await withTimeout(ready, READY_TIMEOUT_MS, `${script}'s ready line`);
  proc.startupMs = Math.round(performance.now() - started);
  proc.line = line;
  proc.info = JSON.parse(line);
  // Everything on stdout after the ready line.
  proc.extraStdout = () => proc.stdout.slice(line.length + 1);
  return proc;
}

function basic(id, secret) {
  // RFC 6749 section 2.3.1: form-urlencode each part, then Base64.
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

async function post(url, form, { auth, headers = {} } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(auth ? { authorization: basic(...auth) } : {}),
      ...headers,
    },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON response ${res.status} from ${url}: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json, headers: res.headers };
}

async function postJson(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

function assertLoopbackUrl(url) {
  assert.equal(typeof url, 'string');
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+(\/|$)/);
}

function assertTokenResponse(r) {
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(typeof r.json.access_token, 'string');
  assert.ok(r.json.access_token.length > 0);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(typeof r.json.expires_in, 'number');
  assert.ok(r.json.expires_in > 0);
}

function assertError(r, status, error) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.error, error);
}

async function assertExits(proc, how) {
  const { code, signal } = await withTimeout(proc.exited, EXIT_TIMEOUT_MS, `exit after ${how}`);
  assert.ok(code === 0 || signal === 'SIGTERM', `exit code ${code}, signal ${signal}`);
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// A test process that is SIGKILLed must not leave its server behind: run the
// server under an intermediate node process, kill that with SIGKILL, and watch
// the server go away (its stdin pipe closes).
async function orphanCheck(script, config) {
  const launcher = `
    const { spawn } = require('node:child_process');
    const c = spawn(process.execPath, process.argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    c.stdout.once('data', () => process.stdout.write(String(c.pid) + '\\n'));
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ['-e', launcher, join(HERE, script), JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(parent);
  const pid = await withTimeout(new Promise((resolve) => {
    parent.stdout.setEncoding('utf8');
    parent.stdout.once('data', (d) => resolve(Number(d.trim())));
  }), READY_TIMEOUT_MS, 'launcher');
  assert.ok(isAlive(pid));
  parent.kill('SIGKILL');
  children.delete(parent);
  const deadline = Date.now() + EXIT_TIMEOUT_MS;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`server pid ${pid} still running ${EXIT_TIMEOUT_MS} ms after its parent was killed`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function badConfig(script) {
  const child = spawn(process.execPath, [join(HERE, script), '{"clients":[]}'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const code = await withTimeout(new Promise((r) => child.on('exit', r)), EXIT_TIMEOUT_MS, 'exit on bad config');
  assert.equal(code, 2);
  assert.equal(out, '');
}

// Special characters that must be form-urlencoded inside HTTP Basic (client
// ids and secrets are VSCHAR, i.e. printable ASCII, RFC 6749 appendix A).
const SPECIAL_ID = "special client:!*()'~";
const SPECIAL_SECRET = 'p@ss w+rd/%&=:?#';

// ---------------------------------------------------------------------------------
// oidc.js

async function testOidc() {
  console.log('# oidc.js (oidc-provider, client_credentials + introspection)');
  const config = {
    clients: [
      { client_id: 'basic-client', client_secret: 'basic-secret', token_endpoint_auth_method: 'client_secret_basic', scope: 'read write' },
      { client_id: 'post-client', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post' },
      { client_id: SPECIAL_ID, client_secret: SPECIAL_SECRET, token_endpoint_auth_method: 'client_secret_basic', scope: 'admin' },
    ],
  };
  let proc;
  await check('oidc: starts and prints its ready line', async () => {
    proc = await start('oidc.js', config);
    assert.deepEqual(Object.keys(proc.info), [
      'issuer', 'token_endpoint', 'introspection_endpoint', 'authorization_endpoint',
      'revocation_endpoint', 'jwks_uri', 'discovery', 'stats_endpoint',
    ]);
    assertLoopbackUrl(proc.info.issuer);
    assert.match(proc.info.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(proc.info.token_endpoint.startsWith(`${proc.info.issuer}/`));
    assert.ok(proc.info.introspection_endpoint.startsWith(`${proc.info.issuer}/`));
  });
  if (!proc) return;
  const { token_endpoint: tokenUrl, introspection_endpoint: introspectUrl } = proc.info;
  const cc = { grant_type: 'client_credentials' };

  let basicToken;
  let postToken;
  await check('oidc: client_credentials with client_secret_basic', async () => {
    const r = await post(tokenUrl, cc, { auth: ['basic-client', 'basic-secret'] });
    assertTokenResponse(r);
    basicToken = r.json.access_token;
  });
  await check('oidc: client_credentials with client_secret_post', async () => {
    const r = await post(tokenUrl, { ...cc, client_id: 'post-client', client_secret: 'post-secret' });
    assertTokenResponse(r);
    postToken = r.json.access_token;
  });
  await check('oidc: client_credentials with an allowed scope', async () => {
    const r = await post(tokenUrl, { ...cc, scope: 'read' }, { auth: ['basic-client', 'basic-secret'] });
    assertTokenResponse(r);
    assert.equal(r.json.scope, 'read');
  });
  await check("oidc: client_credentials with another client's scope -> invalid_scope", async () => {
    const r = await post(tokenUrl, { ...cc, scope: 'admin' }, { auth: ['basic-client', 'basic-secret'] });
    assertError(r, 400, 'invalid_scope');
  });
  await check('oidc: client_credentials with a scope no client has -> dropped', async () => {
    const r = await post(tokenUrl, { ...cc, scope: 'read nonesuch' }, { auth: ['basic-client', 'basic-secret'] });
    assertTokenResponse(r);
    assert.equal(r.json.scope, 'read');
  });
  await check('oidc: form-urlencoded special characters in Basic credentials', async () => {
    assertTokenResponse(await post(tokenUrl, cc, { auth: [SPECIAL_ID, SPECIAL_SECRET] }));
  });
  await check('oidc: Basic credentials that are not form-urlencoded -> rejected', async () => {
    const raw = `Basic ${Buffer.from(`${SPECIAL_ID}:${SPECIAL_SECRET}`).toString('base64')}`;
    const r = await post(tokenUrl, cc, { headers: { authorization: raw } });
    assert.ok([400, 401].includes(r.status), JSON.stringify(r.json));
    assert.ok(['invalid_request', 'invalid_client'].includes(r.json.error), JSON.stringify(r.json));
  });
  await check('oidc: wrong secret (basic) -> 401 invalid_client', async () => {
    assertError(await post(tokenUrl, cc, { auth: ['basic-client', 'nope'] }), 401, 'invalid_client');
  });
  await check('oidc: wrong secret (post) -> 401 invalid_client', async () => {
    assertError(await post(tokenUrl, { ...cc, client_id: 'post-client', client_secret: 'nope' }), 401, 'invalid_client');
  });
  await check('oidc: unknown client -> 401 invalid_client', async () => {
    assertError(await post(tokenUrl, cc, { auth: ['nobody', 'x'] }), 401, 'invalid_client');
  });
  await check('oidc: basic-registered client using post -> 401 invalid_client', async () => {
    assertError(await post(tokenUrl, { ...cc, client_id: 'basic-client', client_secret: 'basic-secret' }), 401, 'invalid_client');
  });
  await check('oidc: post-registered client using basic -> 401 invalid_client', async () => {
    assertError(await post(tokenUrl, cc, { auth: ['post-client', 'post-secret'] }), 401, 'invalid_client');
  });
  await check('oidc: introspection (basic) of an issued token -> active', async () => {
    const r = await post(introspectUrl, { token: basicToken }, { auth: ['basic-client', 'basic-secret'] });
    assert.equal(r.status, 200);
    assert.equal(r.json.active, true);
    assert.equal(r.json.client_id, 'basic-client');
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(typeof r.json.exp, 'number');
  });
  await check('oidc: introspection (post) of an issued token -> active', async () => {
    const r = await post(introspectUrl, { token: postToken, client_id: 'post-client', client_secret: 'post-secret' });
    assert.equal(r.status, 200);
    assert.equal(r.json.active, true);
    assert.equal(r.json.client_id, 'post-client');
  });
  await check('oidc: introspection of garbage -> {"active":false}', async () => {
    const r = await post(introspectUrl, { token: 'garbage' }, { auth: ['basic-client', 'basic-secret'] });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { active: false });
  });
  await check('oidc: introspection with a wrong secret -> 401 invalid_client', async () => {
    assertError(await post(introspectUrl, { token: basicToken }, { auth: ['basic-client', 'nope'] }), 401, 'invalid_client');
  });
  await check('oidc: access_token_ttl is honoured', async () => {
    const p = await start('oidc.js', { ...config, access_token_ttl: 1 });
    try {
      const r = await post(p.info.token_endpoint, cc, { auth: ['basic-client', 'basic-secret'] });
      assertTokenResponse(r);
      assert.equal(r.json.expires_in, 1);
      await new Promise((res) => setTimeout(res, 2100));
      const i = await post(p.info.introspection_endpoint, { token: r.json.access_token }, { auth: ['basic-client', 'basic-secret'] });
      assert.deepEqual(i.json, { active: false });
      p.child.kill('SIGTERM');
      await assertExits(p, 'SIGTERM');
    } finally {
      p.child.kill('SIGKILL');
    }
  });
  await check('oidc: nothing on stdout but the ready line', async () => {
    assert.equal(proc.extraStdout(), '');
  });
  await check('oidc: stderr stays quiet', async () => {
    assert.equal(proc.stderr, '');
  });
  await check('oidc: exits when its stdin closes', async () => {
    proc.child.stdin.end();
    await assertExits(proc, 'stdin close');
  });
  let second;
  await check('oidc: exits on SIGTERM', async () => {
    second = await start('oidc.js', config);
    second.child.kill('SIGTERM');
    await assertExits(second, 'SIGTERM');
  });
  await check('oidc: exits when its parent is SIGKILLed', () => orphanCheck('oidc.js', config));
  await check('oidc: bad config -> exit code 2, nothing on stdout', () => badConfig('oidc.js'));
  console.log(`# oidc.js startup: ${proc.startupMs} ms, then ${second?.startupMs} ms`);
}

// ---------------------------------------------------------------------------------
// rotating.js

async function testRotating() {
  console.log('# rotating.js (@node-oauth/oauth2-server, rotating refresh tokens)');
  const lifetime = 3600;
  const config = {
    clients: [
      { client_id: 'client-a', client_secret: 'secret-a' },
      { client_id: 'client-b', client_secret: 'secret-b' },
      { client_id: SPECIAL_ID, client_secret: SPECIAL_SECRET },
    ],
    access_token_lifetime: lifetime,
  };
  let proc;
  await check('rotating: starts and prints its ready line', async () => {
    proc = await start('rotating.js', config);
    assert.deepEqual(Object.keys(proc.info), ['token_endpoint', 'introspection_endpoint', 'seed_endpoint']);
    Object.values(proc.info).forEach(assertLoopbackUrl);
  });
  if (!proc) return;
  const { token_endpoint: tokenUrl, introspection_endpoint: introspectUrl, seed_endpoint: seedUrl } = proc.info;
  const statsUrl = new URL('/stats', tokenUrl).href;
  const A = ['client-a', 'secret-a'];
  const refresh = (rt, opts) => post(tokenUrl, { grant_type: 'refresh_token', refresh_token: rt }, opts);
  const refreshPost = (rt, id, secret) => post(tokenUrl, {
    grant_type: 'refresh_token', refresh_token: rt, client_id: id, client_secret: secret,
  });
  const introspect = async (token) => {
    const r = await post(introspectUrl, { token });
    assert.equal(r.status, 200);
    return r.json;
  };
  const expected = { refresh_grants: 0, rejected_refresh_grants: 0, reused_refresh_tokens: 0, invalid_client: 0 };

  let rt0;
  let rt1;
  let rt2;
  let at1;
  await check('rotating: seed returns a refresh token', async () => {
    const r = await postJson(seedUrl, { client_id: 'client-a' });
    assert.equal(r.status, 200);
    assert.equal(typeof r.json.refresh_token, 'string');
    rt0 = r.json.refresh_token;
    const i = await introspect(rt0);
    assert.equal(i.active, true);
    assert.equal(i.token_type, 'refresh_token');
    assert.equal(i.client_id, 'client-a');
  });
  await check('rotating: seed for an unknown client -> 400 invalid_client', async () => {
    const r = await postJson(seedUrl, { client_id: 'nobody' });
    assertError(r, 400, 'invalid_client');
  });
  await check('rotating: refresh with client_secret_basic rotates the refresh token', async () => {
    const r = await refresh(rt0, { auth: A });
    assertTokenResponse(r);
    assert.equal(r.json.expires_in, lifetime);
    assert.equal(typeof r.json.refresh_token, 'string');
    assert.notEqual(r.json.refresh_token, rt0);
    rt1 = r.json.refresh_token;
    at1 = r.json.access_token;
    expected.refresh_grants += 1;
  });
  await check('rotating: reusing the spent refresh token -> 400 invalid_grant', async () => {
    const r = await refresh(rt0, { auth: A });
    assertError(r, 400, 'invalid_grant');
    assert.equal(typeof r.json.error_description, 'string');
    expected.rejected_refresh_grants += 1;
    expected.reused_refresh_tokens += 1;
  });
  await check('rotating: refresh with client_secret_post rotates again', async () => {
    const r = await refreshPost(rt1, ...A);
    assertTokenResponse(r);
    assert.notEqual(r.json.refresh_token, rt1);
    rt2 = r.json.refresh_token;
    expected.refresh_grants += 1;
  });
  await check('rotating: wrong secret (basic) -> 401 invalid_client', async () => {
    assertError(await refresh(rt2, { auth: ['client-a', 'nope'] }), 401, 'invalid_client');
    expected.invalid_client += 1;
  });
  await check('rotating: wrong secret (post) -> 400 invalid_client', async () => {
    assertError(await refreshPost(rt2, 'client-a', 'nope'), 400, 'invalid_client');
    expected.invalid_client += 1;
  });
  await check("rotating: another client's refresh token -> 400 invalid_grant", async () => {
    assertError(await refresh(rt2, { auth: ['client-b', 'secret-b'] }), 400, 'invalid_grant');
    expected.rejected_refresh_grants += 1;
  });
  await check('rotating: unknown refresh token -> 400 invalid_grant', async () => {
    assertError(await refresh('rt_garbage', { auth: A }), 400, 'invalid_grant');
    expected.rejected_refresh_grants += 1;
  });
  await check('rotating: failed requests did not spend the refresh token', async () => {
    assert.equal((await introspect(rt2)).active, true);
  });
  await check('rotating: introspection of access and refresh tokens', async () => {
    const at = await introspect(at1);
    assert.equal(at.active, true);
    assert.equal(at.token_type, 'access_token');
    assert.equal(at.client_id, 'client-a');
    assert.deepEqual(await introspect(rt0), { active: false, token_type: 'refresh_token' });
    assert.deepEqual(await introspect(rt1), { active: false, token_type: 'refresh_token' });
    const live = await introspect(rt2);
    assert.equal(live.active, true);
    assert.equal(live.token_type, 'refresh_token');
    assert.deepEqual(await introspect('garbage'), { active: false });
  });
  await check('rotating: concurrent refreshes with one token -> exactly one wins', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => refresh(rt2, { auth: A })));
    const ok = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status === 400 && r.json.error === 'invalid_grant');
    assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.json)));
    assert.equal(rejected.length, 4);
    expected.refresh_grants += 1;
    expected.rejected_refresh_grants += 4;
    expected.reused_refresh_tokens += 4;
  });
  await check('rotating: form-urlencoded special characters in Basic credentials', async () => {
    const { json } = await postJson(seedUrl, { client_id: SPECIAL_ID });
    assertTokenResponse(await refresh(json.refresh_token, { auth: [SPECIAL_ID, SPECIAL_SECRET] }));
    expected.refresh_grants += 1;
  });
  await check('rotating: the same credentials with client_secret_post', async () => {
    const { json } = await postJson(seedUrl, { client_id: SPECIAL_ID });
    assertTokenResponse(await refreshPost(json.refresh_token, SPECIAL_ID, SPECIAL_SECRET));
    expected.refresh_grants += 1;
  });
  await check('rotating: Basic credentials that are not form-urlencoded -> rejected', async () => {
    const { json } = await postJson(seedUrl, { client_id: SPECIAL_ID });
    const raw = `Basic ${Buffer.from(`${SPECIAL_ID}:${SPECIAL_SECRET}`).toString('base64')}`;
    const r = await refresh(json.refresh_token, { headers: { authorization: raw } });
    assert.ok([400, 401].includes(r.status), JSON.stringify(r.json));
    assert.ok(['invalid_request', 'invalid_client'].includes(r.json.error), JSON.stringify(r.json));
    if (r.json.error === 'invalid_client') expected.invalid_client += 1;
  });
  await check('rotating: a seeded scope is carried over', async () => {
    const { json } = await postJson(seedUrl, { client_id: 'client-b', scope: 'read write' });
    const r = await refresh(json.refresh_token, { auth: ['client-b', 'secret-b'] });
    assertTokenResponse(r);
    assert.equal(r.json.scope, 'read write');
    expected.refresh_grants += 1;
  });
  await check('rotating: GET /stats counts grants', async () => {
    const res = await fetch(statsUrl);
    assert.equal(res.status, 200);
    const stats = await res.json();
    const { received_refresh_grants: received, ...counted } = stats;
    assert.deepEqual(counted, expected);
    assert.ok(received >= expected.refresh_grants + expected.rejected_refresh_grants, JSON.stringify(stats));
  });
  await check('rotating: POST /config delays the answer of a rotated token', async () => {
    const configUrl = new URL('/config', tokenUrl).href;
    assert.equal((await postJson(configUrl, { answer_delay_ms: 300 })).status, 200);
    const { json } = await postJson(seedUrl, { client_id: 'client-b' });
    const started = Date.now();
    const r = await refresh(json.refresh_token, { auth: ['client-b', 'secret-b'] });
    assertTokenResponse(r);
    assert.ok(Date.now() - started >= 300, 'answered after the delay');
    assert.equal((await postJson(configUrl, { answer_delay_ms: 0 })).status, 200);
    assert.equal((await postJson(configUrl, { answer_delay_ms: -1 })).status, 400);
  });
  await check('rotating: access_token_lifetime is honoured', async () => {
    const p = await start('rotating.js', { ...config, access_token_lifetime: 1 });
    try {
      const { json } = await postJson(p.info.seed_endpoint, { client_id: 'client-a' });
      const r = await post(p.info.token_endpoint, { grant_type: 'refresh_token', refresh_token: json.refresh_token }, { auth: A });
      assertTokenResponse(r);
      assert.equal(r.json.expires_in, 1);
      await new Promise((res) => setTimeout(res, 1100));
      const i = await post(p.info.introspection_endpoint, { token: r.json.access_token });
      assert.deepEqual(i.json, { active: false, token_type: 'access_token' });
    } finally {
      p.child.kill('SIGKILL');
    }
  });
  await check('rotating: nothing on stdout but the ready line', async () => {
    assert.equal(proc.extraStdout(), '');
  });
  await check('rotating: stderr stays quiet', async () => {
    assert.equal(proc.stderr, '');
  });
  await check('rotating: exits when its stdin closes', async () => {
    proc.child.stdin.end();
    await assertExits(proc, 'stdin close');
  });
  let second;
  await check('rotating: exits on SIGTERM', async () => {
    second = await start('rotating.js', config);
    second.child.kill('SIGTERM');
    await assertExits(second, 'SIGTERM');
  });
  await check('rotating: exits when its parent is SIGKILLed', () => orphanCheck('rotating.js', config));
  await check('rotating: bad config -> exit code 2, nothing on stdout', () => badConfig('rotating.js'));
  console.log(`# rotating.js startup: ${proc.startupMs} ms, then ${second?.startupMs} ms`);
}

// ---------------------------------------------------------------------------------
// oidc.js with people in the loop: code flow, device flow, private_key_jwt
// (the browser part is tests/browser/consent.js, proved by tests/oidc_harness.rs)

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// A compact JWS signed with node:crypto.
function jwt(alg, privateKey, claims, header = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg, typ: 'JWT', ...header })}.${b64(claims)}`;
  const hash = alg === 'EdDSA' ? null : 'sha256';
  const key = alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
  return `${input}.${sign(hash, Buffer.from(input), key).toString('base64url')}`;
}

async function waitFor(what, fn, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function testOidcInteractive() {
  console.log('# oidc.js (code flow, device flow, private_key_jwt)');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const config = {
    clients: [
      { client_id: 'code', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['http://127.0.0.1/callback'], scope: 'openid offline_access api:read' },
      { client_id: 'device', client_secret: 'device-secret', token_endpoint_auth_method: 'client_secret_post',
        grant_types: [DEVICE_GRANT, 'refresh_token'], device_code_ttl: 1 },
      { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt',
        public_keys: [ec.publicKey.export({ type: 'spki', format: 'pem' })] },
    ],
    device_poll_interval: 1,
  };
  let proc;
  await check('oidc+: starts; the ready line has the device endpoints', async () => {
    proc = await start('oidc.js', config);
    for (const key of ['authorization_endpoint', 'device_authorization_endpoint', 'verification_uri', 'discovery', 'stats_endpoint']) {
      assert.ok(proc.info[key].startsWith(`${proc.info.issuer}/`), key);
    }
  });
  if (!proc) return;
  const { info } = proc;
  await check('oidc+: discovery', async () => {
    const d = await (await fetch(info.discovery)).json();
    assert.equal(d.authorization_endpoint, info.authorization_endpoint);
    assert.equal(d.device_authorization_endpoint, info.device_authorization_endpoint);
    assert.equal(d.introspection_endpoint, info.introspection_endpoint);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  });
  const authorize = (params) => fetch(`${info.authorization_endpoint}?${new URLSearchParams({
    response_type: 'code', client_id: 'code', scope: 'openid', state: 's', ...params,
  })}`, { redirect: 'manual' });
  await check('oidc+: any port on a loopback redirect URI -> the login page', async () => {
    const r = await authorize({
      redirect_uri: 'http://127.0.0.1:54321/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    });
    assert.equal(r.status, 303);
    assert.match(r.headers.get('location'), /^\/interaction\//);
  });
  await check('oidc+: no PKCE -> invalid_request back to the client', async () => {
    const r = await authorize({ redirect_uri: 'http://127.0.0.1:54321/callback' });
    assert.equal(r.status, 303);
    const location = new URL(r.headers.get('location'));
    assert.equal(location.origin, 'http://127.0.0.1:54321');
    assert.equal(location.searchParams.get('error'), 'invalid_request');
  });
  await check('oidc+: device flow: interval, pending, then expired_token', async () => {
    const d = await post(info.device_authorization_endpoint, { client_id: 'device', client_secret: 'device-secret' });
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.equal(d.json.interval, 1);
    assert.equal(d.json.expires_in, 1);
    const poll = () => post(info.token_endpoint, {
      grant_type: DEVICE_GRANT, device_code: d.json.device_code, client_id: 'device', client_secret: 'device-secret',
    });
    assertError(await poll(), 400, 'authorization_pending');
    const expired = await waitFor('expired_token', async () => {
      const r = await poll();
      return r.json.error === 'authorization_pending' ? undefined : r;
    });
    assertError(expired, 400, 'expired_token');
  });
  await check('oidc+: private_key_jwt (ES256), and its jti only once', async () => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = jwt('ES256', ec.privateKey, {
      iss: 'jwt', sub: 'jwt', aud: info.token_endpoint, iat: now, exp: now + 60, jti: randomUUID(),
    });
    const form = { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion };
    assertTokenResponse(await post(info.token_endpoint, form));
    assertError(await post(info.token_endpoint, form), 401, 'invalid_client');
    const stats = await (await fetch(info.stats_endpoint)).json();
    assert.equal(stats.last_token_request.auth_method, 'private_key_jwt');
    assert.match(stats.last_grant_error.detail, /only be used once/);
  });
  await check('oidc+: stderr stays quiet', async () => {
    assert.equal(proc.stderr, '');
  });
  await check('oidc+: exits when its stdin closes', async () => {
    proc.child.stdin.end();
    await assertExits(proc, 'stdin close');
  });
  await check('oidc+: a code client without redirect_uris -> exit code 2', async () => {
    const p = spawn(process.execPath, [join(HERE, 'oidc.js'), JSON.stringify({
      clients: [{ client_id: 'x', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] }],
    })], { stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(await withTimeout(new Promise((r) => p.on('exit', r)), EXIT_TIMEOUT_MS, 'exit'), 2);
  });
}

// ---------------------------------------------------------------------------------
// jwt-bearer.js

async function testJwtBearer() {
  console.log('# jwt-bearer.js (RFC 7523 grant and client assertions)');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const config = {
    issuers: [{ iss: 'robot@example', key: rsa.publicKey.export({ type: 'spki', format: 'pem' }) }],
    clients: [{ client_id: 'client', key: ed.publicKey.export({ format: 'jwk' }) }],
  };
  let proc;
  await check('jwt-bearer: starts and prints its ready line', async () => {
    proc = await start('jwt-bearer.js', config);
    assert.deepEqual(Object.keys(proc.info), ['issuer', 'token_endpoint', 'introspection_endpoint', 'stats_endpoint']);
    assertLoopbackUrl(proc.info.token_endpoint);
  });
  if (!proc) return;
  const { token_endpoint: tokenUrl } = proc.info;
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: 'robot@example', aud: tokenUrl, iat: now, exp: now + 600 };
  await check('jwt-bearer: RS256 assertion -> token; again -> invalid_grant', async () => {
    const assertion = jwt('RS256', rsa.privateKey, { ...claims, jti: randomUUID() });
    const form = { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion };
    const r = await post(tokenUrl, form);
    assertTokenResponse(r);
    const i = await post(proc.info.introspection_endpoint, { token: r.json.access_token });
    assert.equal(i.json.active, true);
    assertError(await post(tokenUrl, form), 400, 'invalid_grant');
  });
  await check('jwt-bearer: aud of another server -> invalid_grant', async () => {
    const assertion = jwt('RS256', rsa.privateKey, { ...claims, aud: 'http://127.0.0.1:1/token', jti: randomUUID() });
    assertError(await post(tokenUrl, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }), 400, 'invalid_grant');
  });
  await check('jwt-bearer: EdDSA client assertion -> client_credentials token', async () => {
    const assertion = jwt('EdDSA', ed.privateKey, { iss: 'client', sub: 'client', aud: tokenUrl, iat: now, exp: now + 60, jti: randomUUID() });
    assertTokenResponse(await post(tokenUrl, { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion }));
  });
  await check('jwt-bearer: stderr stays quiet', async () => {
    assert.equal(proc.stderr, '');
  });
  await check('jwt-bearer: exits when its stdin closes', async () => {
    proc.child.stdin.end();
    await assertExits(proc, 'stdin close');
  });
  await check('jwt-bearer: exits when its parent is SIGKILLed', () => orphanCheck('jwt-bearer.js', config));
  await check('jwt-bearer: bad config -> exit code 2, nothing on stdout', () => badConfig('jwt-bearer.js'));
}

try {
  await testOidc();
  await testOidcInteractive();
  await testRotating();
  await testJwtBearer();
} finally {
  for (const child of children) child.kill('SIGKILL');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
