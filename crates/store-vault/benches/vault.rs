//! Vault manager benchmarks against an OpenBao dev server on 127.0.0.1: `get` of one secret
//! straight from the server (one HTTP round trip on the manager's runtime thread) and through
//! kestrel's read-through cache (`kestrel_store::Cached`, default settings). Without `bao` on
//! PATH it says so and measures nothing.
//!
//! Run: nice cargo bench -p kestrel-store-vault --bench vault -- --warm-up-time 1 --measurement-time 3

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.
#![allow(clippy::unwrap_used)] // Benchmark code: a failure ends the run.

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use kestrel_secrets::SecretValue;
use kestrel_store::{CacheSettings, Cached, SecretId, SecretManager};
use kestrel_store_vault::VaultManager;
use kestrel_store_vault::testing::DevVault;
use std::hint::black_box;
use std::sync::Arc;

fn gets(c: &mut Criterion) {
    let vault = match DevVault::start() {
        Ok(vault) => vault,
        Err(missing) => {
            eprintln!("SKIPPED the Vault benchmarks: {missing}");
            return;
        }
    };
    // The caller's runtime; the manager's requests run on its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let manager = Arc::new(VaultManager::new(vault.settings()).unwrap());
    let id = SecretId::main("company.team", "API_KEY").unwrap();
    let value = SecretValue::new("a-secret-value-of-about-32-bytes".into());
    runtime.block_on(manager.set(&id, &value, None)).unwrap();

    c.bench_function("vault get, uncached (HTTP round trip)", |b| {
        b.iter(|| black_box(runtime.block_on(manager.get(black_box(&id), None)).unwrap()))
    });

    let cached = Cached::new(manager, CacheSettings::default(), Arc::new(|_: &str| {}));
    runtime.block_on(cached.get(&id)).unwrap();
    c.bench_function("vault get, cached", |b| {
        // A hit completes on its first poll: no runtime in the measured path.
        b.iter(|| black_box(cached.get(black_box(&id)).now_or_never().unwrap().unwrap()))
    });
}

criterion_group!(benches, gets);
criterion_main!(benches);
