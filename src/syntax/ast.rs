//! The abstract syntax tree of a svc program.
//!
//! Every node keeps the byte span it came from, so the checker and the
//! interpreter can point at it. Values that the grammar accepts leniently
//! (methods, types, JSONPath, cron, durations) are kept as written; the
//! checker validates them.

use std::time::Duration;

use serde::Serialize;

use crate::source::Span;

/// Where each property of a block was written, in source order: the
/// formatter keeps that order. Not part of the program's meaning.
pub type Layout = Vec<(&'static str, Span)>;

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

impl Name {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A string literal without interpolation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlainString {
    pub value: String,
    pub span: Span,
}

impl PlainString {
    /// The span of the value's own characters: inside the quotes of a
    /// quoted literal, all of a bare word. `None` when the literal was
    /// written with escapes (its text is not the value).
    pub fn value_span(&self) -> Option<Span> {
        let len = self.value.len() as u32;
        if self.span.len == len {
            Some(self.span)
        } else if self.span.len == len + 2 {
            Some(Span {
                start: self.span.start + 1,
                len,
                ..self.span
            })
        } else {
            None
        }
    }
}

/// A whole program: the declarations of every file, by kind, each kind in
/// load order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Program {
    pub secrets: Vec<SecretDecl>,
    pub roles: Vec<RoleDecl>,
    pub identities: Vec<IdentityDecl>,
    pub services: Vec<ServiceDecl>,
    pub schedules: Vec<ScheduleDecl>,
    pub oauth_clients: Vec<OAuthClientDecl>,
    pub notifies: Vec<NotifyDecl>,
}

/// One top-level declaration, as the parser reads it.
// Items are moved once, into their `Program` vector; boxing the large
// variants would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Secret(SecretDecl),
    Role(RoleDecl),
    Identity(IdentityDecl),
    Service(ServiceDecl),
    Schedule(ScheduleDecl),
    OAuthClient(OAuthClientDecl),
    Notify(NotifyDecl),
}

/// How many kinds of declaration there are: the vectors of a [`Program`].
pub const ITEM_KINDS: usize = 7;

impl Item {
    /// Which vector of a [`Program`] holds it, in their order.
    pub fn kind(&self) -> usize {
        match self {
            Item::Secret(_) => 0,
            Item::Role(_) => 1,
            Item::Identity(_) => 2,
            Item::Service(_) => 3,
            Item::Schedule(_) => 4,
            Item::OAuthClient(_) => 5,
            Item::Notify(_) => 6,
        }
    }
}

impl Program {
    pub fn push(&mut self, item: Item) {
        match item {
            Item::Secret(x) => self.secrets.push(x),
            Item::Role(x) => self.roles.push(x),
            Item::Identity(x) => self.identities.push(x),
            Item::Service(x) => self.services.push(x),
            Item::Schedule(x) => self.schedules.push(x),
            Item::OAuthClient(x) => self.oauth_clients.push(x),
            Item::Notify(x) => self.notifies.push(x),
        }
    }

    pub fn append(&mut self, mut other: Program) {
        self.secrets.append(&mut other.secrets);
        self.roles.append(&mut other.roles);
        self.identities.append(&mut other.identities);
        self.services.append(&mut other.services);
        self.schedules.append(&mut other.schedules);
        self.oauth_clients.append(&mut other.oauth_clients);
        self.notifies.append(&mut other.notifies);
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecretDecl {
    pub name: Name,
    pub environment_specific: bool,
    pub locked: Option<Span>,
    /// `per_account`: one value per connection of the `per_account` client
    /// that stores it. Implies `environment_specific`.
    pub per_account: bool,
    pub description: Option<PlainString>,
    /// `refreshed_by SERVICE.ENDPOINT as ACCOUNT min_valid DURATION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed_by: Option<RefreshedBy>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

/// Refresh on read: a read of the secret runs `endpoint` as
/// `service_account` first when the secret is valid for less than
/// `min_valid` more (or its expiry is unknown).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RefreshedBy {
    pub endpoint: EndpointRef,
    pub service_account: Name,
    /// `None` when left out: the checker reports it (it is required).
    pub min_valid: Option<DurationLit>,
    pub span: Span,
}

impl SecretDecl {
    /// Whether it has its own value in each environment: declared so, or
    /// `per_account` (a value per connection, of one environment).
    pub fn is_environment_specific(&self) -> bool {
        self.environment_specific || self.per_account
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleDecl {
    pub name: Name,
    pub grants: Vec<Grant>,
    pub description: Option<PlainString>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grant {
    pub kind: GrantKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    Run(EndpointPattern),
    UpdateSecret(Name),
    ReadSecret(Name),
    /// `read_status CLIENT`: the state of the client's connections.
    ReadStatus(Name),
    /// `connect CLIENT`: create consent links for, tag and delete the
    /// connections of a `per_account` client.
    Connect(Name),
}

/// `service.endpoint` or `service.*` in a grant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndpointPattern {
    pub service: Name,
    /// `None` for the wildcard `*`.
    pub endpoint: Option<Name>,
    pub span: Span,
}

/// `service.endpoint` where exactly one endpoint is meant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndpointRef {
    pub service: Name,
    pub endpoint: Name,
    pub span: Span,
}

impl EndpointRef {
    pub fn display(&self) -> String {
        format!("{}.{}", self.service.text, self.endpoint.text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    User,
    ServiceAccount,
}

impl IdentityKind {
    pub fn keyword(self) -> &'static str {
        match self {
            IdentityKind::User => "user",
            IdentityKind::ServiceAccount => "service_account",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdentityDecl {
    pub kind: IdentityKind,
    pub name: Name,
    pub roles: Vec<Name>,
    pub description: Option<PlainString>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

/// `oauth_client NAME { ... }`: a client of an authorization server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OAuthClientDecl {
    pub name: Name,
    /// `provider NAME(...)`: the client's endpoints and behaviour come from
    /// a provider profile; what the client states itself wins.
    pub provider: Option<ProviderUse>,
    /// The properties filled from the profile (`providers::fill`), not
    /// written in the source: `svc fmt` leaves them out, the checker does
    /// not hold them to rules the client's author wrote.
    #[serde(skip)]
    pub filled: Vec<&'static str>,
    /// OpenID Connect discovery (or RFC 8414) finds the endpoints.
    pub issuer: Option<Expr>,
    pub authorize_url: Option<Expr>,
    pub token_url: Option<Expr>,
    pub device_authorization_url: Option<Expr>,
    /// The token revocation endpoint (RFC 7009).
    pub revocation_url: Option<Expr>,
    /// How long a refresh token lives when the token answer does not say.
    pub refresh_token_ttl: Option<DurationLit>,
    pub client_id: Option<Expr>,
    pub client_auth: Option<ClientAuth>,
    pub scopes: Option<PlainString>,
    /// Where `svc authorize` keeps the tokens it obtains.
    pub stores: Option<TokenStores>,
    /// `svc serve` refreshes a connection not refreshed for this long.
    pub keep_alive: Option<DurationLit>,
    /// How long before its refresh token expires a connection is said to
    /// be expiring (the `connection.refresh_token_expiring` event, `svc
    /// doctor`); 7 days when not given.
    pub expiry_warning: Option<DurationLit>,
    /// `per_account`: one connection per connected account, each with an
    /// id its caller chooses.
    pub per_account: bool,
    /// `return_to "URL" ...`: where a hosted consent may send the browser
    /// back (same scheme, host and port, a path under the URL's path).
    pub return_to: Vec<PlainString>,
    pub description: Option<PlainString>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

impl OAuthClientDecl {
    /// Every expression of the client, with what it is.
    pub fn expressions(&self) -> Vec<(&'static str, &Expr)> {
        let mut out = Vec::new();
        for (what, expr) in [
            ("issuer", &self.issuer),
            ("authorize_url", &self.authorize_url),
            ("token_url", &self.token_url),
            ("device_authorization_url", &self.device_authorization_url),
            ("revocation_url", &self.revocation_url),
            ("client_id", &self.client_id),
        ] {
            if let Some(expr) = expr {
                out.push((what, expr));
            }
        }
        match &self.client_auth {
            Some(
                ClientAuth::SecretBasic { secret, .. } | ClientAuth::SecretPost { secret, .. },
            ) => out.push(("client secret", secret)),
            Some(ClientAuth::PrivateKeyJwt(jwt)) => {
                out.extend(jwt.expressions());
            }
            Some(ClientAuth::None { .. }) | None => {}
        }
        out
    }

    /// The secret a token field is kept in.
    /// Whether its `stores` keeps a token in `secret`.
    pub fn stores_secret(&self, secret: &str) -> bool {
        self.stores
            .iter()
            .flat_map(|s| &s.entries)
            .any(|s| s.secret.as_str() == secret)
    }

    pub fn store_of(&self, field: TokenField) -> Option<&Name> {
        self.stores
            .as_ref()?
            .entries
            .iter()
            .find(|s| s.field == Some(field))
            .map(|s| &s.secret)
    }

    /// How long before its refresh token expires a connection of this
    /// client counts as expiring: `expiry_warning`, or 7 days.
    pub fn expiry_warning_period(&self) -> Duration {
        self.expiry_warning
            .as_ref()
            .and_then(|d| d.value)
            .unwrap_or(Duration::from_secs(7 * 86_400))
    }

    /// Whether `openid` is among the scopes.
    pub fn is_openid(&self) -> bool {
        self.scopes
            .as_ref()
            .is_some_and(|s| s.value.split_whitespace().any(|s| s == "openid"))
    }
}

/// `provider NAME` or `provider NAME(param = value, ...)` in a client.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderUse {
    pub name: Name,
    pub args: Vec<Field>,
    pub span: Span,
}

impl ProviderUse {
    pub fn arg(&self, name: &str) -> Option<&Field> {
        self.args.iter().find(|a| a.name.value == name)
    }
}

/// `notify NAME { ... }`: a receiver of svc's events, signed as Standard
/// Webhooks specifies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotifyDecl {
    pub name: Name,
    pub url: Option<PlainString>,
    /// The signing secret: the name in `secret secret.NAME`.
    pub secret: Option<Name>,
    /// The event names, as written (`connection.recovered`).
    pub events: Vec<Name>,
    /// The span of `events ...`, when given.
    pub events_span: Option<Span>,
    pub description: Option<PlainString>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

/// How a client proves who it is to the token endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// RFC 6749 §2.3.1, in the `Authorization` header.
    SecretBasic { secret: Expr, span: Span },
    /// RFC 6749 §2.3.1, in the form body.
    SecretPost { secret: Expr, span: Span },
    /// RFC 7523 §2.2, a client assertion signed with the client's key.
    PrivateKeyJwt(Box<PrivateKeyJwt>),
    /// A public client: its id, and PKCE.
    None { span: Span },
}

impl ClientAuth {
    pub fn span(&self) -> Span {
        match self {
            ClientAuth::SecretBasic { span, .. }
            | ClientAuth::SecretPost { span, .. }
            | ClientAuth::None { span } => *span,
            ClientAuth::PrivateKeyJwt(jwt) => jwt.span,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::SecretBasic { .. } => "client_secret_basic",
            ClientAuth::SecretPost { .. } => "client_secret_post",
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
            ClientAuth::None { .. } => "none",
        }
    }
}

/// `private_key_jwt(...)`: in an `oauth_client` the client id is the
/// client's; on a `web_request` it is an argument.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrivateKeyJwt {
    pub client_id: Option<Expr>,
    pub key: Expr,
    pub alg: Option<PlainString>,
    pub kid: Option<Expr>,
    pub span: Span,
}

impl PrivateKeyJwt {
    pub fn expressions(&self) -> Vec<(&'static str, &Expr)> {
        let mut out = Vec::new();
        if let Some(client_id) = &self.client_id {
            out.push(("client_id", client_id));
        }
        out.push(("key", &self.key));
        if let Some(kid) = &self.kid {
            out.push(("kid", kid));
        }
        out
    }
}

/// `jwt_bearer(...)`: the RFC 7523 §2.1 grant, an assertion signed with a
/// key (a PEM, a JWK, or a service-account JSON key).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JwtBearer {
    pub key: Expr,
    pub issuer: Option<Expr>,
    pub subject: Option<Expr>,
    pub audience: Option<Expr>,
    pub scope: Option<Expr>,
    pub alg: Option<PlainString>,
    pub kid: Option<Expr>,
    pub span: Span,
}

impl JwtBearer {
    pub fn expressions(&self) -> Vec<(&'static str, &Expr)> {
        let mut out = vec![("key", &self.key)];
        for (what, expr) in [
            ("issuer", &self.issuer),
            ("subject", &self.subject),
            ("audience", &self.audience),
            ("scope", &self.scope),
            ("kid", &self.kid),
        ] {
            if let Some(expr) = expr {
                out.push((what, expr));
            }
        }
        out
    }
}

/// `stores { refresh_token = SECRET ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenStores {
    pub entries: Vec<TokenStore>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenStore {
    /// The field as written; `field` is `None` when it is not one svc knows.
    pub field_name: Name,
    pub field: Option<TokenField>,
    pub secret: Name,
    pub span: Span,
}

/// A field of a token response that `svc authorize` can keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenField {
    AccessToken,
    RefreshToken,
    IdToken,
}

impl TokenField {
    pub const ALL: [&'static str; 3] = ["access_token", "refresh_token", "id_token"];

    pub fn from_name(name: &str) -> Option<TokenField> {
        Some(match name {
            "access_token" => TokenField::AccessToken,
            "refresh_token" => TokenField::RefreshToken,
            "id_token" => TokenField::IdToken,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenField::AccessToken => "access_token",
            TokenField::RefreshToken => "refresh_token",
            TokenField::IdToken => "id_token",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceDecl {
    pub name: Name,
    pub vars: Vec<VarDecl>,
    pub actions: Vec<ActionDecl>,
    pub endpoints: Vec<EndpointDecl>,
    pub span: Span,
}

impl ServiceDecl {
    /// The endpoints that process an action.
    pub fn endpoints_processing<'s>(
        &'s self,
        action: &'s str,
    ) -> impl Iterator<Item = &'s EndpointDecl> + 's {
        self.endpoints
            .iter()
            .filter(move |e| e.process.as_ref().is_some_and(|p| p.text == action))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VarDecl {
    pub name: Name,
    /// The type as written; the checker resolves it.
    pub type_name: Name,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    String,
    Number,
    Bool,
    Json,
    /// A length of time: `5m`, `now() - then`.
    Duration,
    /// An instant: `now()`, `from_unix(n)`.
    Time,
}

impl Type {
    pub const ALL: [&'static str; 6] = ["string", "number", "bool", "json", "duration", "time"];

    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "string" => Type::String,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "json" => Type::Json,
            "duration" => Type::Duration,
            "time" => Type::Time,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Number => "number",
            Type::Bool => "bool",
            Type::Json => "json",
            Type::Duration => "duration",
            Type::Time => "time",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionDecl {
    pub name: Name,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndpointDecl {
    pub name: Name,
    pub description: Option<PlainString>,
    /// Methods as written; empty when the endpoint has no `methods` line.
    pub methods: Vec<Name>,
    pub log: Option<LogSetting>,
    pub process: Option<Name>,
    pub on_failure: Option<Hook>,
    pub on_recovery: Option<Hook>,
    /// `params { ... }`: `None` when the endpoint declares no contract (it
    /// takes any parameter, untyped).
    pub params: Option<Vec<ParamDecl>>,
    pub response: Option<ResponseDecl>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

/// `NAME: TYPE`, `NAME: TYPE?` (optional, null when not given) or
/// `NAME: TYPE = DEFAULT`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamDecl {
    pub name: Name,
    /// As written: `number`, `list<string>`.
    pub type_name: Name,
    pub optional: bool,
    pub default: Option<Expr>,
    pub span: Span,
}

impl ParamDecl {
    pub fn param_type(&self) -> Option<ParamType> {
        ParamType::parse(&self.type_name.text)
    }

    /// A caller may leave it out.
    pub fn required(&self) -> bool {
        !self.optional && self.default.is_none()
    }
}

/// The type of a declared parameter: a type, or a list of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamType {
    pub base: Type,
    pub list: bool,
}

impl ParamType {
    pub fn parse(text: &str) -> Option<ParamType> {
        if let Some(inner) = text.strip_prefix("list<").and_then(|t| t.strip_suffix('>')) {
            let base = Type::from_name(inner)?;
            return matches!(base, Type::String | Type::Number | Type::Bool)
                .then_some(ParamType { base, list: true });
        }
        let base = Type::from_name(text)?;
        (base != Type::Time).then_some(ParamType { base, list: false })
    }

    /// The type of `param.NAME` in expressions: a list is a JSON array.
    pub fn value_type(self) -> Type {
        if self.list { Type::Json } else { self.base }
    }

    pub fn name(self) -> String {
        if self.list {
            format!("list<{}>", self.base.name())
        } else {
            self.base.name().to_string()
        }
    }
}

/// `response { status N  json { ... } | body EXPR  reveals SECRET, ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResponseDecl {
    pub status: Option<Integer>,
    pub body: Option<ResponseBody>,
    /// Secrets the body may show, to identities that may read them.
    pub reveals: Vec<Name>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    Json { fields: Vec<Field>, span: Span },
    Expr(Expr),
}

impl ResponseDecl {
    pub fn expressions(&self) -> Vec<&Expr> {
        match &self.body {
            Some(ResponseBody::Json { fields, .. }) => fields.iter().map(|f| &f.value).collect(),
            Some(ResponseBody::Expr(expr)) => vec![expr],
            None => Vec::new(),
        }
    }
}

/// `on_failure { ... }` or `on_recovery { ... }`: statements run after a
/// run fails, or after the first success that follows failures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hook {
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    OnFailure,
    OnRecovery,
}

impl HookKind {
    pub fn keyword(self) -> &'static str {
        match self {
            HookKind::OnFailure => "on_failure",
            HookKind::OnRecovery => "on_recovery",
        }
    }
}

impl EndpointDecl {
    /// The method a run that no caller asked for uses (refresh on read,
    /// keep-alive): `GET` when allowed, else the first the endpoint allows.
    pub fn method_to_run(&self) -> String {
        if self.allows("GET") {
            return "GET".into();
        }
        self.methods
            .first()
            .map_or("GET".into(), |m| m.text.to_ascii_uppercase())
    }
}

impl EndpointDecl {
    pub fn log_enabled(&self) -> bool {
        self.log.as_ref().is_some_and(|l| l.enabled)
    }

    pub fn allows(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m.text == method)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogSetting {
    pub enabled: bool,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Block {
    pub statements: Vec<Statement>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statement {
    pub kind: StatementKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "statement", rename_all = "snake_case")]
pub enum StatementKind {
    UpdateVariables {
        assignments: Vec<Assignment>,
    },
    WebRequest(Box<WebRequest>),
    If(IfStatement),
    /// `update_secret NAME ...` (one entry) or `update_secrets { ... }`.
    UpdateSecrets {
        updates: Vec<SecretUpdate>,
        grouped: bool,
    },
    RunService {
        endpoint: EndpointRef,
        /// `(name = value, ...)`: the callee's parameters.
        args: Vec<Field>,
        /// `for_connection EXPR`: the connection a per-account callee
        /// runs for (from an endpoint that has none of its own to pass on).
        for_connection: Option<Expr>,
        as_account: Option<Name>,
        /// `into VAR`: the callee's response body goes into VAR.
        into: Option<Name>,
    },
    Sleep {
        duration: DurationLit,
    },
    Log {
        message: Expr,
    },
    Throw {
        code: PlainString,
        message: Expr,
    },
    Try {
        body: Block,
        catches: Vec<Catch>,
    },
    /// `foreach ITEM in EXPR { ... }`: the body once per item of a JSON
    /// array, with `ITEM` (a `json` value) in scope.
    Foreach {
        item: Name,
        iterable: Expr,
        body: Block,
    },
    /// `while COND max N { ... }`: at most N passes; a condition still true
    /// after the N-th is an error.
    While {
        condition: Expr,
        max: Integer,
        body: Block,
    },
    /// Leaves the innermost loop.
    Break,
    /// `refresh_tokens client(NAME)` or `client_credentials client(NAME)`.
    TokenGrant(Box<TokenGrant>),
}

/// A token request as a client and its provider profile say: the grant,
/// the client, and the ordinary statements that perform it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenGrant {
    pub grant: GrantType,
    pub client: Name,
    /// What the statement does, written out: the request to the client's
    /// token endpoint and the updates of its `stores`, built by
    /// `providers::fill` once every client is known (empty before, and
    /// when the client cannot say). Every analysis and the interpreter
    /// read these as if they had been written here.
    pub steps: Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    /// The statement's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            GrantType::RefreshToken => "refresh_tokens",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    /// The `grant_type` it sends (RFC 6749 §6 and §4.4.2).
    pub fn grant_type(self) -> &'static str {
        match self {
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assignment {
    pub target: Name,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IfStatement {
    pub condition: Expr,
    pub then_block: Block,
    pub else_block: Option<Block>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecretUpdate {
    pub secret: Name,
    pub value: Option<Expr>,
    pub expires_in: Option<Expr>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Catch {
    pub filter: CatchFilter,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchFilter {
    /// `catch { }`: any error.
    Any,
    /// `catch web_request_error [STATUS...] { }`; no statuses means any.
    WebRequest { statuses: Vec<StatusCode> },
    /// `catch "code" { }`: errors thrown with that code.
    Code(PlainString),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusCode {
    pub value: u32,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WebRequest {
    pub method: Option<Name>,
    pub url: Option<Expr>,
    pub query: Vec<Field>,
    pub headers: Vec<Field>,
    pub body: Option<RequestBody>,
    pub auth: Option<Auth>,
    pub timeout: Option<DurationLit>,
    pub retry: Option<Retry>,
    pub redirects: Option<Integer>,
    /// `redirects N cross_origin`: redirects to another scheme, host or
    /// port are followed (without the body, credentials or secret headers).
    pub cross_origin: Option<Span>,
    pub result_mapping: Vec<Mapping>,
    /// An OAuth token request written out by `refresh_tokens` or
    /// `client_credentials`: a 2xx answer that carries an `error` is a
    /// failure (GitHub and Slack answer errors with 200).
    #[serde(skip)]
    pub token_request: bool,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Field {
    pub name: PlainString,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestBody {
    Form { fields: Vec<Field>, span: Span },
    Json { fields: Vec<Field>, span: Span },
    Raw { value: Expr, span: Span },
}

impl RequestBody {
    pub fn span(&self) -> Span {
        match self {
            RequestBody::Form { span, .. }
            | RequestBody::Json { span, .. }
            | RequestBody::Raw { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    Basic {
        user: Expr,
        password: Expr,
        span: Span,
    },
    Bearer {
        token: Expr,
        span: Span,
    },
    /// `auth client(NAME)`: as the `oauth_client` authenticates; the URL
    /// defaults to its token endpoint.
    Client {
        client: Name,
        span: Span,
    },
    PrivateKeyJwt(Box<PrivateKeyJwt>),
    JwtBearer(Box<JwtBearer>),
}

impl Auth {
    pub fn span(&self) -> Span {
        match self {
            Auth::Basic { span, .. } | Auth::Bearer { span, .. } | Auth::Client { span, .. } => {
                *span
            }
            Auth::PrivateKeyJwt(jwt) => jwt.span,
            Auth::JwtBearer(jwt) => jwt.span,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Retry {
    pub attempts: Option<Integer>,
    pub max_time: Option<DurationLit>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Integer {
    pub value: u64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mapping {
    pub target: Name,
    pub source: MappingSource,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingSource {
    /// An RFC 9535 JSONPath as written, `$` included.
    JsonPath {
        path: String,
        span: Span,
    },
    Header {
        name: PlainString,
        span: Span,
    },
    Status {
        span: Span,
    },
    Body {
        span: Span,
    },
}

impl MappingSource {
    pub fn span(&self) -> Span {
        match self {
            MappingSource::JsonPath { span, .. }
            | MappingSource::Header { span, .. }
            | MappingSource::Status { span }
            | MappingSource::Body { span } => *span,
        }
    }
}

/// A duration literal: `500ms`, `10s`, `5m`, `3h`, `7d`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DurationLit {
    pub text: String,
    /// `None` when the text is not a valid duration (the checker reports it).
    #[serde(skip)]
    pub value: Option<Duration>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduleDecl {
    pub name: Name,
    pub endpoint: Option<EndpointRef>,
    pub service_account: Option<Name>,
    pub every: Option<DurationLit>,
    pub cron: Option<PlainString>,
    pub time_zone: Option<PlainString>,
    pub before_expiry: Option<BeforeExpiry>,
    pub disabled: bool,
    pub description: Option<PlainString>,
    pub on_failure: Option<Hook>,
    pub on_recovery: Option<Hook>,
    /// `params { name = value }`: fixed values for the endpoint's parameters.
    pub params: Vec<Field>,
    /// `for_each_connection CLIENT`: the endpoint runs once per healthy
    /// connection of the `per_account` client each time the schedule fires.
    pub for_each_connection: Option<Name>,
    /// `concurrency N`: at most N of those runs at once.
    pub concurrency: Option<Integer>,
    pub span: Span,
    #[serde(skip)]
    pub layout: Layout,
}

impl ScheduleDecl {
    pub fn hook(&self, kind: HookKind) -> Option<&Hook> {
        match kind {
            HookKind::OnFailure => self.on_failure.as_ref(),
            HookKind::OnRecovery => self.on_recovery.as_ref(),
        }
    }
}

impl EndpointDecl {
    pub fn hook(&self, kind: HookKind) -> Option<&Hook> {
        match kind {
            HookKind::OnFailure => self.on_failure.as_ref(),
            HookKind::OnRecovery => self.on_recovery.as_ref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BeforeExpiry {
    pub secret: Name,
    pub lead: DurationLit,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "expr", rename_all = "snake_case")]
pub enum ExprKind {
    String {
        parts: Vec<StringPart>,
    },
    Number {
        value: f64,
    },
    /// `5m`, `500ms`: a duration in milliseconds.
    Duration {
        millis: u64,
    },
    Bool {
        value: bool,
    },
    Null,
    Variable {
        name: Name,
    },
    Secret {
        name: Name,
    },
    Param {
        name: Name,
    },
    /// `error.code`, `error.message`, `error.status` inside a `catch`.
    Error {
        field: Name,
    },
    /// `run.id`, `run.endpoint`, `run.environment` inside a hook.
    Run {
        field: Name,
    },
    /// `connection.id`, `connection.tags.KEY` inside a per-account endpoint.
    Connection {
        field: ConnectionField,
    },
    Call {
        function: Name,
        args: Vec<Expr>,
    },
    Not {
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

/// What `connection.FIELD` reads of the connection a run is for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionField {
    /// `connection.id`: the id its caller chose.
    Id,
    /// `connection.tags.KEY`: the tag's value, or null.
    Tag(Name),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringPart {
    Text { value: String },
    Interpolation { expr: Expr },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// How tightly it binds: `||` loosest, `*` and `/` tightest. The
    /// parser and the formatter share it.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div => 5,
        }
    }
}

impl Expr {
    /// Calls `f` on this expression and every expression inside it.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::String { parts } => {
                for part in parts {
                    if let StringPart::Interpolation { expr } = part {
                        expr.walk(f);
                    }
                }
            }
            ExprKind::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            ExprKind::Not { operand } => operand.walk(f),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            ExprKind::Number { .. }
            | ExprKind::Duration { .. }
            | ExprKind::Bool { .. }
            | ExprKind::Null
            | ExprKind::Variable { .. }
            | ExprKind::Secret { .. }
            | ExprKind::Param { .. }
            | ExprKind::Error { .. }
            | ExprKind::Run { .. }
            | ExprKind::Connection { .. } => {}
        }
    }

    /// The string value of a literal without interpolation.
    pub fn as_plain_string(&self) -> Option<String> {
        let ExprKind::String { parts } = &self.kind else {
            return None;
        };
        let mut out = String::new();
        for part in parts {
            match part {
                StringPart::Text { value } => out.push_str(value),
                StringPart::Interpolation { .. } => return None,
            }
        }
        Some(out)
    }

    /// The leading text of a string literal, up to its first interpolation.
    pub fn literal_prefix(&self) -> Option<String> {
        let ExprKind::String { parts } = &self.kind else {
            return None;
        };
        let mut out = String::new();
        for part in parts {
            match part {
                StringPart::Text { value } => out.push_str(value),
                StringPart::Interpolation { .. } => break,
            }
        }
        Some(out)
    }
}

impl WebRequest {
    /// Every expression of the request, with what it is for.
    pub fn expressions(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        out.extend(self.url.iter());
        out.extend(self.query.iter().map(|f| &f.value));
        out.extend(self.headers.iter().map(|f| &f.value));
        match &self.body {
            Some(RequestBody::Form { fields, .. }) | Some(RequestBody::Json { fields, .. }) => {
                out.extend(fields.iter().map(|f| &f.value))
            }
            Some(RequestBody::Raw { value, .. }) => out.push(value),
            None => {}
        }
        match &self.auth {
            Some(Auth::Basic { user, password, .. }) => {
                out.push(user);
                out.push(password);
            }
            Some(Auth::Bearer { token, .. }) => out.push(token),
            Some(Auth::PrivateKeyJwt(jwt)) => {
                out.extend(jwt.expressions().into_iter().map(|(_, e)| e))
            }
            Some(Auth::JwtBearer(jwt)) => out.extend(jwt.expressions().into_iter().map(|(_, e)| e)),
            Some(Auth::Client { .. }) | None => {}
        }
        out
    }
}

impl Block {
    /// Calls `f` on every statement of this block and of the blocks nested in it.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Statement)) {
        for statement in &self.statements {
            f(statement);
            match &statement.kind {
                StatementKind::If(if_statement) => {
                    if_statement.then_block.walk(f);
                    if let Some(else_block) = &if_statement.else_block {
                        else_block.walk(f);
                    }
                }
                StatementKind::Try { body, catches } => {
                    body.walk(f);
                    for catch in catches {
                        catch.body.walk(f);
                    }
                }
                StatementKind::Foreach { body, .. } | StatementKind::While { body, .. } => {
                    body.walk(f)
                }
                StatementKind::TokenGrant(grant) => grant.steps.walk(f),
                StatementKind::UpdateVariables { .. }
                | StatementKind::WebRequest(_)
                | StatementKind::UpdateSecrets { .. }
                | StatementKind::RunService { .. }
                | StatementKind::Sleep { .. }
                | StatementKind::Log { .. }
                | StatementKind::Throw { .. }
                | StatementKind::Break => {}
            }
        }
    }

    /// As [`Block::walk`], each statement given to `f` to change before
    /// its nested blocks are walked.
    pub fn walk_mut(&mut self, f: &mut impl FnMut(&mut Statement)) {
        for statement in &mut self.statements {
            f(statement);
            match &mut statement.kind {
                StatementKind::If(if_statement) => {
                    if_statement.then_block.walk_mut(f);
                    if let Some(else_block) = &mut if_statement.else_block {
                        else_block.walk_mut(f);
                    }
                }
                StatementKind::Try { body, catches } => {
                    body.walk_mut(f);
                    for catch in catches {
                        catch.body.walk_mut(f);
                    }
                }
                StatementKind::Foreach { body, .. } | StatementKind::While { body, .. } => {
                    body.walk_mut(f)
                }
                StatementKind::TokenGrant(grant) => grant.steps.walk_mut(f),
                StatementKind::UpdateVariables { .. }
                | StatementKind::WebRequest(_)
                | StatementKind::UpdateSecrets { .. }
                | StatementKind::RunService { .. }
                | StatementKind::Sleep { .. }
                | StatementKind::Log { .. }
                | StatementKind::Throw { .. }
                | StatementKind::Break => {}
            }
        }
    }
}

impl Statement {
    /// The expressions this statement evaluates directly (not those of nested blocks).
    pub fn expressions(&self) -> Vec<&Expr> {
        match &self.kind {
            StatementKind::UpdateVariables { assignments } => {
                assignments.iter().map(|a| &a.value).collect()
            }
            StatementKind::WebRequest(request) => request.expressions(),
            StatementKind::If(if_statement) => vec![&if_statement.condition],
            StatementKind::UpdateSecrets { updates, .. } => updates
                .iter()
                .flat_map(|u| u.value.iter().chain(u.expires_in.iter()))
                .collect(),
            StatementKind::Log { message } => vec![message],
            StatementKind::Throw { message, .. } => vec![message],
            StatementKind::Foreach { iterable, .. } => vec![iterable],
            StatementKind::While { condition, .. } => vec![condition],
            StatementKind::Break => vec![],
            StatementKind::RunService {
                args,
                for_connection,
                ..
            } => args
                .iter()
                .map(|a| &a.value)
                .chain(for_connection.iter())
                .collect(),
            StatementKind::Sleep { .. }
            | StatementKind::Try { .. }
            | StatementKind::TokenGrant(_) => Vec::new(),
        }
    }
}
