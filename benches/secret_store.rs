//! Setting one secret in stores of 10, 1,000 and 10,000 secrets: the whole
//! locked read-modify-write (decrypt, parse, change, serialize, encrypt,
//! write, fsync, rename), through the library API.
//!
//! `cargo bench --bench secret_store`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use svc::backend::files::store::Store;
use svc::secrets::document::now;
use svc::secrets::{Identities, NewValue, SecretValue};

fn store_with(dir: &std::path::Path, secrets: usize) -> (Store, Identities) {
    let identity = age::x25519::Identity::generate();
    let key_path: PathBuf = dir.join("key.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &key_path,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
    }
    let identities = Identities::read(&[key_path]).unwrap();
    let store = Store::new(dir.join("secrets"), "bench").unwrap();
    store.init(&format!("{}\n", identity.to_public())).unwrap();
    store
        .update(&identities, |doc| {
            for i in 0..secrets {
                let value = NewValue {
                    value: SecretValue::new(format!("value-{i}-{}", "x".repeat(40))),
                    expires_at: None,
                };
                doc.set(&format!("SECRET_{i}"), value, "bench", now());
            }
            Ok(())
        })
        .unwrap();
    (store, identities)
}

fn set_one_secret(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_one_secret");
    group.sample_size(20);
    for secrets in [10, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let (store, identities) = store_with(dir.path(), secrets);
        let mut round = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(secrets), &secrets, |b, _| {
            b.iter(|| {
                round += 1;
                store
                    .update(&identities, |doc| {
                        let value = NewValue {
                            value: SecretValue::new(format!("token-{round}")),
                            expires_at: None,
                        };
                        Ok(black_box(doc.set("TOKEN", value, "bench", now())))
                    })
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, set_one_secret);
criterion_main!(benches);
