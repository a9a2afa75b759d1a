//! What kestrel says about itself stays true: the committed manual page
//! (`docs/man/kestrel.1`) and references (`docs/cli.md`, `docs/api.md`) are what kestrel
//! generates from its own definitions, every command's help shows an example, completions load in bash, and the
//! manual renders with `man`.
//!
//! After a change to a command, `KESTREL_UPDATE_REFERENCE=1 cargo test -p kestrel --test
//! reference` rewrites the two files.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod util;

use std::path::PathBuf;
use std::process::Command;
use util::Sandbox;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compares `committed` (a path in the repository) with what `kestrel ARGS` prints, or
/// rewrites it when asked to.
fn assert_current(committed: &str, args: &[&str]) {
    let generated = Sandbox::new().kestrel(args).output();
    generated.assert_code(0);
    let path = repository().join(committed);
    if std::env::var_os("KESTREL_UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &generated.stdout).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated.stdout,
        "{committed} is not what `kestrel {}` prints: run KESTREL_UPDATE_REFERENCE=1 cargo test \
         -p kestrel --test reference",
        args.join(" ")
    );
}

#[test]
fn the_manual_page_is_current() {
    assert_current("docs/man/kestrel.1", &["man"]);
}

#[test]
fn the_command_line_reference_is_current() {
    assert_current("docs/cli.md", &["cli-reference"]);
}

#[test]
fn the_api_reference_is_current() {
    assert_current("docs/api.md", &["api-reference"]);
}

#[test]
fn every_command_shows_an_example() {
    let reference = Sandbox::new().kestrel(["cli-reference"]).output().stdout;
    let sections: Vec<&str> = reference.split("\n## ").skip(1).collect();
    assert!(sections.len() > 30, "{} sections", sections.len());
    for section in sections {
        let title = section.lines().next().unwrap();
        assert!(
            section.contains("Examples:\n  "),
            "{title} shows no example"
        );
    }
}

#[test]
fn completions_load_in_bash() {
    let kestrel = env!("CARGO_BIN_EXE_kestrel");
    let loaded = Command::new("bash")
        .args([
            "-c",
            &format!("source <('{kestrel}' completions bash) && complete -p kestrel"),
        ])
        .output()
        .expect("bash runs");
    let said = String::from_utf8_lossy(&loaded.stdout);
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(said.contains("-F _kestrel kestrel"), "{said}");
    for shell in ["zsh", "fish"] {
        let script = Sandbox::new().kestrel(["completions", shell]).output();
        script.assert_code(0);
        assert!(
            script.stdout.contains("secrets"),
            "{shell}: {}",
            script.stdout
        );
    }
}

#[test]
fn the_manual_page_renders_with_man() {
    let page = repository().join("docs/man/kestrel.1");
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man (man-db) is installed: scripts/test installs it");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "{rendered:?}");
    assert!(text.contains("Runs Kestra-style YAML flows"), "{text}");
    assert!(text.contains("secrets"), "{text}");
}
