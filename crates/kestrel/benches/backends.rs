//! Reads from the external secret managers, each on its local stand-in this benchmark starts
//! (`bao` and `moto_server` on PATH: scripts/services/openbao-install, moto-install): a read
//! that goes to the server, and a read kestrel's cache answers, through `External` as
//! `secret()` reaches it.
//!
//! cargo bench -p kestrel --bench backends -- --warm-up-time 1 --measurement-time 3

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
use kestrel_store_vault::VaultManager;
use kestrel_store_vault::testing::DevVault;
use std::sync::Arc;

/// `name/get_uncached` and `name/get_cached` of one key held by `manager`.
fn reads_of(c: &mut Criterion, name: &str, manager: Arc<dyn SecretManager>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = SecretId::main("bench.team", "API_TOKEN").unwrap();
    let value = SecretValue::new("a-bench-secret-value".into());
    runtime.block_on(manager.set(&id, &value, None)).unwrap();
    c.bench_function(&format!("{name}/get_uncached"), |b| {
        b.iter(|| runtime.block_on(manager.get(&id, None)).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let home = SqliteStore::open(dir.path(), key, StoreOptions::default()).unwrap();
    let cached = Cached::new(manager, CacheSettings::default(), Arc::new(|_: &str| {}));
    let joined = External::new(Arc::new(cached), Arc::new(home), DEFAULT_MAX_VALUE_SIZE);
    let external = runtime.block_on(joined).unwrap();
    runtime.block_on(external.get(&id, None)).unwrap();
    c.bench_function(&format!("{name}/get_cached"), |b| {
        b.iter(|| runtime.block_on(external.get(&id, None)).unwrap())
    });
}

fn reads(c: &mut Criterion) {
    let vault = DevVault::start().expect("bao on PATH (scripts/services/openbao-install)");
    reads_of(
        c,
        "vault",
        Arc::new(VaultManager::new(vault.settings()).unwrap()),
    );
    let aws = DevAws::start().expect("moto_server on PATH (scripts/services/moto-install)");
    reads_of(
        c,
        "aws",
        Arc::new(AwsManager::new(&aws.settings()).unwrap()),
    );
}

criterion_group!(benches, reads);
criterion_main!(benches);
