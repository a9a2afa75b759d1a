//! Reads from AWS Secrets Manager as moto emulates it (a server on 127.0.0.1 this benchmark starts;
//! `moto_server` on PATH: scripts/services/moto-install): a read that goes to the server, and a read kestrel's
//! cache answers, through `External` as `secret()` reaches it.
//!
//! cargo bench -p kestrel-store-aws --bench aws -- --warm-up-time 1 --measurement-time 3

#![allow(clippy::unwrap_used, missing_docs)] // A benchmark: a failure is a failed run.

use criterion::{Criterion, criterion_group, criterion_main};
use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::{
    CacheSettings, Cached, DEFAULT_MAX_VALUE_SIZE, External, SecretId, SecretManager, SecretStore,
};
use kestrel_store_aws::AwsManager;
use kestrel_store_aws::testing::DevAws;
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::sync::Arc;

fn reads(c: &mut Criterion) {
    let aws = DevAws::start().expect("moto_server on PATH (scripts/services/moto-install)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let manager = Arc::new(AwsManager::new(&aws.settings()).unwrap());
    let id = SecretId::main("bench.team", "API_TOKEN").unwrap();
    let value = SecretValue::new("a-bench-secret-value".into());
    runtime.block_on(manager.set(&id, &value, None)).unwrap();
    c.bench_function("aws/get_uncached", |b| {
        b.iter(|| runtime.block_on(manager.get(&id, None)).unwrap())
    });

    let dir = tempfile::tempdir().unwrap();
    let home = SqliteStore::open(
        dir.path(),
        MasterKey::generate().unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let dyn_manager: Arc<dyn SecretManager> = manager;
    let cached = Arc::new(Cached::new(
        dyn_manager,
        CacheSettings::default(),
        Arc::new(|_: &str| {}),
    ));
    let external = runtime
        .block_on(External::new(
            cached,
            Arc::new(home),
            DEFAULT_MAX_VALUE_SIZE,
        ))
        .unwrap();
    runtime.block_on(external.get(&id, None)).unwrap();
    c.bench_function("aws/get_cached", |b| {
        b.iter(|| runtime.block_on(external.get(&id, None)).unwrap())
    });
}

criterion_group!(benches, reads);
criterion_main!(benches);
