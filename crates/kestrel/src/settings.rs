//! The settings in effect: flags, then environment variables, then the configuration file,
//! then defaults.

use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::environment::Environment;
use crate::error::CliError;
use crate::redact::hide_url_credentials;
use kestrel_engine::EngineConfig;
use kestrel_expr::ExpressionLimits;
use kestrel_secrets::{EnvOptions, ReadPolicy};
use kestrel_storage::{LocalStorage, Storage};
use kestrel_store_postgres::PgOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What every command works with.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The configuration file read, if any.
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) config: Config,
    pub(crate) data_dir: PathBuf,
    pub(crate) database: String,
    /// The process environment, read once at start: nothing reads `std::env` again.
    pub(crate) env: Arc<Environment>,
}

impl Settings {
    /// Settles the settings for `global` options (clap already applied the environment
    /// variables behind them) in the process environment `env`. Fails when the configuration
    /// is invalid or when both master-key variables are set.
    pub(crate) fn resolve(global: &GlobalArgs, env: Arc<Environment>) -> Result<Self, CliError> {
        check_master_key_source(&env)?;
        let config = match &global.config {
            Some(path) => Config::load(path, &env).map_err(CliError::usage)?,
            None => Config::default(),
        };
        let data_dir = global
            .data_dir
            .clone()
            .or_else(|| config.data_dir.clone().map(|dir| dir.0))
            .unwrap_or_else(|| default_data_dir(&env));
        let database = global
            .database
            .clone()
            .or_else(|| config.database.clone().map(|url| url.0))
            .unwrap_or_else(|| "sqlite".into());
        Ok(Self {
            config_file: global.config.clone(),
            config,
            data_dir,
            database,
            env,
        })
    }

    /// The engine's configuration from the file's `variables`, `secret`, `namespaces` and
    /// `expression` sections. Exit 2 for a render timeout that is not a positive duration.
    pub(crate) fn engine_config(&self) -> Result<EngineConfig, CliError> {
        let variables = &self.config.variables;
        Ok(EngineConfig {
            mask_min_length: self.config.secret.mask_min_length.0,
            env: EnvOptions {
                env_prefix: variables.env_vars_prefix.0.clone(),
                redacted: variables.redacted_env_vars.0.clone(),
            },
            globals: variables.globals.0.clone(),
            policy: self.read_policy(),
            limits: self.expression_limits()?,
            ..EngineConfig::default()
        })
    }

    /// `expression`: the limits every render runs under.
    fn expression_limits(&self) -> Result<ExpressionLimits, CliError> {
        let expression = &self.config.expression;
        // Like every configuration error, this one never echoes the value written.
        let render_timeout = kestrel_server::parse_duration(&expression.render_timeout.0)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                CliError::usage(
                    "expression.render-timeout: not a positive duration: write a number and a \
                     unit (ms, s, m, h, d), e.g. 10s",
                )
            })?;
        Ok(ExpressionLimits {
            fuel: expression.fuel.0,
            max_value_size: expression.max_value_size.0.0,
            render_timeout,
        })
    }

    /// `namespaces.<ns>.allowed-namespaces`: who may read each namespace's secrets through
    /// `secret(namespace=...)`, for `kestrel run` and the server alike.
    fn read_policy(&self) -> ReadPolicy {
        let allowed = self
            .config
            .namespaces
            .iter()
            .filter_map(|(namespace, config)| {
                let list = config.allowed_namespaces.as_ref()?;
                Some((namespace.clone(), list.0.clone()))
            });
        ReadPolicy::new(allowed.collect())
    }

    /// The internal storage of executions' files (`storage`): under `storage.local.base-path`,
    /// by default `storage` in the data directory.
    pub(crate) fn storage(&self) -> Arc<dyn Storage> {
        let max_file_size =
            u64::try_from(self.config.storage.max_file_size.0.0).unwrap_or(u64::MAX);
        Arc::new(LocalStorage::new(self.storage_root(), max_file_size))
    }

    /// The folder of the local storage, which tasks must not see.
    pub(crate) fn storage_root(&self) -> PathBuf {
        self.config
            .storage
            .local
            .base_path
            .as_ref()
            .map_or_else(|| self.data_dir.join("storage"), |path| path.0.clone())
    }

    /// The env file to load: the flag's, else `secret.env-file`.
    pub(crate) fn env_file<'a>(&'a self, flag: Option<&'a Path>) -> Option<&'a Path> {
        flag.or_else(|| {
            self.config
                .secret
                .env_file
                .as_ref()
                .map(|file| file.0.as_path())
        })
    }

    /// The database the store lives in (`database`); exit 2 for one kestrel does not know.
    pub(crate) fn database(&self) -> Result<Database, CliError> {
        Database::parse(&self.database, &self.data_dir)
    }

    /// The database URL with its credentials hidden.
    pub(crate) fn database_shown(&self) -> String {
        hide_url_credentials(&self.database)
    }

    /// `postgres`: the options of a PostgreSQL store, `secret.max-size` among them. Exit 2
    /// for a statement timeout that is not a positive duration or a pool of no connection.
    pub(crate) fn postgres_options(&self) -> Result<PgOptions, CliError> {
        let postgres = &self.config.postgres;
        let statement_timeout = kestrel_server::parse_duration(&postgres.statement_timeout.0)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                CliError::usage(
                    "postgres.statement-timeout: not a positive duration: write a number and a \
                     unit (ms, s, m, h, d), e.g. 30s",
                )
            })?;
        if postgres.pool_size.0 == 0 {
            return Err(CliError::usage(
                "postgres.pool-size: a pool needs at least one connection",
            ));
        }
        Ok(PgOptions {
            pool_size: postgres.pool_size.0,
            statement_timeout,
            max_value_size: self.config.secret.max_size.0.0,
            ..PgOptions::default()
        })
    }
}

/// Where the store lives, as `database` names it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Database {
    /// The SQLite file: `kestrel.db` in the data directory for `sqlite`, the path of
    /// `sqlite:///path/file.db`.
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/db` (or `postgresql://`), libpq's parameters such
    /// as `sslmode` in its query.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    /// The URL's password never shows, even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&hide_url_credentials(url))
                .finish(),
        }
    }
}

impl Database {
    fn parse(database: &str, data_dir: &Path) -> Result<Self, CliError> {
        if database == "sqlite" {
            return Ok(Self::Sqlite(data_dir.join(kestrel_store_sqlite::FILE_NAME)));
        }
        if let Some(path) = database.strip_prefix("sqlite://") {
            if path.is_empty() || path.ends_with('/') {
                return Err(CliError::usage(format!(
                    "database '{database}' names no file: write sqlite:///path/to/file.db"
                )));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            return Ok(Self::Postgres(database.to_owned()));
        }
        Err(CliError::usage(format!(
            "database '{}' is not one kestrel knows: use sqlite, sqlite:///path/to/file.db \
             or postgres://user:password@host:port/db",
            hide_url_credentials(database)
        )))
    }

    /// How messages name it: the file, or the URL with its password hidden.
    pub(crate) fn shown(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => hide_url_credentials(url),
        }
    }
}

/// `KESTREL_MASTER_KEY` and `KESTREL_MASTER_KEY_FILE` are two sources of one key: both set is
/// ambiguous, so every command refuses to start.
fn check_master_key_source(env: &Environment) -> Result<(), CliError> {
    if env.is_set("KESTREL_MASTER_KEY") && env.is_set("KESTREL_MASTER_KEY_FILE") {
        return Err(CliError::usage(
            "KESTREL_MASTER_KEY and KESTREL_MASTER_KEY_FILE are both set; set only one of them",
        ));
    }
    Ok(())
}

/// `$XDG_DATA_HOME/kestrel`, else `~/.local/share/kestrel`, else `./kestrel-data`.
fn default_data_dir(env: &Environment) -> PathBuf {
    if let Some(data_home) = env.non_empty_os("XDG_DATA_HOME") {
        return PathBuf::from(data_home).join("kestrel");
    }
    match env.non_empty_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/kestrel"),
        None => PathBuf::from("kestrel-data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_setting_names_the_sqlite_file() {
        let data = Path::new("/data");
        let sqlite = |path: &str| Database::Sqlite(PathBuf::from(path));
        assert_eq!(
            Database::parse("sqlite", data).unwrap(),
            sqlite("/data/kestrel.db")
        );
        assert_eq!(
            Database::parse("sqlite:///srv/k.db", data).unwrap(),
            sqlite("/srv/k.db")
        );
        for bad in ["sqlite://", "sqlite:///srv/", "mysql://db/k"] {
            assert_eq!(Database::parse(bad, data).unwrap_err().code(), 2, "{bad}");
        }
    }

    #[test]
    fn postgres_is_selected_and_shown_without_its_password() {
        for url in [
            "postgres://kestrel:s3cret@db:5432/k?sslmode=require",
            "postgresql://kestrel:s3cret@db/k",
        ] {
            let database = Database::parse(url, Path::new("/d")).unwrap();
            assert_eq!(database, Database::Postgres(url.to_owned()));
            for shown in [database.shown(), format!("{database:?}")] {
                assert!(!shown.contains("s3cret"), "{shown}");
                assert!(shown.contains("kestrel:"), "{shown}");
            }
        }
        let error = Database::parse("mysql://k:s3cret@db/k", Path::new("/d")).unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn the_postgres_section_sets_the_pool_and_the_statement_timeout() {
        let text =
            "postgres:\n  pool-size: 4\n  statement-timeout: 5s\nsecret:\n  max-size: 1KiB\n";
        let options = settings(text).postgres_options().unwrap();
        assert_eq!(options.pool_size, 4);
        assert_eq!(options.statement_timeout, std::time::Duration::from_secs(5));
        assert_eq!(options.max_value_size, 1024);
        assert_eq!(settings("").postgres_options().unwrap().pool_size, 10);
        for bad in [
            "postgres:\n  pool-size: 0\n",
            "postgres:\n  statement-timeout: 0s\n",
        ] {
            let error = settings(bad).postgres_options().unwrap_err();
            assert_eq!(error.code(), 2, "{bad}");
            assert!(error.to_string().contains("postgres."), "{error}");
        }
    }

    /// Settings over the configuration `text`.
    fn settings(text: &str) -> Settings {
        Settings {
            config_file: None,
            config: Config::parse(text).unwrap(),
            data_dir: PathBuf::from("/data"),
            database: "sqlite".into(),
            env: Arc::new(Environment::from_pairs(Vec::new())),
        }
    }

    #[test]
    fn the_expression_section_sets_the_engines_limits() {
        let text = "expression:\n  fuel: 1000\n  max-value-size: 1KiB\n  render-timeout: 2s\n";
        let limits = settings(text).engine_config().unwrap().limits;
        assert_eq!(
            limits,
            ExpressionLimits {
                fuel: 1000,
                max_value_size: 1024,
                render_timeout: std::time::Duration::from_secs(2),
            }
        );
        assert_eq!(
            settings("").engine_config().unwrap().limits,
            ExpressionLimits::default()
        );
    }

    #[test]
    fn a_render_timeout_that_is_not_a_positive_duration_is_refused_unquoted() {
        for bad in ["0ms", "soon", "-1s"] {
            let text = format!("expression:\n  render-timeout: {bad}\n");
            let error = settings(&text).engine_config().unwrap_err();
            assert_eq!(error.code(), 2, "{bad}");
            let message = error.to_string();
            assert!(message.contains("expression.render-timeout"), "{message}");
            assert!(!message.contains(bad), "{message}");
        }
    }
}
