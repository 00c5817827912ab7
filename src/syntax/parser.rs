//! Parsing a declaration (the hand-written parser, pest for what it
//! refuses), and the translation of pest's errors into words users know.

use std::collections::BTreeSet;

use pest::error::{ErrorVariant, InputLocation};
use pest_derive::Parser;

use super::tree::Tree;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Span};

#[derive(Parser)]
#[grammar = "../grammar/svc.pest"]
pub struct SvcParser;

/// Parses the declaration that starts at `offset` (after whitespace and
/// comments), or the end of the file. Positions in the tree are relative
/// to `offset`; in a diagnostic they are absolute.
///
/// The hand-written parser (`descent`) reads it; what that refuses, pest
/// reads again, and explains when it refuses it too.
pub fn parse_next_item(
    file: FileId,
    text: &str,
    offset: usize,
) -> Result<Tree<'_>, Box<Diagnostic>> {
    use pest::Parser as _;
    let rest = &text[offset..];
    if let Ok(tree) = super::descent::parse_next_item(rest) {
        return Ok(tree);
    }
    // Tracking every attempt makes parsing several times slower, so it is
    // switched on only here. The switch is global: detailed parses take
    // turns, and a plain parse that overlaps one is merely slower.
    static DETAILED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = DETAILED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    pest::set_error_detail(true);
    let detailed = SvcParser::parse(Rule::next_item, rest);
    pest::set_error_detail(false);
    match detailed {
        // Nested deeper than the hand-written parser goes.
        Ok(pairs) => Ok(Tree::from_pest(rest, pairs)),
        Err(error) => Err(Box::new(syntax_diagnostic(file, text, offset, &error))),
    }
}

/// Parses the declaration at the start of `text` (after whitespace and
/// comments), or its end; `None` on a syntax error, unexplained.
pub fn try_parse_next_item(text: &str) -> Option<Tree<'_>> {
    match super::descent::parse_next_item(text) {
        Ok(tree) => Some(tree),
        Err(super::descent::Refused::Syntax) => None,
        Err(super::descent::Refused::LeftToPest) => {
            pest_next_item(text).map(|pairs| Tree::from_pest(text, pairs))
        }
    }
}

/// pest's own parse of the declaration at the start of `text`: the
/// grammar's reference, for tests and benchmarks.
pub fn pest_next_item(text: &str) -> Option<pest::iterators::Pairs<'_, Rule>> {
    use pest::Parser as _;
    SvcParser::parse(Rule::next_item, text).ok()
}

fn syntax_diagnostic(
    file: FileId,
    text: &str,
    offset: usize,
    error: &pest::error::Error<Rule>,
) -> Diagnostic {
    let position = offset
        + match error.location {
            InputLocation::Pos(pos) => pos,
            InputLocation::Span((start, _)) => start,
        };
    if let Some(open) = unterminated_string(text, position) {
        return Diagnostic::new(Code::Syntax, "unterminated string")
            .label(Span::new(file, open, open + 1), "this string is not closed")
            .help("a string ends with `\"` on the line where it starts");
    }
    let mut expected: BTreeSet<String> = BTreeSet::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(
            positives
                .iter()
                .filter_map(|rule| describe(*rule))
                .map(str::to_owned),
        );
    }
    if let Some(attempts) = error.parse_attempts() {
        // Keywords and values come from the rules above; from the literal
        // tokens only punctuation is worth naming.
        for token in attempts.expected_tokens() {
            let token = token.to_string();
            if ["{", "}", "=", ":", "(", ")", ",", ".", "]"].contains(&token.as_str()) {
                expected.insert(format!("`{token}`"));
            }
        }
    }
    let expected = group(expected);
    // pest stops when its stack runs low ("stack limit reached"): a long
    // `else if` chain or deep nesting, before the builder could count it.
    let limit_reached = matches!(&error.variant, ErrorVariant::CustomError { message } if message.ends_with("limit reached"));
    if limit_reached
        || (expected.is_empty() && nesting_at(text, position) > super::build::MAX_DEPTH)
    {
        return Diagnostic::new(Code::TooDeep, "nested too deeply")
            .label(
                Span::new(file, position, position + 1),
                format!("more than {} levels deep", super::build::MAX_DEPTH),
            )
            .help("split the logic, or use fewer nested blocks and parentheses");
    }
    let found = found_at(text, position);
    let label = expected_label(&expected);
    let mut diagnostic = if found.is_empty() {
        // At the end of the file there is nothing to underline: point at
        // the last thing written instead.
        let last = text.trim_end().len();
        let start = text[..last]
            .char_indices()
            .next_back()
            .map_or(0, |(i, _)| i);
        Diagnostic::new(Code::Syntax, "unexpected end of file")
            .label(Span::new(file, start, last), format!("{label} after this"))
    } else {
        let span = Span::new(file, position, position + found.len());
        Diagnostic::new(Code::Syntax, format!("unexpected `{found}`")).label(span, label)
    };
    if let Some(help) = syntax_help(&expected) {
        diagnostic = diagnostic.help(help);
    }
    diagnostic
}

/// How many brackets are open at `position` (strings and comments skipped).
fn nesting_at(text: &str, position: usize) -> usize {
    let mut depth: usize = 0;
    let mut chars = text[..position.min(text.len())].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth = depth.saturating_sub(1),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    depth
}

/// If `position` is inside a string that is not closed on its line, the
/// offset of its opening quote.
fn unterminated_string(text: &str, position: usize) -> Option<usize> {
    let position = position.min(text.len());
    let line_start = text[..position].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[position..]
        .find('\n')
        .map_or(text.len(), |i| position + i);
    let mut open: Option<usize> = None;
    let mut in_comment = false;
    let mut chars = text[line_start..line_end].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if open.is_some() => {
                chars.next();
            }
            '"' if !in_comment => {
                open = if open.is_some() {
                    None
                } else {
                    Some(line_start + i)
                }
            }
            '/' if open.is_none() && text[line_start + i..].starts_with("//") => in_comment = true,
            _ => {}
        }
    }
    open.filter(|&o| o < position || position == line_end)
}

/// The token at `position`, for "unexpected `...`": a word, or one character.
fn found_at(text: &str, position: usize) -> String {
    let rest = text.get(position..).unwrap_or("");
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .take(40)
        .collect();
    if !word.is_empty() {
        return word;
    }
    rest.chars().next().map(String::from).unwrap_or_default()
}

fn expected_label(expected: &[String]) -> String {
    match expected {
        [] => "not expected here".to_string(),
        [one] => format!("expected {one}"),
        [rest @ .., last] => format!("expected {} or {last}", rest.join(", ")),
    }
}

fn syntax_help(expected: &[String]) -> Option<String> {
    if expected.iter().any(|e| e == "a statement") {
        return Some(
            "an action holds statements: `update service_variables`, `web_request`, `if`, `update_secret`, \
             `run_service`, `sleep`, `log`, `throw` or `try`"
                .into(),
        );
    }
    if expected.iter().any(|e| e.starts_with("a declaration")) {
        return Some(
            "a file holds `secret`, `role`, `user`, `service_account`, `service`, `schedule` and `oauth_client` declarations".into(),
        );
    }
    if expected.iter().any(|e| e == "a duration") {
        return Some(
            "write a duration as a number and a unit: `500ms`, `10s`, `5m`, `3h`, `7d`".into(),
        );
    }
    None
}

/// Replaces families of expected tokens by the word for the family.
fn group(expected: BTreeSet<String>) -> Vec<String> {
    let mut expected = expected;
    let families: &[(&str, &[&str])] = &[
        (
            "a statement",
            &[
                "`update`",
                "`web_request`",
                "`if`",
                "`update_secret`",
                "`update_secrets`",
                "`run_service`",
                "`sleep`",
                "`log`",
                "`throw`",
                "`try`",
            ],
        ),
        (
            "a declaration",
            &[
                "`secret`",
                "`role`",
                "`user`",
                "`service_account`",
                "`service`",
                "`schedule`",
                "`oauth_client`",
            ],
        ),
        (
            "an expression",
            &[
                "a string",
                "a number",
                "`true` or `false`",
                "`null`",
                "a function call",
                "`secret.NAME`",
                "`param.NAME`",
                "`error.FIELD`",
                "a variable",
                "`(`",
                "`!`",
            ],
        ),
        (
            "an operator",
            &["`||`", "`&&`", "`==`", "`!=`", "`<`", "`<=`", "`>`", "`>=`"],
        ),
    ];
    for (family, members) in families {
        let present = members.iter().filter(|m| expected.contains(**m)).count();
        if present * 2 > members.len() {
            for member in *members {
                expected.remove(*member);
            }
            expected.insert(family.to_string());
        }
    }
    if expected.contains("an expression") {
        for implied in ["a name", "`(`", "`!`"] {
            expected.remove(implied);
        }
    }
    // A declaration is only expected at the top level: say so with its words.
    if expected.remove("a declaration") {
        expected.insert(
            "a declaration (`secret`, `role`, `user`, `service_account`, `service`, `schedule`, `oauth_client`)"
                .into(),
        );
    }
    expected.remove("`\\n`");
    let mut list: Vec<String> = expected.into_iter().collect();
    // Words before punctuation reads better: "expected a statement or `}`".
    list.sort_by_key(|e| (e.starts_with('`'), e.clone()));
    list
}

/// The user-facing word for a rule, or `None` for rules that are noise.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        EOI => "end of file",
        ident | role_name => "a name",
        type_name => "a type (`string`, `number`, `bool`, `json`)",
        http_method => "an HTTP method",
        log_state => "`enabled` or `disabled`",
        expr => "an expression",
        string => "a string",
        plain_string => "a string",
        number => "a number",
        integer => "a whole number",
        boolean => "`true` or `false`",
        null => "`null`",
        call => "a function call",
        secret_ref => "`secret.NAME`",
        param_ref => "`param.NAME`",
        error_ref => "`error.FIELD`",
        variable => "a variable",
        not => "`!`",
        or => "`||`",
        and => "`&&`",
        eq => "`==`",
        ne => "`!=`",
        lt => "`<`",
        le => "`<=`",
        gt => "`>`",
        ge => "`>=`",
        duration => "a duration",
        jsonpath => "a JSONPath such as `$.access_token`",
        header_source => "`header \"Name\"`",
        status_source => "`status`",
        body_source => "`body`",
        endpoint_pattern => "`service.endpoint` or `service.*`",
        endpoint_ref => "`service.endpoint`",
        status_code => "an HTTP status code",
        environment_specific => "`environment_specific`",
        locked => "`locked`",
        disabled => "`disabled`",
        kw_secret => "`secret`",
        kw_role => "`role`",
        kw_grant => "`grant`",
        kw_run => "`run`",
        kw_update_secret => "`update_secret`",
        kw_update_secrets => "`update_secrets`",
        kw_read_secret => "`read_secret`",
        kw_read_status => "`read_status`",
        kw_user => "`user`",
        kw_service_account => "`service_account`",
        kw_roles => "`roles`",
        kw_service => "`service`",
        kw_schedule => "`schedule`",
        kw_description => "`description`",
        kw_var => "`var`",
        kw_action => "`action`",
        kw_endpoint => "`endpoint`",
        kw_methods => "`methods`",
        kw_log => "`log`",
        kw_process => "`process`",
        kw_update => "`update`",
        kw_service_variables => "`service_variables`",
        kw_web_request => "`web_request`",
        kw_method => "`method`",
        kw_url => "`url`",
        kw_query => "`query`",
        kw_headers => "`headers`",
        kw_form => "`form`",
        kw_json => "`json`",
        kw_body => "`body`",
        kw_auth => "`auth`",
        kw_basic => "`basic`",
        kw_bearer => "`bearer`",
        kw_timeout => "`timeout`",
        kw_retry => "`retry`",
        kw_attempts => "`attempts`",
        kw_max_time => "`max_time`",
        kw_redirects => "`redirects`",
        cross_origin => "`cross_origin`",
        kw_result_mapping => "`result_mapping`",
        kw_header => "`header`",
        kw_if => "`if`",
        kw_else => "`else`",
        kw_value => "`value`",
        kw_expires_in => "`expires_in`",
        kw_run_service => "`run_service`",
        kw_as => "`as`",
        kw_sleep => "`sleep`",
        kw_throw => "`throw`",
        kw_try => "`try`",
        kw_catch => "`catch`",
        kw_web_request_error => "`web_request_error`",
        kw_every => "`every`",
        kw_cron => "`cron`",
        kw_time_zone => "`time_zone`",
        kw_before_expiry => "`before_expiry`",
        kw_oauth_client => "`oauth_client`",
        kw_issuer => "`issuer`",
        kw_authorize_url => "`authorize_url`",
        kw_token_url => "`token_url`",
        kw_device_authorization_url => "`device_authorization_url`",
        kw_revocation_url => "`revocation_url`",
        kw_refresh_token_ttl => "`refresh_token_ttl`",
        kw_client_id => "`client_id`",
        kw_client_auth => "`client_auth`",
        kw_scopes => "`scopes`",
        kw_stores => "`stores`",
        kw_client_secret_basic => "`client_secret_basic`",
        kw_client_secret_post => "`client_secret_post`",
        kw_private_key_jwt => "`private_key_jwt`",
        kw_jwt_bearer => "`jwt_bearer`",
        kw_client => "`client`",
        kw_refreshed_by => "`refreshed_by`",
        kw_min_valid => "`min_valid`",
        per_account => "`per_account`",
        kw_return_to => "`return_to`",
        kw_provider => "`provider`",
        kw_refresh_tokens => "`refresh_tokens`",
        kw_client_credentials => "`client_credentials`",
        kw_connect => "`connect`",
        kw_for_each_connection => "`for_each_connection`",
        kw_concurrency => "`concurrency`",
        kw_for_connection | for_connection => "`for_connection`",
        connection_ref => "`connection.id` or `connection.tags.KEY`",
        auth_none => "`none`",
        argument => "an argument",
        _ => return None,
    })
}
