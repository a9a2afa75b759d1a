//! The repository stands on its own: no file outside `docs/` and `.ci/` points at the specs
//! kestrel was built from (the folder beside the repository, or a numbered section of one),
//! and every Markdown document a file names
//! (`docs/masking.md`, a link, a `tasks.md` in a comment) exists in the repository.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// How a pointer at the specs reads: their folder beside the repository, and the sign of a
/// numbered section (spelled here so that this file does not point at them itself).
const SPECS_FOLDER: &str = concat!("..", "/", "shared");
const SECTION_SIGN: char = '\u{a7}';

/// Folders never read: build output, dependencies, version control.
const SKIPPED: [&str; 4] = ["target", ".git", "node_modules", "fuzz/target"];

/// Every text file of the repository outside `docs/` and `.ci/`.
fn checked_files() -> Vec<PathBuf> {
    let root = repository();
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if SKIPPED
                .iter()
                .any(|skip| relative == *skip || relative.ends_with(&format!("/{skip}")))
                || relative == "docs"
                || relative == ".ci"
            {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else if std::fs::read_to_string(&path).is_ok() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The Markdown documents `text` names: its tokens that end in `.md`.
fn named_documents(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
        .filter(|token| token.ends_with(".md") && token.len() > 3)
        .map(|token| token.trim_start_matches("./"))
        .collect()
}

/// Whether `name`, named in `file`, is a document of the repository: next to the file, from
/// the root, or in `docs/`.
fn exists(root: &Path, file: &Path, name: &str) -> bool {
    let candidates = [
        file.parent().unwrap().join(name),
        root.join(name),
        root.join("docs").join(name),
    ];
    candidates.iter().any(|path| path.is_file())
}

#[test]
fn nothing_points_outside_the_repository() {
    let root = repository();
    let mut wrong = Vec::new();
    for file in checked_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = file.strip_prefix(&root).unwrap().display().to_string();
        for (number, line) in text.lines().enumerate() {
            let at = format!("{shown}:{}", number + 1);
            if line.contains(SPECS_FOLDER) || line.contains(SECTION_SIGN) {
                wrong.push(format!("{at}: points at the specs: {}", line.trim()));
            }
            for name in named_documents(line) {
                if !exists(&root, &file, name) {
                    wrong.push(format!("{at}: names {name}, which the repository lacks"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_finds_what_it_looks_for() {
    assert_eq!(
        named_documents("see (docs/masking.md) and `tasks.md`, or [x](./api.md)."),
        ["docs/masking.md", "tasks.md", "api.md"]
    );
}
