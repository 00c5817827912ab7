//! The front end: pest against the hand-written parser (issue 25, target 4).
//!
//! `svc check` reads programs with a hand-written parser (src/syntax/descent.rs)
//! that builds the tree pest's pairs hold; pest reads what it refuses and
//! explains syntax errors. This bench measures, on one thread and the same
//! program (bench/gen_services.py, 200 services, under the size from which
//! `svc check` parses on several threads):
//!
//! - `pest_recognize`: pest's parse of every declaration, its pairs dropped
//!   unread: what the front end cost before the hand-written parser, less
//!   building the AST;
//! - `pest_tree`: the same, its pairs copied into the tree the builder reads:
//!   the parse the front end would do with pest;
//! - `descent_tree`: the hand-written parser, the same tree;
//! - `front_end`: the front end as it is (`syntax::parse_file`: the
//!   hand-written parser and the AST builder).
//!
//! `cargo bench --bench front_end`.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use svc::source::FileId;
use svc::syntax;
use svc::syntax::parser::Rule;
use svc::syntax::tree::Tree;

/// Every declaration read by `parse`; returns how many, or `None` at a
/// syntax error.
fn each<'t>(text: &'t str, parse: impl Fn(&'t str) -> Option<Tree<'t>>) -> Option<usize> {
    let mut offset = 0;
    let mut items = 0;
    loop {
        let tree = parse(&text[offset..])?;
        let next = tree.root().expect("next_item");
        if next.into_inner().next().map(|p| p.as_rule()) == Some(Rule::EOI) {
            return Some(items);
        }
        items += 1;
        offset += next.as_span().end();
    }
}

/// pest's parse of every declaration, its pairs dropped unread.
fn pest_recognize(text: &str) -> Option<usize> {
    let mut offset = 0;
    let mut items = 0;
    loop {
        let mut pairs = syntax::parser::pest_next_item(&text[offset..])?;
        let next = pairs.next().expect("next_item");
        let consumed = next.as_span().end();
        if next.into_inner().next().map(|p| p.as_rule()) == Some(Rule::EOI) {
            return Some(items);
        }
        items += 1;
        offset += consumed;
    }
}

fn pest_tree(text: &str) -> Option<Tree<'_>> {
    syntax::parser::pest_next_item(text).map(|pairs| Tree::from_pest(text, pairs))
}

fn front_end(c: &mut Criterion) {
    let text = common::generate(200);
    assert!(text.len() < 512 * 1024, "one thread: {}", text.len());
    let declarations = pest_recognize(&text).expect("the program parses");
    assert_eq!(each(&text, pest_tree), Some(declarations));
    assert_eq!(
        each(&text, syntax::parser::try_parse_next_item),
        Some(declarations)
    );
    eprintln!("{} bytes, {declarations} declarations", text.len());

    let mut group = c.benchmark_group("front_end");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_with_input(BenchmarkId::new("pest_recognize", 200), &text, |b, t| {
        b.iter(|| black_box(pest_recognize(t)))
    });
    group.bench_with_input(BenchmarkId::new("pest_tree", 200), &text, |b, t| {
        b.iter(|| black_box(each(t, pest_tree)))
    });
    group.bench_with_input(BenchmarkId::new("descent_tree", 200), &text, |b, t| {
        b.iter(|| black_box(each(t, syntax::parser::try_parse_next_item)))
    });
    group.bench_with_input(BenchmarkId::new("front_end", 200), &text, |b, t| {
        b.iter(|| black_box(syntax::parse_file(FileId(0), t)))
    });
    group.finish();
}

criterion_group!(benches, front_end);
criterion_main!(benches);
