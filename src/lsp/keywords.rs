//! The keywords of the language, with one line of documentation each,
//! shown on hover and in completion.
//!
//! The list is checked against the grammar: a keyword rule of
//! `grammar/svc.pest` without an entry here fails the tests.

/// A keyword and what it means.
#[derive(Debug)]
pub struct Keyword {
    pub word: &'static str,
    /// One line, in the voice of `docs/language.md`.
    pub doc: &'static str,
    /// Where the keyword is written.
    pub context: Context,
}

/// The place a keyword is written: the block whose members it starts, or
/// the construct it is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A declaration of a file.
    TopLevel,
    /// `secret NAME { ... }`.
    Secret,
    /// `role NAME { ... }`.
    Role,
    /// `user NAME { ... }` and `service_account NAME { ... }`.
    Identity,
    /// `service NAME { ... }`.
    Service,
    /// `endpoint NAME { ... }`.
    Endpoint,
    /// An action or a hook: a list of statements.
    Statement,
    /// `web_request { ... }`.
    WebRequest,
    /// `schedule NAME { ... }`.
    Schedule,
    /// `oauth_client NAME { ... }`.
    OAuthClient,
    /// `notify NAME { ... }`.
    Notify,
    /// A value.
    Expression,
    /// Several places.
    Other,
}

/// Every keyword, in the order of the grammar.
pub const KEYWORDS: &[Keyword] = &[
    Keyword {
        word: "secret",
        doc: "Declares a secret, kept in the encrypted store. `environment_specific`: a value per environment; `locked`: no run may update it.",
        context: Context::TopLevel,
    },
    Keyword {
        word: "role",
        doc: "Declares a role, a set of grants: `grant run SERVICE.ENDPOINT`, `update_secret NAME`, `read_secret NAME`, `read_status CLIENT`.",
        context: Context::TopLevel,
    },
    Keyword {
        word: "grant",
        doc: "Gives the role's holders a permission: `run SERVICE.ENDPOINT` (or `.*`), `update_secret NAME`, `read_secret NAME`, `read_status CLIENT`.",
        context: Context::Role,
    },
    Keyword {
        word: "run",
        doc: "`grant run SERVICE.ENDPOINT`: holders may run the endpoint; `grant run SERVICE.*` every endpoint of the service.",
        context: Context::Role,
    },
    Keyword {
        word: "update_secret",
        doc: "Stores a secret: `update_secret NAME = EXPR` or `NAME { value = ... expires_in = ... }`. `grant update_secret NAME` permits it.",
        context: Context::Statement,
    },
    Keyword {
        word: "update_secrets",
        doc: "Updates several secrets in one atomic write: `update_secrets { NAME = EXPR  NAME { value = ... } }`.",
        context: Context::Statement,
    },
    Keyword {
        word: "read_secret",
        doc: "`grant read_secret NAME`: holders may fetch the secret's value through `svc serve`, or from a response that `reveals` it.",
        context: Context::Role,
    },
    Keyword {
        word: "read_status",
        doc: "`grant read_status CLIENT`: holders may read the state of the client's connections through `svc serve`, never a token.",
        context: Context::Role,
    },
    Keyword {
        word: "user",
        doc: "Declares a user, a person: `user NAME { roles ROLE ... }`. Users and service accounts share one namespace of identities.",
        context: Context::TopLevel,
    },
    Keyword {
        word: "service_account",
        doc: "Declares a service account: `service_account NAME { roles ROLE ... }`. In a schedule, the account it runs as (required).",
        context: Context::TopLevel,
    },
    Keyword {
        word: "roles",
        doc: "The roles a user or service account holds: `roles token_refresher auditor`.",
        context: Context::Identity,
    },
    Keyword {
        word: "service",
        doc: "Declares a service: its variables (`var`), actions (`action`) and endpoints (`endpoint`).",
        context: Context::TopLevel,
    },
    Keyword {
        word: "schedule",
        doc: "Declares a schedule: runs `endpoint SERVICE.ENDPOINT` as `service_account NAME`, by `every`, `cron` or `before_expiry`.",
        context: Context::TopLevel,
    },
    Keyword {
        word: "description",
        doc: "Free text about the declaration: `description \"...\"`, a fixed string (no `${...}`).",
        context: Context::Other,
    },
    Keyword {
        word: "var",
        doc: "Declares a service variable: `var NAME: TYPE`, `string`, `number`, `bool`, `json`, `duration` or `time`. Null when a run starts.",
        context: Context::Service,
    },
    Keyword {
        word: "action",
        doc: "Declares an action: `action NAME { statements }`, what an endpoint that `process`es it does.",
        context: Context::Service,
    },
    Keyword {
        word: "endpoint",
        doc: "Declares an endpoint: `methods`, `process ACTION`, `params`, `response`, `log`, hooks. In a schedule: `endpoint SERVICE.ENDPOINT`.",
        context: Context::Service,
    },
    Keyword {
        word: "methods",
        doc: "The HTTP methods callers may use, at least one: `methods GET POST` (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`).",
        context: Context::Endpoint,
    },
    Keyword {
        word: "log",
        doc: "`log EXPR` adds a message to the run's trace, secrets masked. In an endpoint, `log enabled|disabled`: whether runs are logged.",
        context: Context::Statement,
    },
    Keyword {
        word: "process",
        doc: "The action the endpoint runs (required): `process ACTION`.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "update",
        doc: "`update service_variables { NAME = EXPR ... }` assigns service variables; each value must fit its variable's type.",
        context: Context::Statement,
    },
    Keyword {
        word: "service_variables",
        doc: "`update service_variables { NAME = EXPR ... }`: assignments to service variables (`null` fits every type).",
        context: Context::Statement,
    },
    Keyword {
        word: "web_request",
        doc: "Sends an HTTP request: `web_request { method ... url ... }` (`url` required); `result_mapping` reads the answer.",
        context: Context::Statement,
    },
    Keyword {
        word: "method",
        doc: "The request's HTTP method: `GET` (the default), `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "url",
        doc: "Where the request goes (required, but for `auth client(NAME)`): `url \"https://...\"`, which may hold `${expr}`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "query",
        doc: "Query string parameters added to the URL: `query { NAME = EXPR ... }`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "headers",
        doc: "Request headers: `headers { \"Accept\" = \"application/json\" }`; a name is a fixed string without spaces.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "form",
        doc: "A form-encoded body: `form { NAME = EXPR ... }`. A request has one body: `form`, `json` or `body`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "json",
        doc: "A JSON object body, of a request or a `response`: `json { NAME = EXPR ... }`. A request has one body: `form`, `json` or `body`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "body",
        doc: "A body given whole, of a request or a `response`: `body EXPR`. A request has one body: `form`, `json` or `body`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "auth",
        doc: "How the request authenticates: `basic(USER, PASSWORD)`, `bearer(TOKEN)`, `client(NAME)`, `private_key_jwt(...)`, `jwt_bearer(...)`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "basic",
        doc: "`auth basic(USER, PASSWORD)`: HTTP Basic authentication in the `Authorization` header.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "bearer",
        doc: "`auth bearer(TOKEN)`: sends the token in the `Authorization` header, as `Bearer TOKEN`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "timeout",
        doc: "How long the request may take: `timeout 10s`; default 30s.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "retry",
        doc: "Retries transient failures (connect, timeout, 5xx, 429): `retry { attempts N  max_time DURATION }`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "attempts",
        doc: "`retry { attempts N }`: how many tries in all, counting the first: 1 to 20; default 3.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "max_time",
        doc: "`retry { max_time DURATION }`: give up after this long in all.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "redirects",
        doc: "`redirects N`: follow up to N redirects (default 0, at most 20); `redirects N cross_origin` also to another origin.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "result_mapping",
        doc: "Maps the answer into service variables: `NAME = $.json.path`, `header \"Name\"`, `status` or `body`.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "header",
        doc: "In `result_mapping`: `NAME = header \"Location\"` maps the value of a response header.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "if",
        doc: "`if CONDITION { ... } else { ... }`: runs the block when the condition, a `bool`, holds.",
        context: Context::Statement,
    },
    Keyword {
        word: "else",
        doc: "`else { ... }` or `else if ...`: runs when the condition of the `if` does not hold.",
        context: Context::Statement,
    },
    Keyword {
        word: "value",
        doc: "`update_secret NAME { value = EXPR }`: the secret's new value (required).",
        context: Context::Statement,
    },
    Keyword {
        word: "expires_in",
        doc: "`update_secret NAME { value = ... expires_in = EXPR }`: the value's lifetime in seconds, stored as an absolute expiry.",
        context: Context::Statement,
    },
    Keyword {
        word: "run_service",
        doc: "Runs another endpoint: `run_service SERVICE.ENDPOINT(NAME = EXPR) as ACCOUNT into VAR`; needs `run` on it.",
        context: Context::Statement,
    },
    Keyword {
        word: "as",
        doc: "`run_service ... as ACCOUNT`, `refreshed_by ... as ACCOUNT`: the service account that runs the endpoint.",
        context: Context::Other,
    },
    Keyword {
        word: "sleep",
        doc: "Pauses the run: `sleep 2s`, one hour at most.",
        context: Context::Statement,
    },
    Keyword {
        word: "throw",
        doc: "Fails the run: `throw \"CODE\" MESSAGE`; a `catch \"CODE\"` handles it.",
        context: Context::Statement,
    },
    Keyword {
        word: "try",
        doc: "`try { ... } catch ... { ... }`: runs the block and handles its errors with one or more `catch` clauses.",
        context: Context::Statement,
    },
    Keyword {
        word: "foreach",
        doc: "`foreach ITEM in EXPR { ... }`: runs the block once per element of a JSON array, in order; null means no pass.",
        context: Context::Statement,
    },
    Keyword {
        word: "in",
        doc: "`foreach ITEM in EXPR`: the JSON array to loop over.",
        context: Context::Statement,
    },
    Keyword {
        word: "while",
        doc: "`while CONDITION max N { ... }`: runs the block while the condition, a `bool`, holds, at most N times.",
        context: Context::Statement,
    },
    Keyword {
        word: "max",
        doc: "`while ... max N`: at most N passes (1 to 10,000); a condition still true after them fails the run with `loop_limit`.",
        context: Context::Statement,
    },
    Keyword {
        word: "break",
        doc: "Leaves the innermost `foreach` or `while`.",
        context: Context::Statement,
    },
    Keyword {
        word: "on_failure",
        doc: "`on_failure { ... }`: statements run once after each failed run of the endpoint or schedule, with `error.*` and `run.*`.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "on_recovery",
        doc: "`on_recovery { ... }`: statements run after the first successful run that follows failed ones, with `run.*`.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "params",
        doc: "The endpoint's parameters: `params { NAME: TYPE = DEFAULT }`, `TYPE?` optional. In a schedule, values: `params { NAME = 1 }`.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "response",
        doc: "What a caller gets after a successful run: `response { status N  json { ... } }` or `body EXPR`.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "status",
        doc: "`response { status N }`: the HTTP status a successful run answers with; default 200.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "reveals",
        doc: "`response { reveals NAME, ... }`: secrets the response may show; a caller must hold `read_secret` on each.",
        context: Context::Endpoint,
    },
    Keyword {
        word: "into",
        doc: "`run_service ... into VAR`: puts the callee's declared response body into VAR, converted to its type.",
        context: Context::Statement,
    },
    Keyword {
        word: "catch",
        doc: "Handles errors of a `try`: `catch { ... }` any, `catch \"CODE\"` those thrown with it, `catch web_request_error 401`.",
        context: Context::Statement,
    },
    Keyword {
        word: "web_request_error",
        doc: "`catch web_request_error 401 403 { ... }`: handles request errors with these statuses; with none, any request error.",
        context: Context::Statement,
    },
    Keyword {
        word: "every",
        doc: "How often the schedule fires: `every 24h`. Required with `before_expiry`, as the period while the expiry is unknown.",
        context: Context::Schedule,
    },
    Keyword {
        word: "cron",
        doc: "When the schedule fires: `cron \"m h dom mon dow\"` (five fields, or an alias such as `@hourly`), in `time_zone`.",
        context: Context::Schedule,
    },
    Keyword {
        word: "time_zone",
        doc: "The IANA time zone of the schedule's `cron`: `time_zone \"Europe/Oslo\"`; default UTC.",
        context: Context::Schedule,
    },
    Keyword {
        word: "before_expiry",
        doc: "`before_expiry SECRET LEAD`: fires when the secret's stored expiry minus LEAD is reached; `every` is then required.",
        context: Context::Schedule,
    },
    Keyword {
        word: "oauth_client",
        doc: "Declares an OAuth 2.0 client: its endpoints, `client_id`, `client_auth`, `scopes`, and where `svc authorize` `stores` tokens.",
        context: Context::TopLevel,
    },
    Keyword {
        word: "issuer",
        doc: "The authorization server's issuer: svc finds its endpoints by discovery (OpenID Connect, or RFC 8414).",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "authorize_url",
        doc: "The authorization endpoint, for the authorization code flow of `svc authorize`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "token_url",
        doc: "The token endpoint (required without `issuer`); `auth client(NAME)` requests without `url` go there.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "device_authorization_url",
        doc: "The device authorization endpoint, for the device flow (RFC 8628).",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "revocation_url",
        doc: "The token revocation endpoint (RFC 7009) of `svc connection revoke`; without it, discovery's `revocation_endpoint`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "refresh_token_ttl",
        doc: "How long a refresh token lives when the token answer does not say: `refresh_token_ttl 90d`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "client_id",
        doc: "The client's id (required): a string or `secret.NAME`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "client_auth",
        doc: "How the client proves who it is (required): `client_secret_basic(...)`, `client_secret_post(...)`, `private_key_jwt(...)` or `none`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "scopes",
        doc: "Space-separated scopes: `scopes \"openid offline_access\"`; `offline_access` makes svc ask for consent.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "stores",
        doc: "Where `svc authorize` keeps the tokens: `stores { refresh_token = SECRET }`, also `access_token` and `id_token`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "client_secret_basic",
        doc: "`client_auth client_secret_basic(secret.X)`: the client's id and secret in the `Authorization` header (RFC 6749 §2.3.1).",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "client_secret_post",
        doc: "`client_auth client_secret_post(secret.X)`: `client_id` and `client_secret` in the form.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "private_key_jwt",
        doc: "A client assertion signed with a private key (RFC 7523 §2.2): `private_key_jwt(secret.KEY, alg = \"PS256\", kid = \"...\")`.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "jwt_bearer",
        doc: "`auth jwt_bearer(key = secret.KEY, ...)`: the JWT-bearer grant (RFC 7523 §2.1), a signed `assertion`. Only `key` is required.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "client",
        doc: "`auth client(NAME)`: authenticates as the `oauth_client` NAME; without `url`, the request goes to its token endpoint.",
        context: Context::WebRequest,
    },
    Keyword {
        word: "refreshed_by",
        doc: "Refresh on read: `refreshed_by SERVICE.ENDPOINT as ACCOUNT min_valid DURATION` runs the endpoint before a read when due.",
        context: Context::Secret,
    },
    Keyword {
        word: "min_valid",
        doc: "`refreshed_by ... min_valid 5m` (required): a read refreshes the secret first when it expires sooner than this.",
        context: Context::Secret,
    },
    Keyword {
        word: "keep_alive",
        doc: "`keep_alive 7d`: `svc serve` refreshes the connection when it has idled that long; providers revoke idle refresh tokens.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "expiry_warning",
        doc: "`expiry_warning 14d`: warn this long before the refresh token expires (event, `svc doctor`); 7 days by default.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "notify",
        doc: "Declares a receiver of svc's events: `url`, the `locked` signing `secret` (`whsec_...`) and the `events` it gets.",
        context: Context::TopLevel,
    },
    Keyword {
        word: "events",
        doc: "`events connection.needs_reconsent connection.recovered`: the events a `notify` gets.",
        context: Context::Notify,
    },
    Keyword {
        word: "per_account",
        doc: "On an `oauth_client`: one connection per connected account. On a secret: a value per connection (implies `environment_specific`).",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "return_to",
        doc: "`return_to \"https://app.example.com/settings\" ...`: where a hosted consent may send the browser back. `per_account` clients only.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "provider",
        doc: "`provider NAME` or `provider NAME(param = ...)`: endpoints and behaviour from a profile (`svc provider show NAME`); its own settings win.",
        context: Context::OAuthClient,
    },
    Keyword {
        word: "refresh_tokens",
        doc: "`refresh_tokens client(NAME)`: refreshes as its profile or the standard says, into `stores`: rotated refresh token, access token, expiry.",
        context: Context::Statement,
    },
    Keyword {
        word: "client_credentials",
        doc: "`client_credentials client(NAME)`: fetches a machine token with the client credentials grant into the client's `stores` `access_token`.",
        context: Context::Statement,
    },
    Keyword {
        word: "connect",
        doc: "`grant connect CLIENT`: holders may create consent links for, tag and delete the client's connections through `svc serve`.",
        context: Context::Role,
    },
    Keyword {
        word: "for_each_connection",
        doc: "`for_each_connection CLIENT`: the schedule runs its endpoint once per healthy connection of the `per_account` client.",
        context: Context::Schedule,
    },
    Keyword {
        word: "concurrency",
        doc: "`concurrency 16`: at most this many connections of a `for_each_connection` schedule run at once (1 to 256).",
        context: Context::Schedule,
    },
    Keyword {
        word: "for_connection",
        doc: "`run_service S.E(...) for_connection EXPR`: runs a per-account endpoint for the connection with that id.",
        context: Context::Statement,
    },
    Keyword {
        word: "environment_specific",
        doc: "The secret has its own value in each environment (`dev`, `prod`, ...). Only such secrets may be updated by a run.",
        context: Context::Secret,
    },
    Keyword {
        word: "locked",
        doc: "Only a person changes the secret, with `svc secret set`; no run may update it.",
        context: Context::Secret,
    },
    Keyword {
        word: "true",
        doc: "The `bool` true.",
        context: Context::Expression,
    },
    Keyword {
        word: "false",
        doc: "The `bool` false.",
        context: Context::Expression,
    },
    Keyword {
        word: "null",
        doc: "No value: every variable when a run starts, a JSONPath that matches nothing. Fits every type.",
        context: Context::Expression,
    },
];

/// The keyword `word`, if it is one.
pub fn keyword(word: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|keyword| keyword.word == word)
}

/// Keywords written in a second context besides their own.
const ALSO: &[(&str, Context)] = &[("per_account", Context::Secret)];

/// The keywords written in `context`.
pub fn in_context(context: Context) -> impl Iterator<Item = &'static Keyword> {
    KEYWORDS.iter().filter(move |keyword| {
        keyword.context == context
            || ALSO
                .iter()
                .any(|(word, also)| *word == keyword.word && *also == context)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const GRAMMAR: &str = include_str!("../../grammar/svc.pest");

    /// The word of each `kw_` rule: its first quoted literal.
    fn grammar_keywords() -> Vec<&'static str> {
        GRAMMAR
            .lines()
            .filter(|line| line.starts_with("kw_"))
            .map(|line| {
                line.split('"')
                    .nth(1)
                    .unwrap_or_else(|| panic!("no literal in `{line}`"))
            })
            .collect()
    }

    #[test]
    fn every_keyword_of_the_grammar_has_an_entry() {
        let words = grammar_keywords();
        assert!(words.len() > 50, "found only {} kw_ rules", words.len());
        let missing: Vec<_> = words
            .into_iter()
            .filter(|word| keyword(word).is_none())
            .collect();
        assert!(missing.is_empty(), "keywords without docs: {missing:?}");
    }

    #[test]
    fn every_entry_is_a_literal_of_the_grammar() {
        let stale: Vec<_> = KEYWORDS
            .iter()
            .map(|keyword| keyword.word)
            .filter(|word| !GRAMMAR.contains(&format!("\"{word}\"")))
            .collect();
        assert!(stale.is_empty(), "not in the grammar: {stale:?}");
    }

    #[test]
    fn no_word_twice() {
        let mut seen = HashSet::new();
        for keyword in KEYWORDS {
            assert!(seen.insert(keyword.word), "`{}` twice", keyword.word);
        }
    }

    #[test]
    fn every_doc_is_one_short_line() {
        for keyword in KEYWORDS {
            let doc = keyword.doc;
            assert!(!doc.trim().is_empty(), "`{}`: empty doc", keyword.word);
            assert!(
                !doc.contains('\n'),
                "`{}`: more than one line",
                keyword.word
            );
            assert!(
                doc.chars().count() <= 140,
                "`{}`: {} characters",
                keyword.word,
                doc.chars().count()
            );
        }
    }
}
