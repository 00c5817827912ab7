//! Properties of whole programs, on programs generated from the AST types.
//!
//! proptest builds random programs that are valid: every name they use is
//! declared, every value has the type its place wants, every permission
//! rule holds (every identity has the role `all`, which may run and update
//! everything), and `run_service` only calls endpoints of services declared
//! before, so there is no cycle. Every statement kind appears, with every
//! property of a `web_request`. For each program:
//!
//! - the formatter prints it, and the text parses back to the same AST
//!   (spans aside), with no diagnostic, and is already formatted;
//! - the checker finds no error in it, and rendering its warnings does not
//!   panic;
//! - a dry run of every endpoint (in-process, without a secret store, so
//!   reading a secret fails the run) ends without a panic.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::Union;
use svc::source::{FileId, SourceFile, SourceMap, Span};
use svc::syntax::ast::*;

// ------------------------------------------------------------------ names

fn name(text: &str) -> Name {
    Name {
        text: text.to_string(),
        span: Span::default(),
    }
}

fn plain(value: &str) -> PlainString {
    PlainString {
        value: value.to_string(),
        span: Span::default(),
    }
}

fn expr(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn layout(keys: &[&'static str]) -> Layout {
    keys.iter().map(|k| (*k, Span::default())).collect()
}

/// Variable names, keywords among them: keywords are keywords only where
/// the grammar expects one.
const VAR_NAMES: &[&str] = &[
    "token",
    "expires_in",
    "status",
    "body",
    "value",
    "log",
    "method",
    "url",
    "secret",
    "error",
    "has_value",
    "count",
    "ok",
    "raw",
    "attempts",
    "v_1",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
const REQUEST_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

// ------------------------------------------------------------------ what a place may use

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    String,
    Number,
    Bool,
    /// Any value: `log`, interpolations, `has_value`.
    Any,
}

impl Ty {
    fn of(t: Type) -> Ty {
        match t {
            Type::String => Ty::String,
            Type::Number => Ty::Number,
            Type::Bool => Ty::Bool,
            // Durations and times are not generated (see `var_type`).
            Type::Json | Type::Duration | Type::Time => Ty::Any,
        }
    }
}

/// What the statements of one action may refer to.
#[derive(Clone, Debug)]
struct Ctx {
    vars: Vec<(String, Type)>,
    secrets: Vec<String>,
    updatable: Vec<String>,
    /// Endpoints of the services declared before this one.
    callable: Vec<(String, String)>,
    accounts: Vec<String>,
    in_catch: bool,
}

impl Ctx {
    /// Variables whose type fits `ty` exactly: a `json` variable is
    /// only read where any value fits.
    fn vars_of(&self, ty: Ty) -> Vec<String> {
        self.vars
            .iter()
            .filter(|(_, t)| ty == Ty::Any || Ty::of(*t) == ty)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn catching(&self) -> Arc<Ctx> {
        Arc::new(Ctx {
            in_catch: true,
            ..self.clone()
        })
    }
}

// ------------------------------------------------------------------ values

/// Text with what must be escaped: quotes, backslashes, `${`, newlines.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.:/\"\\\\${}\n\té✓-]{1,10}"
}

fn plain_text() -> impl Strategy<Value = String> {
    "[ -~é\n\t]{0,16}"
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i64..100_000).prop_map(|n| n as f64),
        (-4000i64..4000).prop_map(|n| n as f64 / 8.0),
        any::<f64>().prop_filter("finite and not -0", |f| f.is_finite()
            && !(*f == 0.0 && f.is_sign_negative())),
    ]
}

fn duration(max_seconds: u64) -> impl Strategy<Value = DurationLit> {
    let units: Vec<(&'static str, u64)> = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        .into_iter()
        .filter(|(_, size)| *size <= max_seconds)
        .collect();
    let in_unit = select(units).prop_flat_map(move |(unit, size)| {
        (1..=max_seconds / size).prop_map(move |count| format!("{count}{unit}"))
    });
    let millis = (1..=max_seconds * 1000).prop_map(|count| format!("{count}ms"));
    prop_oneof![3 => in_unit, 1 => millis].prop_map(|text| {
        let value = Some(svc::syntax::duration::parse(&text).expect("a valid duration"));
        DurationLit {
            text,
            value,
            span: Span::default(),
        }
    })
}

/// A string expression: text and interpolations, never two texts in a
/// row (the parser joins them) and never an empty text.
fn string_expr(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Expr> {
    let part = if depth == 0 {
        text().prop_map(|value| StringPart::Text { value }).boxed()
    } else {
        prop_oneof![
            2 => text().prop_map(|value| StringPart::Text { value }),
            1 => typed(Ty::Any, ctx, depth - 1).prop_map(|expr| StringPart::Interpolation { expr }),
        ]
        .boxed()
    };
    proptest::collection::vec(part, 0..4)
        .prop_map(|parts| {
            let mut joined: Vec<StringPart> = Vec::new();
            for part in parts {
                match (joined.last_mut(), part) {
                    (Some(StringPart::Text { value }), StringPart::Text { value: more }) => {
                        value.push_str(&more)
                    }
                    (_, part) => joined.push(part),
                }
            }
            expr(ExprKind::String { parts: joined })
        })
        .boxed()
}

/// An expression the checker types as `ty` (or as unknown, or null).
fn typed(ty: Ty, ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Expr> {
    let mut leaves: Vec<BoxedStrategy<Expr>> = vec![Just(expr(ExprKind::Null)).boxed()];
    leaves.push(
        "[a-z_][a-z0-9_]{0,5}"
            .prop_map(|p| expr(ExprKind::Param { name: name(&p) }))
            .boxed(),
    );
    let vars = ctx.vars_of(ty);
    if !vars.is_empty() {
        leaves.push(
            select(vars)
                .prop_map(|v| expr(ExprKind::Variable { name: name(&v) }))
                .boxed(),
        );
    }
    let mut error_fields: Vec<&str> = Vec::new();
    if matches!(ty, Ty::String | Ty::Any) {
        leaves.push(string_expr(ctx.clone(), 0));
        leaves.push(
            select(ctx.secrets.clone())
                .prop_map(|s| expr(ExprKind::Secret { name: name(&s) }))
                .boxed(),
        );
        error_fields.extend(["code", "message"]);
    }
    if matches!(ty, Ty::Number | Ty::Any) {
        leaves.push(
            number()
                .prop_map(|value| expr(ExprKind::Number { value }))
                .boxed(),
        );
        error_fields.push("status");
    }
    if matches!(ty, Ty::Bool | Ty::Any) {
        leaves.push(
            any::<bool>()
                .prop_map(|value| expr(ExprKind::Bool { value }))
                .boxed(),
        );
    }
    if ctx.in_catch && !error_fields.is_empty() {
        leaves.push(
            select(error_fields)
                .prop_map(|f| expr(ExprKind::Error { field: name(f) }))
                .boxed(),
        );
    }
    let leaf = Union::new(leaves).boxed();
    if depth == 0 {
        return leaf;
    }
    let d = depth - 1;
    let mut branches: Vec<(u32, BoxedStrategy<Expr>)> = vec![(3, leaf)];
    if matches!(ty, Ty::String | Ty::Any) {
        branches.push((1, string_expr(ctx.clone(), depth)));
    }
    if matches!(ty, Ty::Bool | Ty::Any) {
        let c = ctx.clone();
        branches.push((
            1,
            typed(Ty::Bool, c, d)
                .prop_map(|operand| {
                    expr(ExprKind::Not {
                        operand: Box::new(operand),
                    })
                })
                .boxed(),
        ));
        let binary = |op: BinaryOp, lhs: Expr, rhs: Expr| {
            expr(ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            })
        };
        branches.push((
            2,
            (
                select(vec![BinaryOp::And, BinaryOp::Or]),
                typed(Ty::Bool, ctx.clone(), d),
                typed(Ty::Bool, ctx.clone(), d),
            )
                .prop_map(move |(op, l, r)| binary(op, l, r))
                .boxed(),
        ));
        // `==` and `!=` on two values of one type.
        let c = ctx.clone();
        branches.push((
            2,
            (
                select(vec![Ty::String, Ty::Number, Ty::Bool]),
                select(vec![BinaryOp::Eq, BinaryOp::Ne]),
            )
                .prop_flat_map(move |(t, op)| {
                    (typed(t, c.clone(), d), typed(t, c.clone(), d))
                        .prop_map(move |(l, r)| binary(op, l, r))
                })
                .boxed(),
        ));
        branches.push((
            1,
            (
                select(vec![BinaryOp::Lt, BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge]),
                typed(Ty::Number, ctx.clone(), d),
                typed(Ty::Number, ctx.clone(), d),
            )
                .prop_map(move |(op, l, r)| binary(op, l, r))
                .boxed(),
        ));
        branches.push((
            1,
            typed(Ty::Any, ctx.clone(), d)
                .prop_map(|arg| {
                    expr(ExprKind::Call {
                        function: name("has_value"),
                        args: vec![arg],
                    })
                })
                .boxed(),
        ));
    }
    if matches!(ty, Ty::Number | Ty::Any) {
        // Arithmetic, where precedence and grouping must survive printing.
        let binary = |op: BinaryOp, lhs: Expr, rhs: Expr| {
            expr(ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            })
        };
        branches.push((
            2,
            (
                select(vec![
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Div,
                ]),
                typed(Ty::Number, ctx.clone(), d),
                typed(Ty::Number, ctx.clone(), d),
            )
                .prop_map(move |(op, l, r)| binary(op, l, r))
                .boxed(),
        ));
        branches.push((
            1,
            (
                select(vec![BinaryOp::Mul, BinaryOp::Div]),
                (1u64..100_000).prop_map(|s| expr(ExprKind::Duration { millis: s * 1000 })),
                typed(Ty::Number, ctx.clone(), d),
            )
                .prop_map(move |(op, l, r)| {
                    expr(ExprKind::Call {
                        function: name("seconds"),
                        args: vec![binary(op, l, r)],
                    })
                })
                .boxed(),
        ));
    }
    if matches!(ty, Ty::String | Ty::Any) {
        let c = ctx.clone();
        branches.push((
            1,
            (typed(Ty::String, c.clone(), d), typed(Ty::String, c, d))
                .prop_map(|(l, r)| {
                    expr(ExprKind::Binary {
                        op: BinaryOp::Add,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    })
                })
                .boxed(),
        ));
        branches.push((
            1,
            (
                select(vec![
                    "lower",
                    "upper",
                    "trim",
                    "sha256",
                    "base64_encode",
                    "url_encode",
                ]),
                typed(Ty::String, ctx.clone(), d),
            )
                .prop_map(|(f, arg)| {
                    expr(ExprKind::Call {
                        function: name(f),
                        args: vec![arg],
                    })
                })
                .boxed(),
        ));
    }
    Union::new_weighted(branches).boxed()
}

// ------------------------------------------------------------------ statements

fn statement(kind: StatementKind) -> Statement {
    Statement {
        kind,
        span: Span::default(),
    }
}

fn block(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Block> {
    proptest::collection::vec(any_statement(ctx, depth), 0..4)
        .prop_map(|statements| Block {
            statements,
            span: Span::default(),
        })
        .boxed()
}

fn field(name_text: String, value: Expr) -> Field {
    Field {
        name: plain(&name_text),
        value,
        span: Span::default(),
    }
}

/// Fields with distinct names, each with a text value.
fn fields(names: Vec<&'static str>, ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Vec<Field>> {
    let count = names.len();
    subsequence(names, 0..=count.min(3))
        .prop_flat_map(move |chosen| {
            let values: Vec<_> = chosen
                .iter()
                .map(|_| typed(Ty::String, ctx.clone(), depth))
                .collect();
            (Just(chosen), values).prop_map(|(chosen, values)| {
                chosen
                    .into_iter()
                    .zip(values)
                    .map(|(n, v)| field(n.to_string(), v))
                    .collect()
            })
        })
        .boxed()
}

fn web_request(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Statement> {
    let url = prop_oneof![
        select(vec![
            "https://auth.example.com/oauth/token",
            "http://127.0.0.1:9/token",
            "https://login.example.org/a/b?c=d",
        ])
        .prop_map(|u| expr(ExprKind::String {
            parts: vec![StringPart::Text { value: u.into() }]
        })),
        typed(Ty::Any, ctx.clone(), depth).prop_map(|e| expr(ExprKind::String {
            parts: vec![
                StringPart::Text {
                    value: "https://api.example.com/".into()
                },
                StringPart::Interpolation { expr: e },
            ]
        })),
    ];
    let body = prop_oneof![
        Just(None),
        fields(
            vec!["grant_type", "refresh_token", "client id", "scope"],
            ctx.clone(),
            depth
        )
        .prop_map(|fields| Some(RequestBody::Form {
            fields,
            span: Span::default()
        })),
        fields(vec!["a", "b-c", "d"], ctx.clone(), depth).prop_map(|fields| Some(
            RequestBody::Json {
                fields,
                span: Span::default()
            }
        )),
        typed(Ty::String, ctx.clone(), depth).prop_map(|value| Some(RequestBody::Raw {
            value,
            span: Span::default()
        })),
    ];
    let auth = prop_oneof![
        Just(None),
        (
            typed(Ty::String, ctx.clone(), depth),
            typed(Ty::String, ctx.clone(), depth)
        )
            .prop_map(|(user, password)| Some(Auth::Basic {
                user,
                password,
                span: Span::default()
            })),
        typed(Ty::String, ctx.clone(), depth).prop_map(|token| Some(Auth::Bearer {
            token,
            span: Span::default()
        })),
    ];
    let retry = prop_oneof![
        Just(None),
        (
            proptest::option::of(1u64..=20),
            proptest::option::of(duration(600)),
            any::<bool>()
        )
            .prop_map(|(attempts, max_time, swap)| {
                let mut keys = Vec::new();
                if attempts.is_some() {
                    keys.push("attempts");
                }
                if max_time.is_some() {
                    keys.push("max_time");
                }
                if swap {
                    keys.reverse();
                }
                Some(Retry {
                    attempts: attempts.map(|value| Integer {
                        value,
                        span: Span::default(),
                    }),
                    max_time,
                    span: Span::default(),
                    layout: layout(&keys),
                })
            }),
    ];
    let vars = ctx.vars.clone();
    let mapping = subsequence(vars.clone(), 0..=vars.len().min(3)).prop_flat_map(|chosen| {
        let sources: Vec<BoxedStrategy<MappingSource>> = chosen
            .iter()
            .map(|(_, t)| {
                let mut options: Vec<BoxedStrategy<MappingSource>> = vec![
                    select(vec![
                        "$.access_token",
                        "$.data[0]['token']",
                        "$..id",
                        "$['a b']",
                    ])
                    .prop_map(|p| MappingSource::JsonPath {
                        path: p.into(),
                        span: Span::default(),
                    })
                    .boxed(),
                ];
                if matches!(t, Type::String | Type::Json) {
                    options.push(
                        select(vec!["Location", "X-Token"])
                            .prop_map(|h| MappingSource::Header {
                                name: plain(h),
                                span: Span::default(),
                            })
                            .boxed(),
                    );
                    options.push(
                        Just(MappingSource::Body {
                            span: Span::default(),
                        })
                        .boxed(),
                    );
                }
                if *t != Type::Bool {
                    options.push(
                        Just(MappingSource::Status {
                            span: Span::default(),
                        })
                        .boxed(),
                    );
                }
                Union::new(options).boxed()
            })
            .collect();
        (Just(chosen), sources).prop_map(|(chosen, sources)| {
            chosen
                .into_iter()
                .zip(sources)
                .map(|((target, _), source)| Mapping {
                    target: name(&target),
                    source,
                    span: Span::default(),
                })
                .collect::<Vec<_>>()
        })
    });
    let presence = proptest::collection::vec(any::<bool>(), 9);
    (
        (
            proptest::option::of(select(REQUEST_METHODS.to_vec())),
            url,
            fields(vec!["audience", "x", "page size"], ctx.clone(), depth),
            fields(
                vec!["Accept", "X-Request-Id", "Content-Type"],
                ctx.clone(),
                depth,
            ),
            body,
            auth,
        ),
        (
            proptest::option::of(duration(120)),
            retry,
            proptest::option::of(0u64..=20),
            mapping,
            presence,
        ),
    )
        .prop_flat_map(
            |(
                (method, url, query, headers, body, auth),
                (timeout, retry, redirects, mapping, present),
            )| {
                let mut request = WebRequest {
                    method: method.map(name),
                    url: Some(url),
                    ..WebRequest::default()
                };
                let mut keys = Vec::new();
                if request.method.is_some() {
                    keys.push("method");
                }
                keys.push("url");
                if present[0] {
                    request.query = query;
                    keys.push("query");
                }
                if present[1] {
                    request.headers = headers;
                    keys.push("headers");
                }
                if let Some(body) = body {
                    keys.push(match body {
                        RequestBody::Form { .. } => "form",
                        RequestBody::Json { .. } => "json",
                        RequestBody::Raw { .. } => "body",
                    });
                    request.body = Some(body);
                }
                if let Some(auth) = auth {
                    request.auth = Some(auth);
                    keys.push("auth");
                }
                if present[2] && timeout.is_some() {
                    request.timeout = timeout;
                    keys.push("timeout");
                }
                if let Some(retry) = retry {
                    request.retry = Some(retry);
                    keys.push("retry");
                }
                if present[3] && redirects.is_some() {
                    request.redirects = redirects.map(|value| Integer {
                        value,
                        span: Span::default(),
                    });
                    if present[5] {
                        request.cross_origin = Some(Span::default());
                    }
                    keys.push("redirects");
                }
                if present[4] {
                    request.result_mapping = mapping;
                    keys.push("result_mapping");
                }
                Just(keys).prop_shuffle().prop_map(move |keys| {
                    let mut request = request.clone();
                    request.layout = layout(&keys);
                    statement(StatementKind::WebRequest(Box::new(request)))
                })
            },
        )
        .boxed()
}

fn secret_update(secret: String, ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<SecretUpdate> {
    (
        typed(Ty::String, ctx.clone(), depth),
        proptest::option::of(typed(Ty::Number, ctx, depth)),
        0u8..3,
    )
        .prop_map(move |(value, expires_in, form)| {
            // 0: `NAME = value`; 1: `NAME { value = .. expires_in = .. }`;
            // 2: the same with `expires_in` first.
            let (expires_in, keys): (Option<Expr>, Vec<&'static str>) = match (form, expires_in) {
                (0, _) => (None, vec![]),
                (_, None) => (None, vec!["value"]),
                (1, Some(e)) => (Some(e), vec!["value", "expires_in"]),
                (_, Some(e)) => (Some(e), vec!["expires_in", "value"]),
            };
            SecretUpdate {
                secret: name(&secret),
                value: Some(value),
                expires_in,
                span: Span::default(),
                layout: layout(&keys),
            }
        })
        .boxed()
}

fn simple_statement(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Statement> {
    let mut options: Vec<(u32, BoxedStrategy<Statement>)> = vec![
        (3, web_request(ctx.clone(), depth)),
        (
            2,
            typed(Ty::Any, ctx.clone(), depth)
                .prop_map(|message| statement(StatementKind::Log { message }))
                .boxed(),
        ),
        (
            1,
            duration(3600)
                .prop_map(|duration| statement(StatementKind::Sleep { duration }))
                .boxed(),
        ),
        (
            1,
            ("[a-z_]{1,8}", typed(Ty::String, ctx.clone(), depth))
                .prop_map(|(code, message)| {
                    statement(StatementKind::Throw {
                        code: plain(&code),
                        message,
                    })
                })
                .boxed(),
        ),
    ];
    if !ctx.vars.is_empty() {
        let c = ctx.clone();
        let count = ctx.vars.len();
        options.push((
            2,
            subsequence(ctx.vars.clone(), 1..=count.min(3))
                .prop_shuffle()
                .prop_flat_map(move |chosen| {
                    let values: Vec<_> = chosen
                        .iter()
                        .map(|(_, t)| typed(Ty::of(*t), c.clone(), depth))
                        .collect();
                    (Just(chosen), values).prop_map(|(chosen, values)| {
                        let assignments = chosen
                            .into_iter()
                            .zip(values)
                            .map(|((target, _), value)| Assignment {
                                target: name(&target),
                                value,
                                span: Span::default(),
                            })
                            .collect();
                        statement(StatementKind::UpdateVariables { assignments })
                    })
                })
                .boxed(),
        ));
    }
    if !ctx.updatable.is_empty() {
        let c = ctx.clone();
        options.push((
            2,
            select(ctx.updatable.clone())
                .prop_flat_map(move |s| secret_update(s, c.clone(), depth))
                .prop_map(|update| {
                    statement(StatementKind::UpdateSecrets {
                        updates: vec![update],
                        grouped: false,
                    })
                })
                .boxed(),
        ));
        let c = ctx.clone();
        let count = ctx.updatable.len();
        options.push((
            1,
            subsequence(ctx.updatable.clone(), 0..=count)
                .prop_shuffle()
                .prop_flat_map(move |chosen| {
                    let updates: Vec<_> = chosen
                        .into_iter()
                        .map(|s| secret_update(s, c.clone(), depth))
                        .collect();
                    updates.prop_map(|updates| {
                        statement(StatementKind::UpdateSecrets {
                            updates,
                            grouped: true,
                        })
                    })
                })
                .boxed(),
        ));
    }
    if !ctx.callable.is_empty() {
        options.push((
            1,
            (
                select(ctx.callable.clone()),
                proptest::option::of(select(ctx.accounts.clone())),
            )
                .prop_map(|((service, endpoint), account)| {
                    statement(StatementKind::RunService {
                        endpoint: EndpointRef {
                            service: name(&service),
                            endpoint: name(&endpoint),
                            span: Span::default(),
                        },
                        args: Vec::new(),
                        for_connection: None,
                        as_account: account.map(|a| name(&a)),
                        into: None,
                    })
                })
                .boxed(),
        ));
    }
    Union::new_weighted(options).boxed()
}

fn if_statement(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<IfStatement> {
    let d = depth - 1;
    let else_block = prop_oneof![
        Just(None),
        block(ctx.clone(), d).prop_map(Some),
        // `else if`: an else block of one `if` statement.
        if_statement_or_leaf(ctx.clone(), d).prop_map(|nested| Some(Block {
            statements: vec![nested],
            span: Span::default(),
        })),
    ];
    (typed(Ty::Bool, ctx.clone(), 2), block(ctx, d), else_block)
        .prop_map(|(condition, then_block, else_block)| IfStatement {
            condition,
            then_block,
            else_block,
        })
        .boxed()
}

fn if_statement_or_leaf(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Statement> {
    if depth == 0 {
        simple_statement(ctx, 0)
    } else {
        if_statement(ctx, depth)
            .prop_map(|i| statement(StatementKind::If(i)))
            .boxed()
    }
}

fn catch(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Catch> {
    let filter = prop_oneof![
        Just(CatchFilter::Any),
        proptest::collection::btree_set(100u32..600, 0..3).prop_map(|statuses| {
            CatchFilter::WebRequest {
                statuses: statuses
                    .into_iter()
                    .map(|value| StatusCode {
                        value,
                        span: Span::default(),
                    })
                    .collect(),
            }
        }),
        "[a-z_]{1,8}".prop_map(|c| CatchFilter::Code(plain(&c))),
    ];
    (filter, block(ctx.catching(), depth))
        .prop_map(|(filter, body)| Catch {
            filter,
            body,
            span: Span::default(),
        })
        .boxed()
}

fn any_statement(ctx: Arc<Ctx>, depth: u32) -> BoxedStrategy<Statement> {
    if depth == 0 {
        return simple_statement(ctx, 0);
    }
    let d = depth - 1;
    prop_oneof![
        4 => simple_statement(ctx.clone(), 1),
        1 => if_statement(ctx.clone(), depth).prop_map(|i| statement(StatementKind::If(i))),
        1 => (block(ctx.clone(), d), proptest::collection::vec(catch(ctx, d), 1..3)).prop_map(
            |(body, catches)| statement(StatementKind::Try { body, catches })
        ),
    ]
    .boxed()
}

/// An action: one to five statements, nesting two levels at most.
fn action_body(ctx: Arc<Ctx>) -> BoxedStrategy<Block> {
    proptest::collection::vec(any_statement(ctx, 2), 1..6)
        .prop_map(|statements| Block {
            statements,
            span: Span::default(),
        })
        .boxed()
}

// ------------------------------------------------------------------ declarations

/// The shape of a program: its declarations, without their actions.
#[derive(Clone, Debug)]
struct Shape {
    /// (environment_specific, locked, description)
    secrets: Vec<(bool, bool, Option<String>)>,
    /// Per service: its variables.
    services: Vec<Vec<(String, Type)>>,
    actions_per_service: Vec<usize>,
    users: usize,
    accounts: usize,
}

fn shape() -> impl Strategy<Value = Shape> {
    let var_type = select(vec![Type::String, Type::Number, Type::Bool, Type::Json]);
    let vars = (
        subsequence(VAR_NAMES.to_vec(), 0..5).prop_shuffle(),
        proptest::collection::vec(var_type, 5),
    )
        .prop_map(|(names, types)| {
            names
                .into_iter()
                .zip(types)
                .map(|(n, t)| (n.to_string(), t))
                .collect::<Vec<_>>()
        });
    (
        proptest::collection::vec(
            (
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(plain_text()),
            ),
            1..4,
        ),
        proptest::collection::vec(vars, 1..4),
        proptest::collection::vec(1usize..3, 3),
        0usize..3,
        1usize..3,
    )
        .prop_map(
            |(mut secrets, services, actions_per_service, users, accounts)| {
                // One secret at least that a run may update.
                secrets[0].0 = true;
                secrets[0].1 = false;
                Shape {
                    secrets,
                    actions_per_service,
                    services,
                    users,
                    accounts,
                }
            },
        )
}

fn secret_decl(
    index: usize,
    (env, locked, description): &(bool, bool, Option<String>),
) -> BoxedStrategy<SecretDecl> {
    let mut keys = Vec::new();
    if *env {
        keys.push("environment_specific");
    }
    if *locked {
        keys.push("locked");
    }
    let decl = SecretDecl {
        name: name(&format!("S{index}")),
        environment_specific: *env,
        locked: locked.then(Span::default),
        per_account: false,
        description: description.as_deref().map(plain),
        refreshed_by: None,
        span: Span::default(),
        layout: Layout::new(),
    };
    if description.is_none() {
        // On one line, the flags come in one order.
        let mut decl = decl;
        decl.layout = layout(&keys);
        return Just(decl).boxed();
    }
    keys.push("description");
    Just(keys)
        .prop_shuffle()
        .prop_map(move |keys| {
            let mut decl = decl.clone();
            decl.layout = layout(&keys);
            decl
        })
        .boxed()
}

fn endpoint_decl(index: usize, actions: usize) -> BoxedStrategy<EndpointDecl> {
    (
        subsequence(METHODS.to_vec(), 1..=METHODS.len()).prop_shuffle(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(plain_text()),
        0..actions,
    )
        .prop_flat_map(move |(methods, log, description, action)| {
            let mut keys = vec!["methods", "process"];
            if log.is_some() {
                keys.push("log");
            }
            if description.is_some() {
                keys.push("description");
            }
            let decl = EndpointDecl {
                name: name(&format!("e{index}")),
                description: description.as_deref().map(plain),
                methods: methods.into_iter().map(name).collect(),
                log: log.map(|enabled| LogSetting {
                    enabled,
                    span: Span::default(),
                }),
                process: Some(name(&format!("a{action}"))),
                on_failure: None,
                on_recovery: None,
                params: None,
                response: None,
                span: Span::default(),
                layout: Layout::new(),
            };
            Just(keys).prop_shuffle().prop_map(move |keys| {
                let mut decl = decl.clone();
                decl.layout = layout(&keys);
                decl
            })
        })
        .boxed()
}

fn program() -> impl Strategy<Value = Program> {
    shape().prop_flat_map(|shape| {
        let secrets: Vec<_> = shape
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| secret_decl(i, s))
            .collect();
        let secret_names: Vec<String> = (0..shape.secrets.len()).map(|i| format!("S{i}")).collect();
        let updatable: Vec<String> = shape
            .secrets
            .iter()
            .enumerate()
            .filter(|(_, (env, locked, _))| *env && !*locked)
            .map(|(i, _)| format!("S{i}"))
            .collect();
        let accounts: Vec<String> = (0..shape.accounts).map(|i| format!("bot{i}")).collect();
        let mut services = Vec::new();
        let mut callable: Vec<(String, String)> = Vec::new();
        for (index, vars) in shape.services.iter().enumerate() {
            let ctx = Arc::new(Ctx {
                vars: vars.clone(),
                secrets: secret_names.clone(),
                updatable: updatable.clone(),
                callable: callable.clone(),
                accounts: accounts.clone(),
                in_catch: false,
            });
            let actions = shape.actions_per_service[index];
            let service_name = format!("svc{index}");
            let bodies = proptest::collection::vec(action_body(ctx), actions);
            let endpoints: Vec<_> = (0..2).map(|e| endpoint_decl(e, actions)).collect();
            let vars = vars.clone();
            services.push((bodies, endpoints).prop_map(move |(bodies, endpoints)| {
                ServiceDecl {
                    name: name(&service_name),
                    vars: vars
                        .iter()
                        .map(|(n, t)| VarDecl {
                            name: name(n),
                            type_name: name(t.name()),
                            span: Span::default(),
                        })
                        .collect(),
                    actions: bodies
                        .into_iter()
                        .enumerate()
                        .map(|(i, body)| ActionDecl {
                            name: name(&format!("a{i}")),
                            body,
                            span: Span::default(),
                        })
                        .collect(),
                    endpoints,
                    span: Span::default(),
                }
            }));
            callable.extend((0..2).map(|e| (format!("svc{index}"), format!("e{e}"))));
        }
        let shape2 = shape.clone();
        (
            secrets,
            services,
            proptest::collection::vec(any::<u8>(), 16),
        )
            .prop_flat_map(move |(secrets, services, choices)| {
                let roles = roles(&shape2, &services, &choices);
                let identities = identities(&shape2, &choices);
                let schedules = schedules(&services, &updatable, &accounts);
                (Just(secrets), Just(services), roles, identities, schedules).prop_map(
                    |(secrets, services, roles, identities, schedules)| Program {
                        secrets,
                        roles,
                        identities,
                        services,
                        schedules,
                        oauth_clients: Vec::new(),
                        notifies: Vec::new(),
                    },
                )
            })
    })
}

/// `all`, which may run every endpoint and update every secret runs may
/// update, and a few roles with grants of their own.
fn roles(shape: &Shape, services: &[ServiceDecl], choices: &[u8]) -> BoxedStrategy<Vec<RoleDecl>> {
    let grant = |kind| Grant {
        kind,
        span: Span::default(),
    };
    let mut all = Vec::new();
    for service in services {
        all.push(grant(GrantKind::Run(EndpointPattern {
            service: service.name.clone(),
            endpoint: None,
            span: Span::default(),
        })));
    }
    for (i, (env, locked, _)) in shape.secrets.iter().enumerate() {
        let secret = name(&format!("S{i}"));
        if *env && !*locked {
            all.push(grant(GrantKind::UpdateSecret(secret.clone())));
        }
        if choices[i].is_multiple_of(2) {
            all.push(grant(GrantKind::ReadSecret(secret)));
        }
    }
    let mut roles = vec![RoleDecl {
        name: name("all"),
        grants: all,
        description: choices[5]
            .is_multiple_of(2)
            .then(|| plain("may do everything")),
        span: Span::default(),
        layout: Layout::new(),
    }];
    let first = &services[0];
    roles.push(RoleDecl {
        name: name("caller"),
        grants: vec![
            grant(GrantKind::Run(EndpointPattern {
                service: first.name.clone(),
                endpoint: Some(name("e0")),
                span: Span::default(),
            })),
            grant(GrantKind::ReadSecret(name("S0"))),
        ],
        description: None,
        span: Span::default(),
        layout: Layout::new(),
    });
    if choices[6].is_multiple_of(2) {
        roles.push(RoleDecl {
            name: name("nothing"),
            grants: Vec::new(),
            description: Some(plain("given to nobody")),
            span: Span::default(),
            layout: Layout::new(),
        });
    }
    for role in &mut roles {
        if role.description.is_some() {
            role.layout = layout(&["description"]);
        }
    }
    Just(roles).boxed()
}

/// Users and service accounts, each with `all`.
fn identities(shape: &Shape, choices: &[u8]) -> BoxedStrategy<Vec<IdentityDecl>> {
    let mut identities = Vec::new();
    let kinds = (0..shape.users)
        .map(|i| (IdentityKind::User, format!("u{i}")))
        .chain((0..shape.accounts).map(|i| (IdentityKind::ServiceAccount, format!("bot{i}"))));
    for (i, (kind, identity)) in kinds.enumerate() {
        let choice = choices[(7 + i) % choices.len()];
        let mut roles = vec![name("all")];
        if choice.is_multiple_of(3) {
            roles.push(name("caller"));
        }
        if choice % 4 == 1 {
            roles.reverse();
        }
        let description = choice.is_multiple_of(5).then(|| plain("an identity"));
        let keys: &[&'static str] = match (&description, choice % 2) {
            (None, _) => &["roles"],
            (Some(_), 0) => &["roles", "description"],
            (Some(_), _) => &["description", "roles"],
        };
        identities.push(IdentityDecl {
            kind,
            name: name(&identity),
            roles,
            description,
            span: Span::default(),
            layout: layout(keys),
        });
    }
    Just(identities).boxed()
}

fn schedules(
    services: &[ServiceDecl],
    updatable: &[String],
    accounts: &[String],
) -> BoxedStrategy<Vec<ScheduleDecl>> {
    let targets: Vec<(String, String)> = services
        .iter()
        .flat_map(|s| {
            s.endpoints
                .iter()
                .filter(|e| e.allows("GET"))
                .map(move |e| (s.name.text.clone(), e.name.text.clone()))
        })
        .collect();
    if targets.is_empty() {
        return Just(Vec::new()).boxed();
    }
    let one = (
        select(targets),
        select(accounts.to_vec()),
        0u8..3,
        duration(86_400 * 30),
        select(vec!["0 * * * *", "*/15 * * * *", "@hourly", "30 9 * * 1-5"]),
        proptest::option::of(select(vec!["Europe/Oslo", "UTC", "America/New_York"])),
        (select(updatable.to_vec()), duration(3600)),
        (any::<bool>(), proptest::option::of(plain_text())),
    )
        .prop_flat_map(
            |(
                (service, endpoint),
                account,
                timing,
                every,
                cron,
                zone,
                (secret, lead),
                (disabled, description),
            )| {
                let mut decl = ScheduleDecl {
                    name: name("placeholder"),
                    endpoint: Some(EndpointRef {
                        service: name(&service),
                        endpoint: name(&endpoint),
                        span: Span::default(),
                    }),
                    service_account: Some(name(&account)),
                    every: None,
                    cron: None,
                    time_zone: None,
                    before_expiry: None,
                    disabled,
                    description: description.as_deref().map(plain),
                    on_failure: None,
                    on_recovery: None,
                    params: Vec::new(),
                    for_each_connection: None,
                    concurrency: None,
                    span: Span::default(),
                    layout: Layout::new(),
                };
                let mut keys = vec!["endpoint", "service_account"];
                match timing {
                    0 => {
                        decl.every = Some(every);
                        keys.push("every");
                    }
                    1 => {
                        decl.cron = Some(plain(cron));
                        keys.push("cron");
                        if let Some(zone) = zone {
                            decl.time_zone = Some(plain(zone));
                            keys.push("time_zone");
                        }
                    }
                    _ => {
                        decl.every = Some(every);
                        decl.before_expiry = Some(BeforeExpiry {
                            secret: name(&secret),
                            lead,
                            span: Span::default(),
                        });
                        keys.extend(["every", "before_expiry"]);
                    }
                }
                if disabled {
                    keys.push("disabled");
                }
                if decl.description.is_some() {
                    keys.push("description");
                }
                Just(keys).prop_shuffle().prop_map(move |keys| {
                    let mut decl = decl.clone();
                    decl.layout = layout(&keys);
                    decl
                })
            },
        );
    proptest::collection::vec(one, 0..3)
        .prop_map(|mut schedules| {
            for (i, schedule) in schedules.iter_mut().enumerate() {
                schedule.name = name(&format!("sch{i}"));
            }
            schedules
        })
        .boxed()
}

// ------------------------------------------------------------------ the properties

fn checked(text: &str) -> svc::program::CheckedProgram {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("generated.svc", "generated.svc", text));
    svc::program::check_sources(sources)
}

/// A `dev` store, shared by every case, where the secrets `S0` to `S3`
/// have values: runs get past reading them. Dry runs change nothing.
struct Secrets {
    _dir: tempfile::TempDir,
    secrets_dir: std::path::PathBuf,
    identities: Arc<svc::secrets::Identities>,
}

fn secrets() -> &'static Secrets {
    static SECRETS: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();
    SECRETS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        let public = svc::secrets::keys::write_new_identity(&key).unwrap();
        let secrets_dir = dir.path().join("secrets");
        let store = svc::backend::files::store::Store::new(&secrets_dir, "dev").unwrap();
        store.init(&format!("{public}\n")).unwrap();
        let identities = svc::secrets::Identities::read(&[key]).unwrap();
        store
            .update(&identities, |doc| {
                for i in 0..4 {
                    let new = svc::secrets::NewValue {
                        value: svc::secrets::SecretValue::new(format!("value-{i}")),
                        expires_at: None,
                    };
                    doc.set(&format!("S{i}"), new, "test", svc::secrets::document::now());
                }
                Ok(())
            })
            .unwrap();
        Secrets {
            _dir: dir,
            secrets_dir,
            identities: Arc::new(identities),
        }
    })
}

/// The files backend of a test: the store given, logs and state in `dir`.
fn files_backend(secrets_dir: &std::path::Path, dir: &std::path::Path) -> svc::backend::Spec {
    svc::backend::Spec::Files {
        secrets_dir: secrets_dir.to_path_buf(),
        log_dir: dir.join("logs"),
        state_dir: dir.join("state"),
    }
}

/// Runs every endpoint of a program that checks clean, dry, as `bot0`.
fn dry_run_every_endpoint(checked: svc::program::CheckedProgram) -> Vec<svc::run::Finished> {
    let secrets = secrets();
    let logs = tempfile::tempdir().unwrap();
    let script = Arc::new(svc::program::Script::new(checked).expect("no errors"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = runtime
        .block_on(svc::backend::Backend::open(
            &files_backend(&secrets.secrets_dir, logs.path()),
            "dev",
            &svc::backend::Options::default(),
        ))
        .unwrap();
    let engine = svc::run::Engine::new(script.clone(), backend, Some(secrets.identities.clone()));
    let mut runs = Vec::new();
    for service in &script.program().services {
        for endpoint in &service.endpoints {
            let request = svc::run::RunRequest {
                service: service.name.text.clone(),
                endpoint: endpoint.name.text.clone(),
                identity: "bot0".into(),
                method: endpoint.methods[0].text.clone(),
                params: [("p".to_string(), serde_json::json!("value"))].into(),
                dry_run: true,
                trigger: svc::backend::Trigger::Cli,
                due_at: None,
                replay: None,
                force: false,
                connection: None,
            };
            let admitted = engine.admit(request).expect("bot0 may run every endpoint");
            let finished = runtime.block_on(engine.run(admitted));
            assert!(finished.record.dry_run, "{:?}", finished.record);
            runs.push(finished);
        }
    }
    assert!(!logs.path().join("logs").exists(), "a dry run wrote a log");
    runs
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_programs_print_parse_check_and_run(program in program()) {
        let text = svc::format::print(&program);
        let (parsed, diagnostics) = svc::syntax::parse_file(FileId(0), &text);
        prop_assert!(diagnostics.is_empty(), "{diagnostics:#?}\n{text}");
        prop_assert_eq!(
            common::without_spans(&parsed),
            common::without_spans(&program),
            "the printed program parses to another:\n{}",
            text
        );
        let formatted = svc::format::format(&text);
        prop_assert_eq!(formatted.as_ref(), Ok(&text), "not formatted");

        let checked = checked(&text);
        let errors: Vec<_> = checked.analysis.diagnostics.iter().filter(|d| d.is_error()).collect();
        prop_assert!(errors.is_empty(), "{:#?}\n{}", errors, text);
        svc::report::render_all(&checked.analysis.diagnostics, &checked.sources, svc::report::Style::PLAIN);

        for finished in dry_run_every_endpoint(checked) {
            // A run may fail (a value is null, a thrown error), but never
            // for want of a secret: the store has them all.
            if let Some(error) = &finished.error {
                prop_assert!(!error.message.contains("secret store"), "{}", error.message);
            }
        }
    }
}

/// The deepest program the builder accepts runs on a tokio worker, whose
/// stack (2 MiB) is what `svc serve` runs endpoints on: an `&&` chain of
/// 2,500 terms used to overflow it. Blocks nest to the limit, and the
/// innermost condition is a chain that fills what depth is left.
#[test]
fn the_deepest_program_accepted_runs_on_a_tokio_worker() {
    let max = 64;
    let depth_of = |blocks: usize, terms: usize| {
        let chain = vec!["has_value(param.p)"; terms].join(" && ");
        format!(
            "secret S0 {{ environment_specific }}\nrole all {{ grant run s.* }}\n\
             service_account bot0 {{ roles all }}\n\
             service s {{\n  action a {{\n{}log {chain}\n{}  }}\n  endpoint e {{ methods GET process a }}\n}}\n",
            "if true {\n".repeat(blocks),
            "}\n".repeat(blocks)
        )
    };
    for blocks in [0, max / 2, max - 8] {
        // The longest chain that still checks at this block depth.
        let mut accepted = None;
        for terms in (2..80).rev() {
            let checked = checked(&depth_of(blocks, terms));
            if checked.analysis.errors() == 0 {
                accepted = Some((terms, checked));
                break;
            }
            assert!(
                checked
                    .analysis
                    .diagnostics
                    .iter()
                    .all(|d| d.code == svc::diagnostic::Code::TooDeep || !d.is_error()),
                "{:?}",
                checked.analysis.diagnostics
            );
        }
        let (terms, checked) = accepted.expect("some chain fits");
        assert!(terms > 2, "only {terms} terms fit after {blocks} blocks");
        run_on_a_worker(checked);
    }
}

fn run_on_a_worker(checked: svc::program::CheckedProgram) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let finished = runtime
        .block_on(runtime.spawn(async move {
            let secrets = secrets();
            let logs = tempfile::tempdir().unwrap();
            let script = Arc::new(svc::program::Script::new(checked).unwrap());
            let backend = svc::backend::Backend::open(
                &files_backend(&secrets.secrets_dir, logs.path()),
                "dev",
                &svc::backend::Options::default(),
            )
            .await
            .unwrap();
            let engine = svc::run::Engine::new(script, backend, Some(secrets.identities.clone()));
            let request = svc::run::RunRequest {
                service: "s".into(),
                endpoint: "e".into(),
                identity: "bot0".into(),
                method: "GET".into(),
                params: [("p".to_string(), serde_json::json!("x"))].into(),
                dry_run: true,
                trigger: svc::backend::Trigger::Http,
                due_at: None,
                replay: None,
                force: false,
                connection: None,
            };
            let admitted = engine.admit(request).unwrap();
            engine.run(admitted).await
        }))
        .unwrap();
    assert!(finished.error.is_none(), "{:?}", finished.error);
    assert_eq!(finished.record.outcome, svc::backend::Outcome::Success);
}

/// What a random edit inserts: text that keeps a program whole, and text
/// that breaks it or mends what an earlier edit broke.
const PIECES: &[&str] = &[
    "",
    " ",
    "\n",
    "x",
    "}",
    "{",
    "\"",
    "é",
    "// note\n",
    "secret EDITED { environment_specific }\n",
    "role edited { }\n",
    "service edited {\n}\n",
    "log \"m\"\n",
];

/// The nearest start of a character at or before `at`.
fn char_start(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    })]

    /// The editor re-parses only the declarations an edit touches
    /// (`svc lsp`); after any sequence of edits, what it holds is what a
    /// parse of the whole text gives, and that is what `svc check` parses.
    #[test]
    fn an_incremental_parse_after_random_edits_equals_a_whole_parse(
        program in program(),
        edits in proptest::collection::vec(
            (any::<proptest::sample::Index>(), 0usize..40, select(PIECES)),
            1..10,
        ),
    ) {
        use svc::syntax::incremental::{self, Reparsed};
        let file = FileId(0);
        let mut text = svc::format::print(&program);
        let parsed = incremental::parse(file, &text);
        let mut held = parsed.program;
        let mut outline = parsed.outline.expect("a printed program parses");
        for (at, delete, insert) in edits {
            let from = char_start(&text, at.index(text.len() + 1));
            let to = char_start(&text, (from + delete).min(text.len()));
            text.replace_range(from..to, insert);
            let whole = incremental::parse(file, &text);
            let (checked, check_diagnostics) = svc::syntax::parse_file(file, &text);
            prop_assert_eq!(&whole.program, &checked);
            prop_assert_eq!(&whole.diagnostics, &check_diagnostics);
            match outline.reparse(file, &text) {
                Reparsed::Failed(diagnostics) => {
                    prop_assert!(whole.outline.is_none(), "{}", text);
                    prop_assert_eq!(diagnostics, whole.diagnostics, "{}", text);
                }
                Reparsed::Parsed(change) => {
                    prop_assert!(whole.outline.is_some(), "{}", text);
                    let (_, diagnostics) = outline.apply(change, &mut held, [0; ITEM_KINDS]);
                    prop_assert_eq!(&held, &whole.program, "{}", text);
                    prop_assert_eq!(diagnostics, whole.diagnostics, "{}", text);
                    prop_assert_eq!(outline.text(), text.as_str());
                }
            }
        }
    }
}
