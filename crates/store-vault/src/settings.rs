//! Where the Vault server is and how kestrel proves who it is; checked once, before any
//! request.

use kestrel_store::StoreError;
use std::fmt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// How to reach one Vault or OpenBao server and where kestrel's secrets live in it.
#[derive(Clone)]
pub struct VaultSettings {
    /// The server's base URL (`http://127.0.0.1:8200`), without `/v1`.
    pub address: String,
    /// How kestrel logs in.
    pub auth: VaultAuth,
    /// The Vault Enterprise / OpenBao namespace, sent as the `X-Vault-Namespace` header.
    pub namespace: Option<String>,
    /// The KV v2 mount (default `secret`).
    pub mount: String,
    /// The path under the mount holding kestrel's secrets (default `kestrel`; may be empty).
    pub prefix: String,
}

impl VaultSettings {
    /// The default KV v2 mount.
    pub const DEFAULT_MOUNT: &'static str = "secret";
    /// The default prefix under the mount.
    pub const DEFAULT_PREFIX: &'static str = "kestrel";

    /// Settings for `address` with the default mount and prefix and no namespace header.
    pub fn new(address: impl Into<String>, auth: VaultAuth) -> Self {
        Self {
            address: address.into(),
            auth,
            namespace: None,
            mount: Self::DEFAULT_MOUNT.to_owned(),
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Checks every field, so that a bad setting fails at start with its name, not at the
    /// first request.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        check_path("mount", &self.mount, false)?;
        check_path("prefix", &self.prefix, true)?;
        if let Some(namespace) = &self.namespace {
            check_path("namespace", namespace, false)?;
        }
        self.auth.validate()
    }
}

impl fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSettings")
            .field("address", &self.address)
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How kestrel logs in to Vault. Every method but `Token` logs in on first use and again when
/// its token can no longer be renewed.
#[derive(Clone)]
pub enum VaultAuth {
    /// A token given as is (never renewed by kestrel).
    Token(Zeroizing<String>),
    /// AppRole: `role_id` and `secret_id` posted to `auth/<path>/login`.
    AppRole {
        /// The auth mount (default `approle`).
        path: String,
        /// The role's id.
        role_id: String,
        /// The secret id.
        secret_id: Zeroizing<String>,
    },
    /// Kubernetes: the pod's service account token, read from `jwt_file` at each login.
    Kubernetes {
        /// The auth mount (default `kubernetes`).
        path: String,
        /// The Vault role.
        role: String,
        /// The service account token's file.
        jwt_file: PathBuf,
    },
    /// JWT/OIDC: a JWT read from `jwt_file` at each login.
    Jwt {
        /// The auth mount (default `jwt`).
        path: String,
        /// The Vault role.
        role: String,
        /// The file holding the JWT.
        jwt_file: PathBuf,
    },
}

impl VaultAuth {
    /// The default AppRole auth mount.
    pub const DEFAULT_APPROLE_PATH: &'static str = "approle";
    /// The default Kubernetes auth mount.
    pub const DEFAULT_KUBERNETES_PATH: &'static str = "kubernetes";
    /// The default JWT auth mount.
    pub const DEFAULT_JWT_PATH: &'static str = "jwt";
    /// Where Kubernetes mounts a pod's service account token.
    pub const DEFAULT_KUBERNETES_JWT_FILE: &'static str =
        "/var/run/secrets/kubernetes.io/serviceaccount/token";

    /// A fixed token.
    pub fn token(token: impl Into<String>) -> Self {
        Self::Token(Zeroizing::new(token.into()))
    }

    /// AppRole login at the default mount.
    pub fn app_role(role_id: impl Into<String>, secret_id: impl Into<String>) -> Self {
        Self::AppRole {
            path: Self::DEFAULT_APPROLE_PATH.to_owned(),
            role_id: role_id.into(),
            secret_id: Zeroizing::new(secret_id.into()),
        }
    }

    /// Kubernetes login at the default mount with the pod's own service account token.
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            path: Self::DEFAULT_KUBERNETES_PATH.to_owned(),
            role: role.into(),
            jwt_file: PathBuf::from(Self::DEFAULT_KUBERNETES_JWT_FILE),
        }
    }

    /// JWT login at the default mount with the JWT in `jwt_file`.
    pub fn jwt(role: impl Into<String>, jwt_file: impl Into<PathBuf>) -> Self {
        Self::Jwt {
            path: Self::DEFAULT_JWT_PATH.to_owned(),
            role: role.into(),
            jwt_file: jwt_file.into(),
        }
    }

    /// The method's name for messages (`token`, `approle`, `kubernetes`, `jwt`).
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::AppRole { .. } => "approle",
            Self::Kubernetes { .. } => "kubernetes",
            Self::Jwt { .. } => "jwt",
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        match self {
            Self::Token(token) => check_header_value("token", token),
            Self::AppRole {
                path,
                role_id,
                secret_id,
            } => {
                check_path("app-role path", path, false)?;
                check_not_empty("app-role role-id", role_id)?;
                check_not_empty("app-role secret-id", secret_id)
            }
            Self::Kubernetes { path, role, .. } | Self::Jwt { path, role, .. } => {
                check_path(&format!("{} path", self.method()), path, false)?;
                check_not_empty(&format!("{} role", self.method()), role)
            }
        }
    }
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HIDDEN: &str = "<hidden>";
        match self {
            Self::Token(_) => f.debug_tuple("Token").field(&HIDDEN).finish(),
            Self::AppRole { path, .. } => f
                .debug_struct("AppRole")
                .field("path", path)
                .field("role_id", &HIDDEN)
                .field("secret_id", &HIDDEN)
                .finish(),
            Self::Kubernetes {
                path,
                role,
                jwt_file,
            }
            | Self::Jwt {
                path,
                role,
                jwt_file,
            } => f
                .debug_struct(if matches!(self, Self::Jwt { .. }) {
                    "Jwt"
                } else {
                    "Kubernetes"
                })
                .field("path", path)
                .field("role", role)
                .field("jwt_file", jwt_file)
                .finish(),
        }
    }
}

fn invalid(what: &str, why: &str) -> StoreError {
    StoreError::backend(
        format!("vault: the setting {what}"),
        format!("{what} {why}"),
    )
}

/// A path in Vault's URL space: `/`-separated segments of `A-Z a-z 0-9 _ . -`, none `.` or
/// `..` (so that no setting can climb out of its mount or inject a query).
fn check_path(what: &str, path: &str, may_be_empty: bool) -> Result<(), StoreError> {
    if path.is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err(invalid(what, "is empty"))
        };
    }
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    if path.len() <= 256 && path.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(invalid(
            what,
            &format!(
                "{path:?} is not a path of segments made of A-Z a-z 0-9 _ . - (no leading or \
                 trailing /, no . or .. segment, at most 256 characters)"
            ),
        ))
    }
}

fn check_not_empty(what: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        Err(invalid(what, "is empty"))
    } else {
        Ok(())
    }
}

/// A token goes into a header: it must be visible ASCII. The message never shows it.
fn check_header_value(what: &str, value: &str) -> Result<(), StoreError> {
    check_not_empty(what, value)?;
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid(what, "holds characters other than visible ASCII"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_token_a_role_id_or_a_secret_id() {
        let token = VaultSettings::new("http://x", VaultAuth::token("hvs.TOKEN-VALUE"));
        let role = VaultSettings::new("http://x", VaultAuth::app_role("ROLE-ID", "SECRET-ID"));
        let shown = format!("{token:?} {role:?} {:?}", VaultAuth::kubernetes("r"));
        for hidden in ["TOKEN-VALUE", "ROLE-ID", "SECRET-ID"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(
            shown.contains("Kubernetes") && shown.contains("approle"),
            "{shown}"
        );
    }

    #[test]
    fn settings_that_would_leave_the_mount_are_refused() {
        for (mount, prefix) in [
            ("secret", "../sys"),
            ("secret/", "kestrel"),
            ("", "kestrel"),
            ("secret", "a?b"),
            ("secret", "a//b"),
        ] {
            let mut settings = VaultSettings::new("http://x", VaultAuth::token("t"));
            settings.mount = mount.into();
            settings.prefix = prefix.into();
            assert!(settings.validate().is_err(), "{mount:?} {prefix:?}");
        }
        let mut fine = VaultSettings::new("http://x", VaultAuth::token("t"));
        fine.prefix = String::new();
        fine.mount = "kv/team-a".into();
        fine.validate().unwrap();
    }

    #[test]
    fn a_bad_token_is_refused_without_being_shown() {
        let settings = VaultSettings::new("http://x", VaultAuth::token("bad\ntoken-1234"));
        let message = settings.validate().unwrap_err().to_string();
        assert!(!message.contains("token-1234"), "{message}");
        assert!(message.contains("token"), "{message}");
    }
}
