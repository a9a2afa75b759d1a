//! Names the commit kestrel is built from (`kestrel --version`): `KESTREL_COMMIT` when the
//! build sets it, else the short hash of the repository's HEAD, else `unknown` (a source
//! archive, a container build without `.git`).

use std::path::Path;
use std::process::Command;

fn main() {
    let git_dir = Path::new("../../.git");
    // Rebuilt when HEAD moves (a commit, a checkout), not when a file changes. Only what
    // exists is watched: cargo takes a missing file for a change, every time.
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=KESTREL_COMMIT");
    let commit = std::env::var("KESTREL_COMMIT")
        .ok()
        .or_else(head)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KESTREL_COMMIT={commit}");
}

/// The short hash of HEAD.
fn head() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !hash.is_empty()).then_some(hash)
}
