//! Issue 9: `secret.max-size` on every write of the command line (exit 2, nothing stored, no
//! value shown), and the master key file refused when group or others can read it, unless
//! `master-key.allow-readable-key-file` says otherwise.

mod util;

use std::os::unix::fs::PermissionsExt as _;
use util::{Output, Sandbox, base64};

const OVER_DEFAULT: usize = 64 * 1024 + 1;

/// `out` refused a value over `secret.max-size` without quoting it (values here repeat one
/// letter), and namespace `dev` holds no `absent`.
fn assert_refused(sandbox: &Sandbox, out: &Output, absent: &str) {
    out.assert_code(2);
    assert!(out.stderr.contains("secret.max-size"), "{out:#?}");
    for letter in ["s", "b"] {
        assert!(!out.stderr.contains(&letter.repeat(8)), "{out:#?}");
    }
    let listed = sandbox.kestrel(["secrets", "list", "dev"]).output();
    assert!(
        !listed.stdout.contains(absent),
        "nothing stored: {listed:#?}"
    );
}

#[test]
fn issue_9_6_secrets_set_refuses_a_value_over_max_size() {
    let sandbox = Sandbox::new();
    let value = "s".repeat(OVER_DEFAULT);
    let out = sandbox
        .kestrel(["secrets", "set", "dev", "BIG"])
        .stdin(&value)
        .output();
    assert_refused(&sandbox, &out, "BIG");
    sandbox.write("kestrel.yml", "secret:\n  max-size: 128KiB\n");
    let out = sandbox
        .kestrel(["--config", "kestrel.yml", "secrets", "set", "dev", "BIG"])
        .stdin(&value)
        .output();
    out.assert_code(0);
}

#[test]
fn issue_9_6_import_env_refuses_a_file_with_one_value_over_max_size_and_stores_nothing() {
    let sandbox = Sandbox::new();
    let big = "b".repeat(OVER_DEFAULT);
    sandbox.write(".env", &format!("SMALL=ok-value\nBIG={big}\n"));
    let out = sandbox
        .kestrel(["secrets", "import-env", ".env", "--namespace", "dev"])
        .output();
    assert!(out.stderr.contains("BIG"), "{out:#?}");
    assert_refused(&sandbox, &out, "SMALL");
}

#[test]
fn issue_9_9_a_master_key_file_others_can_read_is_refused() {
    let sandbox = Sandbox::new();
    let key_file = sandbox.write("shared.key", &base64("0123456789abcdef0123456789abcdef"));
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let set = |config: &[&str]| {
        let mut args: Vec<&str> = config.to_vec();
        args.extend(["secrets", "set", "dev", "K"]);
        sandbox
            .kestrel(args)
            .env("KESTREL_MASTER_KEY_FILE", &key_file)
            .stdin("a-value")
            .output()
    };
    let out = set(&[]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains(&format!("chmod 600 {}", key_file.display())),
        "{out:#?}"
    );
    sandbox.write(
        "kestrel.yml",
        "master-key:\n  allow-readable-key-file: true\n",
    );
    let out = set(&["--config", "kestrel.yml"]);
    out.assert_code(0);
    assert!(out.stderr.contains("chmod 600"), "still warned: {out:#?}");
}
