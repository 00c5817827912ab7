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
// Programs of the editor test's own: the forms the examples do not show.
const FIXTURES = path.join(EDITORS, 'test', 'fixtures');
const PEST = path.join(ROOT, 'grammar', 'svc.pest');

// Every keyword of the language (grammar/svc.pest): wherever one of these
// words stands outside a comment or a string, it must get a scope of its own.
const KEYWORDS = [
  'secret', 'role', 'user', 'service_account', 'service', 'schedule',
  'var', 'action', 'endpoint', 'methods', 'log', 'process', 'update', 'service_variables',
  'web_request', 'method', 'url', 'query', 'headers', 'form', 'json', 'body', 'auth', 'basic',
  'bearer', 'timeout', 'retry', 'attempts', 'max_time', 'redirects', 'result_mapping', 'header',
  'status', 'if', 'else', 'update_secret', 'update_secrets', 'value', 'expires_in', 'run_service',
  'as', 'sleep', 'throw', 'try', 'catch', 'web_request_error', 'grant', 'run', 'read_secret', 'read_status',
  'roles', 'description', 'every', 'cron', 'time_zone', 'before_expiry', 'disabled',
  'environment_specific', 'locked', 'enabled', 'oauth_client', 'issuer', 'authorize_url', 'token_url',
  'device_authorization_url', 'revocation_url', 'refresh_token_ttl', 'client_id', 'client_auth', 'scopes',
  'stores', 'client_secret_basic',
  'client_secret_post', 'private_key_jwt', 'jwt_bearer', 'client', 'none', 'cross_origin',
  'foreach', 'in', 'while', 'max', 'break', 'on_failure', 'on_recovery',
  'refreshed_by', 'min_valid', 'params', 'response', 'reveals', 'into',
  'keep_alive', 'expiry_warning', 'notify', 'events',
  'per_account', 'return_to', 'connect', 'for_each_connection', 'concurrency', 'for_connection',
  'provider', 'refresh_tokens', 'client_credentials',
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
// examples/hubspot_accounts.svc: the forms of connected accounts.
function checkAccounts(file, tk) {
  expectToken(tk, file, 'CUSTOMER_REFRESH_TOKEN    { per_account }', 'per_account', ['keyword.other.svc']);
  expectToken(tk, file, '  per_account', 'per_account', ['keyword.other.svc']);
  expectToken(tk, file, 'return_to', 'return_to', ['keyword.other.svc']);
  expectSpan(tk, file, 'return_to', '"https://app.example.com/settings/integrations"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'grant connect hubspot_customers', 'connect', ['keyword.other.svc']);
  expectToken(tk, file, 'grant connect hubspot_customers', 'hubspot_customers', ['entity.name.type.oauth-client.svc']);
  expectToken(tk, file, 'for_each_connection hubspot_customers', 'for_each_connection', ['keyword.other.svc']);
  expectToken(tk, file, 'for_each_connection hubspot_customers', 'hubspot_customers', ['entity.name.type.oauth-client.svc']);
  expectToken(tk, file, 'concurrency 16', 'concurrency', ['keyword.other.svc']);
  expectToken(tk, file, 'connection.tags.plan', 'connection', ['variable.language.connection.svc']);
  expectToken(tk, file, 'connection.tags.plan', 'plan', ['variable.other.connection.svc'], 1);
  expectToken(tk, file, '${connection.id}', 'id', ['variable.other.connection.svc']);
}

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

// KEYWORDS follows the parser: every `kw_NAME` rule of grammar/svc.pest, and
// every rule that is one word alone (`locked = @{ "locked" ~ !(...) }`), is in
// the list, so a keyword the language gains cannot go unchecked.
function checkKeywordList() {
  const pest = fs.readFileSync(PEST, 'utf8');
  const words = new Set();
  for (const m of pest.matchAll(/^kw_([a-z_]+)\s*=/gm)) words.add(m[1]);
  for (const m of pest.matchAll(/^[a-z_]+\s*=\s*@\{\s*"([a-z_]+)"\s*~\s*!\(ASCII_ALPHANUMERIC \| "_"\)\s*\}/gm)) words.add(m[1]);
  for (const m of pest.matchAll(/^log_state\s*=\s*@\{\s*\(([^)]*)\)/gm)) for (const w of m[1].matchAll(/"([a-z_]+)"/g)) words.add(w[1]);
  words.delete('null'); // a constant, not a keyword: constant.language.svc
  check(words.size > 50, `${rel(PEST)}: found only ${words.size} keywords`);
  for (const w of [...words].sort()) check(KEYWORDS.includes(w), `KEYWORDS lacks \`${w}\`, a keyword of ${rel(PEST)}`);
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

// Where the OAuth words are keywords. Most of them are also ordinary names
// elsewhere: `client_id` and `scope` are form fields and named arguments,
// `client`, `none`, `issuer` may be variables. So they are checked by place,
// the way the parser (grammar/svc.pest) reads them, with a walk of its own
// over the program's words (outside comments and strings), not the grammar's:
//   - `oauth_client NAME {` at the top level: storage.type, the name entity.name.type.oauth-client;
//   - directly in that block, a property (`issuer`, `token_url`, `client_auth`, `stores`, ...): keyword,
//     and the method after `client_auth`: keyword; the profile after `provider`: support.type.provider,
//     and its parameters in `provider NAME(...)` as a signed JWT's arguments;
//   - `auth METHOD(`: both keywords; in `client(NAME)`, NAME is variable.other.oauth-client;
//   - `refresh_tokens client(NAME)`, `client_credentials client(NAME)`: both keywords, NAME as after `auth`;
//   - in `stores { FIELD = SECRET }`: FIELD variable.parameter, SECRET variable.other.secret;
//   - in `private_key_jwt(...)` / `jwt_bearer(...)`: `NAME =` is variable.parameter;
//   - anywhere else, these words are names: no keyword or storage.type scope.
const CLIENT_PROPERTIES = new Set(['issuer', 'authorize_url', 'token_url', 'device_authorization_url',
  'revocation_url', 'refresh_token_ttl', 'client_id', 'client_auth', 'scopes', 'stores', 'description',
  'keep_alive', 'expiry_warning', 'per_account', 'return_to', 'provider']);
const CLIENT_AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
const AUTH_METHODS = new Set(['basic', 'bearer', 'client', 'private_key_jwt', 'jwt_bearer']);
const SIGNED_JWT = new Set(['private_key_jwt', 'jwt_bearer']);
const TOKEN_GRANTS = new Set(['refresh_tokens', 'client_credentials']);
const PLACED_WORDS = new Set(['oauth_client', 'issuer', 'authorize_url', 'token_url', 'device_authorization_url',
  'revocation_url', 'refresh_token_ttl', 'client_id', 'client_auth', 'scopes', 'stores', 'client_secret_basic', 'client_secret_post', 'private_key_jwt',
  'jwt_bearer', 'client', 'none', 'key', 'alg', 'kid', 'subject', 'audience', 'scope', 'provider']);

// The words and punctuation of a program, each with its line and column;
// comments, strings (with their interpolations) and JSONPaths are skipped.
function lexProgram(tokenized) {
  const out = [];
  const re = /\/\/.*$|"(?:[^"\\]|\\.)*(?:"|$)|\$[^\s{}(),]*|\d[A-Za-z0-9_.]*|([A-Za-z_][A-Za-z0-9_]*)|==|!=|<=|>=|&&|\|\||\S/g;
  tokenized.forEach((tl, row) => {
    for (const m of tl.line.matchAll(re)) {
      if (m[0].startsWith('//') || m[0].startsWith('"') || m[0].startsWith('$')) continue;
      out.push({ text: m[0], word: m[1] !== undefined, row, start: m.index, end: m.index + m[0].length });
    }
  });
  return out;
}

function checkKeywordPlaces(file, tokenized) {
  const words = lexProgram(tokenized);
  const placed = new Set();
  const at = (w) => `${rel(file)}:${w.row + 1}:${w.start + 1}`;
  const expectWord = (k, scopes) => {
    placed.add(k);
    const w = words[k];
    const ts = tokensIn(tokenized[w.row], w.start, w.end);
    const one = ts.length === 1 && ts[0].startIndex === w.start && ts[0].endIndex === w.end;
    if (!check(one, `${at(w)}: \`${w.text}\` is not one token`)) return;
    for (const scope of scopes) check(has(ts[0], scope), `${at(w)}: \`${w.text}\` should have ${scope} here, has: ${describe(ts[0])}`);
  };
  const stack = [];
  let opens = null; // what the next `{` or `(` opens
  for (let k = 0; k < words.length; k++) {
    const w = words[k];
    const prev = words[k - 1];
    const next = words[k + 1];
    if (w.text === '{' || w.text === '(') {
      stack.push(opens || 'other');
      opens = null;
      continue;
    }
    if (w.text === '}' || w.text === ')') {
      stack.pop();
      continue;
    }
    if (!w.word || placed.has(k)) continue;
    const inside = stack[stack.length - 1];
    const member = prev && prev.text === '.'; // `secret.issuer`, `param.client`: a name
    if (stack.length === 0 && w.text === 'oauth_client') {
      expectWord(k, ['storage.type']);
      if (next && next.word) expectWord(k + 1, ['entity.name.type.oauth-client.svc']);
      opens = 'client';
    } else if (inside === 'client' && !member && CLIENT_PROPERTIES.has(w.text)) {
      expectWord(k, ['keyword']);
      if (w.text === 'stores') opens = 'stores';
      if (w.text === 'client_auth' && next && CLIENT_AUTH_METHODS.has(next.text)) {
        expectWord(k + 1, ['keyword']);
        if (SIGNED_JWT.has(next.text)) opens = 'arguments';
      }
      if (w.text === 'provider' && next && next.word && next.row === w.row) {
        expectWord(k + 1, ['support.type.provider.svc']);
        if (words[k + 2] && words[k + 2].text === '(') opens = 'arguments';
      }
    } else if (TOKEN_GRANTS.has(w.text) && !member && next && next.text === 'client' && words[k + 2] && words[k + 2].text === '(') {
      expectWord(k, ['keyword']);
      expectWord(k + 1, ['keyword']);
      opens = 'client-reference';
    } else if (w.text === 'auth' && !member && next && AUTH_METHODS.has(next.text) && words[k + 2] && words[k + 2].text === '(') {
      expectWord(k, ['keyword']);
      expectWord(k + 1, ['keyword']);
      if (next.text === 'client') opens = 'client-reference';
      if (SIGNED_JWT.has(next.text)) opens = 'arguments';
    } else if (inside === 'stores' && next && next.text === '=') {
      expectWord(k, ['variable.parameter.svc']);
    } else if (inside === 'stores' && prev && prev.text === '=') {
      expectWord(k, ['variable.other.secret.svc']);
    } else if (inside === 'arguments' && next && next.text === '=') {
      expectWord(k, ['variable.parameter.svc']);
    } else if (inside === 'client-reference') {
      expectWord(k, ['variable.other.oauth-client.svc']);
    } else if (PLACED_WORDS.has(w.text)) {
      const ts = tokensIn(tokenized[w.row], w.start, w.end);
      check(ts.every((t) => !has(t, 'keyword') && !has(t, 'storage.type')),
        `${at(w)}: \`${w.text}\` is a name here, not a keyword: ${ts.map(describe).join(' | ')}`);
    }
  }
  return placed.size;
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
  expectToken(tk, file, 'oauth_client hubspot_app', 'oauth_client', ['storage.type.svc']);
  expectToken(tk, file, 'oauth_client hubspot_app', 'hubspot_app', ['entity.name']);
  expectToken(tk, file, 'token_url     "https://api.hubapi.com', 'token_url', ['keyword']);
  // The URL is one string: its `//` starts no comment.
  expectSpan(tk, file, 'token_url     "https://api.hubapi.com', '"https://api.hubapi.com/oauth/v1/token"', ['string.quoted.double.svc'],
    { not: ['comment'], whole: 'string' });
  expectToken(tk, file, 'token_url     "https://api.hubapi.com', '"', ['punctuation.definition.string.begin.svc']);
  expectToken(tk, file, 'token_url     "https://api.hubapi.com', '"', ['punctuation.definition.string.end.svc'], 1);
  expectToken(tk, file, 'client_id     secret.HUBSPOT_CLIENT_ID', 'secret', ['variable.language.secret.svc']);
  expectToken(tk, file, 'client_id     secret.HUBSPOT_CLIENT_ID', '.', ['punctuation.accessor.svc']);
  expectToken(tk, file, 'client_id     secret.HUBSPOT_CLIENT_ID', 'HUBSPOT_CLIENT_ID', ['variable.other.secret.svc']);
  expectToken(tk, file, 'auth client(hubspot_app)', 'auth', ['keyword']);
  expectToken(tk, file, 'headers {', 'headers', ['keyword']);
  expectSpan(tk, file, 'headers {', '"Accept"', ['string.quoted.double.svc'], { whole: 'string' });
  expectSpan(tk, file, 'headers {', '"application/json"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'form {', 'form', ['keyword']);
  expectToken(tk, file, 'refresh_token = secret.HUBSPOT_REFRESH_TOKEN', 'secret', ['variable.language.secret.svc']);
  expectToken(tk, file, 'refresh_token = secret.HUBSPOT_REFRESH_TOKEN', 'HUBSPOT_REFRESH_TOKEN', ['variable.other.secret.svc']);
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
  expectSpan(tk, file, 'token    = $.access_token', '$.access_token', ['string.other.jsonpath.svc'], { whole: 'string.other.jsonpath' });
  expectSpan(tk, file, 'lifetime = $.expires_in', '$.expires_in', ['string.other.jsonpath.svc'], { whole: 'string.other.jsonpath' });
  const refresher = 'refreshed_by graph.refresh as scheduler min_valid 5m';
  expectToken(tk, file, refresher, 'refreshed_by', ['keyword.other.svc']);
  expectToken(tk, file, refresher, 'graph', ['variable.other.service.svc']);
  expectToken(tk, file, refresher, 'refresh', ['variable.other.endpoint.svc'], 1);
  expectToken(tk, file, refresher, 'as', ['keyword.other.svc']);
  expectToken(tk, file, refresher, 'scheduler', ['variable.other.identity.svc']);
  expectToken(tk, file, refresher, 'min_valid', ['keyword.other.svc']);
  expectToken(tk, file, refresher, '5m', ['constant.numeric.svc']);
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

function checkOauthClients(file, tk) {
  expectToken(tk, file, 'oauth_client app {', 'oauth_client', ['storage.type.svc']);
  expectToken(tk, file, 'oauth_client app {', 'app', ['entity.name.type.oauth-client.svc']);
  expectToken(tk, file, 'oauth_client app {', '{', ['punctuation.section.block.begin.svc']);
  expectToken(tk, file, 'authorize_url "https://idp', 'authorize_url', ['keyword.other.svc']);
  expectSpan(tk, file, 'authorize_url "https://idp', '"https://idp.example.com/oauth/authorize"', ['string.quoted.double.svc'],
    { not: ['comment'], whole: 'string' });
  expectToken(tk, file, 'token_url     "https://idp', 'token_url', ['keyword.other.svc']);
  expectToken(tk, file, 'client_id     secret.APP_CLIENT_ID', 'client_id', ['keyword.other.svc']);
  expectToken(tk, file, 'client_id     secret.APP_CLIENT_ID', 'APP_CLIENT_ID', ['variable.other.secret.svc']);
  expectToken(tk, file, 'client_auth   client_secret_basic(', 'client_auth', ['keyword.other.svc']);
  expectToken(tk, file, 'client_auth   client_secret_basic(', 'client_secret_basic', ['keyword.other.svc']);
  expectToken(tk, file, 'client_auth   client_secret_basic(', '(', ['punctuation.section.parens.begin.svc']);
  expectToken(tk, file, 'client_auth   client_secret_basic(', 'APP_CLIENT_SECRET', ['variable.other.secret.svc']);
  expectToken(tk, file, 'client_auth   client_secret_basic(', ')', ['punctuation.section.parens.end.svc']);
  expectToken(tk, file, 'scopes        "openid', 'scopes', ['keyword.other.svc']);
  expectSpan(tk, file, 'scopes        "openid', '"openid offline_access"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'stores {', 'stores', ['keyword.other.svc']);
  expectToken(tk, file, 'stores {', '{', ['punctuation.section.block.begin.svc']);
  // In `stores`, a token field and the secret that keeps it.
  expectToken(tk, file, 'refresh_token = APP_REFRESH_TOKEN', 'refresh_token', ['variable.parameter.svc']);
  expectToken(tk, file, 'refresh_token = APP_REFRESH_TOKEN', '=', ['keyword.operator.assignment.svc']);
  expectToken(tk, file, 'refresh_token = APP_REFRESH_TOKEN', 'APP_REFRESH_TOKEN', ['variable.other.secret.svc']);
  expectToken(tk, file, 'access_token  = APP_ACCESS_TOKEN', 'APP_ACCESS_TOKEN', ['variable.other.secret.svc']);
  // `grant read_status CLIENT` names a client, not a secret.
  expectToken(tk, file, 'grant read_status app', 'read_status', ['keyword.other.svc']);
  expectToken(tk, file, 'grant read_status app', 'app', ['entity.name.type.oauth-client.svc']);
  expectToken(tk, file, 'oauth_client signed {', 'signed', ['entity.name.type.oauth-client.svc']);
  expectToken(tk, file, 'issuer      "https://login', 'issuer', ['keyword.other.svc']);
  expectToken(tk, file, 'client_auth private_key_jwt(secret.SIGNING_KEY', 'private_key_jwt', ['keyword.other.svc']);
  expectToken(tk, file, 'client_auth private_key_jwt(secret.SIGNING_KEY', 'SIGNING_KEY', ['variable.other.secret.svc']);
  expectToken(tk, file, 'client_auth private_key_jwt(secret.SIGNING_KEY', 'alg', ['variable.parameter.svc']);
  expectSpan(tk, file, 'client_auth private_key_jwt(secret.SIGNING_KEY', '"ES256"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'client_auth private_key_jwt(secret.SIGNING_KEY', 'kid', ['variable.parameter.svc']);
  // `auth client(NAME)`: NAME refers to an oauth_client.
  expectToken(tk, file, 'auth client(app)', 'auth', ['keyword.other.svc']);
  expectToken(tk, file, 'auth client(app)', 'client', ['keyword.other.svc']);
  expectToken(tk, file, 'auth client(app)', '(', ['punctuation.section.parens.begin.svc']);
  expectToken(tk, file, 'auth client(app)', 'app', ['variable.other.oauth-client.svc']);
  expectToken(tk, file, 'auth client(app)', ')', ['punctuation.section.parens.end.svc']);
  expectToken(tk, file, 'auth client(signed)', 'signed', ['variable.other.oauth-client.svc']);
  // A form field is a property, a `stores` field a parameter.
  expectToken(tk, file, 'refresh_token = secret.APP_REFRESH_TOKEN', 'refresh_token', ['variable.other.property.svc']);
  expectToken(tk, file, 'auth private_key_jwt(client_id', 'private_key_jwt', ['keyword.other.svc']);
  expectToken(tk, file, 'auth private_key_jwt(client_id', 'client_id', ['variable.parameter.svc']);
  expectToken(tk, file, 'auth private_key_jwt(client_id', '=', ['keyword.operator.assignment.svc']);
  expectToken(tk, file, 'auth private_key_jwt(client_id', 'key', ['variable.parameter.svc'], 1);
  expectToken(tk, file, 'auth private_key_jwt(client_id', 'SIGNING_KEY', ['variable.other.secret.svc']);
  expectToken(tk, file, 'auth jwt_bearer(key', 'jwt_bearer', ['keyword.other.svc']);
  expectToken(tk, file, 'auth jwt_bearer(key', 'key', ['variable.parameter.svc']);
  expectToken(tk, file, 'auth jwt_bearer(key', 'scope', ['variable.parameter.svc']);
  expectSpan(tk, file, 'auth jwt_bearer(key', '"https://www.example.com/auth/cloud"', ['string.quoted.double.svc'],
    { not: ['comment'], whole: 'string' });
}

function checkOauthFixture(file, tk) {
  expectToken(tk, file, 'device_authorization_url "https', 'device_authorization_url', ['keyword.other.svc']);
  expectToken(tk, file, 'revocation_url           "https', 'revocation_url', ['keyword.other.svc']);
  expectToken(tk, file, 'refresh_token_ttl        90d', 'refresh_token_ttl', ['keyword.other.svc']);
  expectToken(tk, file, 'token_url                "https://${secret.TENANT}', 'TENANT', ['meta.interpolation.svc', 'variable.other.secret.svc']);
  expectToken(tk, file, 'client_auth              client_secret_post(', 'client_secret_post', ['keyword.other.svc']);
  expectToken(tk, file, 'client_auth              client_secret_post(', '//', ['punctuation.definition.comment.svc']);
  expectToken(tk, file, 'id_token      = APP_ID_TOKEN', 'id_token', ['variable.parameter.svc']);
  expectToken(tk, file, 'id_token      = APP_ID_TOKEN', 'APP_ID_TOKEN', ['variable.other.secret.svc']);
  expectToken(tk, file, 'access_token  = APP_ACCESS_TOKEN   //', '//', ['punctuation.definition.comment.svc']);
  expectToken(tk, file, 'description "The web app', 'description', ['keyword.other.svc']);
  // A whole client on one line.
  expectToken(tk, file, 'oauth_client cli {', 'cli', ['entity.name.type.oauth-client.svc'], 1);
  expectToken(tk, file, 'oauth_client cli {', 'none', ['keyword.other.svc']);
  expectToken(tk, file, 'oauth_client cli {', 'stores', ['keyword.other.svc']);
  expectToken(tk, file, 'oauth_client cli {', 'CLI_REFRESH_TOKEN', ['variable.other.secret.svc']);
  expectToken(tk, file, 'oauth_client cli {', '}', ['punctuation.section.block.end.svc'], 1);
  // Arguments over several lines, with comments and a trailing comma; what follows is read as before.
  expectToken(tk, file, 'client_auth private_key_jwt(', '(', ['punctuation.section.parens.begin.svc']);
  expectToken(tk, file, 'secret.SIGNING_KEY,', 'SIGNING_KEY', ['variable.other.secret.svc']);
  expectToken(tk, file, 'alg = "ES256",   // P-256', 'alg', ['variable.parameter.svc']);
  expectToken(tk, file, 'alg = "ES256",   // P-256', '//', ['punctuation.definition.comment.svc']);
  expectToken(tk, file, 'kid = "2026-11",', ',', ['punctuation.separator']);
  expectToken(tk, file, 'scopes      "api.read"', 'scopes', ['keyword.other.svc']);
  expectToken(tk, file, 'subject  = "ops@', 'subject', ['variable.parameter.svc']);
  expectToken(tk, file, 'audience = "https', 'audience', ['variable.parameter.svc']);
  expectToken(tk, file, 'scope    = scope,', 'scope', ['variable.parameter.svc']);
  expectToken(tk, file, 'scope    = scope,', 'scope', ['variable.other.svc'], 1);
  expectToken(tk, file, 'kid      = "k1",', 'kid', ['variable.parameter.svc']);
  expectToken(tk, file, 'timeout 10s', 'timeout', ['keyword.other.svc']);
  // `auth`, its method and the client's name on three lines.
  expectToken(tk, file, '(cli)', 'cli', ['variable.other.oauth-client.svc']);
  expectToken(tk, file, 'method POST', 'method', ['keyword.other.svc']);
  expectToken(tk, file, 'auth bearer(secret.APP_ACCESS_TOKEN)', 'bearer', ['keyword.other.svc']);
  // Where they are not keywords, these words are names.
  expectToken(tk, file, 'none   = client', 'none', ['variable.other.svc']);
  expectToken(tk, file, 'none   = client', 'client', ['variable.other.svc']);
  expectToken(tk, file, 'auth private_key_jwt(client_id = client', 'client', ['variable.other.svc'], 1);
  expectToken(tk, file, 'auth private_key_jwt(client_id = client', 'none', ['variable.other.svc']);
  expectToken(tk, file, 'form { grant_type = "client_credentials"  client_id = client }', 'client_id', ['variable.other.property.svc']);
}

// A client's provider profile, and the statements that request its tokens.
function checkProvidersFixture(file, tk) {
  expectToken(tk, file, 'provider    xero', 'provider', ['keyword.other.svc']);
  expectToken(tk, file, 'provider    xero', 'xero', ['support.type.provider.svc']);
  // `provider NAME(param = value)`: the parameters are named arguments; a comment follows.
  expectToken(tk, file, 'provider microsoft(', 'provider', ['keyword.other.svc']);
  expectToken(tk, file, 'provider microsoft(', 'microsoft', ['support.type.provider.svc']);
  expectToken(tk, file, 'provider microsoft(', '(', ['punctuation.section.parens.begin.svc']);
  expectToken(tk, file, 'provider microsoft(', 'tenant', ['variable.parameter.svc']);
  expectToken(tk, file, 'provider microsoft(', '=', ['keyword.operator.assignment.svc']);
  expectSpan(tk, file, 'provider microsoft(', '"contoso.onmicrosoft.com"', ['string.quoted.double.svc'], { whole: 'string' });
  expectToken(tk, file, 'provider microsoft(', ')', ['punctuation.section.parens.end.svc']);
  expectToken(tk, file, 'provider microsoft(', '//', ['punctuation.definition.comment.svc']);
  expectToken(tk, file, 'client_id   "11111111', 'client_id', ['keyword.other.svc']);
  // A whole client on one line: what follows the parameters is read as before.
  expectToken(tk, file, 'oauth_client desk {', 'provider', ['keyword.other.svc']);
  expectToken(tk, file, 'oauth_client desk {', 'zendesk', ['support.type.provider.svc']);
  expectToken(tk, file, 'oauth_client desk {', 'subdomain', ['variable.parameter.svc']);
  expectToken(tk, file, 'oauth_client desk {', 'ZENDESK_SUBDOMAIN', ['variable.other.secret.svc']);
  expectToken(tk, file, 'oauth_client desk {', 'client_id', ['keyword.other.svc']);
  expectToken(tk, file, 'oauth_client desk {', 'stores', ['keyword.other.svc']);
  // The token requests: the keyword, `client` and the client's name.
  expectToken(tk, file, 'refresh_tokens client(xero)', 'refresh_tokens', ['keyword.other.svc']);
  expectToken(tk, file, 'refresh_tokens client(xero)', 'client', ['keyword.other.svc']);
  expectToken(tk, file, 'refresh_tokens client(xero)', '(', ['punctuation.section.parens.begin.svc']);
  expectToken(tk, file, 'refresh_tokens client(xero)', 'xero', ['variable.other.oauth-client.svc']);
  expectToken(tk, file, 'refresh_tokens client(xero)', ')', ['punctuation.section.parens.end.svc']);
  expectToken(tk, file, 'client_credentials client(graph)', 'client_credentials', ['keyword.other.svc']);
  expectToken(tk, file, 'client_credentials client(graph)', 'client', ['keyword.other.svc'], 1);
  expectToken(tk, file, 'client_credentials client(graph)', 'graph', ['variable.other.oauth-client.svc']);
  // Over two lines.
  expectToken(tk, file, '      refresh_tokens', 'refresh_tokens', ['keyword.other.svc']);
  expectToken(tk, file, 'client(desk)', 'client', ['keyword.other.svc']);
  expectToken(tk, file, 'client(desk)', 'desk', ['variable.other.oauth-client.svc']);
  expectToken(tk, file, 'client(desk)', '//', ['punctuation.definition.comment.svc']);
  // Where it is not a keyword, `provider` is a name.
  expectToken(tk, file, 'var provider: string', 'provider', ['entity.name']);
  expectToken(tk, file, 'log provider', 'provider', ['variable.other.svc']);
}

async function main() {
  const grammarJson = fs.readFileSync(GRAMMAR, 'utf8');
  const grammar = await loadGrammar();
  checkGrammarFile(grammarJson);
  checkVscodeExtension(grammarJson);
  checkKeywordList();

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
    checkKeywordPlaces(file, tk);
  }
  const specific = [
    ['hubspot_accounts.svc', checkAccounts],
    [path.join('quickstart', 'quickstart.svc'), checkQuickstart],
  ];
  for (const [name, fn] of specific) {
    if (check(tokenizedExamples.has(name), `examples/${name} not found`)) fn(path.join(EXAMPLES, name), tokenizedExamples.get(name));
  }
  // Refreshes written out request by request, as the HubSpot, Graph and
  // oauth_client examples were before provider profiles: kept as fixtures.
  const byHand = [
    ['hubspot_refresh_by_hand.svc', checkHubspot],
    ['graph_client_credentials_by_hand.svc', checkGraph],
    ['oauth_clients_by_hand.svc', checkOauthClients],
  ];
  for (const [name, fn] of byHand) {
    const file = path.join(ROOT, 'tests', 'fixtures', name);
    if (check(fs.existsSync(file), `tests/fixtures/${name} not found`)) {
      const tk = tokenizeFile(grammar, file);
      files += 1;
      lines += tk.length;
      checkValidProgram(file, tk);
      checkKeywordPlaces(file, tk);
      fn(file, tk);
    }
  }

  // The editor test's own programs, valid ones: checked as the examples are.
  const fixtures = new Map();
  for (const file of svcFiles(FIXTURES)) {
    const tk = tokenizeFile(grammar, file);
    files += 1;
    lines += tk.length;
    fixtures.set(path.relative(FIXTURES, file), tk);
    checkValidProgram(file, tk);
    checkKeywordPlaces(file, tk);
  }
  if (check(fixtures.has('oauth.svc'), 'editors/test/fixtures/oauth.svc not found')) {
    checkOauthFixture(path.join(FIXTURES, 'oauth.svc'), fixtures.get('oauth.svc'));
  }
  if (check(fixtures.has('providers.svc'), 'editors/test/fixtures/providers.svc not found')) {
    checkProvidersFixture(path.join(FIXTURES, 'providers.svc'), fixtures.get('providers.svc'));
  }

  // The checker's test programs (`// expect: CODE...` on their first line):
  // every one must tokenize, fully covered. Those that expect no syntax error
  // are programs the parser reads, so they are checked as the examples are
  // (a wrong name or value is the checker's business, not the highlighter's).
  const programs = svcFiles(CHECK_PROGRAMS);
  check(programs.length > 0, 'no tests/check/*.svc found');
  let parsed = 0;
  for (const file of programs) {
    const tk = tokenizeFile(grammar, file);
    lines += tk.length;
    files += 1;
    const expected = (tk.length > 0 ? tk[0].line : '').replace(/^\/\/ expect: /, '').split(/\s+/);
    if (expected.some((code) => code.startsWith('svc::syntax::'))) continue;
    parsed += 1;
    checkValidProgram(file, tk);
    checkKeywordPlaces(file, tk);
    if (path.basename(file) === 'loops_passes.svc') checkLoops(file, tk);
    if (path.basename(file) === 'hooks_passes.svc') checkHooks(file, tk);
  }
  check(programs.some((f) => path.basename(f) === 'loops_passes.svc'), 'tests/check/loops_passes.svc not found');
  check(parsed > 0 && parsed < programs.length, `tests/check: ${parsed} of ${programs.length} programs expect no syntax error`);

  if (failures.length > 0) {
    for (const f of failures) console.log(`FAIL ${f}`);
    console.log(`tokenized ${files} files, ${lines} lines, ${checks - failures.length} checks passed, ${failures.length} failed`);
    process.exit(1);
  }
  console.log(`tokenized ${files} files, ${lines} lines, ${checks} checks passed`);
}

// `on_failure { ... }` / `on_recovery { ... }` in endpoints and schedules;
// `run.FIELD` inside them.
function checkHooks(file, tk) {
  expectToken(tk, file, 'on_failure {', 'on_failure', ['keyword.control.hook.svc']);
  expectToken(tk, file, 'on_recovery {', 'on_recovery', ['keyword.control.hook.svc']);
  expectToken(tk, file, 'run      = run.id', 'run', ['variable.language.run.svc'], 1);
  expectToken(tk, file, 'run      = run.id', 'id', ['variable.other.run.svc']);
  expectToken(tk, file, 'code     = error.code', 'error', ['variable.language.error.svc']);
  expectToken(tk, file, 'run_service alerts.notify', 'run_service', ['keyword.other.svc']);
}

// `foreach ITEM in`, `while ... max N`, `break`: loop keywords; the item a name.
function checkLoops(file, tk) {
  expectToken(tk, file, 'while has_value(next) max 50', 'while', ['keyword.control.loop.svc']);
  expectToken(tk, file, 'while has_value(next) max 50', 'has_value', ['support.function.svc']);
  expectToken(tk, file, 'while has_value(next) max 50', 'max', ['keyword.control.loop.svc']);
  expectToken(tk, file, 'while has_value(next) max 50', '50', ['constant.numeric.svc']);
  expectToken(tk, file, 'foreach item in page', 'foreach', ['keyword.control.loop.svc']);
  expectToken(tk, file, 'foreach item in page', 'item', ['variable.other.loop-item.svc']);
  expectToken(tk, file, 'foreach item in page', 'in', ['keyword.control.loop.svc']);
  expectToken(tk, file, 'break', 'break', ['keyword.control.loop.svc']);
  expectToken(tk, file, 'pages = pages + 1', '+', ['keyword.operator.arithmetic.svc']);
}

main().catch((e) => {
  console.log(`FAIL ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
