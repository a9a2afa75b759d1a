//! The configuration file (what `kestrel config` prints): YAML, every key optional with Kestra's defaults,
//! `${NAME}` replaced by the environment variable NAME at load, unknown keys refused with
//! their line.
//!
//! Sections the command line does not use yet (server, worker, external secret managers) are
//! still read and checked, so one file serves every kestrel process, and `kestrel config`
//! shows them.

mod value;

use crate::environment::Environment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub(crate) use value::{Hidden, Subst};

/// Declares a section of the file: a struct read with kebab-case keys, unknown keys refused
/// and missing keys defaulted, whose `Default` holds the documented defaults (written after
/// each field's type).
macro_rules! section {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty = $default:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
        pub(crate) struct $name {
            $( $(#[$field_meta])* pub(crate) $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }
    };
}

/// A default text value.
fn text(value: &str) -> Subst<String> {
    Subst(value.to_owned())
}

section! {
    /// The whole file.
    Config {
        /// `sqlite`, `sqlite:///path/file.db` or `postgres://...`. `data-dir` and `database`
        /// are shown as [`crate::settings::Settings`] settles them, hence not serialized here.
        #[serde(skip_serializing)]
        database: Option<Subst<String>> = None,
        #[serde(skip_serializing)]
        data_dir: Option<Subst<PathBuf>> = None,
        postgres: PostgresConfig = PostgresConfig::default(),
        variables: Variables = Variables::default(),
        secret: SecretConfig = SecretConfig::default(),
        expression: ExpressionConfig = ExpressionConfig::default(),
        task: TaskConfig = TaskConfig::default(),
        master_key: MasterKeyConfig = MasterKeyConfig::default(),
        namespaces: BTreeMap<String, NamespaceConfig> = BTreeMap::new(),
        server: ServerConfig = ServerConfig::default(),
        worker: WorkerConfig = WorkerConfig::default(),
        retention: RetentionConfig = RetentionConfig::default(),
        storage: StorageConfig = StorageConfig::default(),
        audit: AuditConfig = AuditConfig::default(),
    }
}

section! {
    /// `postgres`: how a `postgres://` database is used (TLS comes from the URL's `sslmode`).
    PostgresConfig {
        /// Connections in this process's pool.
        pool_size: Subst<usize> = Subst(10),
        /// The longest a statement may run before PostgreSQL cancels it, a duration.
        statement_timeout: Subst<String> = text("30s"),
    }
}

section! {
    /// `variables`: what expressions see of the environment and of the configuration.
    Variables {
        env_vars_prefix: Subst<String> = text("ENV_"),
        redacted_env_vars: Subst<Vec<String>> =
            Subst(kestrel_secrets::EnvOptions::default().redacted),
        globals: Subst<serde_json::Value> = Subst(serde_json::json!({})),
    }
}

/// `secret.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SecretType {
    Embedded,
    Vault,
    AwsSecretManager,
}

section! {
    /// `secret`: where secrets live and how they are masked.
    SecretConfig {
        #[serde(rename = "type")]
        kind: Subst<SecretType> = Subst(SecretType::Embedded),
        max_size: Subst<ByteSize> = Subst(ByteSize(kestrel_store::DEFAULT_MAX_VALUE_SIZE)),
        read_only: Subst<bool> = Subst(false),
        env_file: Option<Subst<PathBuf>> = None,
        mask_min_length: Subst<usize> = Subst(4),
        cache: CacheConfig = CacheConfig::default(),
        vault: VaultConfig = VaultConfig::default(),
        aws_secret_manager: AwsConfig = AwsConfig::default(),
    }
}

section! {
    /// `master-key`: how the master key file may be kept.
    MasterKeyConfig {
        /// A key file readable by group or others is refused unless this is true.
        allow_readable_key_file: Subst<bool> = Subst(false),
    }
}

/// A size in bytes, written `65536`, `64KiB`, `1MiB` or `1GiB` (`secret.max-size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) usize);

impl ByteSize {
    const UNITS: [(&'static str, usize); 4] = [
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ];

    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (digits, unit) = Self::UNITS
            .iter()
            .find_map(|(name, unit)| Some((text.strip_suffix(name)?, *unit)))
            .unwrap_or((text, 1));
        let number: usize = digits.trim().parse().ok()?;
        number.checked_mul(unit).map(Self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = serde_yaml_ng::Value::deserialize(deserializer)?;
        let parsed = match &written {
            serde_yaml_ng::Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            serde_yaml_ng::Value::String(text) => Self::parse(text).map(|size| size.0),
            _ => None,
        };
        // The value itself is not quoted: a misplaced line may hold a secret.
        parsed.map(Self).ok_or_else(|| {
            serde::de::Error::custom("expected a size in bytes, such as 65536, 64KiB or 1MiB")
        })
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (name, unit) = Self::UNITS
            .iter()
            .find(|(_, unit)| self.0 != 0 && self.0.is_multiple_of(*unit))
            .copied()
            .unwrap_or(("B", 1));
        serializer.serialize_str(&format!("{}{name}", self.0 / unit))
    }
}

section! {
    /// `secret.cache`, for external backends.
    CacheConfig {
        enabled: Subst<bool> = Subst(true),
        ttl: Subst<String> = text("60s"),
        maximum_size: Subst<u64> = Subst(10_000),
        /// How long past its TTL a cached answer is used while the backend fails.
        stale_for: Subst<String> = text("5m"),
        /// Requests per second to each external backend, at most (calls over it wait).
        rate_limit: Subst<u32> = Subst(100),
    }
}

section! {
    /// `secret.vault`: Vault or OpenBao, KV v2.
    VaultConfig {
        address: Subst<String> = text("http://127.0.0.1:8200"),
        token: Option<Hidden> = None,
        app_role: Option<AppRole> = None,
        kubernetes: Option<JwtLogin> = None,
        jwt: Option<JwtLogin> = None,
        namespace: Option<Subst<String>> = None,
        mount: Subst<String> = text("secret"),
        prefix: Subst<String> = text("kestrel"),
    }
}

/// `secret.vault.app-role`: `role-id` and `secret-id` are required.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AppRole {
    #[serde(default = "approle")]
    pub(crate) path: Subst<String>,
    pub(crate) role_id: Subst<String>,
    pub(crate) secret_id: Hidden,
}

fn approle() -> Subst<String> {
    text("approle")
}

/// `secret.vault.kubernetes` and `secret.vault.jwt`: a role and the file holding the JWT
/// (for Kubernetes, the pod's service account token by default).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct JwtLogin {
    /// The auth mount (default `kubernetes` or `jwt`).
    pub(crate) path: Option<Subst<String>>,
    pub(crate) role: Subst<String>,
    /// Default: `/var/run/secrets/kubernetes.io/serviceaccount/token` for Kubernetes.
    pub(crate) jwt_file: Option<Subst<PathBuf>>,
}

section! {
    /// `secret.aws-secret-manager`.
    AwsConfig {
        region: Subst<String> = text("us-east-1"),
        endpoint_override: Option<Subst<String>> = None,
        access_key_id: Option<Subst<String>> = None,
        secret_key_id: Option<Hidden> = None,
        session_token: Option<Hidden> = None,
        prefix: Subst<String> = text("kestrel"),
    }
}

section! {
    /// `expression`: what one render may use.
    ExpressionConfig {
        /// Instructions per render: the deterministic limit.
        fuel: Subst<u64> = Subst(kestrel_expr::ExpressionLimits::default().fuel),
        /// The largest string, list or map a filter or function may build.
        max_value_size: Subst<ByteSize> =
            Subst(ByteSize(kestrel_expr::ExpressionLimits::default().max_value_size)),
        /// The wall-clock backstop per render, a duration such as `10s`.
        render_timeout: Subst<String> = text("10s"),
    }
}

section! {
    /// `task`: how tasks' processes run.
    TaskConfig {
        sandbox: Subst<SandboxMode> = Subst(SandboxMode::Auto),
    }
}

/// `task.sandbox`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SandboxMode {
    Auto,
    Required,
    Off,
}

section! {
    /// `namespaces.<ns>`: overrides for a namespace and its children.
    NamespaceConfig {
        secret: Option<NamespaceSecret> = None,
        allowed_namespaces: Option<Subst<Vec<String>>> = None,
    }
}

section! {
    /// `namespaces.<ns>.secret`: a namespace's own backend.
    NamespaceSecret {
        #[serde(rename = "type")]
        kind: Option<Subst<SecretType>> = None,
        read_only: Option<Subst<bool>> = None,
        vault: Option<VaultConfig> = None,
        aws_secret_manager: Option<AwsConfig> = None,
    }
}

section! {
    /// `server`.
    ServerConfig {
        bind: Subst<String> = text("127.0.0.1:8080"),
        public_url: Option<Subst<String>> = None,
        tls: TlsConfig = TlsConfig::default(),
        auth: AuthConfig = AuthConfig::default(),
    }
}

section! {
    /// `server.tls`: the server speaks HTTPS itself, with these PEM files (both, or neither).
    TlsConfig {
        cert_file: Option<Subst<PathBuf>> = None,
        key_file: Option<Subst<PathBuf>> = None,
    }
}

section! {
    /// `server.auth`.
    AuthConfig {
        enabled: Subst<bool> = Subst(true),
        users: Vec<User> = Vec::new(),
        tokens: Vec<Token> = Vec::new(),
    }
}

/// A user of `server.auth`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct User {
    pub(crate) username: Subst<String>,
    pub(crate) password_hash: Hidden,
    #[serde(default)]
    pub(crate) namespaces: Subst<Vec<String>>,
    pub(crate) secrets: Option<Subst<Access>>,
}

/// An API token of `server.auth`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Token {
    pub(crate) name: Subst<String>,
    pub(crate) token_hash: Hidden,
    #[serde(default)]
    pub(crate) namespaces: Subst<Vec<String>>,
    pub(crate) secrets: Option<Subst<Access>>,
}

/// What a user or token may do with secrets.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Access {
    Read,
    Write,
    None,
}

section! {
    /// `worker`.
    WorkerConfig {
        /// Default: the number of cores.
        threads: Option<Subst<usize>> = None,
        heartbeat: Subst<String> = text("5s"),
        resume_after: Subst<String> = text("30s"),
    }
}

section! {
    /// `retention`: what the server purges, oldest first.
    RetentionConfig {
        executions: Subst<String> = text("30d"),
        audit: Subst<String> = text("365d"),
    }
}

section! {
    /// `audit`: where the server forwards its audit trail.
    AuditConfig {
        /// `file:PATH`, `syslog`, `syslog:unix:PATH` or `syslog:udp:HOST:PORT`; none: kept in
        /// the database only.
        forward: Option<Subst<String>> = None,
    }
}

/// `storage.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StorageType {
    Local,
}

section! {
    /// `storage`: the internal storage of executions' files (Kestra's `kestra.storage`).
    StorageConfig {
        #[serde(rename = "type")]
        kind: Subst<StorageType> = Subst(StorageType::Local),
        local: LocalStorageConfig = LocalStorageConfig::default(),
        /// The largest file a task or an input may store.
        max_file_size: Subst<ByteSize> = Subst(ByteSize(1 << 30)),
    }
}

section! {
    /// `storage.local`: where the local storage keeps its files.
    LocalStorageConfig {
        /// Default: `storage` in the data directory.
        base_path: Option<Subst<PathBuf>> = None,
    }
}

impl Config {
    /// Reads and parses the file at `path`, `${NAME}` read from `env`; errors name the file.
    pub(crate) fn load(path: &Path, env: &Arc<Environment>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            format!("cannot read configuration file {}: {error}", path.display())
        })?;
        value::with_environment(env, || Self::parse(&text))
            .map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Parses a configuration's text. An empty file (or one of comments only) is the default.
    /// Errors name the key and what it expects, never the value written.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let error = |error: serde_yaml_ng::Error| value::without_values(&error.to_string());
        let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(error)?;
        if document.is_null() {
            return Ok(Self::default());
        }
        // Parsed from the text (not from `document`) so that errors carry their line.
        value::from_yaml(text).map_err(|error| with_line(error, text))
    }
}

/// The parser gives no position for an unknown key at the top level: the key's line is
/// looked up in the text.
fn with_line(message: String, text: &str) -> String {
    if message.contains(" at line ") {
        return message;
    }
    let key = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(key, _)| format!("{key}:"));
    let line = key.and_then(|key| {
        text.lines()
            .position(|line| line.starts_with(&key))
            .map(|index| index + 1)
    });
    match line {
        Some(line) => format!("{message} at line {line} column 1"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default() {
        for text in ["", "# nothing yet\n", "\n\n"] {
            let config = Config::parse(text).unwrap();
            assert_eq!(config.secret.mask_min_length.0, 4);
            assert_eq!(config.secret.max_size.0, ByteSize(64 * 1024));
            assert!(!config.master_key.allow_readable_key_file.0);
            assert_eq!(config.variables.env_vars_prefix.0, "ENV_");
        }
    }

    #[test]
    fn every_key_of_the_contract_is_accepted() {
        let text = r#"
database: sqlite
data-dir: /var/lib/kestrel
postgres: {pool-size: 10, statement-timeout: 30s}
variables:
  env-vars-prefix: ENV_
  redacted-env-vars: [VAULT_TOKEN, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]
  globals: {team: data}
secret:
  type: vault
  max-size: 64KiB
  read-only: false
  env-file: null
  mask-min-length: 4
  cache: {enabled: true, ttl: 60s, maximum-size: 10000}
  vault:
    address: http://127.0.0.1:8200
    token: root-token
    namespace: null
    mount: secret
    prefix: kestrel
    app-role: {path: approle, role-id: r, secret-id: s}
  aws-secret-manager:
    region: us-east-1
    endpoint-override: http://127.0.0.1:5000
    access-key-id: null
    secret-key-id: null
    session-token: null
    prefix: kestrel
expression:
  fuel: 50000000
  max-value-size: 16MiB
  render-timeout: 10s
task:
  sandbox: required
master-key:
  allow-readable-key-file: false
namespaces:
  company.finance:
    secret: {type: vault, read-only: true}
    allowed-namespaces: [company.finance]
server:
  bind: 127.0.0.1:8080
  public-url: null
  auth:
    enabled: true
    users: [{username: ada, password-hash: x, namespaces: [dev], secrets: write}]
    tokens: [{name: ci, token-hash: y, secrets: read}]
worker: {threads: 2, heartbeat: 5s}
retention: {executions: 30d, audit: 365d}
"#;
        let config = Config::parse(text).unwrap();
        assert_eq!(config.variables.globals.0["team"], "data");
        assert_eq!(config.worker.threads.map(|t| t.0), Some(2));
        assert!(config.namespaces.contains_key("company.finance"));
        assert!(matches!(config.task.sandbox.0, SandboxMode::Required));
        assert_eq!(config.expression.max_value_size.0, ByteSize(16 << 20));
        assert_eq!(config.postgres.pool_size.0, 10);
    }

    #[test]
    fn sizes_take_binary_units_and_a_bad_one_is_not_quoted() {
        for (written, bytes) in [
            ("65536", 65536),
            ("64KiB", 65536),
            ("1MiB", 1 << 20),
            ("8B", 8),
        ] {
            let config = Config::parse(&format!("secret:\n  max-size: {written}\n")).unwrap();
            assert_eq!(config.secret.max_size.0, ByteSize(bytes), "{written}");
        }
        let shown = serde_yaml_ng::to_string(&ByteSize(1 << 20)).unwrap();
        assert_eq!(shown.trim(), "1MiB");
        let error = Config::parse("secret:\n  max-size: hunter2\n").unwrap_err();
        assert!(error.contains("expected a size in bytes"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let error = Config::parse("server:\n  bind: x\n  port: 1\n").unwrap_err();
        assert!(error.contains("unknown field `port`"), "{error}");
        assert!(error.contains("line 3"), "{error}");
        let error = Config::parse("colour: blue\n").unwrap_err();
        assert!(
            error.contains("`colour`") && error.contains("line 1"),
            "{error}"
        );
    }

    #[test]
    fn a_substituted_value_is_read_by_its_type() {
        let env = Arc::new(Environment::from_pairs([(
            "WORDS".into(),
            "not-a-number".into(),
        )]));
        let parse = |text| value::with_environment(&env, || Config::parse(text));
        let error = parse("worker:\n  threads: ${WORDS}\n").unwrap_err();
        assert!(error.contains("${WORDS} does not fit"), "{error}");
        assert!(
            !error.contains("not-a-number"),
            "the value stays hidden: {error}"
        );
        let config = parse("worker:\n  threads: '3'\n").unwrap();
        assert_eq!(config.worker.threads.map(|t| t.0), Some(3));
    }

    #[test]
    fn a_type_error_names_the_key_and_type_but_not_the_value() {
        for text in [
            "worker:\n  threads: hunter2-typed\n",
            "secret:\n  mask-min-length: hunter2-typed\n",
            "secret:\n  type: hunter2-typed\n",
            "secret:\n  read-only: [hunter2-typed]\n",
            "secret: hunter2-typed\n",
            "server:\n  auth:\n    users: hunter2-typed\n",
        ] {
            let error = Config::parse(text).unwrap_err();
            assert!(!error.contains("hunter2"), "{text}: {error}");
            assert!(error.contains("expected"), "{text}: {error}");
        }
        let error = Config::parse("worker:\n  threads: hunter2-typed\n").unwrap_err();
        assert!(error.contains("worker.threads"), "{error}");
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn credentials_are_hidden_when_shown() {
        let config = Config::parse("secret:\n  vault:\n    token: root-token\n").unwrap();
        let shown = serde_yaml_ng::to_string(&config).unwrap();
        assert!(!shown.contains("root-token"), "{shown}");
        assert!(shown.contains("token: '******'"), "{shown}");
    }
}
