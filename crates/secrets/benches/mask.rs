//! Masking throughput (figures in bench/RESULTS.md): 1,000 random values of 16–64 characters registered
//! with their encoded forms, a 10 MiB log with one match per 4 KiB; the build of the matcher is
//! timed apart. The same log is masked, in the same run, by a registry with every form and by
//! one with the forms masked before issue 8 (its target: at most 20% slower with every form).
//!
//! `cargo bench -p kestrel-secrets --bench mask -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kestrel_secrets::{EncodedForms, MaskRegistry};
use std::hint::black_box;
use std::time::Instant;

const SECRETS: usize = 1_000;
const LOG_BYTES: usize = 10 * 1024 * 1024;
const MATCH_EVERY: usize = 4 * 1024;

/// A small deterministic generator (xorshift64*), so every run measures the same input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn secrets(rng: &mut Rng) -> Vec<String> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!@#$%";
    (0..SECRETS)
        .map(|_| {
            let len = 16 + rng.below(49);
            (0..len)
                .map(|_| char::from(CHARS[rng.below(CHARS.len())]))
                .collect()
        })
        .collect()
}

/// Log lines of ordinary words, with a secret (raw or base64) every `MATCH_EVERY` bytes; and
/// how many were put in.
fn log(rng: &mut Rng, secrets: &[String]) -> (String, usize) {
    const WORDS: &[&str] = &[
        "task",
        "hello",
        "processed",
        "items",
        "in",
        "ms",
        "for",
        "user",
        "request",
        "GET",
        "/api/v1/executions",
        "status",
        "200",
        "retry",
        "connection",
        "established",
        "worker",
        "queue",
        "flow",
        "namespace",
        "company.team",
        "duration",
        "PT0.123S",
        "output",
        "value",
        "Authorization:",
        "Bearer",
        "token",
        "uri=https://example.com/path?q=1",
        "{\"id\":42}",
    ];
    const LEVELS: &[&str] = &["INFO ", "DEBUG", "WARN ", "TRACE", "ERROR"];
    let mut log = String::with_capacity(LOG_BYTES + 256);
    let mut next_match = MATCH_EVERY;
    let mut inserted = 0;
    while log.len() < LOG_BYTES {
        let level = rng.pick(LEVELS);
        log.push_str(&format!(
            "2024-05-01T12:{:02}:{:02}.{:03}Z {level} [worker-{}] ",
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            rng.below(8)
        ));
        for _ in 0..8 + rng.below(12) {
            log.push_str(rng.pick(WORDS));
            log.push(' ');
        }
        if log.len() >= next_match {
            let secret = &secrets[rng.below(secrets.len())];
            if rng.below(2) == 0 {
                log.push_str(secret);
            } else {
                log.push_str(&STANDARD.encode(secret));
            }
            next_match += MATCH_EVERY;
            inserted += 1;
        }
        log.push('\n');
    }
    (log, inserted)
}

fn registry(secrets: &[String], forms: EncodedForms) -> MaskRegistry {
    let registry = MaskRegistry::with_forms(4, forms);
    for (i, secret) in secrets.iter().enumerate() {
        registry.register(&format!("SECRET_{i}"), secret);
    }
    registry
}

/// The registries compared, by the name of their masking benchmark.
const FORM_SETS: [(&str, EncodedForms); 2] = [
    ("10MiB_log_1000_secrets", EncodedForms::All),
    (
        "10MiB_log_1000_secrets_forms_before_issue_8",
        EncodedForms::BeforeIssue8,
    ),
];

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 30;

/// A registry of `secrets` with its matcher built, checked to mask every value put in `log`.
fn ready_registry(
    (name, forms): (&str, EncodedForms),
    secrets: &[String],
    (log, inserted): (&str, usize),
) -> MaskRegistry {
    let ready = registry(secrets, forms);
    ready.prepare();
    // Every inserted value is masked (two may merge when a line holds both).
    let masks = ready.mask(log).matches(kestrel_secrets::MASK).count();
    assert!(
        masks > inserted * 9 / 10 && masks <= inserted,
        "{name}: {masks} masks for {inserted}"
    );
    eprintln!(
        "{name}: patterns: {}, log: {} bytes, {masks} masks",
        ready.pattern_count(),
        log.len()
    );
    ready
}

/// Masks `log` with each registry in turn, [`ROUNDS`] times, and prints each one's median and
/// fastest time and the ratio of the medians. Criterion measures one benchmark after the other,
/// so a load that changes in between (two cores shared by many builds) skews its ratio;
/// alternating does not.
fn compare_interleaved(registries: &[(&str, MaskRegistry)], log: &str) {
    let mut times = vec![Vec::with_capacity(ROUNDS); registries.len()];
    for _ in 0..ROUNDS {
        for ((_, registry), times) in registries.iter().zip(&mut times) {
            let start = Instant::now();
            black_box(registry.mask(black_box(log)).len());
            times.push(start.elapsed());
        }
    }
    let mib = log.len() as f64 / (1024.0 * 1024.0);
    let mut medians = Vec::new();
    for ((name, _), times) in registries.iter().zip(&mut times) {
        times.sort_unstable();
        let median = times[ROUNDS / 2].as_secs_f64();
        eprintln!(
            "interleaved, {ROUNDS} rounds: {name}: median {:.1} ms ({:.0} MiB/s), fastest {:.1} ms",
            median * 1e3,
            mib / median,
            times[0].as_secs_f64() * 1e3
        );
        medians.push(median);
    }
    eprintln!(
        "interleaved: every form takes {:.2}x the time of the forms before issue 8",
        medians[0] / medians[1]
    );
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let secrets = secrets(&mut rng);
    let (log, inserted) = log(&mut rng, &secrets);
    let registries = FORM_SETS.map(|set| (set.0, ready_registry(set, &secrets, (&log, inserted))));
    compare_interleaved(&registries, &log);

    let mut group = c.benchmark_group("mask");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(log.len() as u64));
    for (name, ready) in &registries {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(ready.mask(black_box(&log))).len())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("matcher");
    group.sample_size(10);
    for (suffix, forms) in [
        ("", EncodedForms::All),
        ("_forms_before_issue_8", EncodedForms::BeforeIssue8),
    ] {
        group.bench_function(format!("register_1000_secrets{suffix}"), |b| {
            b.iter(|| registry(black_box(&secrets), forms))
        });
        group.bench_function(format!("build_1000_secrets{suffix}"), |b| {
            b.iter_batched(
                || registry(&secrets, forms),
                |registry| {
                    registry.prepare();
                    registry
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
