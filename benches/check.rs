//! `svc check` throughput: parse and check generated programs of 10 to
//! 10,000 services (the shape of the HubSpot example, see
//! bench/gen_services.py), in process, from memory.
//!
//! `cargo bench --bench check`; criterion reports MB/s (throughput) and the
//! time per program, from which bench/run.sh derives the time per service.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use svc::program;
use svc::source::{SourceFile, SourceMap};

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    for services in [10, 100, 1_000, 10_000] {
        let text = common::generate(services);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(services), &text, |b, text| {
            b.iter(|| {
                let mut sources = SourceMap::new();
                sources.add(SourceFile::new("bench.svc", "bench.svc", text.as_str()));
                let checked = program::check_sources(sources);
                assert_eq!(checked.analysis.diagnostics.len(), 0);
                black_box(checked)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
