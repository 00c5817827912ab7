#!/usr/bin/env node
// Drives the API explorer of `svc serve` in Debian's headless Chromium.
//
//   SVC_URL=http://127.0.0.1:PORT SVC_KEY=svc_... SVC_ENDPOINT=demo.refresh \
//   SVC_FORBIDDEN=value1,value2 SCREENSHOT=/tmp/explorer.png \
//   [SVC_CONNECTION=client/default SVC_CONNECTION_STATE=needs_reconsent SVC_RECONSENT='svc authorize ...'] \
//   node tests/browser/explorer.test.js
//
// Prints exactly one JSON line on stdout: {"ok":true,"checks":[...],...} and
// exits 0, or {"ok":false,"error":"...",...} and exits 1.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const WAIT_MS = 15000;
const TOTAL_MS = 90000;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ALLOWED_HOSTS = new Set(['127.0.0.1']);
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const checks = [];
const consoleErrors = [];
let context = null;
let page = null;
let userDataDir = null;
let finished = false;

function pass(name) { checks.push(name); }

function finish(result, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = code;
}

async function cleanup() {
  if (context) await context.close().catch(() => {});
  context = null;
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  userDataDir = null;
}

function env(name, required = true) {
  const v = process.env[name];
  if (required && (v === undefined || v === '')) throw new Error(`${name} is not set`);
  return v || '';
}
const q = (s) => JSON.stringify(String(s)); // a quoted CSS attribute value

async function main() {
  const base = env('SVC_URL').replace(/\/+$/, '');
  const key = env('SVC_KEY');
  const endpoint = env('SVC_ENDPOINT');
  const screenshot = env('SCREENSHOT');
  const forbidden = env('SVC_FORBIDDEN', false).split(',').filter(v => v.length > 0);
  const baseUrl = new URL(base);
  if (!ALLOWED_HOSTS.has(baseUrl.hostname)) throw new Error(`SVC_URL must be on 127.0.0.1, not ${baseUrl.hostname}`);
  if (!/^[^.]+\.[^.]+$/.test(endpoint)) throw new Error(`SVC_ENDPOINT must be SERVICE.ENDPOINT, not ${endpoint}`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install chromium)`);

  let chromium, PNG;
  try {
    ({ chromium } = require('playwright-core'));
    ({ PNG } = require('pngjs'));
  } catch (e) {
    throw new Error(`missing node modules (npm ci --prefix tests/browser): ${e.message}`);
  }

  // ---- the browser ----
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-explorer-profile-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    timeout: 30000,
    serviceWorkers: 'block',
  });
  const requests = [];
  const offHost = [];
  context.on('request', (request) => {
    const url = request.url();
    requests.push(`${request.method()} ${url}`);
    let u;
    try { u = new URL(url); } catch { offHost.push(url); return; }
    if (['data:', 'blob:', 'about:'].includes(u.protocol)) return;
    if (!ALLOWED_HOSTS.has(u.hostname) || u.port !== baseUrl.port) offHost.push(url);
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err && err.message || err)));
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text().slice(0, 300)); });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });

  const noOffHostRequests = (stage) => {
    if (offHost.length) throw new Error(`request to a host other than 127.0.0.1 ${stage}: ${offHost.join(', ')}`);
    const reads = requests.filter(r => /\/api\/secrets\/[^/?]+/.test(r));
    if (reads.length) throw new Error(`the page read secret values: ${reads.join(', ')}`);
  };
  const noPageErrors = async () => {
    if (pageErrors.length) throw new Error(`script error in the page: ${pageErrors.join(' | ')}`);
    const csp = await page.evaluate(() => window.__cspViolations || []);
    if (csp.length) throw new Error(`Content-Security-Policy violations: ${csp.join(' | ')}`);
  };
  const noSecretsInPage = async (stage) => {
    const { text, html } = await page.evaluate(() => ({
      text: document.body.innerText, html: document.documentElement.outerHTML,
    }));
    forbidden.forEach((value, i) => {
      if (text.includes(value) || html.includes(value)) {
        const err = new Error(`secret value #${i + 1} of SVC_FORBIDDEN (${value.length} characters) appears in the page ${stage}`);
        err.leak = true; // no failure screenshot: it would hold the value
        throw err;
      }
    });
    if (text.includes(key) || html.includes(key)) {
      const err = new Error(`the API key appears in the page text ${stage}`);
      err.leak = true;
      throw err;
    }
  };
  // Waits until a data-state attribute leaves its transient values.
  const settled = async (selector, transient = ['loading', 'running', 'idle', 'none']) => {
    const handle = await page.waitForFunction(([sel, skip]) => {
      const node = document.querySelector(sel);
      return node && !skip.includes(node.dataset.state) ? node.dataset.state : false;
    }, [selector, transient], { timeout: WAIT_MS, polling: 50 });
    return handle.jsonValue();
  };
  // Text of an element on one line (errors are printed as one line).
  const textOf = async (selector) => (await page.locator(selector).first().innerText()).replace(/\s+/g, ' ').trim().slice(0, 500);

  // ---- open the page ----
  const response = await page.goto(`${base}/explorer`, { waitUntil: 'load', timeout: WAIT_MS });
  if (!response) throw new Error('no response for /explorer');
  if (response.status() !== 200) throw new Error(`/explorer answered ${response.status()}`);
  const contentType = response.headers()['content-type'] || '';
  if (!contentType.startsWith('text/html')) throw new Error(`/explorer has content type ${contentType}`);
  pass('explorer_served_html');

  const catalogState = await settled('[data-testid="catalog"]');
  if (catalogState !== 'ok') throw new Error(`catalog did not load: ${await textOf('#catalog-status')}`);
  const card = `[data-testid="catalog"] [data-testid=${q('endpoint-' + endpoint)}]`;
  if (await page.locator(card).count() !== 1) {
    const listed = await page.$$eval('[data-testid="catalog"] [data-endpoint]', (nodes) => nodes.map(n => n.dataset.endpoint));
    throw new Error(`the catalog does not list ${endpoint}; it lists: ${listed.join(', ') || 'nothing'}`);
  }
  await page.waitForSelector(card, { state: 'visible' });
  const cardText = await textOf(card);
  if (!cardText.includes(endpoint)) throw new Error(`the catalog card does not name ${endpoint}`);
  await page.waitForSelector(`[data-testid=${q('run-' + endpoint)}]`, { state: 'visible' });
  pass('catalog_lists_endpoint');
  noOffHostRequests('while loading');
  pass('only_127.0.0.1_requests_on_load');

  // ---- the key ----
  // Without a key, no badge claims what may be run.
  const canRun = `[data-testid=${q('can-run-' + endpoint)}]`;
  if (await page.getAttribute(canRun, 'data-can') !== 'unknown') throw new Error('a badge claims a right before any key');
  if (!(await textOf(canRun)).includes('paste a key')) throw new Error(`the badge says ${await textOf(canRun)} without a key`);
  pass('badge_asks_for_a_key');
  await page.fill('[data-testid="key-input"]', key);
  await page.click('[data-testid="use-key"]');
  const whoState = await settled('[data-testid="whoami"]');
  if (whoState !== 'ok') throw new Error(`whoami failed: ${await textOf('[data-testid="whoami"]')}`);
  const identity = await textOf('[data-testid="whoami-identity"]');
  if (!identity) throw new Error('whoami shows no identity');
  pass('whoami_shows_identity');
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.can === 'yes', canRun, { timeout: WAIT_MS });
  if (await textOf(canRun) !== 'you may run it') throw new Error(`with the key the badge says ${await textOf(canRun)}`);
  pass('badge_agrees_with_the_key');
  const storage = await page.evaluate(() => ({
    session: Object.values(sessionStorage), local: Object.values(localStorage),
  }));
  if (!storage.session.includes(key)) throw new Error('the key is not in sessionStorage');
  if (storage.local.some(v => v.includes(key))) throw new Error('the key was written to localStorage');
  pass('key_in_session_storage_only');

  const secretsState = await settled('[data-testid="secrets"]');
  if (secretsState !== 'ok') throw new Error(`secrets failed: ${await textOf('[data-testid="secrets-status"]')}`);
  const secretRows = await page.locator('[data-testid="secrets"] tbody tr[data-testid="secret-row"]').count();
  if (secretRows < 1) throw new Error('the secrets table has no rows');
  pass(`secrets_table_rows:${secretRows}`);
  await noSecretsInPage('after loading secrets');
  pass('no_secret_values_after_secrets');

  // ---- connections ----
  // SVC_CONNECTION=CLIENT/ID: its row shows SVC_CONNECTION_STATE and the
  // re-consent command SVC_RECONSENT.
  const connection = env('SVC_CONNECTION', false);
  if (connection) {
    const connectionsState = await settled('[data-testid="connections"]');
    if (connectionsState !== 'ok') throw new Error(`connections failed: ${await textOf('[data-testid="connections-status"]')}`);
    const row = `[data-testid="connections"] tr[data-testid="connection-row"][data-connection=${q(connection)}]`;
    if (await page.locator(row).count() !== 1) {
      const listed = await page.$$eval('[data-testid="connection-row"]', (nodes) => nodes.map(n => n.dataset.connection));
      throw new Error(`the connections table does not list ${connection}; it lists: ${listed.join(', ') || 'nothing'}`);
    }
    await page.waitForSelector(row, { state: 'visible' });
    // The badge shows the state's name (in capitals, by its style).
    const shownState = (await textOf(`${row} [data-testid="connection-state"]`)).toLowerCase();
    const wantedState = env('SVC_CONNECTION_STATE');
    if (!shownState.startsWith(wantedState) || await page.getAttribute(row, 'data-state') !== wantedState) {
      throw new Error(`${connection} shows state "${shownState}", not ${wantedState}`);
    }
    const command = await textOf(`${row} [data-testid="reconsent-command"]`);
    if (command !== env('SVC_RECONSENT')) throw new Error(`${connection} shows the re-consent command "${command}"`);
    await noSecretsInPage('after loading connections');
    pass('connection_state_and_reconsent');
  }

  // ---- run the endpoint ----
  const result = `[data-testid=${q('result-' + endpoint)}]`;
  await page.click(`[data-testid=${q('run-' + endpoint)}]`);
  const runState = await settled(result);
  const resultText = await textOf(result);
  if (runState !== 'done') throw new Error(`the run did not give a record: ${resultText}`);
  const outcome = await page.getAttribute(result, 'data-outcome');
  if (outcome !== 'success') throw new Error(`the run's outcome is ${outcome}: ${resultText}`);
  const badge = (await textOf(`${result} .badge`)).toLowerCase();
  if (badge !== 'success') throw new Error(`the outcome badge says ${badge}`);
  pass('run_succeeded');
  const requestLines = await page.locator(`${result} li[data-event="request"]`).allInnerTexts();
  if (!requestLines.some(l => / -> 200\b/.test(l))) {
    throw new Error(`no request line with -> 200 in the trace: ${JSON.stringify(requestLines)}`);
  }
  pass('trace_request_200');

  // ---- an endpoint with a declared contract: a typed form, the response ----
  const contract = process.env.SVC_CONTRACT_ENDPOINT;
  if (contract) {
    const form = `[data-testid=${q('params-form-' + contract)}]`;
    await page.waitForSelector(form, { state: 'visible' });
    const labels = await textOf(form);
    if (!labels.includes('a: number (required)') || !labels.includes('b: number')) {
      throw new Error(`the form does not show the declared parameters: ${labels}`);
    }
    const contractResult = `[data-testid=${q('result-' + contract)}]`;
    const contractRun = `[data-testid=${q('run-' + contract)}]`;
    // A required parameter left empty: the page says which, and sends nothing.
    await page.click(contractRun);
    const emptyState = await settled(contractResult);
    if (emptyState !== 'error' || !(await textOf(contractResult)).includes('a (number) is required')) {
      throw new Error(`an empty required parameter gave ${emptyState}: ${await textOf(contractResult)}`);
    }
    await page.fill(`[data-testid=${q('param-' + contract + '-a')}]`, '40');
    await page.click(contractRun);
    const contractState = await settled(contractResult);
    if (contractState !== 'done') throw new Error(`the contract run gave ${contractState}: ${await textOf(contractResult)}`);
    const answered = JSON.parse(await textOf(`[data-testid=${q('response-' + contract)}]`));
    if (answered.sum !== 42) throw new Error(`the response says ${JSON.stringify(answered)}, not a sum of 42`);
    pass('contract_form_and_response');
  }

  // ---- logs ----
  const logArea = `[data-testid=${q('log-entries-' + endpoint)}]`;
  await page.click(`[data-testid=${q('logs-' + endpoint)}]`);
  const logState = await settled(logArea);
  if (logState !== 'ok') throw new Error(`logs failed: ${await textOf(logArea)}`);
  const entries = await page.locator(`${logArea} tr[data-testid="log-entry"]`).count();
  if (entries < 1) throw new Error('the log shows no entries');
  pass(`log_entries:${entries}`);

  // Forgetting the key takes back what the badges said.
  await page.click('[data-testid="forget-key"]');
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.can === 'unknown', canRun, { timeout: WAIT_MS });
  if (!(await textOf(canRun)).includes('paste a key')) throw new Error(`after forgetting the key the badge says ${await textOf(canRun)}`);
  pass('badge_follows_a_forgotten_key');

  await noSecretsInPage('at the end');
  pass('no_secret_values_at_end');
  noOffHostRequests('during the test');
  pass('only_127.0.0.1_requests');
  await noPageErrors();
  pass('no_script_or_csp_errors');

  // ---- screenshot ----
  fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true, timeout: WAIT_MS });
  const png = PNG.sync.read(fs.readFileSync(screenshot));
  if (png.width < 800 || png.height < 600) throw new Error(`the screenshot is ${png.width}x${png.height}, under 800x600`);
  const colours = new Set();
  let nonWhite = 0;
  const d = png.data;
  for (let i = 0; i < d.length; i += 4) {
    colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) nonWhite++;
  }
  const share = nonWhite / (png.width * png.height);
  if (colours.size <= 50) throw new Error(`the screenshot has only ${colours.size} colours`);
  if (share < 0.1) throw new Error(`the screenshot is nearly blank (${(share * 100).toFixed(1)}% non-white)`);
  pass('screenshot_not_blank');

  return {
    identity, secrets: secretRows, log_entries: entries, requests: requests.length,
    screenshot: { path: screenshot, width: png.width, height: png.height, colours: colours.size, non_white: Number(share.toFixed(3)) },
  };
}

const started = Date.now();
const watchdog = setTimeout(() => {
  finish({ ok: false, error: `timed out after ${TOTAL_MS / 1000} s`, checks }, 1);
  cleanup().finally(() => process.exit(1));
}, TOTAL_MS);

main().then(
  async (info) => {
    await cleanup();
    finish({ ok: true, checks, ...info, ms: Date.now() - started }, 0);
  },
  async (err) => {
    const out = { ok: false, error: String(err && err.message || err).split('\n')[0], checks };
    if (consoleErrors.length) out.console_errors = consoleErrors.slice(0, 10);
    if (page && process.env.SCREENSHOT && !(err && err.leak)) {
      // For diagnosis: what the page looked like when the test failed.
      try { await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true, timeout: 5000 }); out.screenshot = process.env.SCREENSHOT; } catch { /* none */ }
    }
    await cleanup();
    finish(out, 1);
  },
).finally(() => clearTimeout(watchdog));
