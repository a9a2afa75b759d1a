//! Store benchmarks: get (cached, cold), set (NORMAL, FULL), a resolver walk of depth 5, and
//! gets with 100,000 secrets stored. Criterion reports mean and median; a plain loop per case
//! records each operation's latency and prints p50/p99 on stderr (each sample includes one
//! `Instant::now()`, about 20 ns).
//!
//! Run: cargo bench -p kestrel-store-sqlite --bench store -- --warm-up-time 1 --measurement-time 3

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.
#![allow(clippy::unwrap_used)] // Benchmark code: a failure ends the run.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kestrel_crypto::MasterKey;
use kestrel_secrets::{EnvBackend, EnvOptions, Reader, Resolver, SecretValue};
use kestrel_store::{Actor, SecretId, SecretStore};
use kestrel_store_sqlite::{SqliteStore, StoreOptions, Synchronous};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tempfile::TempDir;

/// The store's futures complete on their first poll (SQLite calls are synchronous).
fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("store futures complete at once"),
    }
}

fn actor() -> Actor {
    Actor::System("bench".into())
}

fn id(namespace: &str, i: usize) -> SecretId {
    SecretId::main(namespace, &format!("KEY_{i}")).unwrap()
}

struct Opened {
    _dir: TempDir,
    key: MasterKey,
    store: SqliteStore,
}

fn open(options: StoreOptions) -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().unwrap();
    let store = SqliteStore::open(dir.path(), key.clone(), options).unwrap();
    Opened {
        _dir: dir,
        key,
        store,
    }
}

fn fill(store: &SqliteStore, namespace: &str, n: usize) {
    let value = SecretValue::new("a-secret-value-of-about-32-bytes".into());
    for i in 0..n {
        now(store.set(&actor(), &id(namespace, i), &value, None)).unwrap();
    }
}

/// A small deterministic generator for key indexes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// Runs `op` `n` times, timing each call, and prints p50 and p99.
fn percentiles(label: &str, n: usize, mut op: impl FnMut(usize)) {
    let mut samples: Vec<u128> = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i);
        samples.push(start.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<u128>() / samples.len() as u128;
    eprintln!(
        "p50/p99 {label:<40} n={n:<7} p50={:>9} ns  p99={:>9} ns  mean={mean:>9} ns",
        at(0.50),
        at(0.99)
    );
}

fn get_benches(c: &mut Criterion, secrets: usize) {
    let opened = open(StoreOptions::default());
    let cached = &opened.store;
    fill(cached, "bench.ns", secrets);
    // Another handle on the same file with the cache off: every get reads SQLite and decrypts.
    let uncached = StoreOptions {
        cache_capacity: 0,
        ..StoreOptions::default()
    };
    let cold_store = SqliteStore::open_file(&cached.path(), opened.key.clone(), uncached).unwrap();
    let hot: Vec<SecretId> = (0..1_000.min(secrets)).map(|i| id("bench.ns", i)).collect();
    let all: Vec<SecretId> = (0..secrets).map(|i| id("bench.ns", i)).collect();
    for k in &hot {
        now(cached.get(k, None)).unwrap();
    }
    let mut group = c.benchmark_group(format!("get/{secrets}_stored"));
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    group.bench_function(BenchmarkId::new("cached", "1000_hot_keys"), |b| {
        b.iter(|| now(cached.get(black_box(&hot[rng.next(hot.len())]), None)).unwrap())
    });
    group.bench_function(BenchmarkId::new("cold", "random_key"), |b| {
        b.iter(|| now(cold_store.get(black_box(&all[rng.next(all.len())]), None)).unwrap())
    });
    group.finish();
    percentiles(&format!("get cached ({secrets} stored)"), 200_000, |_| {
        black_box(now(cached.get(&hot[rng.next(hot.len())], None)).unwrap());
    });
    percentiles(&format!("get cold ({secrets} stored)"), 50_000, |_| {
        black_box(now(cold_store.get(&all[rng.next(all.len())], None)).unwrap());
    });
}

/// A cached get that reads the change generation every time (freshness interval zero): what
/// checking on every get, instead of every 100 ms, would cost.
fn bench_get_checking_every_time(c: &mut Criterion) {
    let opened = open(StoreOptions {
        freshness_interval: std::time::Duration::ZERO,
        ..StoreOptions::default()
    });
    let store = &opened.store;
    fill(store, "bench.ns", 1);
    let key = id("bench.ns", 0);
    c.bench_function("get/cached_checking_generation_every_get", |b| {
        b.iter(|| now(store.get(black_box(&key), None)).unwrap())
    });
    percentiles("get cached, generation read every get", 100_000, |_| {
        black_box(now(store.get(&key, None)).unwrap());
    });
}

fn bench_get_1k(c: &mut Criterion) {
    get_benches(c, 1_000);
}

fn bench_get_100k(c: &mut Criterion) {
    get_benches(c, 100_000);
}

fn bench_set(c: &mut Criterion) {
    let value = SecretValue::new("a-secret-value-of-about-32-bytes".into());
    for sync in [Synchronous::Normal, Synchronous::Full] {
        let opened = open(StoreOptions {
            synchronous: sync,
            ..StoreOptions::default()
        });
        let store = &opened.store;
        // 1,000 keys set over and over: past 10 versions each set also prunes one.
        let ids: Vec<SecretId> = (0..1_000).map(|i| id("bench.set", i)).collect();
        let mut i = 0usize;
        c.bench_function(&format!("set/{sync:?}"), |b| {
            b.iter(|| {
                i += 1;
                now(store.set(&actor(), &ids[i % ids.len()], &value, None)).unwrap()
            })
        });
        let n = if sync == Synchronous::Full {
            2_000
        } else {
            20_000
        };
        let start = Instant::now();
        percentiles(&format!("set {sync:?}"), n, |k| {
            now(store.set(&actor(), &ids[k % ids.len()], &value, None)).unwrap();
        });
        let per_sec = n as f64 / start.elapsed().as_secs_f64();
        eprintln!("throughput set {sync:?}: {per_sec:.0} sets/s (one transaction each)");
    }
}

fn bench_resolve(c: &mut Criterion) {
    let opened = open(StoreOptions::default());
    let store = &opened.store;
    let value = SecretValue::new("root-value".into());
    now(store.set(
        &actor(),
        &SecretId::main("a", "AT_ROOT").unwrap(),
        &value,
        None,
    ))
    .unwrap();
    let leaf = "a.b.c.d.e";
    fill(store, leaf, 100);
    let env = EnvBackend::load(Vec::new(), None, &EnvOptions::default(), &|s| Ok(s.into()))
        .unwrap()
        .backend;
    let resolver = Resolver::new(Some(Arc::new(store.backend())), Arc::new(env));
    let reader = Reader::Execution {
        id: "bench".into(),
        namespace: leaf.into(),
        flow_id: "bench".into(),
        triggered_by: "bench".into(),
    };
    let mut group = c.benchmark_group("resolve/depth_5");
    group.bench_function("miss_everywhere", |b| {
        b.iter(|| {
            resolver
                .resolve(&reader, "main", black_box(leaf), "MISSING")
                .unwrap()
        })
    });
    group.bench_function("found_at_root_audited", |b| {
        b.iter(|| {
            resolver
                .resolve(&reader, "main", black_box(leaf), "AT_ROOT")
                .unwrap()
        })
    });
    group.finish();
    percentiles("resolve depth 5, miss everywhere", 100_000, |_| {
        black_box(resolver.resolve(&reader, "main", leaf, "MISSING").unwrap());
    });
    percentiles("resolve depth 5, found at root (audited)", 20_000, |_| {
        black_box(resolver.resolve(&reader, "main", leaf, "AT_ROOT").unwrap());
    });
}

criterion_group!(
    benches,
    bench_get_1k,
    bench_get_checking_every_time,
    bench_set,
    bench_resolve,
    bench_get_100k
);
criterion_main!(benches);
