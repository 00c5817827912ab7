/**
 * @file The svc language, for editors that highlight with tree-sitter
 * (Helix, Neovim, Zed).
 *
 * The authoritative grammar is grammar/svc.pest; this one follows it rule
 * for rule (the rule names are the same where they can be) and accepts
 * what it accepts, so that every program `svc check` reads parses here
 * without an error node. It is as lenient as pest about values: durations,
 * HTTP methods, type names and JSONPath are taken in any shape the checker
 * would read, and the checker says what is wrong with them.
 *
 * Keywords are keywords only where the grammar expects them (`word` below):
 * a variable may be called `status` or `expires_in`, as in pest.
 */

/// <reference types="tree-sitter-cli/dsl" />
// @ts-check

const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]*/;

// Loosest first, as in docs/language.md.
const PREC = {
  or: 1,
  and: 2,
  compare: 3,
  add: 4,
  multiply: 5,
  not: 6,
};

// A JSONPath bracket (`[0]`, `['a b']`, `[?@.x[0] == 1]`), nested up to
// three deep; quoted names may hold `]`.
const QUOTED = /'([^'\\\n]|\\.)*'|"([^"\\\n]|\\.)*"/;
const bracket = (depth) =>
  seq(
    '[',
    repeat(
      depth === 0
        ? choice(QUOTED, /[^\]\n'"\[]/)
        : choice(QUOTED, /[^\]\n'"\[]/, bracket(depth - 1)),
    ),
    ']',
  );
const JSONPATH_NAME = /([A-Za-z0-9_]|[^\x00-\x7F])+/;

/**
 * One or more `rule`, separated by commas.
 * @param {RuleOrLiteral} rule
 */
const commaSep1 = (rule) => seq(rule, repeat(seq(',', rule)));

module.exports = grammar({
  name: 'svc',

  extras: ($) => [/[\s\uFEFF]/, $.comment],

  word: ($) => $.identifier,

  supertypes: ($) => [$._declaration, $._statement, $._expression],

  rules: {
    source_file: ($) => repeat($._declaration),

    _declaration: ($) =>
      choice(
        $.service_declaration,
        $.secret_declaration,
        $.schedule_declaration,
        $.role_declaration,
        $.service_account_declaration,
        $.user_declaration,
        $.oauth_client_declaration,
        $.notify_declaration,
      ),

    comment: (_) => token(seq('//', /[^\n]*/)),

    identifier: (_) => IDENTIFIER,

    // ------------------------------------------------------------ secrets

    secret_declaration: ($) =>
      seq(
        'secret',
        field('name', $.identifier),
        '{',
        repeat(
          choice(
            $.environment_specific,
            $.locked,
            $.per_account,
            $.refreshed_by,
            $.description,
          ),
        ),
        '}',
      ),

    environment_specific: (_) => 'environment_specific',

    locked: (_) => 'locked',

    // On a secret: a value per connection; on a client: many connections.
    per_account: (_) => 'per_account',

    description: ($) => seq('description', $.string),

    refreshed_by: ($) =>
      seq(
        'refreshed_by',
        field('endpoint', $.endpoint_ref),
        'as',
        field('account', $.identifier),
        optional(seq('min_valid', field('min_valid', $.duration))),
      ),

    // ------------------------------------------------ roles and identities

    role_declaration: ($) =>
      seq(
        'role',
        field('name', $.identifier),
        '{',
        repeat(choice($.grant, $.description)),
        '}',
      ),

    grant: ($) =>
      seq(
        'grant',
        choice(
          seq('run', field('endpoint', $.endpoint_pattern)),
          seq('update_secret', field('secret', $.identifier)),
          seq('read_secret', field('secret', $.identifier)),
          seq('read_status', field('client', $.identifier)),
          seq('connect', field('client', $.identifier)),
        ),
      ),

    // `SERVICE.ENDPOINT` or `SERVICE.*`, without spaces.
    endpoint_pattern: ($) =>
      seq(
        field('service', $.identifier),
        token.immediate('.'),
        field(
          'endpoint',
          choice(alias($._immediate_identifier, $.identifier), $.wildcard),
        ),
      ),

    wildcard: (_) => token.immediate('*'),

    user_declaration: ($) =>
      seq(
        'user',
        field('name', $.identifier),
        '{',
        repeat(choice($.roles, $.description)),
        '}',
      ),

    service_account_declaration: ($) =>
      seq(
        'service_account',
        field('name', $.identifier),
        '{',
        repeat(choice($.roles, $.description)),
        '}',
      ),

    roles: ($) => seq('roles', repeat(field('role', $.identifier))),

    // ------------------------------------------------------ OAuth clients

    oauth_client_declaration: ($) =>
      seq(
        'oauth_client',
        field('name', $.identifier),
        '{',
        repeat(
          choice(
            $.client_provider,
            $.client_property,
            $.client_auth,
            $.client_scopes,
            $.client_refresh_token_ttl,
            $.client_stores,
            $.client_period,
            $.per_account,
            $.client_return_to,
            $.description,
          ),
        ),
        '}',
      ),

    // `keep_alive 7d`, `expiry_warning 14d`.
    client_period: ($) =>
      seq(
        field('property', choice('keep_alive', 'expiry_warning')),
        field('value', $.duration),
      ),

    // `provider NAME` or `provider NAME(param = value, ...)`: the client's
    // endpoints and behaviour from a provider profile.
    client_provider: ($) =>
      seq(
        'provider',
        field('provider', $.identifier),
        optional(field('arguments', $.arguments)),
      ),

    client_property: ($) =>
      seq(
        field(
          'property',
          choice(
            'issuer',
            'authorize_url',
            'token_url',
            'device_authorization_url',
            'revocation_url',
            'client_id',
          ),
        ),
        field('value', $._expression),
      ),

    client_auth: ($) =>
      seq(
        'client_auth',
        choice(
          $.client_secret_basic,
          $.client_secret_post,
          $.private_key_jwt,
          $.auth_none,
        ),
      ),

    client_secret_basic: ($) =>
      seq('client_secret_basic', '(', $._expression, ')'),

    client_secret_post: ($) =>
      seq('client_secret_post', '(', $._expression, ')'),

    auth_none: (_) => 'none',

    client_scopes: ($) => seq('scopes', $.string),

    // `return_to "URL" "URL" ...`: where a hosted consent may return.
    client_return_to: ($) => seq('return_to', repeat1($.string)),

    client_refresh_token_ttl: ($) => seq('refresh_token_ttl', $.duration),

    client_stores: ($) => seq('stores', '{', repeat($.token_store), '}'),

    token_store: ($) =>
      seq(field('field', $.identifier), '=', field('secret', $.identifier)),

    // A signed JWT's settings: named arguments, the key may come first
    // unnamed.
    private_key_jwt: ($) => seq('private_key_jwt', $.arguments),

    jwt_bearer: ($) => seq('jwt_bearer', $.arguments),

    arguments: ($) =>
      seq('(', optional(seq(commaSep1($.argument), optional(','))), ')'),

    argument: ($) =>
      seq(
        optional(seq(field('name', $.identifier), '=')),
        field('value', $._expression),
      ),

    // ------------------------------------------------------ notifications

    notify_declaration: ($) =>
      seq(
        'notify',
        field('name', $.identifier),
        '{',
        repeat(
          choice($.notify_url, $.notify_secret, $.notify_events, $.description),
        ),
        '}',
      ),

    notify_url: ($) => seq('url', $.string),

    notify_secret: ($) => seq('secret', $.secret_ref),

    // The events end at the next keyword of the block, as in pest.
    notify_events: ($) =>
      seq(
        'events',
        repeat(choice($.event_name, alias($.identifier, $.event_name))),
      ),

    event_name: (_) => /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+/,

    // ----------------------------------------------------------- services

    service_declaration: ($) =>
      seq(
        'service',
        field('name', $.identifier),
        '{',
        repeat(
          choice($.var_declaration, $.action_declaration, $.endpoint_declaration),
        ),
        '}',
      ),

    var_declaration: ($) =>
      seq(
        'var',
        field('name', $.identifier),
        ':',
        field('type', alias($.identifier, $.type_name)),
      ),

    action_declaration: ($) =>
      seq('action', field('name', $.identifier), field('body', $.block)),

    endpoint_declaration: ($) =>
      seq(
        'endpoint',
        field('name', $.identifier),
        '{',
        repeat(
          choice(
            $.methods,
            $.process,
            $.log_setting,
            $.description,
            $.hook,
            $.endpoint_params,
            $.endpoint_response,
          ),
        ),
        '}',
      ),

    // The methods end at the next keyword of the endpoint, as in pest.
    methods: ($) => seq('methods', repeat(alias($.identifier, $.http_method))),

    // The endpoint's contract: what a caller passes, what it gets back.
    endpoint_params: ($) => seq('params', '{', repeat($.param_declaration), '}'),

    param_declaration: ($) =>
      seq(
        field('name', $.identifier),
        ':',
        field('type', $.param_type),
        optional(field('optional', '?')),
        optional(seq('=', field('default', $._expression))),
      ),

    // `number`, `list<string>`.
    param_type: ($) =>
      seq(
        alias($.identifier, $.type_name),
        optional(seq('<', alias($.identifier, $.type_name), '>')),
      ),

    endpoint_response: ($) =>
      seq(
        'response',
        '{',
        repeat(
          choice(
            $.response_status,
            $.response_json,
            $.response_body,
            $.response_reveals,
          ),
        ),
        '}',
      ),

    response_status: ($) => seq('status', $.integer),

    response_json: ($) => seq('json', $._fields),

    response_body: ($) => seq('body', $._expression),

    response_reveals: ($) =>
      seq('reveals', commaSep1(field('secret', $.identifier))),

    // `on_failure { ... }` and `on_recovery { ... }` of an endpoint or a
    // schedule.
    hook: ($) =>
      seq(
        field('kind', choice('on_failure', 'on_recovery')),
        field('body', $.block),
      ),

    log_setting: ($) =>
      seq('log', field('state', alias(choice('enabled', 'disabled'), $.log_state))),

    process: ($) => seq('process', field('action', $.identifier)),

    // --------------------------------------------------------- statements

    block: ($) => seq('{', repeat($._statement), '}'),

    _statement: ($) =>
      choice(
        $.if_statement,
        $.update_secret,
        $.web_request,
        $.update_variables,
        $.log,
        $.update_secrets,
        $.run_service,
        $.try_catch,
        $.throw,
        $.sleep,
        $.foreach_loop,
        $.while_loop,
        $.break_statement,
        $.token_grant,
      ),

    // `refresh_tokens client(NAME)` and `client_credentials client(NAME)`: a
    // token request as the client (and its provider profile) says, storing
    // what comes back in the client's `stores`.
    token_grant: ($) =>
      seq(
        field('kind', choice('refresh_tokens', 'client_credentials')),
        $.auth_client,
      ),

    // Loops: `foreach` over a JSON array; `while` with a mandatory bound.
    foreach_loop: ($) =>
      seq(
        'foreach',
        field('item', $.identifier),
        'in',
        field('list', $._expression),
        field('body', $.block),
      ),

    while_loop: ($) =>
      seq(
        'while',
        field('condition', $._expression),
        'max',
        field('max', $.integer),
        field('body', $.block),
      ),

    break_statement: (_) => 'break',

    update_variables: ($) =>
      seq('update', 'service_variables', '{', repeat($.assignment), '}'),

    assignment: ($) =>
      seq(field('name', $.identifier), '=', field('value', $._expression)),

    web_request: ($) =>
      seq(
        'web_request',
        '{',
        repeat(
          choice(
            $.request_method,
            $.request_url,
            $.request_form,
            $.request_headers,
            $.result_mapping,
            $.request_timeout,
            $.request_auth,
            $.request_query,
            $.request_json,
            $.request_body,
            $.request_retry,
            $.request_redirects,
          ),
        ),
        '}',
      ),

    request_method: ($) => seq('method', alias($.identifier, $.http_method)),

    request_url: ($) => seq('url', $._expression),

    request_query: ($) => seq('query', $._fields),

    request_headers: ($) => seq('headers', $._fields),

    request_form: ($) => seq('form', $._fields),

    request_json: ($) => seq('json', $._fields),

    request_body: ($) => seq('body', $._expression),

    request_auth: ($) =>
      seq(
        'auth',
        choice(
          $.auth_basic,
          $.auth_bearer,
          $.auth_client,
          $.private_key_jwt,
          $.jwt_bearer,
        ),
      ),

    auth_basic: ($) =>
      seq('basic', '(', $._expression, ',', $._expression, ')'),

    auth_bearer: ($) => seq('bearer', '(', $._expression, ')'),

    auth_client: ($) => seq('client', '(', field('client', $.identifier), ')'),

    request_timeout: ($) => seq('timeout', $.duration),

    request_retry: ($) =>
      seq(
        'retry',
        '{',
        repeat(choice($.retry_attempts, $.retry_max_time)),
        '}',
      ),

    retry_attempts: ($) => seq('attempts', $.integer),

    retry_max_time: ($) => seq('max_time', $.duration),

    request_redirects: ($) =>
      seq('redirects', $.integer, optional(alias('cross_origin', $.cross_origin))),

    _fields: ($) => seq('{', repeat($.field), '}'),

    field: ($) =>
      seq(
        field('name', choice($.identifier, $.string)),
        '=',
        field('value', $._expression),
      ),

    result_mapping: ($) => seq('result_mapping', '{', repeat($.mapping), '}'),

    mapping: ($) =>
      seq(
        field('target', $.identifier),
        '=',
        field(
          'source',
          choice(
            $.jsonpath,
            $.header_source,
            alias('status', $.status_source),
            alias('body', $.body_source),
          ),
        ),
      ),

    header_source: ($) => seq('header', $.string),

    // RFC 9535 JSONPath, written bare. As in pest, only where it ends is
    // found here; the checker parses it.
    jsonpath: (_) =>
      token(
        seq(
          '$',
          repeat(
            choice(
              seq('..', choice(JSONPATH_NAME, '*', bracket(3))),
              seq('.', choice(JSONPATH_NAME, '*')),
              bracket(3),
            ),
          ),
        ),
      ),

    if_statement: ($) =>
      seq(
        'if',
        field('condition', $._expression),
        field('consequence', $.block),
        optional(field('alternative', $.else_clause)),
      ),

    else_clause: ($) => seq('else', choice($.if_statement, $.block)),

    update_secret: ($) => seq('update_secret', $.secret_update),

    update_secrets: ($) =>
      seq('update_secrets', '{', repeat($.secret_update), '}'),

    secret_update: ($) =>
      seq(
        field('secret', $.identifier),
        choice(seq('=', field('value', $._expression)), $.secret_update_block),
      ),

    secret_update_block: ($) => seq('{', repeat($.secret_update_field), '}'),

    secret_update_field: ($) =>
      seq(
        field('name', choice('value', 'expires_in')),
        '=',
        field('value', $._expression),
      ),

    run_service: ($) =>
      seq(
        'run_service',
        field('endpoint', $.endpoint_ref),
        optional(field('arguments', $.arguments)),
        optional(seq('for_connection', field('connection', $._expression))),
        optional(seq('as', field('account', $.identifier))),
        optional(seq('into', field('into', $.identifier))),
      ),

    // `SERVICE.ENDPOINT`, without spaces.
    endpoint_ref: ($) =>
      seq(
        field('service', $.identifier),
        token.immediate('.'),
        field('endpoint', alias($._immediate_identifier, $.identifier)),
      ),

    _immediate_identifier: (_) => token.immediate(IDENTIFIER),

    sleep: ($) => seq('sleep', $.duration),

    log: ($) => seq('log', $._expression),

    throw: ($) =>
      seq('throw', field('code', $.string), field('message', $._expression)),

    try_catch: ($) => seq('try', field('body', $.block), repeat1($.catch)),

    catch: ($) =>
      seq(
        'catch',
        optional(field('filter', choice($.catch_web_request, $.string))),
        field('body', $.block),
      ),

    catch_web_request: ($) =>
      seq('web_request_error', repeat(alias($.integer, $.status_code))),

    // ---------------------------------------------------------- schedules

    schedule_declaration: ($) =>
      seq(
        'schedule',
        field('name', $.identifier),
        '{',
        repeat(
          choice(
            $.schedule_endpoint,
            $.schedule_account,
            $.every,
            $.cron,
            $.time_zone,
            $.before_expiry,
            alias('disabled', $.disabled),
            $.description,
            $.hook,
            $.schedule_params,
            $.for_each_connection,
            $.concurrency,
          ),
        ),
        '}',
      ),

    schedule_params: ($) => seq('params', $._fields),

    schedule_endpoint: ($) => seq('endpoint', $.endpoint_ref),

    schedule_account: ($) => seq('service_account', field('account', $.identifier)),

    for_each_connection: ($) =>
      seq('for_each_connection', field('client', $.identifier)),

    concurrency: ($) => seq('concurrency', $.integer),

    every: ($) => seq('every', $.duration),

    cron: ($) => seq('cron', $.string),

    time_zone: ($) => seq('time_zone', $.string),

    before_expiry: ($) =>
      seq(
        'before_expiry',
        field('secret', $.identifier),
        field('lead', $.duration),
      ),

    // -------------------------------------------------------- expressions

    _expression: ($) =>
      choice($.binary_expression, $.unary_expression, $._primary),

    _primary: ($) =>
      choice(
        $.string,
        $.null,
        $.boolean,
        $.secret_ref,
        $.param_ref,
        $.error_ref,
        $.run_ref,
        $.connection_ref,
        $.call,
        alias($.identifier, $.variable),
        alias($._duration_literal, $.duration),
        $.number,
        $.parenthesized_expression,
      ),

    parenthesized_expression: ($) => seq('(', $._expression, ')'),

    unary_expression: ($) =>
      prec(PREC.not, seq(field('operator', '!'), field('operand', $._expression))),

    binary_expression: ($) => {
      const table = [
        [PREC.or, '||'],
        [PREC.and, '&&'],
        [PREC.compare, choice('==', '!=', '<=', '>=', '<', '>')],
        [PREC.add, choice('+', '-')],
        [PREC.multiply, choice('*', '/')],
      ];
      return choice(
        ...table.map(([precedence, operator]) =>
          prec.left(
            /** @type {number} */ (precedence),
            seq(
              field('left', $._expression),
              field('operator', /** @type {RuleOrLiteral} */ (operator)),
              field('right', $._expression),
            ),
          ),
        ),
      );
    },

    call: ($) =>
      seq(
        field('function', $.identifier),
        '(',
        optional(commaSep1($._expression)),
        ')',
      ),

    // `secret.NAME`, `param.NAME`, `error.FIELD`, `run.FIELD`: no spaces.
    secret_ref: ($) =>
      seq('secret.', field('name', alias($._immediate_identifier, $.identifier))),

    param_ref: ($) =>
      seq('param.', field('name', alias($._immediate_identifier, $.identifier))),

    error_ref: ($) =>
      seq('error.', field('name', alias($._immediate_identifier, $.identifier))),

    run_ref: ($) =>
      seq('run.', field('name', alias($._immediate_identifier, $.identifier))),

    // `connection.id`, `connection.tags.KEY`.
    connection_ref: ($) =>
      seq(
        'connection.',
        field('field', alias($._immediate_identifier, $.identifier)),
        optional(
          seq(
            token.immediate('.'),
            field('key', alias($._immediate_identifier, $.identifier)),
          ),
        ),
      ),

    boolean: (_) => choice('true', 'false'),

    null: (_) => 'null',

    number: (_) => /-?\d+(\.\d+)?/,

    integer: (_) => /\d+/,

    // A duration in an expression (`now() + 5m`): a whole number and a
    // unit.
    _duration_literal: (_) => /\d+(ms|s|m|h|d)/,

    // A duration where one is expected (`timeout 10s`): anything shaped
    // like one, checked later.
    duration: (_) => /\d+[A-Za-z0-9_]*/,

    // Strings may hold `${expr}` interpolations. Where pest allows only a
    // plain string (descriptions, header names, cron) one is still parsed
    // the same: the checker reports the interpolation.
    string: ($) =>
      seq(
        '"',
        repeat(choice($.string_content, $.escape_sequence, $.interpolation)),
        '"',
      ),

    // Above a comment's precedence, so `"https://..."` stays a string.
    string_content: (_) => token.immediate(prec(1, /[^"\\\n$]+|\$/)),

    escape_sequence: (_) => token.immediate(prec(1, /\\[^\n]?/)),

    interpolation: ($) =>
      seq(token.immediate(prec(1, '${')), $._expression, '}'),
  },
});
