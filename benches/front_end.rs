//! Is a hand-written front end worth it? (issue 25, target 4)
//!
//! `svc check` reads programs with a pest parser and builds the AST from
//! pest's pairs. This bench measures, on one thread and the same program
//! (bench/gen_services.py, 200 services, under the size from which
//! `svc check` parses on several threads):
//!
//! - `pest_recognize`: pest's parse of every declaration, its pairs dropped
//!   unread: what pest itself costs;
//! - `pest_and_build`: the front end as it is (`syntax::parse_file`);
//! - `hand_recognize`: the prototype below, a hand-written recursive descent
//!   over the bytes that accepts the same text and records what pest's
//!   queue records (one node per visible rule, with its start and end).
//!
//! The prototype covers the constructs the generated program uses
//! (declarations, the statements and expressions of a refresh); anything
//! else is an error. It is a measurement, not a parser svc uses: it builds
//! no AST and reports no diagnostics. `cargo bench --bench front_end`.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use svc::source::FileId;
use svc::syntax;

/// Every declaration parsed by pest, its pairs dropped; returns how many,
/// or `None` at a syntax error.
fn pest_recognize(text: &str) -> Option<usize> {
    let mut offset = 0;
    let mut items = 0;
    loop {
        let mut pairs = syntax::parser::try_parse_next_item(&text[offset..])?;
        let next = pairs.next().expect("next_item");
        let consumed = next.as_span().end();
        if next.into_inner().next().map(|p| p.as_rule()) == Some(syntax::parser::Rule::EOI) {
            return Some(items);
        }
        items += 1;
        offset += consumed;
    }
}

fn front_end(c: &mut Criterion) {
    let text = common::generate(200);
    assert!(text.len() < 512 * 1024, "one thread: {}", text.len());
    let declarations = pest_recognize(&text).expect("the program parses");
    let mut nodes = Vec::new();
    assert_eq!(prototype::recognize(&text, &mut nodes), Ok(declarations));
    // The prototype refuses what pest refuses.
    let recognized = nodes.len();
    for (from, to) in [
        ("update_secret S7_ACCESS_TOKEN {", "update_secret {"),
        ("deadline + 1m {", "deadline + {"),
        ("every 24h\n}", "every\n}"),
    ] {
        let broken = text.replacen(from, to, 1);
        assert_ne!(broken, text);
        assert_eq!(pest_recognize(&broken), None, "{to}");
        assert!(prototype::recognize(&broken, &mut nodes).is_err(), "{to}");
    }

    // What each side records: pest's pairs (two queue entries each) and
    // the prototype's nodes.
    let mut pairs = 0;
    let mut offset = 0;
    while let Some(mut found) = syntax::parser::try_parse_next_item(&text[offset..]) {
        let next = found.next().expect("next_item");
        offset += next.as_span().end();
        pairs += next.clone().into_inner().flatten().count();
        if next.into_inner().next().map(|p| p.as_rule()) == Some(syntax::parser::Rule::EOI) {
            break;
        }
    }
    eprintln!(
        "{} bytes, {declarations} declarations: pest {pairs} pairs, the prototype {} nodes",
        text.len(),
        recognized
    );

    let mut group = c.benchmark_group("front_end");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_with_input(BenchmarkId::new("pest_recognize", 200), &text, |b, t| {
        b.iter(|| black_box(pest_recognize(t)))
    });
    group.bench_with_input(BenchmarkId::new("pest_and_build", 200), &text, |b, t| {
        b.iter(|| black_box(syntax::parse_file(FileId(0), t)))
    });
    group.bench_with_input(BenchmarkId::new("hand_recognize", 200), &text, |b, t| {
        b.iter(|| {
            let mut nodes = Vec::new();
            black_box(prototype::recognize(t, &mut nodes).unwrap());
            black_box(nodes)
        })
    });
    group.finish();
}

criterion_group!(benches, front_end);
criterion_main!(benches);

mod prototype {
    //! A recursive descent over bytes for the generated program's subset
    //! of the grammar. Keywords are read as words and matched whole, so a
    //! statement is chosen by one comparison of its first word instead of
    //! one attempt per alternative.

    /// One node as pest's queue would hold it: its kind, start and end.
    pub type Node = (u16, u32, u32);

    type Result<T> = std::result::Result<T, usize>;

    pub fn recognize(text: &str, nodes: &mut Vec<Node>) -> Result<usize> {
        nodes.clear();
        let mut p = P {
            s: text.as_bytes(),
            i: 0,
            nodes,
        };
        let mut items = 0;
        loop {
            p.skip();
            if p.i == p.s.len() {
                return Ok(items);
            }
            p.declaration()?;
            items += 1;
        }
    }

    struct P<'a> {
        s: &'a [u8],
        i: usize,
        nodes: &'a mut Vec<Node>,
    }

    fn word_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    impl<'a> P<'a> {
        fn fail<T>(&self) -> Result<T> {
            Err(self.i)
        }

        /// Whitespace and `//` comments.
        fn skip(&mut self) {
            loop {
                while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t'..=b'\r') {
                    self.i += 1;
                }
                if self.s[self.i..].starts_with(b"//") {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                } else {
                    return;
                }
            }
        }

        fn node(&mut self, kind: u16, start: usize) {
            self.nodes.push((kind, start as u32, self.i as u32));
        }

        fn peek(&self) -> u8 {
            self.s.get(self.i).copied().unwrap_or(0)
        }

        fn punct(&mut self, c: u8) -> Result<()> {
            self.skip();
            if self.peek() == c {
                self.i += 1;
                Ok(())
            } else {
                self.fail()
            }
        }

        /// The next word (a name or a keyword), without consuming it.
        fn peek_word(&mut self) -> &'a [u8] {
            self.skip();
            let start = self.i;
            let mut end = start;
            if end < self.s.len() && (self.s[end].is_ascii_alphabetic() || self.s[end] == b'_') {
                while end < self.s.len() && word_byte(self.s[end]) {
                    end += 1;
                }
            }
            &self.s[start..end]
        }

        fn ident(&mut self) -> Result<()> {
            let len = self.peek_word().len();
            if len == 0 {
                return self.fail();
            }
            let start = self.i;
            self.i += len;
            self.node(1, start);
            Ok(())
        }

        fn keyword(&mut self, kw: &[u8]) -> Result<()> {
            if self.peek_word() == kw {
                self.i += kw.len();
                Ok(())
            } else {
                self.fail()
            }
        }

        fn declaration(&mut self) -> Result<()> {
            let start = self.i;
            let word = self.peek_word();
            let len = word.len();
            let kind = match word {
                b"secret" => 10,
                b"role" => 11,
                b"service_account" | b"user" => 12,
                b"service" => 13,
                b"schedule" => 14,
                _ => return self.fail(),
            };
            self.i += len;
            self.ident()?;
            self.punct(b'{')?;
            loop {
                self.skip();
                if self.peek() == b'}' {
                    self.i += 1;
                    break;
                }
                match kind {
                    10 => self.secret_part()?,
                    11 => self.role_part()?,
                    12 => self.identity_part()?,
                    13 => self.service_part()?,
                    _ => self.schedule_part()?,
                }
            }
            self.node(kind, start);
            Ok(())
        }

        fn secret_part(&mut self) -> Result<()> {
            let start = self.i;
            let word = self.peek_word();
            let len = word.len();
            match word {
                b"environment_specific" | b"locked" | b"per_account" => self.i += len,
                b"description" => {
                    self.i += len;
                    self.plain_string()?;
                }
                _ => return self.fail(),
            }
            self.node(20, start);
            Ok(())
        }

        fn role_part(&mut self) -> Result<()> {
            let start = self.i;
            match self.peek_word() {
                b"grant" => self.i += 5,
                b"description" => {
                    self.i += 11;
                    return self.plain_string();
                }
                _ => return self.fail(),
            }
            let word = self.peek_word();
            let len = word.len();
            match word {
                b"run" => {
                    self.i += len;
                    self.endpoint_ref(true)?;
                }
                b"update_secret" | b"read_secret" | b"read_status" | b"connect" => {
                    self.i += len;
                    self.ident()?;
                }
                _ => return self.fail(),
            }
            self.node(21, start);
            Ok(())
        }

        fn identity_part(&mut self) -> Result<()> {
            let start = self.i;
            match self.peek_word() {
                b"roles" => self.i += 5,
                b"description" => {
                    self.i += 11;
                    return self.plain_string();
                }
                _ => return self.fail(),
            }
            loop {
                match self.peek_word() {
                    b"" | b"roles" | b"description" => break,
                    _ => self.ident()?,
                }
            }
            self.node(22, start);
            Ok(())
        }

        /// `NAME.NAME`, or `NAME.*` where a wildcard is allowed.
        fn endpoint_ref(&mut self, wildcard: bool) -> Result<()> {
            let start = self.i;
            self.ident()?;
            if self.peek() != b'.' {
                return self.fail();
            }
            self.i += 1;
            if wildcard && self.peek() == b'*' {
                self.i += 1;
            } else if self.peek().is_ascii_alphabetic() || self.peek() == b'_' {
                self.ident()?;
            } else {
                return self.fail();
            }
            self.node(23, start);
            Ok(())
        }

        fn service_part(&mut self) -> Result<()> {
            let start = self.i;
            match self.peek_word() {
                b"var" => {
                    self.i += 3;
                    self.ident()?;
                    self.punct(b':')?;
                    self.ident()?;
                }
                b"action" => {
                    self.i += 6;
                    self.ident()?;
                    self.block()?;
                }
                b"endpoint" => {
                    self.i += 8;
                    self.ident()?;
                    self.punct(b'{')?;
                    loop {
                        self.skip();
                        if self.peek() == b'}' {
                            self.i += 1;
                            break;
                        }
                        self.endpoint_part()?;
                    }
                }
                _ => return self.fail(),
            }
            self.node(30, start);
            Ok(())
        }

        fn endpoint_part(&mut self) -> Result<()> {
            let start = self.i;
            let word = self.peek_word();
            let len = word.len();
            match word {
                b"description" => {
                    self.i += len;
                    self.plain_string()?;
                }
                b"methods" => {
                    self.i += len;
                    loop {
                        match self.peek_word() {
                            b"" | b"description" | b"methods" | b"log" | b"process"
                            | b"on_failure" | b"on_recovery" | b"params" | b"response" => break,
                            _ => self.ident()?,
                        }
                    }
                }
                b"log" => {
                    self.i += len;
                    match self.peek_word() {
                        b"enabled" => self.i += 7,
                        b"disabled" => self.i += 8,
                        _ => return self.fail(),
                    }
                }
                b"process" => {
                    self.i += len;
                    self.ident()?;
                }
                b"on_failure" | b"on_recovery" => {
                    self.i += len;
                    self.block()?;
                }
                _ => return self.fail(),
            }
            self.node(31, start);
            Ok(())
        }

        fn schedule_part(&mut self) -> Result<()> {
            let start = self.i;
            let word = self.peek_word();
            let len = word.len();
            match word {
                b"endpoint" => {
                    self.i += len;
                    self.endpoint_ref(false)?;
                }
                b"service_account" => {
                    self.i += len;
                    self.ident()?;
                }
                b"every" => {
                    self.i += len;
                    self.duration()?;
                }
                b"cron" | b"time_zone" | b"description" => {
                    self.i += len;
                    self.plain_string()?;
                }
                b"disabled" => self.i += len,
                _ => return self.fail(),
            }
            self.node(32, start);
            Ok(())
        }

        /// `DIGITS` then any word characters: the checker reads the unit.
        fn duration(&mut self) -> Result<()> {
            self.skip();
            let start = self.i;
            if !self.peek().is_ascii_digit() {
                return self.fail();
            }
            while self.peek().is_ascii_digit() {
                self.i += 1;
            }
            while word_byte(self.peek()) {
                self.i += 1;
            }
            self.node(33, start);
            Ok(())
        }

        fn block(&mut self) -> Result<()> {
            let start = self.i;
            self.punct(b'{')?;
            loop {
                self.skip();
                if self.peek() == b'}' {
                    self.i += 1;
                    break;
                }
                self.statement()?;
            }
            self.node(40, start);
            Ok(())
        }

        fn statement(&mut self) -> Result<()> {
            let start = self.i;
            let word = self.peek_word();
            let len = word.len();
            let kind = match word {
                b"if" => {
                    self.i += len;
                    self.expr()?;
                    self.block()?;
                    if self.peek_word() == b"else" {
                        let start = self.i;
                        self.i += 4;
                        if self.peek_word() == b"if" {
                            self.statement()?;
                        } else {
                            self.block()?;
                        }
                        self.node(42, start);
                    }
                    41
                }
                b"update_secret" => {
                    self.i += len;
                    self.secret_update()?;
                    43
                }
                b"update_secrets" => {
                    self.i += len;
                    self.punct(b'{')?;
                    loop {
                        self.skip();
                        if self.peek() == b'}' {
                            self.i += 1;
                            break;
                        }
                        self.secret_update()?;
                    }
                    44
                }
                b"web_request" => {
                    self.i += len;
                    self.web_request()?;
                    45
                }
                b"update" => {
                    self.i += len;
                    self.keyword(b"service_variables")?;
                    self.punct(b'{')?;
                    loop {
                        self.skip();
                        if self.peek() == b'}' {
                            self.i += 1;
                            break;
                        }
                        let start = self.i;
                        self.ident()?;
                        self.punct(b'=')?;
                        self.expr()?;
                        self.node(47, start);
                    }
                    46
                }
                b"log" => {
                    self.i += len;
                    self.expr()?;
                    48
                }
                b"sleep" => {
                    self.i += len;
                    self.duration()?;
                    49
                }
                _ => return self.fail(),
            };
            self.node(kind, start);
            Ok(())
        }

        fn secret_update(&mut self) -> Result<()> {
            let start = self.i;
            self.ident()?;
            self.skip();
            if self.peek() == b'=' {
                self.i += 1;
                self.expr()?;
            } else {
                self.punct(b'{')?;
                loop {
                    self.skip();
                    if self.peek() == b'}' {
                        self.i += 1;
                        break;
                    }
                    let start = self.i;
                    match self.peek_word() {
                        b"value" => self.i += 5,
                        b"expires_in" => self.i += 10,
                        _ => return self.fail(),
                    }
                    self.punct(b'=')?;
                    self.expr()?;
                    self.node(51, start);
                }
            }
            self.node(50, start);
            Ok(())
        }

        fn web_request(&mut self) -> Result<()> {
            self.punct(b'{')?;
            loop {
                self.skip();
                if self.peek() == b'}' {
                    self.i += 1;
                    return Ok(());
                }
                let start = self.i;
                let word = self.peek_word();
                let len = word.len();
                match word {
                    b"method" => {
                        self.i += len;
                        self.ident()?;
                    }
                    b"url" | b"body" => {
                        self.i += len;
                        self.expr()?;
                    }
                    b"headers" | b"form" | b"query" | b"json" => {
                        self.i += len;
                        self.punct(b'{')?;
                        loop {
                            self.skip();
                            if self.peek() == b'}' {
                                self.i += 1;
                                break;
                            }
                            let start = self.i;
                            if self.peek() == b'"' {
                                self.plain_string()?;
                            } else {
                                self.ident()?;
                            }
                            self.punct(b'=')?;
                            self.expr()?;
                            self.node(61, start);
                        }
                    }
                    b"timeout" => {
                        self.i += len;
                        self.duration()?;
                    }
                    b"result_mapping" => {
                        self.i += len;
                        self.punct(b'{')?;
                        loop {
                            self.skip();
                            if self.peek() == b'}' {
                                self.i += 1;
                                break;
                            }
                            let start = self.i;
                            self.ident()?;
                            self.punct(b'=')?;
                            self.skip();
                            match self.peek() {
                                b'$' => self.jsonpath()?,
                                _ => match self.peek_word() {
                                    b"status" => self.i += 6,
                                    b"body" => self.i += 4,
                                    b"header" => {
                                        self.i += 6;
                                        self.plain_string()?;
                                    }
                                    _ => return self.fail(),
                                },
                            }
                            self.node(62, start);
                        }
                    }
                    _ => return self.fail(),
                }
                self.node(60, start);
            }
        }

        fn jsonpath(&mut self) -> Result<()> {
            let start = self.i;
            self.i += 1;
            loop {
                match self.peek() {
                    b'.' => {
                        self.i += 1;
                        if self.peek() == b'.' {
                            self.i += 1;
                        }
                        if self.peek() == b'*' {
                            self.i += 1;
                        } else if self.peek() == b'[' {
                            self.bracket()?;
                        } else {
                            let from = self.i;
                            while word_byte(self.peek()) || self.peek() >= 0x80 {
                                self.i += 1;
                            }
                            if self.i == from {
                                return self.fail();
                            }
                        }
                    }
                    b'[' => self.bracket()?,
                    _ => break,
                }
            }
            self.node(63, start);
            Ok(())
        }

        fn bracket(&mut self) -> Result<()> {
            self.i += 1;
            loop {
                match self.peek() {
                    b']' => {
                        self.i += 1;
                        return Ok(());
                    }
                    b'[' => self.bracket()?,
                    q @ (b'\'' | b'"') => {
                        self.i += 1;
                        loop {
                            match self.peek() {
                                b'\\' => self.i += 2,
                                b'\n' | 0 => return self.fail(),
                                c if c == q => {
                                    self.i += 1;
                                    break;
                                }
                                _ => self.i += 1,
                            }
                        }
                    }
                    b'\n' | 0 => return self.fail(),
                    _ => self.i += 1,
                }
            }
        }

        fn plain_string(&mut self) -> Result<()> {
            self.skip();
            let start = self.i;
            if self.peek() != b'"' {
                return self.fail();
            }
            self.i += 1;
            loop {
                match self.peek() {
                    b'"' => {
                        self.i += 1;
                        break;
                    }
                    b'\\' => {
                        self.i += if self.s.get(self.i + 1) == Some(&b'\n') {
                            1
                        } else {
                            2
                        }
                    }
                    b'\n' | 0 => return self.fail(),
                    _ => self.i += 1,
                }
            }
            self.node(70, start);
            Ok(())
        }

        /// A string with `${...}` interpolations: one node per piece.
        fn string(&mut self) -> Result<()> {
            let start = self.i;
            self.i += 1;
            loop {
                let piece = self.i;
                match self.peek() {
                    b'"' => {
                        self.i += 1;
                        break;
                    }
                    b'\\' => {
                        self.i += if self.s.get(self.i + 1) == Some(&b'\n') {
                            1
                        } else {
                            2
                        };
                        self.node(72, piece);
                    }
                    b'$' if self.s.get(self.i + 1) == Some(&b'{') => {
                        self.i += 2;
                        self.expr()?;
                        self.punct(b'}')?;
                        self.node(73, piece);
                    }
                    b'\n' | 0 => return self.fail(),
                    _ => {
                        while !self.string_piece_ends() {
                            self.i += 1;
                        }
                        self.node(74, piece);
                    }
                }
            }
            self.node(71, start);
            Ok(())
        }

        /// At a quote, an escape, a line end, the end or a `${`.
        fn string_piece_ends(&self) -> bool {
            matches!(self.peek(), b'"' | b'\\' | b'\n' | 0)
                || (self.peek() == b'$' && self.s.get(self.i + 1) == Some(&b'{'))
        }

        fn expr(&mut self) -> Result<()> {
            let start = self.i;
            loop {
                self.nots();
                self.primary()?;
                self.skip();
                let rest = &self.s[self.i..];
                let op = match rest {
                    [b'|', b'|', ..] | [b'&', b'&', ..] | [b'=', b'=', ..] => 2,
                    [b'!', b'=', ..] | [b'<', b'=', ..] | [b'>', b'=', ..] => 2,
                    [b'/', b'/', ..] => 0,
                    [b'<' | b'>' | b'+' | b'-' | b'*' | b'/', ..] => 1,
                    _ => 0,
                };
                if op == 0 {
                    break;
                }
                let at = self.i;
                self.i += op;
                self.node(80, at);
            }
            self.node(81, start);
            Ok(())
        }

        fn nots(&mut self) {
            loop {
                self.skip();
                if self.peek() == b'!' && self.s.get(self.i + 1) != Some(&b'=') {
                    let at = self.i;
                    self.i += 1;
                    self.node(82, at);
                } else {
                    return;
                }
            }
        }

        fn primary(&mut self) -> Result<()> {
            self.skip();
            let start = self.i;
            match self.peek() {
                b'"' => return self.string(),
                b'(' => {
                    self.i += 1;
                    self.expr()?;
                    return self.punct(b')');
                }
                b'0'..=b'9' | b'-' => return self.number_or_duration(),
                _ => {}
            }
            let word = self.peek_word();
            let len = word.len();
            if len == 0 {
                return self.fail();
            }
            let kind = match word {
                b"null" | b"true" | b"false" => {
                    self.i += len;
                    83
                }
                b"secret" | b"param" | b"error" | b"run" | b"connection"
                    if self.s.get(self.i + len) == Some(&b'.') =>
                {
                    self.i += len + 1;
                    self.ident()?;
                    if word == b"connection" && self.peek() == b'.' {
                        self.i += 1;
                        self.ident()?;
                    }
                    84
                }
                _ => {
                    self.i += len;
                    if self.peek() == b'(' {
                        self.i += 1;
                        self.skip();
                        if self.peek() != b')' {
                            self.expr()?;
                            loop {
                                self.skip();
                                if self.peek() != b',' {
                                    break;
                                }
                                self.i += 1;
                                self.expr()?;
                            }
                        }
                        self.punct(b')')?;
                        85
                    } else {
                        86
                    }
                }
            };
            self.node(kind, start);
            Ok(())
        }

        fn number_or_duration(&mut self) -> Result<()> {
            let start = self.i;
            if self.peek() == b'-' {
                self.i += 1;
            }
            if !self.peek().is_ascii_digit() {
                return self.fail();
            }
            while self.peek().is_ascii_digit() {
                self.i += 1;
            }
            let unit_start = self.i;
            while self.peek().is_ascii_alphabetic() {
                self.i += 1;
            }
            let unit = &self.s[unit_start..self.i];
            if !unit.is_empty() {
                if self.s[start] == b'-' || !matches!(unit, b"ms" | b"s" | b"m" | b"h" | b"d") {
                    return self.fail();
                }
            } else if self.peek() == b'.' && self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit)
            {
                self.i += 1;
                while self.peek().is_ascii_digit() {
                    self.i += 1;
                }
            }
            if word_byte(self.peek()) {
                return self.fail();
            }
            self.node(87, start);
            Ok(())
        }
    }
}
