// Tokenizes svc's example programs with editors/svc.tmLanguage.json, using
// the engine VS Code itself uses (vscode-textmate on vscode-oniguruma), and
// checks the scopes that themes color.
//
//   npm ci --prefix editors/test
//   node editors/test/tokenize.test.js
//
// Prints `tokenized N files, M lines, K checks passed` and exits 0, or lists
// the failures and exits 1.
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const ROOT = path.resolve(__dirname, '..', '..');
const EDITORS = path.join(ROOT, 'editors');
const GRAMMAR = path.join(EDITORS, 'svc.tmLanguage.json');
const VSCODE = path.join(EDITORS, 'vscode');
const VSCODE_GRAMMAR = path.join(VSCODE, 'syntaxes', 'svc.tmLanguage.json');
const EXAMPLES = path.join(ROOT, 'examples');
const CHECK_PROGRAMS = path.join(ROOT, 'tests', 'check');

// Every keyword of the language (grammar/svc.pest): wherever one of these
// words stands outside a comment or a string, it must get a scope of its own.
const KEYWORDS = [
  'secret', 'role', 'user', 'service_account', 'service', 'schedule',
  'var', 'action', 'endpoint', 'methods', 'log', 'process', 'update', 'service_variables',
  'web_request', 'method', 'url', 'query', 'headers', 'form', 'json', 'body', 'auth', 'basic',
  'bearer', 'timeout', 'retry', 'attempts', 'max_time', 'redirects', 'result_mapping', 'header',
  'status', 'if', 'else', 'update_secret', 'update_secrets', 'value', 'expires_in', 'run_service',
  'as', 'sleep', 'throw', 'try', 'catch', 'web_request_error', 'grant', 'run', 'read_secret',
  'roles', 'description', 'every', 'cron', 'time_zone', 'before_expiry', 'disabled',
  'environment_specific', 'locked', 'enabled',
];
const KEYWORD_RE = new RegExp(`(?<![A-Za-z0-9_])(?:${KEYWORDS.join('|')})(?![A-Za-z0-9_])`, 'g');

let checks = 0;
const failures = [];
function check(ok, message) {
  checks += 1;
  if (!ok) failures.push(message);
  return ok;
}

// A token has `prefix` when one of its scopes is `prefix` or starts with `prefix.`.
const has = (token, prefix) => token.scopes.some((s) => s === prefix || s.startsWith(prefix + '.'));
const describe = (token) => token.scopes.join(' ');
const rel = (file) => path.relative(ROOT, file);

function svcFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...svcFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.svc')) out.push(full);
  }
  return out.sort();
}

function readLines(file) {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function loadGrammar() {
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve('vscode-oniguruma')), 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === 'source.svc' ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, 'utf8'), GRAMMAR) : null,
  });
  return registry.loadGrammar('source.svc');
}

// Tokenizes a file line by line, carrying the rule stack across lines, and
// checks that every line is covered by tokens, from its first character to
// its last, with no gap and no overlap.
function tokenizeFile(grammar, file) {
  const lines = readLines(file);
  const result = [];
  let stack = vsctm.INITIAL;
  lines.forEach((line, i) => {
    const where = `${rel(file)}:${i + 1}`;
    let r;
    try {
      r = grammar.tokenizeLine(line, stack);
    } catch (e) {
      check(false, `${where}: tokenizing threw: ${e && e.message ? e.message : e}`);
      r = { tokens: [], ruleStack: stack, stoppedEarly: false };
    }
    const t = r.tokens;
    let covered = t.length > 0 && t[0].startIndex === 0 && t[t.length - 1].endIndex >= line.length && !r.stoppedEarly;
    for (let k = 1; covered && k < t.length; k++) covered = t[k].startIndex === t[k - 1].endIndex;
    covered = covered && t.every((tok) => tok.scopes[0] === 'source.svc');
    check(covered, `${where}: the line is not fully covered by tokens under source.svc`);
    result.push({ line, tokens: t });
    stack = r.ruleStack;
  });
  return result;
}

// The tokens that overlap columns [start, end) of a tokenized line.
const tokensIn = (tl, start, end) => tl.tokens.filter((t) => t.startIndex < end && t.endIndex > start);

// Finds the `nth` occurrence of `needle` on the first line that contains
// `lineText` (the needle itself when lineText is not given).
function locate(tokenized, file, lineText, needle, nth = 0) {
  const idx = tokenized.findIndex((tl) => tl.line.includes(lineText));
  if (idx < 0) return null;
  let col = -1;
  for (let k = 0; k <= nth; k++) {
    col = tokenized[idx].line.indexOf(needle, col + 1);
    if (col < 0) return null;
  }
  return { tl: tokenized[idx], where: `${rel(file)}:${idx + 1}:${col + 1}`, start: col, end: col + needle.length };
}

// `needle` (found on the line containing `lineText`) is one token that has
// every scope in `scopes` (each a prefix, see `has`).
function expectToken(tokenized, file, lineText, needle, scopes, nth = 0) {
  const at = locate(tokenized, file, lineText, needle, nth);
  if (!check(at !== null, `${rel(file)}: no \`${needle}\` on a line containing \`${lineText}\``)) return;
  const ts = tokensIn(at.tl, at.start, at.end);
  const one = ts.length === 1 && ts[0].startIndex === at.start && ts[0].endIndex === at.end;
  if (!check(one, `${at.where}: \`${needle}\` is not one token (${ts.map((t) => JSON.stringify(at.tl.line.slice(t.startIndex, t.endIndex))).join(', ')})`)) return;
  for (const scope of scopes) {
    check(has(ts[0], scope), `${at.where}: \`${needle}\` should have ${scope}, has: ${describe(ts[0])}`);
  }
}

// Every token overlapping `needle` has every scope in `scopes` and none in
// `not`; with `whole`, the scope `whole` starts and ends exactly at the
// needle's edges (it is one string, one JSONPath, ...).
function expectSpan(tokenized, file, lineText, needle, scopes, { not = [], whole = null, nth = 0 } = {}) {
  const at = locate(tokenized, file, lineText, needle, nth);
  if (!check(at !== null, `${rel(file)}: no \`${needle}\` on a line containing \`${lineText}\``)) return;
  const ts = tokensIn(at.tl, at.start, at.end);
  for (const t of ts) {
    const text = JSON.stringify(at.tl.line.slice(t.startIndex, t.endIndex));
    for (const scope of scopes) check(has(t, scope), `${at.where}: ${text} in \`${needle}\` should have ${scope}, has: ${describe(t)}`);
    for (const scope of not) check(!has(t, scope), `${at.where}: ${text} in \`${needle}\` should not have ${scope}: ${describe(t)}`);
  }
  if (whole) {
    const aligned = ts.length > 0 && ts[0].startIndex === at.start && ts[ts.length - 1].endIndex === at.end;
    check(aligned, `${at.where}: \`${needle}\` does not start and end on token edges`);
    const before = tokensIn(at.tl, at.start - 1, at.start).filter((t) => t.endIndex === at.start);
    const after = tokensIn(at.tl, at.end, at.end + 1).filter((t) => t.startIndex === at.end);
    check(before.every((t) => !has(t, whole)) && after.every((t) => !has(t, whole)),
      `${at.where}: ${whole} runs past \`${needle}\``);
  }
}

function checkGrammarFile(grammarJson) {
  const g = JSON.parse(grammarJson);
  check(g.scopeName === 'source.svc', `grammar: scopeName is ${g.scopeName}, not source.svc`);
  check(JSON.stringify(g.fileTypes) === '["svc"]', `grammar: fileTypes is ${JSON.stringify(g.fileTypes)}, not ["svc"]`);
  // Every include names a rule that exists, and every regex compiles in oniguruma.
  const repository = g.repository || {};
  const walk = (rule, where) => {
    if (Array.isArray(rule)) return rule.forEach((r, i) => walk(r, `${where}[${i}]`));
    if (!rule || typeof rule !== 'object') return;
    if (typeof rule.include === 'string' && rule.include.startsWith('#')) {
      check(Object.prototype.hasOwnProperty.call(repository, rule.include.slice(1)), `grammar: ${where} includes missing rule ${rule.include}`);
    }
    for (const key of ['match', 'begin', 'end', 'while']) {
      if (typeof rule[key] !== 'string') continue;
      let error = null;
      try {
        new oniguruma.OnigScanner([rule[key]]).dispose();
      } catch (e) {
        error = e;
      }
      check(error === null, `grammar: ${where}.${key} does not compile: ${error && error.message}`);
    }
    for (const [key, value] of Object.entries(rule)) if (typeof value === 'object') walk(value, `${where}.${key}`);
  };
  walk(g, 'grammar');
}

function checkVscodeExtension(grammarJson) {
  check(fs.existsSync(VSCODE_GRAMMAR) && fs.readFileSync(VSCODE_GRAMMAR, 'utf8') === grammarJson,
    `${rel(VSCODE_GRAMMAR)} is not identical to ${rel(GRAMMAR)}: copy it over (cp ${rel(GRAMMAR)} ${rel(VSCODE_GRAMMAR)})`);
  const pkg = JSON.parse(fs.readFileSync(path.join(VSCODE, 'package.json'), 'utf8'));
  const lang = ((pkg.contributes || {}).languages || []).find((l) => l.id === 'svc');
  if (check(Boolean(lang), 'vscode/package.json: no language with id svc')) {
    check((lang.extensions || []).includes('.svc'), 'vscode/package.json: the svc language does not claim .svc');
    const conf = path.join(VSCODE, lang.configuration || '');
    if (check(Boolean(lang.configuration) && fs.existsSync(conf), 'vscode/package.json: language configuration file missing')) {
      const c = JSON.parse(fs.readFileSync(conf, 'utf8'));
      check(c.comments && c.comments.lineComment === '//', 'language-configuration.json: lineComment is not //');
    }
  }
  const gr = ((pkg.contributes || {}).grammars || []).find((x) => x.language === 'svc');
  if (check(Boolean(gr), 'vscode/package.json: no grammar for the svc language')) {
    check(gr.scopeName === 'source.svc', 'vscode/package.json: grammar scopeName is not source.svc');
    check(path.resolve(VSCODE, gr.path || '') === VSCODE_GRAMMAR, `vscode/package.json: grammar path ${gr.path} is not ./syntaxes/svc.tmLanguage.json`);
  }
}

// Checks that hold on every line of a valid program.
function checkValidProgram(file, tokenized) {
  tokenized.forEach((tl, i) => {
    const where = `${rel(file)}:${i + 1}`;
    const invalid = tl.tokens.filter((t) => has(t, 'invalid'));
    check(invalid.length === 0, `${where}: invalid scope on ${invalid.map((t) => JSON.stringify(tl.line.slice(t.startIndex, t.endIndex))).join(', ')}`);
    // Every non-whitespace character gets a scope beyond the root.
    for (const t of tl.tokens) {
      const text = tl.line.slice(t.startIndex, t.endIndex);
      if (text.trim() !== '') check(t.scopes.length > 1, `${where}:${t.startIndex + 1}: ${JSON.stringify(text)} has no scope beyond source.svc`);
    }
    // Every keyword occurrence outside comments and strings is one token of its own, with a scope.
    for (const m of tl.line.matchAll(KEYWORD_RE)) {
      const ts = tokensIn(tl, m.index, m.index + m[0].length);
      if (ts.some((t) => has(t, 'comment') || has(t, 'string'))) continue;
      const ok = ts.length === 1 && ts[0].startIndex === m.index && ts[0].endIndex === m.index + m[0].length && ts[0].scopes.length > 1;
      check(ok, `${where}:${m.index + 1}: keyword \`${m[0]}\` is not one scoped token (${ts.map(describe).join(' | ')})`);
    }
  });
}

function checkHubspot(file, tk) {
  expectSpan(tk, file, '// Keep a HubSpot', '// Keep a HubSpot access token fresh', ['comment.line.double-slash.svc']);
  expectToken(tk, file, '// Keep a HubSpot', '//', ['comment.line.double-slash.svc', 'punctuation.definition.comment.svc']);
  expectToken(tk, file, 'secret HUBSPOT_CLIENT_ID ', 'secret', ['storage.type.svc']);
  expectToken(tk, file, 'secret HUBSPOT_CLIENT_ID ', 'HUBSPOT_CLIENT_ID', ['entity.name']);
  expectToken(tk, file, 'secret HUBSPOT_CLIENT_ID ', '{', ['punctuation.section.block.begin.svc']);
  expectToken(tk, file, 'secret HUBSPOT_CLIENT_ID ', 'environment_specific', ['keyword']);
  expectToken(tk, file, 'secret HUBSPOT_CLIENT_ID ', '}', ['punctuation.section.block.end.svc']);
  expectToken(tk, file, 'secret HUBSPOT_CLIENT_SECRET', 'locked', ['keyword']);
  expectToken(tk, file, 'role token_refresher', 'role', ['storage.type.svc']);
  expectToken(tk, file, 'role token_refresher', 'token_refresher', ['entity.name']);
  expectToken(tk, file, 'grant run hubspot.refresh', 'grant', ['keyword']);
  expectToken(tk, file, 'grant run hubspot.refresh', 'run', ['keyword']);
  expectToken(tk, file, 'grant update_secret HUBSPOT_ACCESS_TOKEN', 'update_secret', ['keyword']);
  expectToken(tk, file, 'service_account nightly', 'service_account', ['storage.type.svc']);
  expectToken(tk, file, 'service_account nightly', 'nightly', ['entity.name']);
  expectToken(tk, file, 'service_account nightly', 'roles', ['keyword']);
  expectToken(tk, file, 'user ops_oncall', 'user', ['storage.type.svc']);
  expectToken(tk, file, 'user ops_oncall', 'ops_oncall', ['entity.name']);
  expectToken(tk, file, 'service hubspot', 'service', ['storage.type.svc']);
  expectToken(tk, file, 'service hubspot', 'hubspot', ['entity.name']);
  expectToken(tk, file, 'var token: string', 'var', ['keyword']);
  expectToken(tk, file, 'var token: string', 'string', ['support.type.svc']);
  expectToken(tk, file, 'var expires_in: number', 'expires_in', ['entity.name']);
  expectToken(tk, file, 'var expires_in: number', 'number', ['support.type.svc']);
  expectToken(tk, file, 'action refresh_access_token', 'action', ['keyword']);
  expectToken(tk, file, 'action refresh_access_token', 'refresh_access_token', ['entity.name.function']);
  expectToken(tk, file, 'update service_variables', 'update', ['keyword']);
  expectToken(tk, file, 'update service_variables', 'service_variables', ['keyword']);
  expectToken(tk, file, 'token = null', 'null', ['constant.language.svc']);
  expectToken(tk, file, 'token = null', '=', ['keyword.operator']);
  expectToken(tk, file, 'web_request {', 'web_request', ['keyword']);
  expectToken(tk, file, 'method POST', 'method', ['keyword']);
  expectToken(tk, file, 'method POST', 'POST', ['constant.language.http-method.svc']);
  expectToken(tk, file, 'url "https://api.hubapi.com', 'url', ['keyword']);
  // The URL is one string: its `//` starts no comment.
  expectSpan(tk, file, 'url "https://api.hubapi.com', '"https://api.hubapi.com/oauth/v1/token"', ['string.quoted.double.svc'],
    { not: ['comment'], whole: 'string' });
  expectToken(tk, file, 'url "https://api.hubapi.com', '"', ['punctuation.definition.string.begin.svc']);
  expectToken(tk, file, 'url "https://api.hubapi.com', '"', ['punctuation.definition.string.end.svc'], 1);
  expectToken(tk, file, 'headers {', 'headers', ['keyword']);
  expectSpan(tk, file, 'headers {', '"Accept"', ['string.quoted.double.svc'], { whole: 'string' });
  expectSpan(tk, file, 'headers {', '"application/json"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'form {', 'form', ['keyword']);
  expectToken(tk, file, 'client_id     = secret.HUBSPOT_CLIENT_ID', 'secret', ['variable.language.secret.svc']);
  expectToken(tk, file, 'client_id     = secret.HUBSPOT_CLIENT_ID', '.', ['punctuation.accessor.svc']);
  expectToken(tk, file, 'client_id     = secret.HUBSPOT_CLIENT_ID', 'HUBSPOT_CLIENT_ID', ['variable.other.secret.svc']);
  expectToken(tk, file, 'timeout 10s', 'timeout', ['keyword']);
  expectToken(tk, file, 'timeout 10s', '10s', ['constant.numeric.svc']);
  expectToken(tk, file, 'result_mapping {', 'result_mapping', ['keyword']);
  expectSpan(tk, file, 'token             = $.access_token', '$.access_token', ['string.other.jsonpath.svc'], { whole: 'string.other.jsonpath' });
  expectSpan(tk, file, 'expires_in        = $.expires_in', '$.expires_in', ['string.other.jsonpath.svc'], { whole: 'string.other.jsonpath' });
  expectToken(tk, file, 'if has_value(new_refresh_token)', 'if', ['keyword.control']);
  expectToken(tk, file, 'if has_value(new_refresh_token)', 'has_value', ['support.function.svc']);
  expectToken(tk, file, 'if has_value(new_refresh_token)', '(', ['punctuation.section.parens.begin.svc']);
  expectToken(tk, file, 'if has_value(token)', 'has_value', ['support.function.svc']);
  expectToken(tk, file, 'update_secret HUBSPOT_REFRESH_TOKEN = new_refresh_token', 'update_secret', ['keyword']);
  expectToken(tk, file, 'update_secret HUBSPOT_REFRESH_TOKEN = new_refresh_token', '=', ['keyword.operator']);
  // A keyword only where the grammar expects one: `expires_in = expires_in`.
  expectToken(tk, file, 'expires_in = expires_in', 'expires_in', ['keyword']);
  expectToken(tk, file, 'expires_in = expires_in', 'expires_in', ['variable.other'], 1);
  expectToken(tk, file, 'value      = token', 'value', ['keyword']);
  expectToken(tk, file, 'endpoint refresh {', 'endpoint', ['keyword']);
  expectToken(tk, file, 'endpoint refresh {', 'refresh', ['entity.name.function']);
  expectToken(tk, file, 'description "Fetch', 'description', ['keyword']);
  expectSpan(tk, file, 'description "Fetch', '"Fetch a new HubSpot access token and store it as a secret"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'methods GET', 'methods', ['keyword']);
  expectToken(tk, file, 'methods GET', 'GET', ['constant.language.http-method.svc']);
  expectToken(tk, file, 'log enabled', 'log', ['keyword']);
  expectToken(tk, file, 'log enabled', 'enabled', ['keyword']);
  expectToken(tk, file, 'process refresh_access_token', 'process', ['keyword']);
  expectToken(tk, file, 'schedule hubspot_nightly', 'schedule', ['storage.type.svc']);
  expectToken(tk, file, 'schedule hubspot_nightly', 'hubspot_nightly', ['entity.name']);
  expectToken(tk, file, 'endpoint hubspot.refresh', 'endpoint', ['keyword']);
  expectToken(tk, file, 'every 24h', 'every', ['keyword']);
  expectToken(tk, file, 'every 24h', '24h', ['constant.numeric.svc']);
}

function checkGraph(file, tk) {
  expectToken(tk, file, 'secret GRAPH_CLIENT_ID', 'secret', ['storage.type.svc']);
  expectToken(tk, file, 'secret GRAPH_CLIENT_ID', 'GRAPH_CLIENT_ID', ['entity.name']);
  expectToken(tk, file, 'methods GET POST', 'GET', ['constant.language.http-method.svc']);
  expectToken(tk, file, 'methods GET POST', 'POST', ['constant.language.http-method.svc']);
  expectToken(tk, file, 'method POST', 'POST', ['constant.language.http-method.svc']);
  expectSpan(tk, file, 'url "https://login', '"https://login.example.com/oauth2/v2.0/token"', ['string.quoted.double.svc'],
    { not: ['comment'], whole: 'string' });
  expectToken(tk, file, 'auth basic(', 'auth', ['keyword']);
  expectToken(tk, file, 'auth basic(', 'basic', ['keyword']);
  expectToken(tk, file, 'auth basic(', ',', ['punctuation.separator']);
  expectToken(tk, file, 'auth basic(', 'GRAPH_CLIENT_SECRET', ['variable.other.secret.svc']);
  expectToken(tk, file, 'auth basic(', ')', ['punctuation.section.parens.end.svc']);
  expectSpan(tk, file, 'scope      = "https://graph', '"https://graph.example.com/.default"', ['string.quoted.double.svc'],
    { not: ['comment'], whole: 'string' });
  expectSpan(tk, file, 'result_mapping { token = $.access_token }', '$.access_token', ['string.other.jsonpath.svc'], { whole: 'string.other.jsonpath' });
  expectToken(tk, file, 'result_mapping { token = $.access_token }', '}', ['punctuation.section.block.end.svc']);
  expectToken(tk, file, 'cron "0 * * * *"', 'cron', ['keyword']);
  expectSpan(tk, file, 'cron "0 * * * *"', '"0 * * * *"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'time_zone "Europe/Oslo"', 'time_zone', ['keyword']);
  expectSpan(tk, file, 'time_zone "Europe/Oslo"', '"Europe/Oslo"', ['string.quoted.double.svc'], { whole: 'string' });
}

function checkQuickstart(file, tk) {
  expectSpan(tk, file, '// The quickstart', '// The quickstart: keep a client_credentials token fresh, from a local', ['comment.line.double-slash.svc']);
  expectSpan(tk, file, 'description "Refreshed', '"Refreshed by demo.refresh; other apps read it with `svc exec`"', ['string.quoted.double.svc'], { whole: 'string' });
  // `"${param.token_url}"`: a string holding one interpolation.
  expectSpan(tk, file, 'url "${param.token_url}"', '"${param.token_url}"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'url "${param.token_url}"', '${', ['meta.interpolation.svc', 'punctuation.section.interpolation.begin.svc']);
  expectToken(tk, file, 'url "${param.token_url}"', 'param', ['meta.interpolation.svc', 'variable.language.param.svc']);
  expectToken(tk, file, 'url "${param.token_url}"', '.', ['punctuation.accessor.svc']);
  expectToken(tk, file, 'url "${param.token_url}"', 'token_url', ['meta.interpolation.svc', 'variable.other.param.svc']);
  expectToken(tk, file, 'url "${param.token_url}"', '}', ['meta.interpolation.svc', 'punctuation.section.interpolation.end.svc']);
  expectToken(tk, file, 'auth basic(secret.DEMO_CLIENT_ID', 'secret', ['variable.language.secret.svc']);
  expectToken(tk, file, 'auth basic(secret.DEMO_CLIENT_ID', 'DEMO_CLIENT_ID', ['variable.other.secret.svc']);
  expectToken(tk, file, 'timeout 10s', '10s', ['constant.numeric.svc']);
  expectSpan(tk, file, 'expires_in = $.expires_in', '$.expires_in', ['string.other.jsonpath.svc'], { whole: 'string.other.jsonpath' });
  expectToken(tk, file, 'if has_value(token)', 'has_value', ['support.function.svc']);
  expectToken(tk, file, 'var expires_in: number', 'number', ['support.type.svc']);
}

async function main() {
  const grammarJson = fs.readFileSync(GRAMMAR, 'utf8');
  const grammar = await loadGrammar();
  checkGrammarFile(grammarJson);
  checkVscodeExtension(grammarJson);

  let files = 0;
  let lines = 0;
  const examples = svcFiles(EXAMPLES);
  const tokenizedExamples = new Map();
  for (const file of examples) {
    const tk = tokenizeFile(grammar, file);
    files += 1;
    lines += tk.length;
    tokenizedExamples.set(path.relative(EXAMPLES, file), tk);
    checkValidProgram(file, tk);
  }
  const specific = [
    ['hubspot_refresh.svc', checkHubspot],
    ['graph_client_credentials.svc', checkGraph],
    [path.join('quickstart', 'quickstart.svc'), checkQuickstart],
  ];
  for (const [name, fn] of specific) {
    if (check(tokenizedExamples.has(name), `examples/${name} not found`)) fn(path.join(EXAMPLES, name), tokenizedExamples.get(name));
  }

  // The checker's test programs: some hold deliberate errors, so only
  // require that they tokenize, fully covered.
  const programs = svcFiles(CHECK_PROGRAMS);
  check(programs.length > 0, 'no tests/check/*.svc found');
  for (const file of programs) {
    lines += tokenizeFile(grammar, file).length;
    files += 1;
  }

  if (failures.length > 0) {
    for (const f of failures) console.log(`FAIL ${f}`);
    console.log(`tokenized ${files} files, ${lines} lines, ${checks - failures.length} checks passed, ${failures.length} failed`);
    process.exit(1);
  }
  console.log(`tokenized ${files} files, ${lines} lines, ${checks} checks passed`);
}

main().catch((e) => {
  console.log(`FAIL ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
