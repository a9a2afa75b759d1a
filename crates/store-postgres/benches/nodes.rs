//! PostgreSQL store benchmarks: a secret read through the store, cold (cache off) and cached,
//! and the delay from a change on one node to its use on another (two `PgStore`s on one
//! database, each with its cache warm: only the NOTIFY can make the second see the change).
//! Criterion reports the reads; the delay is measured over 200 changes and printed as
//! p50/p99 on stderr.
//!
//! Needs a PostgreSQL server whose user may create databases, named by KESTREL_TEST_POSTGRES
//! (e.g. from `scripts/services/postgres-start DIR`):
//! KESTREL_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT/postgres \
//!   cargo bench -p kestrel-store-postgres --bench nodes -- --warm-up-time 1 --measurement-time 3

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Benchmark code: a failure ends the run.

use criterion::{Criterion, criterion_group, criterion_main};
use kestrel_crypto::MasterKey;
use kestrel_secrets::SecretValue;
use kestrel_store::{Actor, SecretId, SecretStore};
use kestrel_store_postgres::{PgOptions, PgStore, testing};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

fn actor() -> Actor {
    Actor::System("bench".into())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Two nodes on one new database, the secret set once.
fn nodes(rt: &Runtime, cache_capacity: usize) -> (PgStore, PgStore, SecretId) {
    rt.block_on(async {
        let url = testing::fresh_database()
            .await
            .expect("KESTREL_TEST_POSTGRES names the server to measure");
        let key = MasterKey::generate().unwrap();
        let options = PgOptions {
            cache_capacity,
            ..PgOptions::default()
        };
        let a = PgStore::connect(&url, key.clone(), options.clone())
            .await
            .unwrap();
        let b = PgStore::connect(&url, key, options).await.unwrap();
        let id = SecretId::main("bench.team", "DB_PASSWORD").unwrap();
        let value = SecretValue::new("a-secret-value-of-about-32-bytes".into());
        a.set(&actor(), &id, &value, None).await.unwrap();
        (a, b, id)
    })
}

fn reads(c: &mut Criterion) {
    let rt = runtime();
    let (cold, _, id) = nodes(&rt, 0);
    c.bench_function("postgres get, cold (cache off)", |b| {
        b.iter(|| rt.block_on(cold.get(black_box(&id), None)).unwrap());
    });
    let (cached, _, id) = nodes(&rt, 10_000);
    c.bench_function("postgres get, cached", |b| {
        b.iter(|| rt.block_on(cached.get(black_box(&id), None)).unwrap());
    });
}

/// Sets a new value on `a` and waits until `b` reads it: the time a rotation takes to be used
/// on another node.
async fn propagation(a: &PgStore, b: &PgStore, id: &SecretId, round: usize) -> Duration {
    let text = format!("rotated-value-number-{round:06}");
    let started = Instant::now();
    a.set(&actor(), id, &SecretValue::new(text.clone()), None)
        .await
        .unwrap();
    loop {
        let read = b.get(id, None).await.unwrap().expect("set");
        if read.value.expose_secret() == text {
            return started.elapsed();
        }
        tokio::task::yield_now().await;
    }
}

fn rotation_delay(_: &mut Criterion) {
    let rt = runtime();
    let (a, b, id) = nodes(&rt, 10_000);
    let mut delays: Vec<Duration> = rt.block_on(async {
        // Warm b's cache so that only an invalidation can make it see the change.
        b.get(&id, None).await.unwrap();
        let mut delays = Vec::new();
        for round in 0..200 {
            delays.push(propagation(&a, &b, &id, round).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays
    });
    delays.sort();
    let at = |q: usize| delays[(delays.len() * q / 100).min(delays.len() - 1)];
    eprintln!(
        "rotation on node A to use on node B (set committed, NOTIFY, B's cache dropped, B reads): \
         p50 {:?}, p99 {:?}, max {:?} over {} changes",
        at(50),
        at(99),
        delays[delays.len() - 1],
        delays.len()
    );
}

criterion_group!(benches, reads, rotation_delay);
criterion_main!(benches);
