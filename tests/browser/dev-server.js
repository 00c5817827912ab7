#!/usr/bin/env node
// A stand-in for `svc serve`, for developing the explorer page and its test
// without the Rust server. It answers the HTTP API of docs/serve.md with
// canned, in-memory data, on 127.0.0.1 only, and serves
// ../../src/serve/explorer.html (read again on every request) at /explorer.
//
// It is a development tool: the real test runs explorer.test.js against
// `svc serve`. Nothing here is contacted over the network except by the
// browser on 127.0.0.1; the URLs in the canned traces are only text.
//
//   node tests/browser/dev-server.js [--port N]
//       prints one JSON line: {"url", "key", "endpoint", "forbidden", "keys"}
//       and serves until SIGINT/SIGTERM (or until stdin closes, with --stdin).
//   node tests/browser/dev-server.js --test [--screenshot PATH]
//       starts, runs explorer.test.js against itself, prints its output and
//       exits with its exit code.
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');

const PAGE = path.join(__dirname, '..', '..', 'src', 'serve', 'explorer.html');
const CSP = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const port = Number(arg('--port') || 0);
const selfTest = process.argv.includes('--test');

function rand(n) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(n);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}
function newKey() { return 'svc_' + crypto.randomBytes(6).toString('hex') + '_' + rand(32); }
const nowIso = (offsetSeconds = 0) => new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

// ---------- the canned program ----------
const ENV = 'dev';
const identities = {
  nightly: { kind: 'service_account', roles: ['refresher'],
    can_run: ['demo.refresh', 'demo.fail', 'demo.nested', 'hubspot.refresh'], can_read: ['DEMO_ACCESS_TOKEN'] },
  viewer: { kind: 'user', roles: ['viewer'], can_run: ['demo.fail'], can_read: [] },
};
const keys = new Map([
  [newKey(), 'nightly'],
  [newKey(), 'viewer'],
  [newKey(), 'ghost'], // an identity the program does not declare: 403
]);
const keyOf = (who) => [...keys].find(([, id]) => id === who)[0];

const secrets = new Map([
  ['DEMO_ACCESS_TOKEN', { value: 'at_' + rand(33), version: 11, updated_at: nowIso(-1500), updated_by: 'nightly (schedule demo_nightly)', expires_at: nowIso(300) }],
  ['DEMO_REFRESH_TOKEN', { value: 'rt_' + rand(33), version: 4, updated_at: nowIso(-1500), updated_by: 'nightly (schedule demo_nightly)', expires_at: null }],
  ['HUBSPOT_ACCESS_TOKEN', { value: 'pat-na1-' + rand(28), version: 2, updated_at: nowIso(-9 * 86400), updated_by: 'alice (svc secret set)', expires_at: nowIso(-2 * 86400 - 3600) }],
  ['WEBHOOK_SIGNING_KEY', { value: 'whsec_' + rand(30), version: 1, updated_at: nowIso(-40 * 86400), updated_by: 'alice (svc secret set)', expires_at: nowIso(50 * 86400) }],
]);
// Every value the store has ever held: none may reach the page.
const everyValue = () => [...secrets.values()].flatMap(s => s.history ? [s.value, ...s.history] : [s.value]);

const services = [
  { name: 'demo', endpoints: [
    { name: 'refresh', description: 'Refreshes the demo access token with the stored refresh token.', methods: ['GET', 'POST'], log: true },
    { name: 'fail', description: 'Always fails: the token endpoint refuses the grant.', methods: ['GET'], log: true },
    { name: 'nested', description: 'Calls demo.refresh as nightly, with a retry, a sleep and a caught error.', methods: ['POST', 'PUT'], log: false },
  ] },
  { name: 'hubspot', endpoints: [
    { name: 'refresh', description: null, methods: ['GET'], log: true },
  ] },
];
const schedules = [
  { name: 'demo_nightly', endpoint: 'demo.refresh', service_account: 'nightly', timing: '5m before DEMO_ACCESS_TOKEN expires, else every 1h',
    enabled: true, next_run_at: nowIso(240), last_run_at: nowIso(-1500), last_outcome: 'success' },
  { name: 'hubspot_nightly', endpoint: 'hubspot.refresh', service_account: 'nightly', timing: 'cron "0 3 * * *" (UTC)',
    enabled: true, next_run_at: nowIso(6 * 3600), last_run_at: nowIso(-18 * 3600), last_outcome: 'failed' },
  { name: 'legacy_sync', endpoint: 'hubspot.refresh', service_account: 'nightly', timing: 'every 1d',
    enabled: false, next_run_at: null, last_run_at: null, last_outcome: null },
];
const findEndpoint = (s, e) => {
  const svc = services.find(x => x.name === s);
  return svc && svc.endpoints.find(x => x.name === e);
};

const logs = new Map(); // "service.endpoint" -> records, oldest first
const jobs = new Map();

function rotate(name, expiresIn) {
  const s = secrets.get(name);
  s.history = [...(s.history || []), s.value];
  s.value = name.includes('REFRESH') ? 'rt_' + rand(33) : 'at_' + rand(33);
  s.version += 1;
  s.updated_at = nowIso();
  s.updated_by = 'nightly (svc serve)';
  s.expires_at = expiresIn ? nowIso(expiresIn) : null;
  return s;
}

function record(endpoint, identity, method, trigger, trace, error, variables, startedAt) {
  return {
    id: crypto.randomBytes(8).toString('hex'), endpoint, environment: ENV, identity, method, trigger,
    started_at: startedAt, duration_ms: trace.filter(e => e.event === 'request').reduce((a, e) => a + e.duration_ms, 0) + 4,
    outcome: error ? 'failed' : 'success', trace, ...(error ? { error } : {}), variables,
  };
}

function runRefresh(identity, method, trigger, params, depth = 0) {
  const started = nowIso();
  const trace = [
    { event: 'assign', depth, name: 'token', value: { value: null } },
    { event: 'assign', depth, name: 'new_refresh_token', value: { value: null } },
    { event: 'assign', depth, name: 'expires_in', value: { value: null } },
    { event: 'request', depth, method: 'POST', url: 'https://auth.example.test/oauth/token', status: 200, duration_ms: 12 + Math.floor(Math.random() * 30), attempts: 1 },
    { event: 'mapped', depth, name: 'token', value: { redacted: true, length: 36 } },
    { event: 'mapped', depth, name: 'new_refresh_token', value: { redacted: true, length: 36 } },
    { event: 'mapped', depth, name: 'expires_in', value: { value: 1800 } },
    { event: 'branch', depth, condition: 'has_value(new_refresh_token)', taken: true },
  ];
  const rt = rotate('DEMO_REFRESH_TOKEN', null);
  trace.push({ event: 'secret_updated', depth, name: 'DEMO_REFRESH_TOKEN', version: rt.version });
  trace.push({ event: 'branch', depth, condition: 'has_value(token)', taken: true });
  const at = rotate('DEMO_ACCESS_TOKEN', 1800);
  trace.push({ event: 'secret_updated', depth, name: 'DEMO_ACCESS_TOKEN', version: at.version, expires_at: at.expires_at });
  if (params.note) trace.push({ event: 'log', depth, message: 'note: ' + params.note });
  const variables = {
    token: { redacted: true, length: 36 }, new_refresh_token: { redacted: true, length: 36 }, expires_in: { value: 1800 },
  };
  return record('demo.refresh', identity, method, trigger, trace, null, variables, started);
}

function runFail(identity, method, trigger) {
  const trace = [
    { event: 'assign', depth: 0, name: 'token', value: { value: null } },
    { event: 'request', depth: 0, method: 'POST', url: 'https://auth.example.test/oauth/token', status: 400, duration_ms: 9, attempts: 1 },
  ];
  const error = {
    code: 'web_request_error', diagnostic: 'svc::run::web_request_error', status: 400,
    message: 'POST https://auth.example.test/oauth/token answered 400 Bad Request: invalid_grant (refresh token revoked; value *** was sent)',
    help: 'the refresh token is no longer valid: set a new one with `svc secret set DEMO_REFRESH_TOKEN --env dev`',
  };
  return record('demo.fail', identity, method, trigger, trace, error, { token: { value: null } }, nowIso());
}

function runNested(identity, method, trigger, params) {
  const trace = [
    { event: 'log', depth: 0, message: 'starting nested run' + (params.reason ? ' (' + params.reason + ')' : '') },
    { event: 'retry', depth: 0, attempt: 1, reason: 'answered 503 Service Unavailable', wait_ms: 200 },
    { event: 'request', depth: 0, method: 'GET', url: 'https://status.example.test/health', status: 200, duration_ms: 31, attempts: 2 },
    { event: 'run_service', depth: 0, endpoint: 'demo.refresh', identity: 'nightly' },
    ...runRefresh('nightly', 'GET', trigger, {}, 1).trace,
    { event: 'sleep', depth: 0, ms: 50 },
    { event: 'request', depth: 1, method: 'DELETE', url: 'https://api.example.test/cache', duration_ms: 30001, attempts: 3 },
    { event: 'caught', depth: 0, code: 'web_request_error', message: 'DELETE https://api.example.test/cache failed after 3 attempts: timed out' },
  ];
  return record('demo.nested', identity, method, trigger, trace, null, { done: { value: true } }, nowIso());
}

function runHubspot(identity, method, trigger) {
  const trace = [
    { event: 'request', depth: 0, method: 'GET', url: 'https://api.hubapi.example.test/crm/v3/objects/contacts?limit=1', status: 200, duration_ms: 143, attempts: 1 },
    { event: 'mapped', depth: 0, name: 'total', value: { value: 42 } },
  ];
  return record('hubspot.refresh', identity, method, trigger, trace, null, { total: { value: 42 } }, nowIso());
}

function execute(key, identity, method, trigger, params) {
  const r = key === 'demo.refresh' ? runRefresh(identity, method, trigger, params)
    : key === 'demo.fail' ? runFail(identity, method, trigger)
      : key === 'demo.nested' ? runNested(identity, method, trigger, params)
        : runHubspot(identity, method, trigger);
  const [s, e] = key.split('.');
  if (findEndpoint(s, e).log) {
    if (!logs.has(key)) logs.set(key, []);
    logs.get(key).push(r);
  }
  return r;
}

// Seed the logs: a scheduled success and a failure.
execute('demo.refresh', 'nightly', 'GET', { schedule: { name: 'demo_nightly' } }, {});
execute('demo.fail', 'nightly', 'GET', 'http', {});
execute('hubspot.refresh', 'nightly', 'GET', { schedule: { name: 'hubspot_nightly' } }, {});

// ---------- HTTP ----------
function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
function fail(res, status, code, message, headers = {}) {
  if (status === 401) headers['WWW-Authenticate'] = 'Bearer realm="svc"';
  send(res, status, { error: { code, message } }, headers);
}
function authenticate(req, res) {
  const h = req.headers.authorization || '';
  const m = /^Bearer (.+)$/i.exec(h);
  if (!m) { fail(res, 401, 'unauthorized', 'no key: send `Authorization: Bearer KEY`'); return null; }
  const identity = keys.get(m[1].trim());
  if (!identity) { fail(res, 401, 'unauthorized', 'unknown, revoked or expired key'); return null; }
  if (!identities[identity]) {
    fail(res, 403, 'unknown_identity', `the key belongs to \`${identity}\`, which the program does not declare`);
    return null;
  }
  return { identity, key_id: [...keys].find(([, id]) => id === identity)[0].slice(4, 16) };
}
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const p = url.pathname;
  let m;
  if (p === '/explorer' && req.method === 'GET') {
    const html = fs.readFileSync(PAGE);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP, 'Content-Length': html.length });
    return res.end(html);
  }
  if (p === '/healthz') return send(res, 200, { status: 'ok' });
  if (p === '/api/catalog' && req.method === 'GET') {
    return send(res, 200, {
      environment: ENV,
      services: services.map(s => ({ name: s.name, endpoints: s.endpoints.map(e => ({
        name: e.name, path: `/api/services/${s.name}/${e.name}`, description: e.description, methods: e.methods, log: e.log,
        schedules: schedules.filter(x => x.endpoint === `${s.name}.${e.name}`).map(x => x.name),
      })) })),
      schedules,
    });
  }
  if (p === '/api/whoami' && req.method === 'GET') {
    const c = authenticate(req, res); if (!c) return;
    const who = identities[c.identity];
    return send(res, 200, { identity: c.identity, kind: who.kind, key: c.key_id, roles: who.roles, can_run: who.can_run, can_read: who.can_read });
  }
  if (p === '/api/secrets' && req.method === 'GET') {
    if (!authenticate(req, res)) return;
    const now = Date.now();
    return send(res, 200, { secrets: [...secrets].map(([name, s]) => ({
      name, version: s.version, updated_at: s.updated_at, updated_by: s.updated_by, expires_at: s.expires_at,
      age_seconds: Math.floor((now - Date.parse(s.updated_at)) / 1000),
      expires_in_seconds: s.expires_at ? Math.floor((Date.parse(s.expires_at) - now) / 1000) : null,
    })) });
  }
  if ((m = /^\/api\/secrets\/([^/]+)$/.exec(p)) && req.method === 'GET') {
    const c = authenticate(req, res); if (!c) return;
    const name = decodeURIComponent(m[1]);
    if (!identities[c.identity].can_read.includes(name)) return fail(res, 403, 'forbidden', `\`${c.identity}\` may not read \`${name}\``);
    const s = secrets.get(name);
    if (!s) return fail(res, 404, 'no_value', `\`${name}\` has no value in this environment`);
    return send(res, 200, { name, value: s.value, version: s.version, updated_at: s.updated_at, expires_at: s.expires_at }, { 'Cache-Control': 'no-store' });
  }
  if ((m = /^\/api\/jobs\/([^/]+)$/.exec(p)) && req.method === 'GET') {
    const c = authenticate(req, res); if (!c) return;
    const job = jobs.get(decodeURIComponent(m[1]));
    if (!job) return fail(res, 404, 'unknown_job', `no job \`${m[1]}\``);
    if (job.owner !== c.identity) return fail(res, 403, 'forbidden', 'this job was started by someone else');
    return send(res, 200, { job: job.id, status: job.record ? 'done' : 'running', endpoint: job.endpoint, ...(job.record ? { record: job.record } : {}) });
  }
  if ((m = /^\/api\/services\/([^/]+)\/([^/]+)\/logs$/.exec(p)) && req.method === 'GET') {
    const c = authenticate(req, res); if (!c) return;
    const [s, e] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    const key = `${s}.${e}`;
    if (!findEndpoint(s, e)) return fail(res, 404, 'unknown_endpoint', `no endpoint \`${key}\``);
    if (!identities[c.identity].can_run.includes(key)) return fail(res, 403, 'forbidden', `\`${c.identity}\` may not run \`${key}\`, so may not read its log`);
    const n = Math.min(Number(url.searchParams.get('n')) || 20, 1000);
    return send(res, 200, { endpoint: key, entries: (logs.get(key) || []).slice().reverse().slice(0, n) });
  }
  if ((m = /^\/api\/services\/([^/]+)\/([^/]+)$/.exec(p))) {
    const [s, e] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    const key = `${s}.${e}`;
    const ep = findEndpoint(s, e);
    if (!ep) return fail(res, 404, 'unknown_endpoint', `no endpoint \`${key}\``);
    const c = authenticate(req, res); if (!c) return;
    if (!ep.methods.includes(req.method)) {
      return fail(res, 405, 'method_not_allowed', `\`${key}\` allows ${ep.methods.join(', ')}`, { Allow: ep.methods.join(', ') });
    }
    const params = {};
    let background = false;
    for (const [k, v] of url.searchParams) { if (k === 'async') background = ['true', '1', 'yes'].includes(v); else params[k] = v; }
    const body = await readBody(req);
    if (body) {
      let parsed;
      try { parsed = JSON.parse(body); } catch { parsed = null; }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return fail(res, 400, 'bad_body', 'the body must be a JSON object or a form of parameters');
      }
      Object.assign(params, parsed);
    }
    if (!identities[c.identity].can_run.includes(key)) {
      return fail(res, 403, 'forbidden', `\`${c.identity}\` may not run \`${key}\`: grant \`run ${key}\` to one of its roles`);
    }
    if (background) {
      const id = crypto.randomBytes(8).toString('hex');
      const job = { id, owner: c.identity, endpoint: key, record: null };
      jobs.set(id, job);
      setTimeout(() => { job.record = execute(key, c.identity, req.method, 'http', params); }, 1500);
      return send(res, 202, { job: id, status: 'running', url: `/api/jobs/${id}` });
    }
    const r = execute(key, c.identity, req.method, 'http', params);
    return send(res, r.outcome === 'success' ? 200 : 502, r);
  }
  return fail(res, 404, 'not_found', 'no such path; see /api/services/openapi.json');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(err => {
    process.stderr.write(`dev-server: ${err && err.stack || err}\n`);
    if (!res.headersSent) fail(res, 500, 'internal', 'dev-server error');
    else res.end();
  });
});

server.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  const ready = {
    url, key: keyOf('nightly'), endpoint: 'demo.refresh', forbidden: everyValue(),
    keys: { nightly: keyOf('nightly'), viewer: keyOf('viewer'), undeclared: keyOf('ghost') },
  };
  if (!selfTest) {
    process.stdout.write(JSON.stringify(ready) + '\n');
    return;
  }
  const screenshot = arg('--screenshot') || path.join(require('node:os').tmpdir(), 'svc-explorer.png');
  const child = spawn(process.execPath, [path.join(__dirname, 'explorer.test.js')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, SVC_URL: url, SVC_KEY: ready.key, SVC_ENDPOINT: ready.endpoint,
      SVC_FORBIDDEN: everyValue().join(','), SCREENSHOT: screenshot },
  });
  child.on('exit', (code, signal) => { server.close(); process.exit(code === null ? 1 : code); });
});

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { server.close(); process.exit(0); });
if (process.argv.includes('--stdin')) {
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
