//! A hand-written parser of grammar/svc.pest: the same language, the same
//! tree, several times faster than pest (`cargo bench --bench front_end`).
//!
//! grammar/svc.pest stays the language's specification. This parser reads
//! each rule as pest does and records the nodes pest's pairs record: one
//! per visible rule, keywords included, with pest's start and end (a rule
//! that ends in an empty repetition ends after the blanks before it, as in
//! pest). What it refuses, pest reads again ([`super::parser`]): pest
//! explains syntax errors, and decides the texts nested deeper than this
//! parser goes. A test compares both parsers' trees over every program of
//! the repository and random edits of them (`tests` below).
//!
//! How pest's operators read here, in rules that are not atomic:
//! `a ~ b` is `a && p.s() && b` (`s` skips blanks and comments); `a*` is
//! [`Parser::rep`] (blanks between the repetitions, none after the last);
//! a choice tries its alternatives in the grammar's order, each restoring
//! the position when it fails. In atomic rules (`@`, `$`) nothing is
//! skipped, and an `@` rule records no node inside it.

use super::parser::Rule;
use super::tree::{Node, Tree};

/// How deeply blocks, `else` chains, expressions and JSONPath brackets may
/// nest before this parser gives the text to pest. Each of the builder's
/// levels (`build::MAX_DEPTH`, 64) counts at most twice here (`else { }` is
/// an `else` and a block), so every text the builder accepts is read here.
const MAX_NESTING: usize = 160;

/// Why the parser did not read a declaration.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The text does not follow the grammar.
    Syntax,
    /// Nested deeper than [`MAX_NESTING`] (or a text of 4 GiB, which no
    /// program file is): pest decides.
    LeftToPest,
}

/// Parses the declaration at the start of `text` (after blanks and
/// comments), or its end, as pest's `next_item` does.
pub fn parse_next_item(text: &str) -> Result<Tree<'_>, Refused> {
    if text.len() >= u32::MAX as usize {
        return Err(Refused::LeftToPest);
    }
    let mut parser = Parser {
        b: text.as_bytes(),
        pos: 0,
        nodes: Vec::with_capacity(text.len().min(4096) / 4),
        depth: 0,
        too_deep: false,
    };
    let matched = parser.next_item();
    if parser.too_deep {
        return Err(Refused::LeftToPest);
    }
    if !matched {
        return Err(Refused::Syntax);
    }
    Ok(Tree::new(text, parser.nodes))
}

struct Parser<'t> {
    b: &'t [u8],
    pos: usize,
    nodes: Vec<Node>,
    depth: usize,
    /// Set once nesting passed [`MAX_NESTING`]: the parse is abandoned.
    too_deep: bool,
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The length of the UTF-8 character that starts with byte `c`.
fn char_len(c: u8) -> usize {
    match c {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

impl Parser<'_> {
    // ------------------------------------------------------------ primitives

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.pos + ahead).copied()
    }

    fn at_word_end(&self) -> bool {
        !self.peek().is_some_and(is_ident_char)
    }

    /// Blanks and comments (`WHITESPACE`, `COMMENT`); always succeeds.
    fn s(&mut self) -> bool {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t'..=b'\r' => self.pos += 1,
                b'/' if self.peek_at(1) == Some(b'/') => {
                    self.pos += 2;
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        true
    }

    fn lit(&mut self, literal: &[u8]) -> bool {
        if self.b[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    /// A literal that is not followed by a name's character (the `kw_*`
    /// rules' shape), consumed; nothing consumed when it does not match.
    fn word(&mut self, word: &[u8]) -> bool {
        if self.b[self.pos..].starts_with(word)
            && !self
                .b
                .get(self.pos + word.len())
                .is_some_and(|&c| is_ident_char(c))
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Whether `word` stands here as a whole word, consuming nothing.
    fn sees_word(&self, word: &[u8]) -> bool {
        self.b[self.pos..].starts_with(word)
            && !self
                .b
                .get(self.pos + word.len())
                .is_some_and(|&c| is_ident_char(c))
    }

    fn leaf(&mut self, rule: Rule, start: usize) -> bool {
        let next = self.nodes.len() as u32 + 1;
        self.nodes.push(Node {
            rule,
            start: start as u32,
            end: self.pos as u32,
            next,
        });
        true
    }

    /// An atomic keyword rule: `kw_x = @{ "x" ~ !(ASCII_ALPHANUMERIC | "_") }`.
    fn kw(&mut self, rule: Rule, word: &[u8]) -> bool {
        let start = self.pos;
        self.word(word) && self.leaf(rule, start)
    }

    /// A rule that records a node, with the nodes its body records inside.
    fn node(&mut self, rule: Rule, body: impl FnOnce(&mut Self) -> bool) -> bool {
        let start = self.pos;
        let index = self.nodes.len();
        self.nodes.push(Node {
            rule,
            start: start as u32,
            end: 0,
            next: 0,
        });
        if body(self) {
            let next = self.nodes.len() as u32;
            let node = &mut self.nodes[index];
            node.end = self.pos as u32;
            node.next = next;
            true
        } else {
            self.pos = start;
            self.nodes.truncate(index);
            false
        }
    }

    /// A sequence that leaves nothing behind when it fails.
    fn attempt(&mut self, body: impl FnOnce(&mut Self) -> bool) -> bool {
        let (pos, len) = (self.pos, self.nodes.len());
        if body(self) {
            true
        } else {
            self.pos = pos;
            self.nodes.truncate(len);
            false
        }
    }

    /// `e?`.
    fn opt(&mut self, body: impl FnOnce(&mut Self) -> bool) -> bool {
        self.attempt(body);
        true
    }

    /// `e*` in a rule that is not atomic: blanks between repetitions, none
    /// kept after the last.
    fn rep(&mut self, body: impl Fn(&mut Self) -> bool) -> bool {
        if self.attempt(&body) {
            loop {
                let (pos, len) = (self.pos, self.nodes.len());
                self.s();
                if !body(self) {
                    self.pos = pos;
                    self.nodes.truncate(len);
                    break;
                }
            }
        }
        true
    }

    /// `e+` in a rule that is not atomic: pest reads it as `e ~ e*`, so
    /// the blanks after a single `e` are kept.
    fn rep1(&mut self, body: impl Fn(&mut Self) -> bool) -> bool {
        self.attempt(&body) && self.s() && self.rep(body)
    }

    /// Enters a level of nesting; false (and the parse abandoned) beyond
    /// [`MAX_NESTING`].
    fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            self.too_deep = true;
            return false;
        }
        true
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn nested(&mut self, body: impl FnOnce(&mut Self) -> bool) -> bool {
        if self.too_deep || !self.enter() {
            return false;
        }
        let matched = body(self);
        self.leave();
        matched && !self.too_deep
    }

    // ------------------------------------------------------------ names and values

    fn ident_raw(&mut self) -> bool {
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                self.pos += 1;
                while self.peek().is_some_and(is_ident_char) {
                    self.pos += 1;
                }
                true
            }
            _ => false,
        }
    }

    fn atomic_ident(&mut self, rule: Rule) -> bool {
        let start = self.pos;
        self.ident_raw() && self.leaf(rule, start)
    }

    fn ident(&mut self) -> bool {
        self.atomic_ident(Rule::ident)
    }

    fn digits(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// `integer` and `status_code`: digits, then no name character.
    fn whole_number(&mut self, rule: Rule) -> bool {
        let start = self.pos;
        if self.digits() && self.at_word_end() {
            self.leaf(rule, start)
        } else {
            self.pos = start;
            false
        }
    }

    fn integer(&mut self) -> bool {
        self.whole_number(Rule::integer)
    }

    /// `duration = @{ ASCII_DIGIT+ ~ (ASCII_ALPHANUMERIC | "_")* }`.
    fn duration(&mut self) -> bool {
        let start = self.pos;
        if !self.digits() {
            return false;
        }
        while self.peek().is_some_and(is_ident_char) {
            self.pos += 1;
        }
        self.leaf(Rule::duration, start)
    }

    /// Text up to a `"`, `\`, a new line (and `${` in a string): at least
    /// one character.
    fn text_run(&mut self, rule: Rule, interpolates: bool) -> bool {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b'"' || c == b'\\' || c == b'\n' {
                break;
            }
            if interpolates && c == b'$' && self.peek_at(1) == Some(b'{') {
                break;
            }
            self.pos += 1;
        }
        self.pos > start && self.leaf(rule, start)
    }

    /// `escape = @{ "\\" ~ (!"\n" ~ ANY)? }`.
    fn escape(&mut self) -> bool {
        let start = self.pos;
        if !self.lit(b"\\") {
            return false;
        }
        if let Some(c) = self.peek()
            && c != b'\n'
        {
            self.pos = (self.pos + char_len(c)).min(self.b.len());
        }
        self.leaf(Rule::escape, start)
    }

    /// `plain_string = ${ "\"" ~ (plain_text | escape)* ~ "\"" }`.
    fn plain_string(&mut self) -> bool {
        self.node(Rule::plain_string, |p| {
            p.lit(b"\"")
                && {
                    while p.text_run(Rule::plain_text, false) || p.escape() {}
                    true
                }
                && p.lit(b"\"")
        })
    }

    /// `string = ${ "\"" ~ (string_text | escape | interpolation)* ~ "\"" }`.
    fn string(&mut self) -> bool {
        self.node(Rule::string, |p| {
            p.lit(b"\"")
                && {
                    while p.text_run(Rule::string_text, true) || p.escape() || p.interpolation() {}
                    !p.too_deep
                }
                && p.lit(b"\"")
        })
    }

    /// `interpolation = !{ "${" ~ expr ~ "}" }`.
    fn interpolation(&mut self) -> bool {
        self.node(Rule::interpolation, |p| {
            p.lit(b"${") && p.s() && p.expr() && p.s() && p.lit(b"}")
        })
    }

    /// `endpoint_ref = ${ ident ~ "." ~ ident }`.
    fn endpoint_ref(&mut self) -> bool {
        self.node(Rule::endpoint_ref, |p| {
            p.ident() && p.lit(b".") && p.ident()
        })
    }

    /// `secret_ref` and its kind: `${ "PREFIX" ~ ident }`.
    fn prefixed_ref(&mut self, rule: Rule, prefix: &[u8]) -> bool {
        self.node(rule, |p| p.lit(prefix) && p.ident())
    }

    fn secret_ref(&mut self) -> bool {
        self.prefixed_ref(Rule::secret_ref, b"secret.")
    }

    // ------------------------------------------------------------ program

    fn next_item(&mut self) -> bool {
        self.node(Rule::next_item, |p| {
            p.s() && {
                let start = p.pos;
                p.service_decl()
                    || p.secret_decl()
                    || p.schedule_decl()
                    || p.role_decl()
                    || p.service_account_decl()
                    || p.user_decl()
                    || p.oauth_client_decl()
                    || p.notify_decl()
                    || (p.pos == p.b.len() && p.leaf(Rule::EOI, start))
            }
        })
    }

    /// `KEYWORD ~ ident ~ "{" ~ (PROPERTY)* ~ "}"`, the shape of every
    /// declaration.
    fn declaration(
        &mut self,
        rule: Rule,
        keyword: Rule,
        word: &[u8],
        property: impl Fn(&mut Self) -> bool,
    ) -> bool {
        self.node(rule, |p| {
            p.kw(keyword, word)
                && p.s()
                && p.ident()
                && p.s()
                && p.lit(b"{")
                && p.s()
                && p.rep(property)
                && p.s()
                && p.lit(b"}")
        })
    }

    /// `{ KEYWORD ~ rest }`: most properties.
    fn keyed(
        &mut self,
        rule: Rule,
        keyword: Rule,
        word: &[u8],
        rest: impl FnOnce(&mut Self) -> bool,
    ) -> bool {
        self.node(rule, |p| p.kw(keyword, word) && p.s() && rest(p))
    }

    /// `{ KEYWORD ~ "{" ~ ITEM* ~ "}" }`.
    fn keyed_block(
        &mut self,
        rule: Rule,
        keyword: Rule,
        word: &[u8],
        item: impl Fn(&mut Self) -> bool,
    ) -> bool {
        self.keyed(rule, keyword, word, |p| {
            p.lit(b"{") && p.s() && p.rep(item) && p.s() && p.lit(b"}")
        })
    }

    fn description(&mut self) -> bool {
        self.keyed(
            Rule::description,
            Rule::kw_description,
            b"description",
            |p| p.plain_string(),
        )
    }

    // ------------------------------------------------------------ secrets

    fn secret_decl(&mut self) -> bool {
        self.declaration(Rule::secret_decl, Rule::kw_secret, b"secret", |p| {
            p.kw(Rule::environment_specific, b"environment_specific")
                || p.kw(Rule::locked, b"locked")
                || p.refreshed_by()
                || p.kw(Rule::per_account, b"per_account")
                || p.description()
        })
    }

    fn refreshed_by(&mut self) -> bool {
        self.keyed(
            Rule::refreshed_by,
            Rule::kw_refreshed_by,
            b"refreshed_by",
            |p| {
                p.endpoint_ref()
                    && p.s()
                    && p.kw(Rule::kw_as, b"as")
                    && p.s()
                    && p.ident()
                    && p.s()
                    && p.opt(|p| p.kw(Rule::kw_min_valid, b"min_valid") && p.s() && p.duration())
            },
        )
    }

    // ------------------------------------------------------------ roles and identities

    fn role_decl(&mut self) -> bool {
        self.declaration(Rule::role_decl, Rule::kw_role, b"role", |p| {
            p.grant() || p.description()
        })
    }

    fn grant(&mut self) -> bool {
        self.keyed(Rule::grant, Rule::kw_grant, b"grant", |p| {
            p.keyed(Rule::grant_run, Rule::kw_run, b"run", |p| {
                p.endpoint_pattern()
            }) || p.keyed(
                Rule::grant_update_secret,
                Rule::kw_update_secret,
                b"update_secret",
                |p| p.ident(),
            ) || p.keyed(
                Rule::grant_read_secret,
                Rule::kw_read_secret,
                b"read_secret",
                |p| p.ident(),
            ) || p.keyed(
                Rule::grant_read_status,
                Rule::kw_read_status,
                b"read_status",
                |p| p.ident(),
            ) || p.keyed(Rule::grant_connect, Rule::kw_connect, b"connect", |p| {
                p.ident()
            })
        })
    }

    /// `endpoint_pattern = ${ ident ~ "." ~ (ident | wildcard) }`.
    fn endpoint_pattern(&mut self) -> bool {
        self.node(Rule::endpoint_pattern, |p| {
            p.ident() && p.lit(b".") && (p.ident() || p.node(Rule::wildcard, |p| p.lit(b"*")))
        })
    }

    fn user_decl(&mut self) -> bool {
        self.declaration(Rule::user_decl, Rule::kw_user, b"user", |p| {
            p.roles() || p.description()
        })
    }

    fn service_account_decl(&mut self) -> bool {
        self.declaration(
            Rule::service_account_decl,
            Rule::kw_service_account,
            b"service_account",
            |p| p.roles() || p.description(),
        )
    }

    fn roles(&mut self) -> bool {
        self.keyed(Rule::roles, Rule::kw_roles, b"roles", |p| {
            p.rep(|p| {
                !p.sees_word(b"roles")
                    && !p.sees_word(b"description")
                    && p.atomic_ident(Rule::role_name)
            })
        })
    }

    // ------------------------------------------------------------ OAuth clients

    fn oauth_client_decl(&mut self) -> bool {
        self.declaration(
            Rule::oauth_client_decl,
            Rule::kw_oauth_client,
            b"oauth_client",
            |p| {
                p.keyed(Rule::client_provider, Rule::kw_provider, b"provider", |p| {
                    p.ident() && p.s() && p.opt(|p| p.run_arguments())
                }) || p.keyed(Rule::client_issuer, Rule::kw_issuer, b"issuer", |p| {
                    p.expr()
                }) || p.keyed(
                    Rule::client_authorize_url,
                    Rule::kw_authorize_url,
                    b"authorize_url",
                    |p| p.expr(),
                ) || p.keyed(
                    Rule::client_token_url,
                    Rule::kw_token_url,
                    b"token_url",
                    |p| p.expr(),
                ) || p.keyed(
                    Rule::client_device_url,
                    Rule::kw_device_authorization_url,
                    b"device_authorization_url",
                    |p| p.expr(),
                ) || p.keyed(
                    Rule::client_revocation_url,
                    Rule::kw_revocation_url,
                    b"revocation_url",
                    |p| p.expr(),
                ) || p.keyed(
                    Rule::client_refresh_token_ttl,
                    Rule::kw_refresh_token_ttl,
                    b"refresh_token_ttl",
                    |p| p.duration(),
                ) || p.keyed(Rule::client_id, Rule::kw_client_id, b"client_id", |p| {
                    p.expr()
                }) || p.client_auth()
                    || p.keyed(Rule::client_scopes, Rule::kw_scopes, b"scopes", |p| {
                        p.plain_string()
                    })
                    || p.keyed_block(Rule::client_stores, Rule::kw_stores, b"stores", |p| {
                        p.node(Rule::token_store, |p| {
                            p.ident() && p.s() && p.lit(b"=") && p.s() && p.ident()
                        })
                    })
                    || p.keyed(
                        Rule::client_keep_alive,
                        Rule::kw_keep_alive,
                        b"keep_alive",
                        |p| p.duration(),
                    )
                    || p.keyed(
                        Rule::client_expiry_warning,
                        Rule::kw_expiry_warning,
                        b"expiry_warning",
                        |p| p.duration(),
                    )
                    || p.kw(Rule::per_account, b"per_account")
                    || p.keyed(
                        Rule::client_return_to,
                        Rule::kw_return_to,
                        b"return_to",
                        |p| p.rep1(|p| p.plain_string()),
                    )
                    || p.description()
            },
        )
    }

    fn client_auth(&mut self) -> bool {
        self.keyed(
            Rule::client_auth,
            Rule::kw_client_auth,
            b"client_auth",
            |p| {
                p.keyed(
                    Rule::client_secret_basic,
                    Rule::kw_client_secret_basic,
                    b"client_secret_basic",
                    |p| p.parenthesized_expr(),
                ) || p.keyed(
                    Rule::client_secret_post,
                    Rule::kw_client_secret_post,
                    b"client_secret_post",
                    |p| p.parenthesized_expr(),
                ) || p.private_key_jwt()
                    || p.kw(Rule::auth_none, b"none")
            },
        )
    }

    /// `"(" ~ expr ~ ")"`.
    fn parenthesized_expr(&mut self) -> bool {
        self.lit(b"(") && self.s() && self.expr() && self.s() && self.lit(b")")
    }

    fn private_key_jwt(&mut self) -> bool {
        self.keyed(
            Rule::private_key_jwt,
            Rule::kw_private_key_jwt,
            b"private_key_jwt",
            |p| p.arguments(),
        )
    }

    fn jwt_bearer(&mut self) -> bool {
        self.keyed(Rule::jwt_bearer, Rule::kw_jwt_bearer, b"jwt_bearer", |p| {
            p.arguments()
        })
    }

    /// `arguments = _{ "(" ~ (argument ~ ("," ~ argument)* ~ ","?)? ~ ")" }`.
    fn arguments(&mut self) -> bool {
        self.lit(b"(")
            && self.s()
            && self.opt(|p| {
                p.argument()
                    && p.s()
                    && p.rep(|p| p.attempt(|p| p.lit(b",") && p.s() && p.argument()))
                    && p.s()
                    && p.opt(|p| p.lit(b","))
            })
            && self.s()
            && self.lit(b")")
    }

    fn run_arguments(&mut self) -> bool {
        self.node(Rule::run_arguments, |p| p.arguments())
    }

    /// `argument = { (ident ~ "=" ~ !"=")? ~ expr }`.
    fn argument(&mut self) -> bool {
        self.node(Rule::argument, |p| {
            p.opt(|p| p.ident() && p.s() && p.lit(b"=") && p.s() && p.peek() != Some(b'='))
                && p.s()
                && p.expr()
        })
    }

    // ------------------------------------------------------------ notifications

    fn notify_decl(&mut self) -> bool {
        self.declaration(Rule::notify_decl, Rule::kw_notify, b"notify", |p| {
            p.keyed(Rule::notify_url, Rule::kw_url, b"url", |p| p.plain_string())
                || p.keyed(Rule::notify_secret, Rule::kw_secret, b"secret", |p| {
                    p.secret_ref()
                })
                || p.keyed(Rule::notify_events, Rule::kw_events, b"events", |p| {
                    p.rep(|p| p.event_name())
                })
                || p.description()
        })
    }

    /// `event_name = @{ !((kw_url | kw_secret | kw_events | kw_description)
    /// ~ !".") ~ ident ~ ("." ~ ident)* }`.
    fn event_name(&mut self) -> bool {
        let start = self.pos;
        for word in [&b"url"[..], b"secret", b"events", b"description"] {
            if self.sees_word(word) && self.b.get(self.pos + word.len()) != Some(&b'.') {
                return false;
            }
        }
        if !self.ident_raw() {
            return false;
        }
        loop {
            let before = self.pos;
            if !(self.lit(b".") && self.ident_raw()) {
                self.pos = before;
                break;
            }
        }
        self.leaf(Rule::event_name, start)
    }

    // ------------------------------------------------------------ services

    fn service_decl(&mut self) -> bool {
        self.declaration(Rule::service_decl, Rule::kw_service, b"service", |p| {
            p.keyed(Rule::var_decl, Rule::kw_var, b"var", |p| {
                p.ident() && p.s() && p.lit(b":") && p.s() && p.atomic_ident(Rule::type_name)
            }) || p.keyed(Rule::action_decl, Rule::kw_action, b"action", |p| {
                p.ident() && p.s() && p.block()
            }) || p.endpoint_decl()
        })
    }

    fn endpoint_decl(&mut self) -> bool {
        self.declaration(Rule::endpoint_decl, Rule::kw_endpoint, b"endpoint", |p| {
            p.keyed(Rule::methods, Rule::kw_methods, b"methods", |p| {
                p.rep(|p| p.http_method())
            }) || p.keyed(Rule::process, Rule::kw_process, b"process", |p| p.ident())
                || p.keyed(Rule::log_setting, Rule::kw_log, b"log", |p| {
                    let start = p.pos;
                    (p.word(b"enabled") || p.word(b"disabled")) && p.leaf(Rule::log_state, start)
                })
                || p.description()
                || p.hook()
                || p.keyed_block(Rule::endpoint_params, Rule::kw_params, b"params", |p| {
                    p.param_decl()
                })
                || p.keyed_block(
                    Rule::endpoint_response,
                    Rule::kw_response,
                    b"response",
                    |p| {
                        p.keyed(Rule::response_status, Rule::kw_status, b"status", |p| {
                            p.integer()
                        }) || p
                            .keyed_block(Rule::response_json, Rule::kw_json, b"json", |p| p.field())
                            || p.keyed(Rule::response_body, Rule::kw_body, b"body", |p| p.expr())
                            || p.keyed(Rule::response_reveals, Rule::kw_reveals, b"reveals", |p| {
                                p.ident()
                                    && p.s()
                                    && p.rep(|p| p.attempt(|p| p.lit(b",") && p.s() && p.ident()))
                            })
                    },
                )
        })
    }

    /// `http_method = @{ !((kw_description | kw_methods | kw_log |
    /// kw_process | kw_on_failure | kw_on_recovery | kw_params |
    /// kw_response) ~ !(ASCII_ALPHANUMERIC | "_")) ~ ident }`.
    fn http_method(&mut self) -> bool {
        for word in [
            &b"description"[..],
            b"methods",
            b"log",
            b"process",
            b"on_failure",
            b"on_recovery",
            b"params",
            b"response",
        ] {
            if self.sees_word(word) {
                return false;
            }
        }
        self.atomic_ident(Rule::http_method)
    }

    /// `param_decl = { ident ~ ":" ~ param_type ~ optional_mark? ~ ("=" ~ expr)? }`.
    fn param_decl(&mut self) -> bool {
        self.node(Rule::param_decl, |p| {
            p.ident()
                && p.s()
                && p.lit(b":")
                && p.s()
                && p.param_type()
                && p.s()
                && p.opt(|p| p.node(Rule::optional_mark, |p| p.lit(b"?")))
                && p.s()
                && p.opt(|p| p.lit(b"=") && p.s() && p.expr())
        })
    }

    /// `param_type = @{ ident ~ ("<" ~ ident ~ ">")? }`.
    fn param_type(&mut self) -> bool {
        let start = self.pos;
        if !self.ident_raw() {
            return false;
        }
        let before = self.pos;
        if !(self.lit(b"<") && self.ident_raw() && self.lit(b">")) {
            self.pos = before;
        }
        self.leaf(Rule::param_type, start)
    }

    /// `hook = { (kw_on_failure | kw_on_recovery) ~ block }`.
    fn hook(&mut self) -> bool {
        self.node(Rule::hook, |p| {
            (p.kw(Rule::kw_on_failure, b"on_failure") || p.kw(Rule::kw_on_recovery, b"on_recovery"))
                && p.s()
                && p.block()
        })
    }

    /// `field = { (ident | plain_string) ~ "=" ~ expr }`.
    fn field(&mut self) -> bool {
        self.node(Rule::field, |p| {
            (p.ident() || p.plain_string()) && p.s() && p.lit(b"=") && p.s() && p.expr()
        })
    }

    // ------------------------------------------------------------ statements

    fn block(&mut self) -> bool {
        self.nested(|p| {
            p.node(Rule::block, |p| {
                p.lit(b"{") && p.s() && p.rep(|p| p.statement()) && p.s() && p.lit(b"}")
            })
        })
    }

    fn statement(&mut self) -> bool {
        // Every statement starts with its own keyword: the word decides
        // which alternative can match (in the grammar's order, the others
        // fail on their keyword).
        let start = self.pos;
        if !self.ident_raw() {
            return false;
        }
        let word = &self.b[start..self.pos];
        self.pos = start;
        match word {
            b"if" => self.if_statement(),
            b"update_secret" => self.keyed(
                Rule::update_secret,
                Rule::kw_update_secret,
                b"update_secret",
                |p| p.secret_update(),
            ),
            b"web_request" => self.web_request(),
            b"update" => self.keyed(Rule::update_variables, Rule::kw_update, b"update", |p| {
                p.kw(Rule::kw_service_variables, b"service_variables")
                    && p.s()
                    && p.lit(b"{")
                    && p.s()
                    && p.rep(|p| {
                        p.node(Rule::assignment, |p| {
                            p.ident() && p.s() && p.lit(b"=") && p.s() && p.expr()
                        })
                    })
                    && p.s()
                    && p.lit(b"}")
            }),
            b"log" => self.keyed(Rule::log, Rule::kw_log, b"log", |p| p.expr()),
            b"update_secrets" => self.keyed_block(
                Rule::update_secrets,
                Rule::kw_update_secrets,
                b"update_secrets",
                |p| p.secret_update(),
            ),
            b"run_service" => self.run_service(),
            b"try" => self.keyed(Rule::try_catch, Rule::kw_try, b"try", |p| {
                p.block() && p.s() && p.rep1(|p| p.catch())
            }),
            b"throw" => self.keyed(Rule::throw, Rule::kw_throw, b"throw", |p| {
                p.plain_string() && p.s() && p.expr()
            }),
            b"sleep" => self.keyed(Rule::sleep, Rule::kw_sleep, b"sleep", |p| p.duration()),
            b"foreach" => self.keyed(Rule::foreach_loop, Rule::kw_foreach, b"foreach", |p| {
                p.ident()
                    && p.s()
                    && p.kw(Rule::kw_in, b"in")
                    && p.s()
                    && p.expr()
                    && p.s()
                    && p.block()
            }),
            b"while" => self.keyed(Rule::while_loop, Rule::kw_while, b"while", |p| {
                p.expr()
                    && p.s()
                    && p.kw(Rule::kw_max, b"max")
                    && p.s()
                    && p.integer()
                    && p.s()
                    && p.block()
            }),
            b"break" => self.node(Rule::break_statement, |p| p.kw(Rule::kw_break, b"break")),
            b"refresh_tokens" | b"client_credentials" => self.node(Rule::token_grant, |p| {
                (p.kw(Rule::kw_refresh_tokens, b"refresh_tokens")
                    || p.kw(Rule::kw_client_credentials, b"client_credentials"))
                    && p.s()
                    && p.auth_client()
            }),
            _ => false,
        }
    }

    /// `if_statement = { kw_if ~ expr ~ block ~ else_clause? }`.
    fn if_statement(&mut self) -> bool {
        self.keyed(Rule::if_statement, Rule::kw_if, b"if", |p| {
            p.expr()
                && p.s()
                && p.block()
                && p.s()
                && p.opt(|p| {
                    p.keyed(Rule::else_clause, Rule::kw_else, b"else", |p| {
                        p.nested(|p| p.if_statement() || p.block())
                    })
                })
        })
    }

    /// `secret_update = { ident ~ ("=" ~ expr | secret_update_block) }`.
    fn secret_update(&mut self) -> bool {
        self.node(Rule::secret_update, |p| {
            p.ident()
                && p.s()
                && (p.attempt(|p| p.lit(b"=") && p.s() && p.expr())
                    || p.node(Rule::secret_update_block, |p| {
                        p.lit(b"{")
                            && p.s()
                            && p.rep(|p| {
                                p.node(Rule::secret_update_field, |p| {
                                    (p.kw(Rule::kw_value, b"value")
                                        || p.kw(Rule::kw_expires_in, b"expires_in"))
                                        && p.s()
                                        && p.lit(b"=")
                                        && p.s()
                                        && p.expr()
                                })
                            })
                            && p.s()
                            && p.lit(b"}")
                    }))
        })
    }

    /// `run_service = { kw_run_service ~ endpoint_ref ~ run_arguments? ~
    /// for_connection? ~ (kw_as ~ ident)? ~ (kw_into ~ ident)? }`.
    fn run_service(&mut self) -> bool {
        self.keyed(
            Rule::run_service,
            Rule::kw_run_service,
            b"run_service",
            |p| {
                p.endpoint_ref()
                    && p.s()
                    && p.opt(|p| p.run_arguments())
                    && p.s()
                    && p.opt(|p| {
                        p.keyed(
                            Rule::for_connection,
                            Rule::kw_for_connection,
                            b"for_connection",
                            |p| p.expr(),
                        )
                    })
                    && p.s()
                    && p.opt(|p| p.kw(Rule::kw_as, b"as") && p.s() && p.ident())
                    && p.s()
                    && p.opt(|p| p.kw(Rule::kw_into, b"into") && p.s() && p.ident())
            },
        )
    }

    /// `catch = { kw_catch ~ (catch_web_request | plain_string)? ~ block }`.
    fn catch(&mut self) -> bool {
        self.keyed(Rule::catch, Rule::kw_catch, b"catch", |p| {
            p.opt(|p| {
                p.keyed(
                    Rule::catch_web_request,
                    Rule::kw_web_request_error,
                    b"web_request_error",
                    |p| p.rep(|p| p.whole_number(Rule::status_code)),
                ) || p.plain_string()
            }) && p.s()
                && p.block()
        })
    }

    fn web_request(&mut self) -> bool {
        self.keyed_block(
            Rule::web_request,
            Rule::kw_web_request,
            b"web_request",
            |p| {
                p.keyed(Rule::request_method, Rule::kw_method, b"method", |p| {
                    p.http_method()
                }) || p.keyed(Rule::request_url, Rule::kw_url, b"url", |p| p.expr())
                    || p.keyed_block(Rule::request_form, Rule::kw_form, b"form", |p| p.field())
                    || p.keyed_block(Rule::request_headers, Rule::kw_headers, b"headers", |p| {
                        p.field()
                    })
                    || p.keyed_block(
                        Rule::result_mapping,
                        Rule::kw_result_mapping,
                        b"result_mapping",
                        |p| p.mapping(),
                    )
                    || p.keyed(Rule::request_timeout, Rule::kw_timeout, b"timeout", |p| {
                        p.duration()
                    })
                    || p.keyed(Rule::request_auth, Rule::kw_auth, b"auth", |p| {
                        p.keyed(Rule::auth_basic, Rule::kw_basic, b"basic", |p| {
                            p.lit(b"(")
                                && p.s()
                                && p.expr()
                                && p.s()
                                && p.lit(b",")
                                && p.s()
                                && p.expr()
                                && p.s()
                                && p.lit(b")")
                        }) || p.keyed(Rule::auth_bearer, Rule::kw_bearer, b"bearer", |p| {
                            p.parenthesized_expr()
                        }) || p.auth_client()
                            || p.private_key_jwt()
                            || p.jwt_bearer()
                    })
                    || p.keyed_block(Rule::request_query, Rule::kw_query, b"query", |p| p.field())
                    || p.keyed_block(Rule::request_json, Rule::kw_json, b"json", |p| p.field())
                    || p.keyed(Rule::request_body, Rule::kw_body, b"body", |p| p.expr())
                    || p.keyed_block(Rule::request_retry, Rule::kw_retry, b"retry", |p| {
                        p.keyed(Rule::retry_attempts, Rule::kw_attempts, b"attempts", |p| {
                            p.integer()
                        }) || p.keyed(Rule::retry_max_time, Rule::kw_max_time, b"max_time", |p| {
                            p.duration()
                        })
                    })
                    || p.keyed(
                        Rule::request_redirects,
                        Rule::kw_redirects,
                        b"redirects",
                        |p| {
                            p.integer()
                                && p.s()
                                && p.opt(|p| p.kw(Rule::cross_origin, b"cross_origin"))
                        },
                    )
            },
        )
    }

    /// `auth_client = { kw_client ~ "(" ~ ident ~ ")" }`.
    fn auth_client(&mut self) -> bool {
        self.keyed(Rule::auth_client, Rule::kw_client, b"client", |p| {
            p.lit(b"(") && p.s() && p.ident() && p.s() && p.lit(b")")
        })
    }

    /// `mapping = { ident ~ "=" ~ (jsonpath | header_source | status_source
    /// | body_source) }`.
    fn mapping(&mut self) -> bool {
        self.node(Rule::mapping, |p| {
            p.ident()
                && p.s()
                && p.lit(b"=")
                && p.s()
                && (p.jsonpath()
                    || p.keyed(Rule::header_source, Rule::kw_header, b"header", |p| {
                        p.plain_string()
                    })
                    || p.kw(Rule::status_source, b"status")
                    || p.kw(Rule::body_source, b"body"))
        })
    }

    // ------------------------------------------------------------ JSONPath

    /// `jsonpath = @{ "$" ~ jsonpath_segment* }`.
    fn jsonpath(&mut self) -> bool {
        let start = self.pos;
        if !self.lit(b"$") {
            return false;
        }
        loop {
            let before = self.pos;
            if !self.jsonpath_segment() {
                self.pos = before;
                break;
            }
        }
        if self.too_deep {
            return false;
        }
        self.leaf(Rule::jsonpath, start)
    }

    fn jsonpath_segment(&mut self) -> bool {
        let start = self.pos;
        if self.lit(b"..") && (self.jsonpath_name() || self.lit(b"*") || self.jsonpath_bracket()) {
            return true;
        }
        self.pos = start;
        if self.lit(b".") && (self.jsonpath_name() || self.lit(b"*")) {
            return true;
        }
        self.pos = start;
        self.jsonpath_bracket()
    }

    /// `(ASCII_ALPHANUMERIC | "_" | '\u{80}'..'\u{10FFFF}')+`: every byte
    /// of a character from U+0080 up is 0x80 or above.
    fn jsonpath_name(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(|c| is_ident_char(c) || c >= 0x80) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// `"[" ~ (jsonpath_quoted | jsonpath_bracket | !("]" | "\n") ~ ANY)* ~ "]"`.
    fn jsonpath_bracket(&mut self) -> bool {
        let start = self.pos;
        if !self.lit(b"[") {
            return false;
        }
        if !self.enter() {
            return false;
        }
        let matched = loop {
            let before = self.pos;
            if self.jsonpath_quoted() {
                continue;
            }
            self.pos = before;
            if self.jsonpath_bracket() {
                continue;
            }
            if self.too_deep {
                break false;
            }
            self.pos = before;
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    break true;
                }
                Some(b'\n') | None => break false,
                // One byte at a time: no byte of a longer character is
                // one of the ASCII marks looked for.
                Some(_) => self.pos += 1,
            }
        };
        self.leave();
        if !matched {
            self.pos = start;
        }
        matched
    }

    /// A quoted name in brackets, `'...'` or `"..."`, escapes allowed.
    fn jsonpath_quoted(&mut self) -> bool {
        let Some(quote @ (b'\'' | b'"')) = self.peek() else {
            return false;
        };
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                Some(c) if c == quote => {
                    self.pos += 1;
                    return true;
                }
                Some(b'\\') if self.pos + 1 < self.b.len() => self.pos += 2,
                Some(b'\n') | None => {
                    self.pos = start;
                    return false;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    // ------------------------------------------------------------ schedules

    fn schedule_decl(&mut self) -> bool {
        self.declaration(Rule::schedule_decl, Rule::kw_schedule, b"schedule", |p| {
            p.keyed(
                Rule::schedule_endpoint,
                Rule::kw_endpoint,
                b"endpoint",
                |p| p.endpoint_ref(),
            ) || p.keyed(
                Rule::schedule_account,
                Rule::kw_service_account,
                b"service_account",
                |p| p.ident(),
            ) || p.keyed(Rule::every, Rule::kw_every, b"every", |p| p.duration())
                || p.keyed(Rule::cron, Rule::kw_cron, b"cron", |p| p.plain_string())
                || p.keyed(Rule::time_zone, Rule::kw_time_zone, b"time_zone", |p| {
                    p.plain_string()
                })
                || p.keyed(
                    Rule::before_expiry,
                    Rule::kw_before_expiry,
                    b"before_expiry",
                    |p| p.ident() && p.s() && p.duration(),
                )
                || p.kw(Rule::disabled, b"disabled")
                || p.description()
                || p.hook()
                || p.keyed_block(Rule::schedule_params, Rule::kw_params, b"params", |p| {
                    p.field()
                })
                || p.keyed(
                    Rule::for_each_connection,
                    Rule::kw_for_each_connection,
                    b"for_each_connection",
                    |p| p.ident(),
                )
                || p.keyed(
                    Rule::concurrency,
                    Rule::kw_concurrency,
                    b"concurrency",
                    |p| p.integer(),
                )
        })
    }

    // ------------------------------------------------------------ expressions

    /// `expr = { not* ~ primary ~ (&(...) ~ (or | and | ...) ~ not* ~
    /// primary)* }`: blanks after the last primary are the expression's.
    fn expr(&mut self) -> bool {
        self.nested(|p| {
            p.node(Rule::expr, |p| {
                p.rep(|p| p.not())
                    && p.s()
                    && p.primary()
                    && p.s()
                    && p.rep(|p| {
                        p.attempt(|p| {
                            matches!(
                                p.peek(),
                                Some(
                                    b'|' | b'&'
                                        | b'<'
                                        | b'='
                                        | b'>'
                                        | b'!'
                                        | b'+'
                                        | b'-'
                                        | b'*'
                                        | b'/'
                                )
                            ) && p.operator()
                                && p.s()
                                && p.rep(|p| p.not())
                                && p.s()
                                && p.primary()
                        })
                    })
            })
        })
    }

    /// `not = { "!" ~ !"=" }`: the blanks after `!` are the rule's.
    fn not(&mut self) -> bool {
        self.peek() == Some(b'!')
            && self.node(Rule::not, |p| {
                p.lit(b"!") && p.s() && p.peek() != Some(b'=')
            })
    }

    /// One of the binary operators, in the grammar's order.
    fn operator(&mut self) -> bool {
        let (rule, len) = match (self.peek(), self.peek_at(1)) {
            (Some(b'|'), Some(b'|')) => (Rule::or, 2),
            (Some(b'&'), Some(b'&')) => (Rule::and, 2),
            (Some(b'='), Some(b'=')) => (Rule::eq, 2),
            (Some(b'!'), Some(b'=')) => (Rule::ne, 2),
            (Some(b'<'), Some(b'=')) => (Rule::le, 2),
            (Some(b'>'), Some(b'=')) => (Rule::ge, 2),
            (Some(b'<'), _) => (Rule::lt, 1),
            (Some(b'>'), _) => (Rule::gt, 1),
            (Some(b'+'), _) => (Rule::add, 1),
            (Some(b'-'), _) => (Rule::sub, 1),
            (Some(b'*'), _) => (Rule::mul, 1),
            // `div = { "/" ~ !"/" }`: the blanks after `/` are the rule's.
            (Some(b'/'), _) => {
                return self.node(Rule::div, |p| {
                    p.lit(b"/") && p.s() && p.peek() != Some(b'/')
                });
            }
            _ => return false,
        };
        let start = self.pos;
        self.pos += len;
        self.leaf(rule, start)
    }

    /// `primary = _{ string | null | boolean | secret_ref | param_ref |
    /// error_ref | run_ref | connection_ref | call | variable |
    /// duration_literal | number | "(" ~ expr ~ ")" }`, by its first byte
    /// (no other alternative can start with it).
    fn primary(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                if self.word(b"null") {
                    return self.leaf(Rule::null, start);
                }
                if self.word(b"true") || self.word(b"false") {
                    return self.leaf(Rule::boolean, start);
                }
                self.secret_ref()
                    || self.prefixed_ref(Rule::param_ref, b"param.")
                    || self.prefixed_ref(Rule::error_ref, b"error.")
                    || self.prefixed_ref(Rule::run_ref, b"run.")
                    || self.node(Rule::connection_ref, |p| {
                        p.lit(b"connection.") && p.ident() && p.opt(|p| p.lit(b".") && p.ident())
                    })
                    || self.call()
                    || self.atomic_ident(Rule::variable)
            }
            Some(b'0'..=b'9') => self.duration_literal() || self.number(),
            Some(b'-') => self.number(),
            Some(b'(') => self.attempt(|p| p.parenthesized_expr()),
            _ => false,
        }
    }

    /// `call = { ident ~ "(" ~ (expr ~ ("," ~ expr)*)? ~ ")" }`.
    fn call(&mut self) -> bool {
        self.node(Rule::call, |p| {
            p.ident()
                && p.s()
                && p.lit(b"(")
                && p.s()
                && p.opt(|p| {
                    p.expr() && p.s() && p.rep(|p| p.attempt(|p| p.lit(b",") && p.s() && p.expr()))
                })
                && p.s()
                && p.lit(b")")
        })
    }

    /// `duration_literal = @{ ASCII_DIGIT+ ~ ("ms" | "s" | "m" | "h" | "d")
    /// ~ !(ASCII_ALPHANUMERIC | "_") }`.
    fn duration_literal(&mut self) -> bool {
        let start = self.pos;
        let matched = self.digits()
            && (self.lit(b"ms")
                || self.lit(b"s")
                || self.lit(b"m")
                || self.lit(b"h")
                || self.lit(b"d"))
            && self.at_word_end();
        if matched {
            self.leaf(Rule::duration_literal, start)
        } else {
            self.pos = start;
            false
        }
    }

    /// `number = @{ "-"? ~ ASCII_DIGIT+ ~ ("." ~ ASCII_DIGIT+)? ~
    /// !(ASCII_ALPHANUMERIC | "_") }`.
    fn number(&mut self) -> bool {
        let start = self.pos;
        self.lit(b"-");
        if !self.digits() {
            self.pos = start;
            return false;
        }
        let before = self.pos;
        if !(self.lit(b".") && self.digits()) {
            self.pos = before;
        }
        if !self.at_word_end() {
            self.pos = start;
            return false;
        }
        self.leaf(Rule::number, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parser::pest_next_item;

    /// Both parsers over `text`, declaration by declaration: the same
    /// trees, and the same refusal (or this one's `LeftToPest`, where pest
    /// decides). Returns how many declarations were compared.
    fn agree(text: &str) -> Result<usize, String> {
        let mut offset = 0;
        let mut compared = 0;
        loop {
            let rest = &text[offset..];
            let ours = parse_next_item(rest);
            let theirs = pest_next_item(rest).map(|pairs| Tree::from_pest(rest, pairs));
            match (ours, theirs) {
                (Ok(ours), Some(theirs)) => {
                    if ours.nodes() != theirs.nodes() {
                        let at = ours
                            .nodes()
                            .iter()
                            .zip(theirs.nodes())
                            .position(|(a, b)| a != b)
                            .unwrap_or(ours.nodes().len().min(theirs.nodes().len()));
                        return Err(format!(
                            "the trees differ at offset {offset}, node {at}: ours {:?}, pest's {:?}",
                            ours.nodes().get(at),
                            theirs.nodes().get(at)
                        ));
                    }
                    compared += 1;
                    let root = ours.root().expect("next_item");
                    if root.into_inner().next().map(|p| p.as_rule()) == Some(Rule::EOI) {
                        return Ok(compared);
                    }
                    offset += root.as_span().end();
                }
                (Err(Refused::Syntax), None) | (Err(Refused::LeftToPest), _) => {
                    return Ok(compared);
                }
                (Ok(_), None) => {
                    return Err(format!("accepted at offset {offset} what pest refuses"));
                }
                (Err(Refused::Syntax), Some(_)) => {
                    return Err(format!("refused at offset {offset} what pest accepts"));
                }
            }
        }
    }

    /// Every program in the repository: examples, test cases, fixtures,
    /// benchmarks' inputs.
    fn corpus() -> Vec<(std::path::PathBuf, String)> {
        fn walk(dir: &std::path::Path, found: &mut Vec<(std::path::PathBuf, String)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "svc")
                    && let Ok(text) = std::fs::read_to_string(&path)
                {
                    found.push((path, text));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        for dir in ["examples", "tests", "bench", "docs"] {
            walk(&root.join(dir), &mut found);
        }
        found.sort();
        assert!(found.len() > 100, "{} programs", found.len());
        found
    }

    #[test]
    fn both_parsers_read_every_program_of_the_repository_alike() {
        let mut declarations = 0;
        for (path, text) in corpus() {
            declarations += agree(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        assert!(declarations > 1000, "{declarations}");
    }

    /// Edits that make a program wrong in the ways people do, or right in
    /// unusual ways: tokens of the language, blanks, comments, quotes,
    /// brackets, keywords where names go.
    const PIECES: &[&str] = &[
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\"",
        "'",
        "\\",
        "=",
        "==",
        "!",
        "!=",
        "<",
        "<=",
        ">",
        "&&",
        "||",
        "+",
        "-",
        "*",
        "/",
        "//",
        "// note\n",
        "\n",
        " ",
        "\t",
        ".",
        ",",
        ":",
        "?",
        "$",
        "${",
        "$.a",
        "$[0]",
        "$..x",
        "0",
        "5m",
        "10ms",
        "-1",
        "1.5",
        "x",
        "_",
        "é",
        "null",
        "true",
        "secret.",
        "param.",
        "error.",
        "run.",
        "connection.",
        "connection.tags.",
        "if",
        "else",
        "while",
        "max",
        "foreach",
        "in",
        "break",
        "log",
        "sleep",
        "try",
        "catch",
        "throw",
        "update",
        "service_variables",
        "update_secret",
        "update_secrets",
        "value",
        "expires_in",
        "run_service",
        "as",
        "into",
        "for_connection",
        "web_request",
        "method",
        "url",
        "query",
        "headers",
        "form",
        "json",
        "body",
        "auth",
        "basic",
        "bearer",
        "client",
        "timeout",
        "retry",
        "attempts",
        "max_time",
        "redirects",
        "cross_origin",
        "result_mapping",
        "header",
        "status",
        "service",
        "secret",
        "role",
        "grant",
        "user",
        "service_account",
        "roles",
        "description",
        "oauth_client",
        "notify",
        "events",
        "schedule",
        "endpoint",
        "methods",
        "process",
        "params",
        "response",
        "reveals",
        "on_failure",
        "on_recovery",
        "every",
        "cron",
        "time_zone",
        "disabled",
        "before_expiry",
        "for_each_connection",
        "concurrency",
        "refreshed_by",
        "min_valid",
        "locked",
        "environment_specific",
        "per_account",
        "provider",
        "stores",
        "client_auth",
        "none",
        "private_key_jwt",
        "jwt_bearer",
        "refresh_tokens",
        "client_credentials",
        "web_request_error",
        "enabled",
    ];

    fn char_boundary(text: &str, mut at: usize) -> usize {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// One random edit of `text`.
    fn mutate(text: &str, rng: &mut fastrand::Rng) -> String {
        let at = char_boundary(text, rng.usize(..=text.len()));
        let end = char_boundary(text, (at + rng.usize(0..12)).min(text.len()));
        let piece = PIECES[rng.usize(..PIECES.len())];
        match rng.u8(0..4) {
            // Delete a stretch.
            0 => format!("{}{}", &text[..at], &text[end..]),
            // Insert a piece.
            1 => format!("{}{piece}{}", &text[..at], &text[at..]),
            // Replace a stretch with a piece.
            2 => format!("{}{piece}{}", &text[..at], &text[end..]),
            // Repeat a stretch.
            _ => format!("{}{}{}", &text[..end], &text[at..end], &text[end..]),
        }
    }

    #[test]
    fn both_parsers_read_random_edits_of_every_program_alike() {
        // SVC_EDITS=N SVC_SEED=S for a longer search.
        let seed = std::env::var("SVC_SEED").map_or(25, |s| s.parse().unwrap());
        let rounds = std::env::var("SVC_EDITS").map_or(40, |s| s.parse().unwrap());
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut refused = 0;
        let mut edits = 0;
        for (path, text) in corpus() {
            for _ in 0..rounds {
                let mut edited = mutate(&text, &mut rng);
                if rng.bool() {
                    edited = mutate(&edited, &mut rng);
                }
                edits += 1;
                if let Err(e) = agree(&edited) {
                    panic!("{}, edited:\n{edited}\n{e}", path.display());
                }
                refused += usize::from(pest_refuses(&edited));
            }
        }
        // The edits reach both sides of the grammar.
        assert!(
            refused > edits / 5 && refused < edits * 4 / 5,
            "{refused} of {edits}"
        );
    }

    /// Whether pest refuses some declaration of `text`.
    fn pest_refuses(text: &str) -> bool {
        let mut offset = 0;
        loop {
            let Some(mut pairs) = pest_next_item(&text[offset..]) else {
                return true;
            };
            let next = pairs.next().expect("next_item");
            let end = next.as_span().end();
            if next.into_inner().next().map(|p| p.as_rule()) == Some(Rule::EOI) {
                return false;
            }
            offset += end;
        }
    }

    /// Where pest's reading is easy to get wrong by hand: blanks kept after
    /// `!`, `/` and optional endings, committed choices, escapes of
    /// characters of several bytes, JSONPath brackets and quotes.
    #[test]
    fn both_parsers_read_the_corners_of_the_grammar_alike() {
        let expressions = [
            "! x",
            "!x",
            "! = x",
            "!!x",
            "a / b",
            "a / / b",
            "a ///\n/ b",
            "a/ b",
            "a /b",
            "a //c\n / b",
            "a == b",
            "a = = b",
            "a <= b",
            "a < = b",
            "a != b",
            "a ! = b",
            "a && b || c",
            "a & b",
            "-5",
            "- 5",
            "a - -5",
            "a -5",
            "5m",
            "5mx",
            "5ms",
            "5 m",
            "1.5",
            "1.",
            "1.5x",
            "05",
            "null",
            "nullx",
            "true",
            "truex",
            "false_",
            "secret.X",
            "secret. X",
            "secret .X",
            "param.p",
            "error.code",
            "run.id",
            "connection.id",
            "connection.tags.k",
            "connection.tags.k.l",
            "connection.",
            "f()",
            "f( )",
            "f(a)",
            "f(a,)",
            "f(a, b)",
            "f (a)",
            "f(a b)",
            "(a)",
            "( a )",
            "((a))",
            "(a",
            "a)",
            "\"x\"",
            "\"\"",
            "\"\\\"\"",
            "\"\\é\"",
            "\"é\\\"",
            "\"${a}\"",
            "\"${ a }\"",
            "\"${}\"",
            "\"$\"",
            "\"$ {a}\"",
            "\"${\"${a}\"}\"",
            "\"a\\\n\"",
            "\"\\",
            "x // c\n",
            "x /* c */",
        ];
        let paths = [
            "$",
            "$.a",
            "$..a",
            "$..*",
            "$.*",
            "$..",
            "$.",
            "$[0]",
            "$['a']",
            "$[\"a\"]",
            "$['a\\'b']",
            "$['a]",
            "$[[0]]",
            "$[ [ ] ]",
            "$[é]",
            "$.é",
            "$[\\]]",
            "$[\n]",
            "$..[0]",
            "$.a.b[0]..c",
            "$['\\",
            "$[",
        ];
        let mut programs = Vec::new();
        for e in expressions {
            programs.push(format!(
                "service s {{ var v: string action a {{ log {e} if {e} {{ }} update service_variables {{ v = {e} }} }} }}"
            ));
            programs.push(format!(
                "service s {{ endpoint e {{ params {{ p: string? = {e} }} response {{ body {e} }} }} }}"
            ));
            programs.push(format!(
                "oauth_client c {{ provider x(a = {e}, {e}) client_auth private_key_jwt({e}) }}"
            ));
        }
        for path in paths {
            programs.push(format!(
                "service s {{ action a {{ web_request {{ result_mapping {{ v = {path} w = status }} }} }} }}"
            ));
        }
        for odd in [
            "secret S { refreshed_by s.e as bot }",
            "secret S { refreshed_by s.e as bot min_valid 5m }",
            "role r { grant run s.* grant run s .e grant connect c }",
            "user u { roles a b roles description \"d\" }",
            "user u { roles rolesx descriptions }",
            "notify n { events url.x secret.y events a.b.c url \"u\" secret secret.K }",
            "notify n { events url }",
            "oauth_client c { return_to \"a\" \"b\"  per_account stores { a = b } client_auth none }",
            "service s { endpoint e { methods GET post log enabled methods } }",
            "service s { endpoint e { methods description } }",
            "service s { endpoint e { on_failure { break } response { reveals A, B , C status 200 } } }",
            "service s { action a { run_service s.e(a = 1) for_connection x as bot into v } }",
            "service s { action a { run_service s.e () as bot } }",
            "service s { action a { try { } catch web_request_error 401 403 { } catch \"x\" { } catch { } } }",
            "service s { action a { while a max 3 { break } foreach x in y { } sleep 5s } }",
            "service s { action a { update_secrets { A = 1 B { value = 2 expires_in = 3 } } } }",
            "service s { action a { if a { } else if b { } else { } } }",
            "service s { action a { web_request { redirects 3 cross_origin timeout 5s retry { attempts 2 max_time 1m } auth basic(a, b) } } }",
            "service s { action a { web_request { auth jwt_bearer(key = secret.K, iss = \"i\",) } } }",
            "service s { action a { refresh_tokens client(c) client_credentials client ( c ) } }",
            "schedule x { endpoint s.e service_account b every 1h cron \"* * * * *\" time_zone \"UTC\" disabled before_expiry T 5m for_each_connection c concurrency 2 params { a = 1 } }",
            "// only a comment",
            "",
            "   \n\t",
            "secret S { }\n// trailing",
            "secret S{environment_specific}secret T{}",
        ] {
            programs.push(odd.to_string());
        }
        let mut refused = 0;
        for program in &programs {
            agree(program).unwrap_or_else(|e| panic!("{program}\n{e}"));
            refused += usize::from(pest_refuses(program));
        }
        assert!(refused > 10 && refused < programs.len() - 10, "{refused}");
    }

    #[test]
    fn nesting_beyond_the_limit_is_left_to_pest() {
        let deep = format!(
            "service s {{ action a {{ {}log 1{} }} }}",
            "if true { ".repeat(MAX_NESTING + 1),
            " }".repeat(MAX_NESTING + 1)
        );
        assert_eq!(parse_next_item(&deep).err(), Some(Refused::LeftToPest));
        let shallow = format!(
            "service s {{ action a {{ {}log 1{} }} }}",
            "if true { ".repeat(70),
            " }".repeat(70)
        );
        assert!(parse_next_item(&shallow).is_ok());
        assert_eq!(agree(&shallow), Ok(2));
        // Every way of nesting, just past the limit, within a test
        // thread's stack (2 MiB, an unoptimized build).
        let n = MAX_NESTING + 1;
        for (open, inner, close) in [("(", "1", ")"), ("f(", "1", ")"), ("\"${", "1", "}\"")] {
            let text = format!(
                "service s {{ action a {{ log {}{inner}{} }} }}",
                open.repeat(n),
                close.repeat(n)
            );
            assert_eq!(
                parse_next_item(&text).err(),
                Some(Refused::LeftToPest),
                "{open}"
            );
        }
        let chain = format!(
            "service s {{ action a {{ if a {{ }}{} }} }}",
            " else if a { }".repeat(n)
        );
        assert_eq!(parse_next_item(&chain).err(), Some(Refused::LeftToPest));
        let path = format!(
            "service s {{ action a {{ web_request {{ result_mapping {{ v = ${}{} }} }} }} }}",
            "[".repeat(n),
            "]".repeat(n)
        );
        assert_eq!(parse_next_item(&path).err(), Some(Refused::LeftToPest));
    }
}
