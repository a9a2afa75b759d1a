//! Replays every file of `fuzz/corpus/<target>/` (the seeds and what fuzzing added) through
//! the target's function, as the fuzzer ran it: a file that panics is a property broken.

use std::path::PathBuf;

/// Fewer seeds than this means the corpus went missing, not that it passed.
const MIN_SEEDS: usize = 5;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= MIN_SEEDS,
        "{}: {} files, expected at least {MIN_SEEDS}",
        dir.display(),
        files.len()
    );
    for file in &files {
        let data = std::fs::read(file).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} breaks a property", file.display());
    }
}

#[test]
fn render() {
    replay("render", kestrel_fuzzing::render);
}

#[test]
fn flow_yaml() {
    replay("flow_yaml", kestrel_fuzzing::flow_yaml);
}

#[test]
fn dotenv() {
    replay("dotenv", kestrel_fuzzing::dotenv);
}

#[test]
fn masker() {
    replay("masker", kestrel_fuzzing::masker);
}

#[test]
fn api_body() {
    replay("api_body", kestrel_fuzzing::api_body);
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = kestrel_fuzzing::TARGETS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        names,
        ["render", "flow_yaml", "dotenv", "masker", "api_body"]
    );
}
