#!/usr/bin/env node
// Logs a person in and answers the consent question on oidc-provider's own
// development pages (tests/servers/oidc.js), in Debian's headless Chromium,
// the way a person in front of `svc authorize` would.
//
// Authorization code flow: opens the authorization URL, logs in, approves
// or denies, and follows the redirects wherever they go (the client's
// loopback listener, which answers with a page of its own):
//
//   node tests/browser/consent.js '{"url": "http://127.0.0.1:P/auth?...", "login": "alice", "action": "approve"}'
//
// Device flow (RFC 8628): opens the verification page, enters the user code,
// confirms the device, logs in, approves or denies:
//
//   node tests/browser/consent.js '{"device": "http://127.0.0.1:P/device", "user_code": "BCDF-GHJK", "login": "alice", "action": "deny"}'
//
// Hosted consent (`svc serve --public-url`): "url" is svc's connect link,
// which sends the browser on to the provider (or the provider's
// authorization URL itself), and "provider" is the origin of the provider's
// pages (any URL of it). The browser logs in and answers there as above,
// and the run ends where it lands after leaving the provider (the app's
// return_to, or svc's own page; or svc's page at once when svc refuses the
// link): outcome "returned", with "final_url", "status" and "text" of that
// page, whatever it says.
//
//   node tests/browser/consent.js '{"url": "http://127.0.0.1:S/connect/TOKEN", "provider": "http://127.0.0.1:P", "action": "approve"}'
//
// Other keys (all optional): "password" (any value logs in; default
// "password"), "deny_at" ("consent", the default; "login": Cancel on the
// login page; "confirm", device flow only: Abort on the device confirmation
// page), "timeout_ms" (the whole run, default 90000), "step_ms" (each page,
// default 30000). "login" defaults to "alice", "action" to "approve".
//
// Prints exactly one JSON line on stdout and exits 0 when the flow went to
// its end, 1 when it did not (or the request was bad); the line comes before
// the browser is closed, which takes about a second more:
//   {"ok": true, "mode": "code"|"device", "action": "approve"|"deny",
//    "outcome": "redirected" | "device_approved" | "device_denied" | "returned",
//    "final_url": "...",        // where the browser ended up; a code value is
//                               // replaced by REDACTED, never printed
//    "status": 200,             // HTTP status of the final page, when there was one
//    "text": "...",             // the final page's text, whitespace squeezed, at most 500 characters
//    "redirect": {"code": true, "state": "...", "iss": "...", "error": "...", "error_description": "..."},
//                               // code flow: the redirect's parameters (code: whether one was there)
//    "steps": ["login", "consent", ...],   // the pages it went through and what it did
//    "ms": 1234}
//   {"ok": false, "error": "...", ...the same fields as far as it got}
// A redirect to the client is "ok" whatever the client's listener answered
// (see "status" and "text"); a redirect that fails (nothing listens: net::ERR_...)
// is not. In the device flow a user code the provider refuses ("The code you
// entered is incorrect") is not ok either; with "action": "deny" the
// provider's "The Sign-in request was interrupted" page is the expected end.
//
// The browser reaches 127.0.0.1 only: any other host name fails to resolve
// (the provider's pages import a web font). Every wait is for an
// element or an event, bounded by "step_ms"; a watchdog ends the run after
// "timeout_ms".
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Nothing leaves 127.0.0.1: every other host name fails to resolve at
  // once (the provider's pages import a web font). Cheaper than routing
  // every request through playwright.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];
const ALLOWED_HOST = '127.0.0.1';
const TEXT_LIMIT = 500;

const started = Date.now();
const result = { ok: false, steps: [] };
let context = null;
let userDataDir = null;
let finished = false;

function finish(extra, code) {
  if (finished) return;
  finished = true;
  Object.assign(result, extra, { ms: Date.now() - started });
  // Keys in a stable order: ok first.
  const { ok, error, ...rest } = result;
  process.stdout.write(`${JSON.stringify(error === undefined ? { ok, ...rest } : { ok, error, ...rest })}\n`);
  process.exitCode = code;
}

async function cleanup() {
  if (context) await context.close().catch(() => {});
  context = null;
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  userDataDir = null;
}

function fail(message) {
  const err = new Error(message);
  err.expected = true;
  throw err;
}

// The URL with the value of a `code` parameter (query or fragment) replaced.
function redact(url) {
  let u;
  try { u = new URL(url); } catch { return url; }
  if (u.searchParams.has('code')) u.searchParams.set('code', 'REDACTED');
  if (u.hash.length > 1) {
    const fragment = new URLSearchParams(u.hash.slice(1));
    if (fragment.has('code')) {
      fragment.set('code', 'REDACTED');
      u.hash = fragment.toString();
    }
  }
  return u.toString();
}

function redirectParams(url) {
  const u = new URL(url);
  const params = new URLSearchParams(u.search);
  if (u.hash.length > 1) for (const [k, v] of new URLSearchParams(u.hash.slice(1))) params.append(k, v);
  const out = { code: params.has('code') };
  for (const key of ['state', 'iss', 'error', 'error_description']) {
    if (params.has(key)) out[key] = params.get(key);
  }
  return out;
}

function parseRequest() {
  let request;
  try {
    request = JSON.parse(process.argv[2] ?? '');
  } catch (err) {
    fail(`expected a JSON argument: ${err.message}`);
  }
  if (!request || typeof request !== 'object') fail('expected a JSON object');
  const mode = request.device !== undefined ? 'device' : 'code';
  const start = mode === 'device' ? request.device : request.url;
  if (typeof start !== 'string' || !start) fail('give "url" (code flow) or "device" and "user_code" (device flow)');
  if (mode === 'device' && request.url !== undefined) fail('give either "url" or "device", not both');
  if (mode === 'device' && (typeof request.user_code !== 'string' || !request.user_code)) fail('the device flow needs "user_code"');
  let startUrl;
  try { startUrl = new URL(start); } catch { fail(`not a URL: ${start}`); }
  if (startUrl.hostname !== ALLOWED_HOST) fail(`the provider must be on ${ALLOWED_HOST}, not ${startUrl.hostname}`);
  let providerUrl = startUrl;
  if (request.provider !== undefined) {
    if (mode === 'device') fail('"provider" is for the code flow only');
    try { providerUrl = new URL(request.provider); } catch { fail(`not a URL: ${request.provider}`); }
    if (providerUrl.hostname !== ALLOWED_HOST) fail(`the provider must be on ${ALLOWED_HOST}, not ${providerUrl.hostname}`);
  }
  const action = request.action ?? 'approve';
  if (!['approve', 'deny'].includes(action)) fail('"action" must be "approve" or "deny"');
  const denyAt = request.deny_at ?? 'consent';
  const places = mode === 'device' ? ['consent', 'login', 'confirm'] : ['consent', 'login'];
  if (!places.includes(denyAt)) fail(`"deny_at" must be one of ${places.join(', ')}`);
  const login = request.login ?? 'alice';
  if (typeof login !== 'string' || !login) fail('"login" must be a non-empty string');
  const number = (key, fallback) => {
    const v = request[key] ?? fallback;
    if (!Number.isInteger(v) || v <= 0) fail(`"${key}" must be a positive integer`);
    return v;
  };
  return {
    mode,
    start: startUrl.toString(),
    origin: providerUrl.origin,
    hosted: request.provider !== undefined,
    userCode: request.user_code,
    action,
    denyAt: action === 'deny' ? denyAt : undefined,
    login,
    password: String(request.password ?? 'password'),
    timeoutMs: number('timeout_ms', 90000),
    stepMs: number('step_ms', 30000),
  };
}

async function main(req) {
  result.mode = req.mode;
  result.action = req.action;
  if (!fs.existsSync(CHROMIUM)) fail(`${CHROMIUM} not found (apt-get install chromium)`);
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    fail(`missing node modules (npm ci --prefix tests/browser): ${e.message}`);
  }

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-consent-profile-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1024, height: 768 },
    timeout: 30000,
    serviceWorkers: 'block',
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(req.stepMs);
  page.setDefaultNavigationTimeout(req.stepMs);

  // The main frame's navigations, to say where a failed one was going.
  let lastNavigation = null;
  let lastFailure = null;
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) lastNavigation = r.url();
  });
  page.on('requestfailed', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) {
      lastFailure = { url: r.url(), error: r.failure()?.errorText ?? 'failed' };
    }
  });

  const textOfPage = async () => {
    try {
      const text = await page.evaluate(() => (document.body ? document.body.innerText : ''));
      return text.replace(/\s+/g, ' ').trim().slice(0, TEXT_LIMIT);
    } catch {
      return '';
    }
  };
  const failedNavigation = (reason) => {
    const where = lastFailure?.url ?? lastNavigation ?? page.url();
    result.final_url = redact(where);
    fail(`the browser could not load ${redact(where)}: ${lastFailure?.error ?? reason ?? 'navigation failed'}`);
  };

  // Runs an action that navigates and waits for the new document.
  let response = null;
  const navigate = async (what, action) => {
    lastFailure = null;
    try {
      const [r] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: req.stepMs }),
        action(),
      ]);
      response = r;
    } catch (err) {
      // A navigation that failed (nothing listens on the redirect's port):
      // the event that says so may come after the rejection.
      const netError = /net::ERR_[A-Z_]+/.exec(String(err.message));
      if (lastFailure || netError || page.url().startsWith('chrome-error:')) failedNavigation(netError?.[0]);
      fail(`${what}: ${String(err.message).split('\n')[0]}`);
    }
    if (page.url().startsWith('chrome-error:')) failedNavigation();
  };

  // What the current page is, once it has one of the forms or is loaded.
  const classify = async () => {
    const handle = await page.waitForFunction(() => {
      if (document.querySelector('form input[name=prompt][value=login]')) return 'login';
      if (document.querySelector('form input[name=prompt][value=consent]')) return 'consent';
      if (document.getElementById('op.deviceConfirmForm')) return 'device_confirm';
      if (document.getElementById('op.deviceInputForm')) return 'device_input';
      if (document.readyState !== 'loading' && document.body) return 'other';
      return false;
    }, undefined, { timeout: req.stepMs, polling: 50 });
    return handle.jsonValue();
  };

  await navigate(`opening ${redact(req.start)}`, () => page.goto(req.start, { waitUntil: 'domcontentloaded' }));

  let codeEntered = false;
  for (let step = 0; step < 12; step += 1) {
    const here = page.url();
    if (new URL(here).origin !== req.origin) {
      // Redirected away from the provider: to the client.
      result.final_url = redact(here);
      result.status = response ? response.status() : null;
      result.text = await textOfPage();
      result.redirect = redirectParams(here);
      result.outcome = 'redirected';
      if (req.hosted) {
        // Where svc sent the browser back: the test reads it.
        result.outcome = 'returned';
        return;
      }
      if (req.mode === 'device') fail(`the device flow left the provider for ${redact(here)}`);
      if (req.action === 'approve' && !result.redirect.code) {
        fail(`redirected without a code: ${result.redirect.error ?? 'no error either'}${result.redirect.error_description ? ` (${result.redirect.error_description})` : ''}`);
      }
      if (req.action === 'deny' && result.redirect.error !== 'access_denied') {
        fail(`denied, but the redirect says ${result.redirect.code ? 'code' : `error=${result.redirect.error}`}`);
      }
      return;
    }

    const kind = await classify();
    switch (kind) {
      case 'login': {
        if (req.denyAt === 'login') {
          result.steps.push('login:cancel');
          await navigate('cancelling the login', () => page.click('a[href$="/abort"]'));
        } else {
          result.steps.push('login');
          await page.fill('input[name=login]', req.login);
          await page.fill('input[name=password]', req.password);
          await navigate('submitting the login', () => page.click('form button[type=submit]'));
        }
        break;
      }
      case 'consent': {
        if (req.action === 'deny' && req.denyAt === 'consent') {
          result.steps.push('consent:deny');
          await navigate('denying consent', () => page.click('a[href$="/abort"]'));
        } else {
          result.steps.push('consent:approve');
          await navigate('approving consent', () => page.click('form button[type=submit]'));
        }
        break;
      }
      case 'device_input': {
        if (req.mode !== 'device') fail('the provider asked for a device user code in the code flow');
        if (codeEntered) {
          // The form again: the provider refused the code, or the person aborted.
          const message = await page.evaluate(() => document.querySelector('p.red')?.innerText ?? '');
          result.final_url = here;
          result.status = response ? response.status() : null;
          result.text = await textOfPage();
          if (req.action === 'deny' && /interrupted/i.test(message)) {
            result.outcome = 'device_denied';
            return;
          }
          fail(`the provider did not take the user code: ${message || result.text}`);
        }
        result.steps.push('device_code');
        await page.fill('input[name=user_code]', req.userCode);
        codeEntered = true;
        await navigate('submitting the user code', () => page.click('button[form="op.deviceInputForm"]'));
        break;
      }
      case 'device_confirm': {
        if (req.denyAt === 'confirm') {
          result.steps.push('device_confirm:abort');
          await navigate('aborting on the confirmation page', () => page.click('button[name=abort]'));
        } else {
          result.steps.push('device_confirm');
          await navigate('confirming the device', () => page.click('button[autofocus][form="op.deviceConfirmForm"]'));
        }
        break;
      }
      default: {
        result.final_url = redact(here);
        result.status = response ? response.status() : null;
        result.text = await textOfPage();
        if (req.mode === 'device' && /Sign-in Success/i.test(result.text)) {
          result.outcome = 'device_approved';
          if (req.action === 'deny') fail('asked to deny, but the device was approved');
          return;
        }
        // oidc.js renders errors as JSON.
        fail(`an unexpected page on the provider: ${result.text || '(empty)'}`);
      }
    }
  }
  fail(`no end after ${result.steps.length} pages`);
}

let request;
try {
  request = parseRequest();
} catch (err) {
  finish({ error: err.message }, 1);
  process.exit(1);
}

const watchdog = setTimeout(() => {
  finish({ ok: false, error: `timed out after ${request.timeoutMs} ms` }, 1);
  cleanup().finally(() => process.exit(1));
}, request.timeoutMs);

// The line first, then the browser is closed (about a second): a caller
// may go on as soon as it has the line.
main(request).then(
  () => finish({ ok: true }, 0),
  (err) => {
    const message = String((err && err.message) || err).split('\n')[0];
    finish({ ok: false, error: err && err.expected ? message : `unexpected: ${message}` }, 1);
  },
).finally(async () => {
  await cleanup();
  clearTimeout(watchdog);
});
