//! JWT login against a real OpenBao dev server: the JWT auth method trusts an RSA key made
//! with the `openssl` command, which also signs the token kestrel reads from its file
//! (Kubernetes login posts the same `{role, jwt}` to its own mount).
//!
//! Without `bao` (or `openssl`) on PATH the test says so and passes, unless
//! `KESTREL_REQUIRE_OPENBAO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use kestrel_store_vault::VaultAuth;
use serde_json::json;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// An RS256 JWT for audience `kestrel`, signed with `dir/key.pem`.
fn signed_jwt(dir: &Path) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let claims =
        json!({"iss": "kestrel-test", "aud": "kestrel", "sub": "ci", "iat": now, "exp": now + 600});
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    std::fs::write(dir.join("input"), &input).unwrap();
    openssl(
        dir,
        &[
            "dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "input",
        ],
    );
    let signature = std::fs::read(dir.join("sig")).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[test]
fn a_jwt_login_reads_the_token_from_its_file() {
    let Some(vault) = dev_vault_or_skip("jwt login") else {
        return;
    };
    if Command::new("openssl").arg("version").output().is_err() {
        let _ = writeln!(std::io::stderr(), "SKIPPED jwt login: no openssl on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keygen = [
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "key.pem",
    ];
    openssl(dir.path(), &keygen);
    openssl(
        dir.path(),
        &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    );
    let public = std::fs::read_to_string(dir.path().join("pub.pem")).unwrap();
    let policy = r#"path "secret/*" { capabilities = ["create", "read", "update", "list"] }"#;
    let setup = [
        ("sys/auth/jwt", json!({"type": "jwt"})),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [public], "bound_issuer": "kestrel-test"}),
        ),
        ("sys/policies/acl/jwt-test", json!({ "policy": policy })),
        (
            "auth/jwt/role/kestrel",
            json!({"role_type": "jwt", "bound_audiences": ["kestrel"], "user_claim": "sub",
                   "token_policies": ["jwt-test"], "token_ttl": "60s"}),
        ),
    ];
    for (path, body) in setup {
        vault.request("POST", path, Some(body)).unwrap();
    }
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, signed_jwt(dir.path())).unwrap();

    let mut settings = vault.settings();
    settings.auth = VaultAuth::jwt("kestrel", &jwt_file);
    let m = manager(settings.clone());
    let key = id("jwt", "K");
    set(&m, &key, "v");
    assert_eq!(value(&m, &key, None).as_deref(), Some("v"));

    settings.auth = VaultAuth::jwt("kestrel", dir.path().join("absent"));
    let message = try_value(&manager(settings), &key, None)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("reading the JWT file") && message.contains("absent"),
        "{message}"
    );
}
