//! `svc fmt`: one canonical layout for `.svc` files.
//!
//! The printer walks the AST, which keeps the span of every node and the
//! order of every block's properties, and places the comments (found by
//! `syntax::comments`) before the node that follows them or at the end of
//! the line they ended. Blank lines between statements, members and
//! one-line declarations are kept (at most one); multi-line declarations
//! are separated by exactly one. Two spaces indent each level; the `=` of
//! request fields, result mappings and secret update blocks are aligned, as
//! are the `{` of consecutive one-line secrets. Formatting is idempotent
//! and never changes what a program means: `tests/format.rs` checks both.

use std::ops::Range;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{BOM, FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::{self, comments};

/// Formats a file. A file that does not parse, or whose meaning the parser
/// had to guess (a property given twice, an unknown escape), is refused:
/// formatting it would lose what was written.
///
/// A byte-order mark at the start is kept, and the rest formatted: the
/// editor that wrote it would only write it again. Spans in the
/// diagnostics count from after it, as in a loaded [`SourceFile`].
///
/// [`SourceFile`]: crate::source::SourceFile
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    match text.strip_prefix(BOM) {
        Some(rest) => format_text(rest).map(|formatted| format!("{BOM}{formatted}")),
        None => format_text(text),
    }
}

fn format_text(text: &str) -> Result<String, Vec<Diagnostic>> {
    let (program, diagnostics) = syntax::parse_file(FileId(0), text);
    let blocking: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| !matches!(d.code, Code::InvalidDuration | Code::InvalidNumber))
        .collect();
    if !blocking.is_empty() {
        return Err(blocking);
    }
    let mut printer = Printer {
        text,
        comments: comments::scan(text),
        next_comment: 0,
        out: String::with_capacity(text.len() + text.len() / 8),
        indent: 0,
        last_end: 0,
    };
    printer.program(&program);
    Ok(printer.out)
}

/// Prints a program built in memory rather than parsed from a file: its
/// spans are not read and it has no comments, so declarations come kind by
/// kind (secrets, roles, identities, services, schedules), members and
/// properties in the order of their vectors and layouts. What it prints
/// parses back to the same program, and is already formatted
/// (`tests/properties.rs` checks both on generated programs).
pub fn print(program: &Program) -> String {
    let mut printer = Printer {
        text: "",
        comments: Vec::new(),
        next_comment: 0,
        out: String::new(),
        indent: 0,
        last_end: 0,
    };
    printer.program(program);
    printer.out
}

/// One top-level declaration, for ordering by position.
enum Top<'a> {
    Secret(&'a SecretDecl),
    Role(&'a RoleDecl),
    Identity(&'a IdentityDecl),
    Service(&'a ServiceDecl),
    Schedule(&'a ScheduleDecl),
    OAuthClient(&'a OAuthClientDecl),
    Notify(&'a NotifyDecl),
}

impl Top<'_> {
    fn span(&self) -> Span {
        match self {
            Top::Secret(d) => d.span,
            Top::Role(d) => d.span,
            Top::Identity(d) => d.span,
            Top::Service(d) => d.span,
            Top::Schedule(d) => d.span,
            Top::OAuthClient(d) => d.span,
            Top::Notify(d) => d.span,
        }
    }
}

/// A member of a service.
enum Member<'a> {
    Var(&'a VarDecl),
    Action(&'a ActionDecl),
    Endpoint(&'a EndpointDecl),
}

struct Printer<'t> {
    text: &'t str,
    comments: Vec<Range<usize>>,
    /// The first comment not yet printed.
    next_comment: usize,
    out: String,
    indent: usize,
    /// Where in the source the last printed thing ended.
    last_end: usize,
}

impl Printer<'_> {
    fn program(&mut self, program: &Program) {
        let mut items: Vec<Top<'_>> = Vec::new();
        items.extend(program.secrets.iter().map(Top::Secret));
        items.extend(program.roles.iter().map(Top::Role));
        items.extend(program.identities.iter().map(Top::Identity));
        items.extend(program.services.iter().map(Top::Service));
        items.extend(program.schedules.iter().map(Top::Schedule));
        items.extend(program.oauth_clients.iter().map(Top::OAuthClient));
        items.extend(program.notifies.iter().map(Top::Notify));
        items.sort_by_key(|i| i.span().start);
        let mut previous_one_line = false;
        for (index, item) in items.iter().enumerate() {
            let one_line = self.is_one_line(item);
            // Multi-line declarations stand apart; one-line ones may form groups.
            let blank = if index == 0 {
                Blank::Never
            } else if one_line && previous_one_line {
                Blank::AsWritten
            } else {
                Blank::Always
            };
            self.leading(item.span().start as usize, blank);
            match item {
                Top::Secret(secret) => {
                    let width = self.secret_run_width(&items, index);
                    self.secret(secret, width);
                }
                Top::Role(role) => self.role(role),
                Top::Identity(identity) => self.identity(identity),
                Top::Service(service) => self.service(service),
                Top::Schedule(schedule) => self.schedule(schedule),
                Top::OAuthClient(client) => self.oauth_client(client),
                Top::Notify(notify) => self.notify(notify),
            }
            self.finish_line(item.span().end());
            previous_one_line = one_line;
        }
        self.trailing_comments(self.text.len(), !items.is_empty());
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn is_one_line(&self, item: &Top<'_>) -> bool {
        match item {
            Top::Secret(s) => s.description.is_none() && !self.has_comment(s.span),
            Top::Identity(i) => i.description.is_none() && !self.has_comment(i.span),
            _ => false,
        }
    }

    /// The name width to align the `{` of a run of one-line secrets to.
    fn secret_run_width(&self, items: &[Top<'_>], index: usize) -> usize {
        let one_line_secret = |i: usize| match &items[i] {
            Top::Secret(s) if self.is_one_line(&items[i]) => Some(*s),
            _ => None,
        };
        let Some(this) = one_line_secret(index) else {
            return 0;
        };
        // A run: adjacent one-line secrets with neither a blank line nor a
        // comment between them.
        let adjacent = |a: &SecretDecl, b: &SecretDecl| {
            let gap = &self.text[a.span.end()..b.span.start as usize];
            // A comment at the end of a's line does not break the run; one
            // on a line of its own does.
            let own_lines = gap.split_once('\n').map_or("", |(_, rest)| rest);
            gap.chars().filter(|c| *c == '\n').count() <= 1 && !own_lines.contains("//")
        };
        let mut start = index;
        while start > 0
            && let (Some(before), Some(current)) =
                (one_line_secret(start - 1), one_line_secret(start))
            && adjacent(before, current)
        {
            start -= 1;
        }
        let mut end = index;
        while end + 1 < items.len()
            && let (Some(current), Some(after)) = (one_line_secret(end), one_line_secret(end + 1))
            && adjacent(current, after)
        {
            end += 1;
        }
        (start..=end)
            .filter_map(one_line_secret)
            .map(|s| s.name.text.chars().count())
            .max()
            .unwrap_or(this.name.text.len())
    }

    // ------------------------------------------------------------ comments and lines

    fn has_comment(&self, span: Span) -> bool {
        let range = span.range();
        self.comments
            .iter()
            .any(|c| c.start > range.start && c.start < range.end)
    }

    /// `leading` for the member `index` of a block: no blank line before
    /// the first, blank lines as written before the others.
    fn leading_member(&mut self, index: usize, start: usize) {
        let blank = if index == 0 {
            Blank::Never
        } else {
            Blank::AsWritten
        };
        self.leading(start, blank);
    }

    /// Prints the comments before `start` on lines of their own, then the
    /// indentation of a new line, with a blank line where one belongs.
    fn leading(&mut self, start: usize, blank: Blank) {
        let mut first = true;
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if comment.start >= start {
                break;
            }
            self.next_comment += 1;
            let wanted = if first { blank } else { Blank::AsWritten };
            self.new_line(comment.start, wanted);
            self.out.push_str(self.text[comment.clone()].trim_end());
            self.last_end = comment.end;
            first = false;
        }
        let wanted = if first { blank } else { Blank::AsWritten };
        self.new_line(start, wanted);
        self.last_end = start;
    }

    /// Starts a new line at the current indentation, after a blank line when
    /// `blank` asks for one.
    fn new_line(&mut self, next: usize, blank: Blank) {
        let gap = self.text.get(self.last_end..next).unwrap_or("");
        let written_blank = gap.chars().filter(|c| *c == '\n').count() >= 2;
        let at_start = self.out.is_empty();
        if !at_start {
            if !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            let blank = match blank {
                Blank::Never => false,
                Blank::Always => true,
                Blank::AsWritten => written_blank,
            };
            if blank && !self.out.ends_with("\n\n") {
                self.out.push('\n');
            }
        }
        self.push_indent();
    }

    fn push_indent(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    /// Ends the line of a node: a comment that followed it on the same
    /// source line stays at the end of this line.
    fn finish_line(&mut self, end: usize) {
        self.last_end = self.last_end.max(end);
        if let Some(comment) = self.comments.get(self.next_comment).cloned() {
            let between = self.text.get(end..comment.start).unwrap_or("\n");
            // Only a comment that directly follows the node on its line.
            if comment.start >= end && between.chars().all(|c| c == ' ' || c == '\t') {
                self.next_comment += 1;
                self.out.push(' ');
                self.out.push_str(self.text[comment.clone()].trim_end());
                self.last_end = comment.end;
            }
        }
    }

    /// Prints the comments left before `end` (the end of a block, or of the
    /// file), each on its own line.
    fn trailing_comments(&mut self, end: usize, after_content: bool) {
        let mut first = true;
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if comment.start >= end {
                break;
            }
            self.next_comment += 1;
            let blank = if first && !after_content {
                Blank::Never
            } else {
                Blank::AsWritten
            };
            self.new_line(comment.start, blank);
            self.out.push_str(self.text[comment.clone()].trim_end());
            self.last_end = comment.end;
            first = false;
        }
    }

    /// `{`, the children printed by `body`, the comments before the closing
    /// brace, and `}`.
    fn block(&mut self, span: Span, body: impl FnOnce(&mut Self)) {
        self.out.push_str(" {");
        self.indent += 1;
        body(self);
        let close = span.end().saturating_sub(1);
        self.trailing_comments(close, true);
        self.indent -= 1;
        self.out.push('\n');
        self.push_indent();
        self.out.push('}');
        self.last_end = span.end();
    }

    // ------------------------------------------------------------ declarations

    fn secret(&mut self, secret: &SecretDecl, width: usize) {
        self.out.push_str("secret ");
        self.out.push_str(&secret.name.text);
        let refresher = secret.refreshed_by.as_ref().map(refreshed_by);
        let mut flags: Vec<&str> = Vec::new();
        if secret.environment_specific {
            flags.push("environment_specific");
        }
        if secret.locked.is_some() {
            flags.push("locked");
        }
        if secret.per_account {
            flags.push("per_account");
        }
        if let Some(refresher) = &refresher {
            flags.push(refresher);
        }
        if secret.description.is_none() && !self.has_comment(secret.span) {
            let pad = width.saturating_sub(secret.name.text.chars().count());
            self.out.push_str(&" ".repeat(pad));
            if flags.is_empty() {
                self.out.push_str(" { }");
            } else {
                self.out.push_str(&format!(" {{ {} }}", flags.join(" ")));
            }
            self.last_end = secret.span.end();
            return;
        }
        self.block(secret.span, |p| {
            let mut first = true;
            for (name, span) in &secret.layout {
                let line = match *name {
                    "environment_specific" | "locked" | "per_account" => name.to_string(),
                    "refreshed_by" => match &refresher {
                        Some(refresher) => refresher.clone(),
                        None => continue,
                    },
                    _ => match &secret.description {
                        Some(d) => format!("description {}", plain(&d.value)),
                        None => continue,
                    },
                };
                p.leading(
                    span.start as usize,
                    if first {
                        Blank::Never
                    } else {
                        Blank::AsWritten
                    },
                );
                p.out.push_str(&line);
                p.finish_line(span.end());
                first = false;
            }
        });
    }

    fn role(&mut self, role: &RoleDecl) {
        self.out.push_str("role ");
        self.out.push_str(&role.name.text);
        let mut lines: Vec<(Span, String)> =
            role.grants.iter().map(|g| (g.span, grant(g))).collect();
        if let Some(description) = &role.description {
            let span = role
                .layout
                .iter()
                .find(|(n, _)| *n == "description")
                .map_or(description.span, |(_, s)| *s);
            lines.push((span, format!("description {}", plain(&description.value))));
        }
        lines.sort_by_key(|(span, _)| span.start);
        self.block(role.span, |p| p.lines(&lines));
    }

    fn identity(&mut self, identity: &IdentityDecl) {
        self.out.push_str(identity.kind.keyword());
        self.out.push(' ');
        self.out.push_str(&identity.name.text);
        let roles = if identity.roles.is_empty() {
            "roles".to_string()
        } else {
            format!(
                "roles {}",
                identity
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        if identity.description.is_none() && !self.has_comment(identity.span) {
            if identity.roles.is_empty() {
                self.out.push_str(" { }");
            } else {
                self.out.push_str(&format!(" {{ {roles} }}"));
            }
            self.last_end = identity.span.end();
            return;
        }
        let mut lines = Vec::new();
        for (name, span) in &identity.layout {
            match *name {
                "roles" => lines.push((*span, roles.clone())),
                _ => {
                    if let Some(d) = &identity.description {
                        lines.push((*span, format!("description {}", plain(&d.value))));
                    }
                }
            }
        }
        self.block(identity.span, |p| p.lines(&lines));
    }

    /// Lines, each at its position, blank lines as written.
    fn lines(&mut self, lines: &[(Span, String)]) {
        for (index, (span, line)) in lines.iter().enumerate() {
            self.leading_member(index, span.start as usize);
            self.out.push_str(line);
            self.finish_line(span.end());
        }
    }

    fn service(&mut self, service: &ServiceDecl) {
        self.out.push_str("service ");
        self.out.push_str(&service.name.text);
        let mut members: Vec<(Span, Member<'_>)> = Vec::new();
        members.extend(service.vars.iter().map(|v| (v.span, Member::Var(v))));
        members.extend(service.actions.iter().map(|a| (a.span, Member::Action(a))));
        members.extend(
            service
                .endpoints
                .iter()
                .map(|e| (e.span, Member::Endpoint(e))),
        );
        members.sort_by_key(|(span, _)| span.start);
        self.block(service.span, |p| {
            for (index, (span, member)) in members.iter().enumerate() {
                p.leading_member(index, span.start as usize);
                match member {
                    Member::Var(var) => {
                        p.out
                            .push_str(&format!("var {}: {}", var.name.text, var.type_name.text));
                    }
                    Member::Action(action) => {
                        p.out.push_str("action ");
                        p.out.push_str(&action.name.text);
                        p.statements(&action.body);
                    }
                    Member::Endpoint(endpoint) => p.endpoint(endpoint),
                }
                p.finish_line(span.end());
            }
        });
    }

    fn endpoint(&mut self, endpoint: &EndpointDecl) {
        self.out.push_str("endpoint ");
        self.out.push_str(&endpoint.name.text);
        let mut lines = Vec::new();
        for (name, span) in &endpoint.layout {
            let line = match *name {
                "description" => endpoint
                    .description
                    .as_ref()
                    .map(|d| format!("description {}", plain(&d.value))),
                "methods" => Some(
                    std::iter::once("methods")
                        .chain(endpoint.methods.iter().map(|m| m.as_str()))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                "log" => endpoint
                    .log
                    .as_ref()
                    .map(|l| format!("log {}", if l.enabled { "enabled" } else { "disabled" })),
                "on_failure" | "on_recovery" => None,
                "params" => {
                    if let Some(params) = &endpoint.params {
                        lines.push((*span, Item::Params(params)));
                    }
                    None
                }
                "response" => {
                    if let Some(response) = &endpoint.response {
                        lines.push((*span, Item::Response(response)));
                    }
                    None
                }
                _ => endpoint
                    .process
                    .as_ref()
                    .map(|a| format!("process {}", a.text)),
            };
            if let Some(line) = line {
                lines.push((*span, Item::Line(line)));
            }
        }
        for (keyword, hook) in [
            ("on_failure", &endpoint.on_failure),
            ("on_recovery", &endpoint.on_recovery),
        ] {
            if let Some(hook) = hook {
                lines.push((hook.span, Item::Hook(keyword, &hook.body)));
            }
        }
        lines.sort_by_key(|(span, _)| span.start);
        self.block(endpoint.span, |p| p.items(&lines));
    }

    /// Properties on a line each, and hooks with their statements.
    fn items(&mut self, items: &[(Span, Item<'_>)]) {
        for (index, (span, item)) in items.iter().enumerate() {
            self.leading_member(index, span.start as usize);
            match item {
                Item::Line(line) => self.out.push_str(line),
                Item::Hook(keyword, body) => {
                    self.out.push_str(keyword);
                    self.statements(body);
                }
                Item::Fields(keyword, fields) => self.field_block(keyword, *span, fields, false),
                Item::Params(params) => {
                    self.out.push_str("params");
                    let lines: Vec<(Span, String)> = params
                        .iter()
                        .map(|p| {
                            let mut line = format!("{}: {}", p.name.text, p.type_name.text);
                            if p.optional {
                                line.push('?');
                            }
                            if let Some(default) = &p.default {
                                line.push_str(&format!(" = {}", expr(default)));
                            }
                            (p.span, line)
                        })
                        .collect();
                    self.block(*span, |p| p.lines(&lines));
                }
                Item::Response(response) => {
                    self.out.push_str("response");
                    let mut members: Vec<(Span, ResponseMember<'_>)> = Vec::new();
                    if let Some(status) = &response.status {
                        members.push((status.span, ResponseMember::Status(status.value)));
                    }
                    match &response.body {
                        Some(ResponseBody::Json { fields, span }) => {
                            members.push((*span, ResponseMember::Json(fields)))
                        }
                        Some(ResponseBody::Expr(body)) => {
                            members.push((body.span, ResponseMember::Body(body)))
                        }
                        None => {}
                    }
                    if let Some(first) = response.reveals.first() {
                        members.push((first.span, ResponseMember::Reveals(&response.reveals)));
                    }
                    members.sort_by_key(|(s, _)| s.start);
                    self.block(*span, |p| {
                        for (index, (mspan, member)) in members.iter().enumerate() {
                            p.leading_member(index, mspan.start as usize);
                            match member {
                                ResponseMember::Status(status) => {
                                    p.out.push_str(&format!("status {status}"))
                                }
                                ResponseMember::Json(fields) => {
                                    p.field_block("json", *mspan, fields, false)
                                }
                                ResponseMember::Body(body) => {
                                    p.out.push_str(&format!("body {}", expr(body)))
                                }
                                ResponseMember::Reveals(names) => p.out.push_str(&format!(
                                    "reveals {}",
                                    names
                                        .iter()
                                        .map(|n| n.text.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            }
                            p.finish_line(mspan.end());
                        }
                    });
                }
            }
            self.finish_line(span.end());
        }
    }

    fn schedule(&mut self, schedule: &ScheduleDecl) {
        self.out.push_str("schedule ");
        self.out.push_str(&schedule.name.text);
        let mut lines = Vec::new();
        for (name, span) in &schedule.layout {
            let line = match *name {
                "endpoint" => schedule
                    .endpoint
                    .as_ref()
                    .map(|e| format!("endpoint {}", e.display())),
                "service_account" => schedule
                    .service_account
                    .as_ref()
                    .map(|a| format!("service_account {}", a.text)),
                "every" => schedule.every.as_ref().map(|d| format!("every {}", d.text)),
                "cron" => schedule
                    .cron
                    .as_ref()
                    .map(|c| format!("cron {}", plain(&c.value))),
                "time_zone" => schedule
                    .time_zone
                    .as_ref()
                    .map(|z| format!("time_zone {}", plain(&z.value))),
                "before_expiry" => schedule
                    .before_expiry
                    .as_ref()
                    .map(|b| format!("before_expiry {} {}", b.secret.text, b.lead.text)),
                "for_each_connection" => schedule
                    .for_each_connection
                    .as_ref()
                    .map(|c| format!("for_each_connection {}", c.text)),
                "concurrency" => schedule
                    .concurrency
                    .as_ref()
                    .map(|n| format!("concurrency {}", n.value)),
                "disabled" => Some("disabled".to_string()),
                "on_failure" | "on_recovery" => None,
                "params" => {
                    lines.push((*span, Item::Fields("params", &schedule.params)));
                    None
                }
                _ => schedule
                    .description
                    .as_ref()
                    .map(|d| format!("description {}", plain(&d.value))),
            };
            if let Some(line) = line {
                lines.push((*span, Item::Line(line)));
            }
        }
        for (keyword, hook) in [
            ("on_failure", &schedule.on_failure),
            ("on_recovery", &schedule.on_recovery),
        ] {
            if let Some(hook) = hook {
                lines.push((hook.span, Item::Hook(keyword, &hook.body)));
            }
        }
        lines.sort_by_key(|(span, _)| span.start);
        self.block(schedule.span, |p| p.items(&lines));
    }

    /// An `oauth_client`: one property a line, the values aligned.
    fn oauth_client(&mut self, client: &OAuthClientDecl) {
        self.out.push_str("oauth_client ");
        self.out.push_str(&client.name.text);
        let value = |name: &str| -> Option<String> {
            Some(match name {
                "provider" => {
                    let provider = client.provider.as_ref()?;
                    let mut text = provider.name.text.clone();
                    if !provider.args.is_empty() {
                        let args: Vec<String> = provider
                            .args
                            .iter()
                            .map(|a| format!("{} = {}", a.name.value, expr(&a.value)))
                            .collect();
                        text.push_str(&format!("({})", args.join(", ")));
                    }
                    text
                }
                "issuer" => expr(client.issuer.as_ref()?),
                "authorize_url" => expr(client.authorize_url.as_ref()?),
                "token_url" => expr(client.token_url.as_ref()?),
                "device_authorization_url" => expr(client.device_authorization_url.as_ref()?),
                "revocation_url" => expr(client.revocation_url.as_ref()?),
                "refresh_token_ttl" => client.refresh_token_ttl.as_ref()?.text.clone(),
                "client_id" => expr(client.client_id.as_ref()?),
                "client_auth" => client_auth(client.client_auth.as_ref()?),
                "scopes" => plain(&client.scopes.as_ref()?.value),
                "keep_alive" => client.keep_alive.as_ref()?.text.clone(),
                "expiry_warning" => client.expiry_warning.as_ref()?.text.clone(),
                "return_to" => client
                    .return_to
                    .iter()
                    .map(|url| plain(&url.value))
                    .collect::<Vec<_>>()
                    .join(" "),
                // A flag: the word alone.
                "per_account" => String::new(),
                _ => plain(&client.description.as_ref()?.value),
            })
        };
        let width = client
            .layout
            .iter()
            .filter(|(name, _)| *name != "stores" && *name != "per_account")
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        self.block(client.span, |p| {
            for (index, (name, span)) in client.layout.iter().enumerate() {
                if *name == "stores" {
                    let Some(stores) = &client.stores else {
                        continue;
                    };
                    p.leading_member(index, span.start as usize);
                    p.out.push_str("stores");
                    let entries: Vec<(Span, String, String)> = stores
                        .entries
                        .iter()
                        .map(|s| (s.span, s.field_name.text.clone(), s.secret.text.clone()))
                        .collect();
                    p.entries(stores.span, &entries);
                    p.finish_line(span.end());
                    continue;
                }
                let Some(value) = value(name) else {
                    continue;
                };
                p.leading_member(index, span.start as usize);
                p.out.push_str(name);
                if !value.is_empty() {
                    p.out.push_str(&" ".repeat(width - name.len() + 1));
                    p.out.push_str(&value);
                }
                p.finish_line(span.end());
            }
        });
    }

    /// A `notify`: one property a line, the values aligned.
    fn notify(&mut self, notify: &NotifyDecl) {
        self.out.push_str("notify ");
        self.out.push_str(&notify.name.text);
        let value = |name: &str| -> Option<String> {
            Some(match name {
                "url" => plain(&notify.url.as_ref()?.value),
                "secret" => format!("secret.{}", notify.secret.as_ref()?.text),
                "events" => {
                    let names: Vec<&str> = notify.events.iter().map(|e| e.as_str()).collect();
                    names.join(" ")
                }
                _ => plain(&notify.description.as_ref()?.value),
            })
        };
        let width = notify
            .layout
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        self.block(notify.span, |p| {
            for (index, (name, span)) in notify.layout.iter().enumerate() {
                let Some(value) = value(name) else {
                    continue;
                };
                p.leading_member(index, span.start as usize);
                p.out.push_str(name);
                if !value.is_empty() {
                    p.out.push_str(&" ".repeat(width - name.len() + 1));
                    p.out.push_str(&value);
                }
                p.finish_line(span.end());
            }
        });
    }

    // ------------------------------------------------------------ statements

    fn statements(&mut self, block: &Block) {
        self.block(block.span, |p| {
            for (index, statement) in block.statements.iter().enumerate() {
                p.leading_member(index, statement.span.start as usize);
                p.statement(statement);
                p.finish_line(statement.span.end());
            }
        });
    }

    fn statement(&mut self, statement: &Statement) {
        match &statement.kind {
            StatementKind::UpdateVariables { assignments } => {
                self.out.push_str("update service_variables");
                if let [only] = assignments.as_slice()
                    && !self.has_comment(statement.span)
                {
                    self.out.push_str(&format!(
                        " {{ {} = {} }}",
                        only.target.text,
                        expr(&only.value)
                    ));
                    self.last_end = statement.span.end();
                    return;
                }
                let lines: Vec<(Span, String)> = assignments
                    .iter()
                    .map(|a| (a.span, format!("{} = {}", a.target.text, expr(&a.value))))
                    .collect();
                self.block(statement.span, |p| p.lines(&lines));
            }
            StatementKind::WebRequest(request) => self.web_request(request),
            StatementKind::If(if_statement) => self.if_statement(if_statement),
            StatementKind::Foreach {
                item,
                iterable,
                body,
            } => {
                self.out
                    .push_str(&format!("foreach {} in {}", item.text, expr(iterable)));
                self.statements(body);
            }
            StatementKind::While {
                condition,
                max,
                body,
            } => {
                self.out
                    .push_str(&format!("while {} max {}", expr(condition), max.value));
                self.statements(body);
            }
            StatementKind::Break => self.out.push_str("break"),
            StatementKind::TokenGrant(grant) => self.out.push_str(&format!(
                "{} client({})",
                grant.grant.keyword(),
                grant.client.text
            )),
            StatementKind::UpdateSecrets { updates, grouped } => {
                if !grouped && let [update] = updates.as_slice() {
                    self.out.push_str("update_secret ");
                    self.secret_update(update, 0);
                    return;
                }
                self.out.push_str("update_secrets");
                let width = updates
                    .iter()
                    .filter(|u| u.layout.is_empty())
                    .map(|u| u.secret.text.chars().count())
                    .max()
                    .unwrap_or(0);
                self.block(statement.span, |p| {
                    for (index, update) in updates.iter().enumerate() {
                        p.leading_member(index, update.span.start as usize);
                        p.secret_update(update, width);
                        p.finish_line(update.span.end());
                    }
                });
            }
            StatementKind::RunService {
                endpoint,
                args,
                for_connection,
                as_account,
                into,
            } => {
                self.out
                    .push_str(&format!("run_service {}", endpoint.display()));
                if !args.is_empty() {
                    let args: Vec<String> = args
                        .iter()
                        .map(|a| format!("{} = {}", a.name.value, expr(&a.value)))
                        .collect();
                    self.out.push_str(&format!("({})", args.join(", ")));
                }
                if let Some(connection) = for_connection {
                    self.out
                        .push_str(&format!(" for_connection {}", expr(connection)));
                }
                if let Some(account) = as_account {
                    self.out.push_str(&format!(" as {}", account.text));
                }
                if let Some(into) = into {
                    self.out.push_str(&format!(" into {}", into.text));
                }
            }
            StatementKind::Sleep { duration } => {
                self.out.push_str(&format!("sleep {}", duration.text))
            }
            StatementKind::Log { message } => self.out.push_str(&format!("log {}", expr(message))),
            StatementKind::Throw { code, message } => {
                self.out
                    .push_str(&format!("throw {} {}", plain(&code.value), expr(message)));
            }
            StatementKind::Try { body, catches } => {
                self.out.push_str("try");
                self.statements(body);
                for catch in catches {
                    self.out.push_str(" catch");
                    match &catch.filter {
                        CatchFilter::Any => {}
                        CatchFilter::WebRequest { statuses } => {
                            self.out.push_str(" web_request_error");
                            for status in statuses {
                                self.out.push_str(&format!(" {}", status.value));
                            }
                        }
                        CatchFilter::Code(code) => {
                            self.out.push_str(&format!(" {}", plain(&code.value)))
                        }
                    }
                    self.statements(&catch.body);
                }
            }
        }
    }

    fn if_statement(&mut self, if_statement: &IfStatement) {
        self.out.push_str("if ");
        self.out.push_str(&expr(&if_statement.condition));
        self.statements(&if_statement.then_block);
        if let Some(else_block) = &if_statement.else_block {
            self.out.push_str(" else");
            match else_block.statements.as_slice() {
                // `else if`: the builder made an else block of just the `if`.
                [nested] if nested.span == else_block.span => {
                    if let StatementKind::If(inner) = &nested.kind {
                        self.out.push(' ');
                        self.if_statement(inner);
                        return;
                    }
                    self.statements(else_block);
                }
                _ => self.statements(else_block),
            }
        }
    }

    /// `NAME = value`, or the block form with `value` and `expires_in`.
    fn secret_update(&mut self, update: &SecretUpdate, width: usize) {
        self.out.push_str(&update.secret.text);
        if update.layout.is_empty() {
            let pad = width.saturating_sub(update.secret.text.chars().count());
            self.out.push_str(&" ".repeat(pad));
            self.out.push_str(" = ");
            self.out
                .push_str(&update.value.as_ref().map(expr).unwrap_or_default());
            self.last_end = update.span.end();
            return;
        }
        let mut fields: Vec<(Span, &str, String)> = Vec::new();
        for (name, span) in &update.layout {
            match *name {
                "value" => fields.push((
                    *span,
                    "value",
                    update.value.as_ref().map(expr).unwrap_or_default(),
                )),
                "expires_in" => fields.push((
                    *span,
                    "expires_in",
                    update.expires_in.as_ref().map(expr).unwrap_or_default(),
                )),
                _ => {}
            }
        }
        let block_span = update.span;
        self.block(block_span, |p| p.aligned(&fields));
    }

    /// `key = value` lines with their `=` aligned.
    fn aligned(&mut self, fields: &[(Span, &str, String)]) {
        let width = fields
            .iter()
            .map(|(_, k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (index, (span, key, value)) in fields.iter().enumerate() {
            self.leading_member(index, span.start as usize);
            self.out.push_str(key);
            self.out.push_str(&" ".repeat(width - key.chars().count()));
            self.out.push_str(" = ");
            self.out.push_str(value);
            self.finish_line(span.end());
        }
    }

    fn web_request(&mut self, request: &WebRequest) {
        self.out.push_str("web_request");
        self.block(request.span, |p| {
            for (index, (name, span)) in request.layout.iter().enumerate() {
                p.leading_member(index, span.start as usize);
                match *name {
                    "method" => {
                        let method = request.method.as_ref().map_or("GET", |m| m.as_str());
                        p.out.push_str(&format!("method {method}"));
                    }
                    "url" => p.out.push_str(&format!(
                        "url {}",
                        request.url.as_ref().map(expr).unwrap_or_default()
                    )),
                    "query" => p.field_block("query", *span, &request.query, false),
                    "headers" => p.field_block("headers", *span, &request.headers, true),
                    "form" | "json" | "body" => match &request.body {
                        Some(RequestBody::Form { fields, span }) => {
                            p.field_block("form", *span, fields, false)
                        }
                        Some(RequestBody::Json { fields, span }) => {
                            p.field_block("json", *span, fields, false)
                        }
                        Some(RequestBody::Raw { value, .. }) => {
                            p.out.push_str(&format!("body {}", expr(value)))
                        }
                        None => {}
                    },
                    "auth" => match &request.auth {
                        Some(Auth::Basic { user, password, .. }) => {
                            p.out.push_str(&format!(
                                "auth basic({}, {})",
                                expr(user),
                                expr(password)
                            ));
                        }
                        Some(Auth::Bearer { token, .. }) => {
                            p.out.push_str(&format!("auth bearer({})", expr(token)))
                        }
                        Some(Auth::Client { client, .. }) => {
                            p.out.push_str(&format!("auth client({})", client.text))
                        }
                        Some(Auth::PrivateKeyJwt(jwt)) => {
                            p.out.push_str("auth ");
                            p.call("private_key_jwt", &private_key_jwt_arguments(jwt));
                        }
                        Some(Auth::JwtBearer(jwt)) => {
                            p.out.push_str("auth ");
                            p.call("jwt_bearer", &jwt_bearer_arguments(jwt));
                        }
                        None => {}
                    },
                    "timeout" => {
                        if let Some(timeout) = &request.timeout {
                            p.out.push_str(&format!("timeout {}", timeout.text));
                        }
                    }
                    "retry" => {
                        if let Some(retry) = &request.retry {
                            p.retry(retry);
                        }
                    }
                    "redirects" => {
                        if let Some(redirects) = &request.redirects {
                            p.out.push_str(&format!("redirects {}", redirects.value));
                            if request.cross_origin.is_some() {
                                p.out.push_str(" cross_origin");
                            }
                        }
                    }
                    _ => p.result_mapping(*span, &request.result_mapping),
                }
                p.finish_line(span.end());
            }
        });
    }

    /// `NAME(a, b)` on one line when it fits in 100 columns; else one
    /// argument a line, each with a comma.
    fn call(&mut self, name: &str, arguments: &[String]) {
        let one_line = format!("{name}({})", arguments.join(", "));
        let column = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
        if column + one_line.len() <= 100 {
            self.out.push_str(&one_line);
            return;
        }
        self.out.push_str(name);
        self.out.push('(');
        self.indent += 1;
        for argument in arguments {
            self.out.push('\n');
            self.push_indent();
            self.out.push_str(argument);
            self.out.push(',');
        }
        self.indent -= 1;
        self.out.push('\n');
        self.push_indent();
        self.out.push(')');
    }

    fn retry(&mut self, retry: &Retry) {
        let settings: Vec<(Span, String)> = retry
            .layout
            .iter()
            .filter_map(|(name, span)| match *name {
                "attempts" => retry
                    .attempts
                    .as_ref()
                    .map(|a| (*span, format!("attempts {}", a.value))),
                _ => retry
                    .max_time
                    .as_ref()
                    .map(|m| (*span, format!("max_time {}", m.text))),
            })
            .collect();
        self.out.push_str("retry");
        if settings.len() <= 1 && !self.has_comment(retry.span) {
            match settings.first() {
                Some((_, setting)) => self.out.push_str(&format!(" {{ {setting} }}")),
                None => self.out.push_str(" { }"),
            }
            self.last_end = retry.span.end();
            return;
        }
        self.block(retry.span, |p| p.lines(&settings));
    }

    /// `query`, `headers`, `form` or `json` with their fields: one line for
    /// one field, else one field a line with the `=` aligned.
    fn field_block(&mut self, keyword: &str, span: Span, fields: &[Field], quote_names: bool) {
        self.out.push_str(keyword);
        let entries: Vec<(Span, String, String)> = fields
            .iter()
            .map(|f| {
                (
                    f.span,
                    field_name(&f.name.value, quote_names),
                    expr(&f.value),
                )
            })
            .collect();
        self.entries(span, &entries);
    }

    fn result_mapping(&mut self, span: Span, mappings: &[Mapping]) {
        self.out.push_str("result_mapping");
        let entries: Vec<(Span, String, String)> = mappings
            .iter()
            .map(|m| {
                let source = match &m.source {
                    MappingSource::JsonPath { path, .. } => path.clone(),
                    MappingSource::Header { name, .. } => format!("header {}", plain(&name.value)),
                    MappingSource::Status { .. } => "status".into(),
                    MappingSource::Body { .. } => "body".into(),
                };
                (m.span, m.target.text.clone(), source)
            })
            .collect();
        self.entries(span, &entries);
    }

    fn entries(&mut self, span: Span, entries: &[(Span, String, String)]) {
        if entries.len() <= 1 && !self.has_comment(span) {
            match entries.first() {
                Some((_, key, value)) => self.out.push_str(&format!(" {{ {key} = {value} }}")),
                None => self.out.push_str(" { }"),
            }
            self.last_end = span.end();
            return;
        }
        let fields: Vec<(Span, &str, String)> = entries
            .iter()
            .map(|(s, k, v)| (*s, k.as_str(), v.clone()))
            .collect();
        self.block(span, |p| p.aligned(&fields));
    }
}

/// Whether to put a blank line before a line.
#[derive(Clone, Copy)]
enum Blank {
    Never,
    Always,
    AsWritten,
}

fn client_auth(auth: &ClientAuth) -> String {
    match auth {
        ClientAuth::SecretBasic { secret, .. } => format!("client_secret_basic({})", expr(secret)),
        ClientAuth::SecretPost { secret, .. } => format!("client_secret_post({})", expr(secret)),
        ClientAuth::PrivateKeyJwt(jwt) => {
            format!(
                "private_key_jwt({})",
                private_key_jwt_arguments(jwt).join(", ")
            )
        }
        ClientAuth::None { .. } => "none".into(),
    }
}

/// In an `oauth_client` the key comes first, unnamed; on a request every
/// argument is named.
fn private_key_jwt_arguments(jwt: &PrivateKeyJwt) -> Vec<String> {
    let mut out = Vec::new();
    match &jwt.client_id {
        Some(client_id) => {
            out.push(format!("client_id = {}", expr(client_id)));
            out.push(format!("key = {}", expr(&jwt.key)));
        }
        None => out.push(expr(&jwt.key)),
    }
    if let Some(alg) = &jwt.alg {
        out.push(format!("alg = {}", plain(&alg.value)));
    }
    if let Some(kid) = &jwt.kid {
        out.push(format!("kid = {}", expr(kid)));
    }
    out
}

fn jwt_bearer_arguments(jwt: &JwtBearer) -> Vec<String> {
    let mut out = vec![format!("key = {}", expr(&jwt.key))];
    for (name, value) in [
        ("issuer", &jwt.issuer),
        ("subject", &jwt.subject),
        ("audience", &jwt.audience),
        ("scope", &jwt.scope),
    ] {
        if let Some(value) = value {
            out.push(format!("{name} = {}", expr(value)));
        }
    }
    if let Some(alg) = &jwt.alg {
        out.push(format!("alg = {}", plain(&alg.value)));
    }
    if let Some(kid) = &jwt.kid {
        out.push(format!("kid = {}", expr(kid)));
    }
    out
}

/// `refreshed_by SERVICE.ENDPOINT as ACCOUNT min_valid DURATION`.
fn refreshed_by(refresher: &RefreshedBy) -> String {
    let mut out = format!(
        "refreshed_by {} as {}",
        refresher.endpoint.display(),
        refresher.service_account.text
    );
    if let Some(min_valid) = &refresher.min_valid {
        out.push_str(" min_valid ");
        out.push_str(&min_valid.text);
    }
    out
}

fn grant(grant: &Grant) -> String {
    match &grant.kind {
        GrantKind::Run(pattern) => format!(
            "grant run {}.{}",
            pattern.service.text,
            pattern.endpoint.as_ref().map_or("*", |e| e.as_str())
        ),
        GrantKind::UpdateSecret(secret) => format!("grant update_secret {}", secret.text),
        GrantKind::ReadSecret(secret) => format!("grant read_secret {}", secret.text),
        GrantKind::ReadStatus(client) => format!("grant read_status {}", client.text),
        GrantKind::Connect(client) => format!("grant connect {}", client.text),
    }
}

fn field_name(name: &str, quoted: bool) -> String {
    let is_ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_ident && !quoted {
        name.to_string()
    } else {
        plain(name)
    }
}

/// A string without interpolation, quoted and escaped.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    escape_into(&mut out, text, false);
    out.push('"');
    out
}

fn escape_into(out: &mut String, text: &str, interpolating: bool) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if interpolating && chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
}

/// An expression on one line, with the parentheses its structure needs.
pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::Not { .. } => NOT,
        _ => NOT + 1,
    }
}

/// A member of an endpoint or schedule block.
enum Item<'a> {
    Line(String),
    Hook(&'static str, &'a Block),
    Fields(&'static str, &'a [Field]),
    Params(&'a [ParamDecl]),
    Response(&'a ResponseDecl),
}

/// A member of a `response` block.
enum ResponseMember<'a> {
    Status(u64),
    Json(&'a [Field]),
    Body(&'a Expr),
    Reveals(&'a [Name]),
}

/// `!` binds tighter than any binary operator.
const NOT: u8 = 6;

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::String { parts } => {
            out.push('"');
            for part in parts {
                match part {
                    StringPart::Text { value } => escape_into(out, value, true),
                    StringPart::Interpolation { expr } => {
                        out.push_str("${");
                        write_expr(out, expr);
                        out.push('}');
                    }
                }
            }
            out.push('"');
        }
        ExprKind::Number { value } => out.push_str(&number(*value)),
        ExprKind::Duration { millis } => out.push_str(&crate::syntax::duration::format(
            std::time::Duration::from_millis(*millis),
        )),
        ExprKind::Bool { value } => out.push_str(if *value { "true" } else { "false" }),
        ExprKind::Null => out.push_str("null"),
        ExprKind::Variable { name } => out.push_str(&name.text),
        ExprKind::Secret { name } => {
            out.push_str("secret.");
            out.push_str(&name.text);
        }
        ExprKind::Param { name } => {
            out.push_str("param.");
            out.push_str(&name.text);
        }
        ExprKind::Error { field } => {
            out.push_str("error.");
            out.push_str(&field.text);
        }
        ExprKind::Run { field } => {
            out.push_str("run.");
            out.push_str(&field.text);
        }
        ExprKind::Connection { field } => match field {
            ConnectionField::Id => out.push_str("connection.id"),
            ConnectionField::Tag(key) => {
                out.push_str("connection.tags.");
                out.push_str(&key.text);
            }
        },
        ExprKind::Call { function, args } => {
            out.push_str(&function.text);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, arg);
            }
            out.push(')');
        }
        ExprKind::Not { operand } => {
            out.push('!');
            wrapped(out, operand, precedence(operand) < NOT);
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let own = precedence(e);
            wrapped(out, lhs, precedence(lhs) < own);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            // Operators group to the left: a right operand of the same
            // precedence needs its parentheses.
            wrapped(out, rhs, precedence(rhs) <= own);
        }
    }
}

fn wrapped(out: &mut String, e: &Expr, parens: bool) {
    if parens {
        out.push('(');
        write_expr(out, e);
        out.push(')');
    } else {
        write_expr(out, e);
    }
}

/// A number as the grammar reads it back: `3600`, `-1`, `0.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        // `{}` prints the shortest text that reads back as the same number,
        // but never with an exponent for values the grammar can write.
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_are_already_formatted() {
        for path in [
            "examples/hubspot_refresh.svc",
            "examples/graph_client_credentials.svc",
            "examples/quickstart/quickstart.svc",
        ] {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path),
            )
            .unwrap();
            let formatted = format(&text).unwrap();
            if formatted != text {
                let first = text
                    .lines()
                    .zip(formatted.lines())
                    .position(|(a, b)| a != b);
                panic!(
                    "{path} is not formatted; first difference at line {:?}:\n{formatted}",
                    first.map(|l| l + 1)
                );
            }
        }
    }

    #[test]
    fn parentheses_only_where_needed() {
        let (program, _) = syntax::parse_file(
            FileId(0),
            "service s { action a { log (a || b) && !(c == d) && (e < f) || (g || h) } }",
        );
        let StatementKind::Log { message } =
            &program.services[0].actions[0].body.statements[0].kind
        else {
            panic!()
        };
        assert_eq!(expr(message), "(a || b) && !(c == d) && e < f || (g || h)");
    }
}
