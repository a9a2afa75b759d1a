//! The store as the command line uses it: the database `database` names (the embedded SQLite
//! file, or PostgreSQL for several nodes), opened by one function for every command
//! ([`StoreAccess::open`] and its kin, behind the store traits, so that no command matches on
//! the database), the master key that opens it (README, "Commands"), who the audit trail
//! records, and the lazy opening `run` and `render` use so that a flow that reads no stored
//! secret costs no database and creates no file.

use crate::environment::{Environment, NotText};
use crate::error::CliError;
use crate::output::warn;
use crate::settings::{Database, Settings};
use crate::sources::{offload, wait};
use async_trait::async_trait;
use kestrel_crypto::{KeyOrigin, LoadedMasterKey, MasterKey, MasterKeySources, default_key_file};
use kestrel_secrets::{BackendError, Reader, SecretBackend, SecretValue};
use kestrel_server::ServerStore;
use kestrel_store::{Actor, AuditedBackend, SecretStore, StoreError};
use kestrel_store_postgres::{PgOptions, PgStore};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The store of the settings, opened: whichever the database, every trait a command uses.
pub(crate) type Store = Arc<dyn ServerStore>;

/// How a command wants the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Created the first time (a SQLite file, with its directory).
    Create,
    /// Only if it exists: a SQLite file never written holds nothing, and reading it need
    /// create nothing (no file, no key). A PostgreSQL database always exists.
    Existing,
    /// Created the first time, for a long-running process: SQLite checkpoints off the
    /// request path.
    Server,
}

/// Where the store is, where its master key comes from, and who is using it.
#[derive(Debug, Clone)]
pub(crate) struct StoreAccess {
    database: Database,
    data_dir: PathBuf,
    env: Arc<Environment>,
    /// `secret.max-size`, which the store enforces on every write.
    max_value_size: usize,
    /// `secret.mask-min-length`: shorter values are not masked.
    mask_min_length: usize,
    /// `master-key.allow-readable-key-file`.
    allow_readable_key_file: bool,
    /// `postgres`, for a PostgreSQL database.
    postgres: PgOptions,
}

impl StoreAccess {
    /// The store of `settings`; exit 2 for a database kestrel does not know or a `postgres`
    /// section it cannot use.
    pub(crate) fn new(settings: &Settings) -> Result<Self, CliError> {
        Ok(Self {
            database: settings.database()?,
            data_dir: settings.data_dir.clone(),
            env: Arc::clone(&settings.env),
            max_value_size: settings.config.secret.max_size.0.0,
            mask_min_length: settings.config.secret.mask_min_length.0,
            allow_readable_key_file: settings.config.master_key.allow_readable_key_file.0,
            postgres: settings.postgres_options()?,
        })
    }

    /// Who the audit trail records for a command of this process: `cli:<OS user name>`.
    pub(crate) fn actor(&self) -> Actor {
        kestrel_store::actor_of(&operator(&self.env))
    }

    /// The database as messages name it (a PostgreSQL URL without its password).
    pub(crate) fn shown(&self) -> String {
        self.database.shown()
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Refuses a value over `secret.max-size` before anything is stored (exit 2, naming
    /// `what` holds it, never the value).
    pub(crate) fn check_value_size(&self, what: &str, value: &SecretValue) -> Result<(), CliError> {
        kestrel_store::validate_value_size(value.expose_secret().len(), self.max_value_size)
            .map_err(|too_large| CliError::usage(format!("{what}: {too_large}")))
    }

    /// Refuses a value shorter than `secret.mask-min-length` (exit 2, naming `what` holds it):
    /// masking would leave it in clear wherever a flow logs it.
    pub(crate) fn check_value_length(
        &self,
        what: &str,
        value: &SecretValue,
    ) -> Result<(), CliError> {
        if value.expose_secret().chars().count() >= self.mask_min_length {
            return Ok(());
        }
        Err(CliError::usage(format!(
            "the value of {what} is shorter than secret.mask-min-length ({} characters): logs \
             would show it in clear; pass --allow-short to store it all the same",
            self.mask_min_length
        )))
    }

    /// Whether a key file group or others can read is used all the same.
    pub(crate) fn allow_readable_key_file(&self) -> bool {
        self.allow_readable_key_file
    }

    /// The master key when one is given or kept already, never a new one: for what needs
    /// the key some store was sealed with (an import). Exit 2 when there is none.
    pub(crate) fn given_master_key(&self) -> Result<MasterKey, CliError> {
        let default_file = default_key_file(self.env.os("XDG_CONFIG_HOME"), self.env.os("HOME"));
        let given = self.env.is_set("KESTREL_MASTER_KEY")
            || self.env.is_set("KESTREL_MASTER_KEY_FILE")
            || default_file.is_some_and(|file| !matches!(file.try_exists(), Ok(false)));
        if !given {
            return Err(CliError::usage(
                "no master key: set KESTREL_MASTER_KEY or KESTREL_MASTER_KEY_FILE to the master \
                 key of the store the export was made from",
            ));
        }
        Ok(self.master_key()?.key)
    }

    /// The master key: `KESTREL_MASTER_KEY`, or the file `KESTREL_MASTER_KEY_FILE` names, or
    /// the key file in the config directory (created once, mode 0600, for a new store only).
    /// Its warnings go to stderr; exit 2 when there is none to be had.
    fn master_key(&self) -> Result<LoadedMasterKey, CliError> {
        let env_key = self.env.text("KESTREL_MASTER_KEY").map_err(|NotText| {
            CliError::usage(
                "KESTREL_MASTER_KEY is not a master key: it is not text (expected the base64 \
                 of 32 random bytes)",
            )
        })?;
        let env_key_file = self.env.os("KESTREL_MASTER_KEY_FILE").map(PathBuf::from);
        let default_file = default_key_file(self.env.os("XDG_CONFIG_HOME"), self.env.os("HOME"));
        if env_key.is_none() && env_key_file.is_none() {
            self.refuse_a_new_key_for_an_old_store(default_file.as_deref())?;
        }
        let loaded = kestrel_crypto::load_master_key(&MasterKeySources {
            env_key,
            env_key_file: env_key_file.as_deref(),
            default_file: default_file.as_deref(),
            data_dir: Some(&self.data_dir),
            allow_readable_key_file: self.allow_readable_key_file,
        })
        .map_err(|error| CliError::usage(error.to_string()))?;
        for warning in &loaded.warnings {
            warn(warning);
        }
        if let KeyOrigin::DefaultFile {
            path,
            created: true,
        } = &loaded.origin
        {
            warn(&format!(
                "created the master key file {}: keep a copy of it somewhere safe, without it \
                 the stored secrets cannot be read",
                path.display()
            ));
        }
        Ok(loaded)
    }

    /// A store that exists was sealed under some key: when its key file is gone (a data
    /// directory copied without it), a new key would only fail to open it, and would then
    /// sit where the right key belongs.
    fn refuse_a_new_key_for_an_old_store(&self, key_file: Option<&Path>) -> Result<(), CliError> {
        let Database::Sqlite(file) = &self.database else {
            return Ok(());
        };
        let missing = |path: &Path| matches!(path.try_exists(), Ok(false));
        match key_file {
            Some(key_file) if missing(key_file) && !missing(file) => Err(CliError::usage(format!(
                "{} exists but its master key file {} does not: set KESTREL_MASTER_KEY or \
                     KESTREL_MASTER_KEY_FILE, or put back the key file this store was created \
                     with (a new key would not open it)",
                file.display(),
                key_file.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Opens the store, creating it the first time (a SQLite file with its directory, mode
    /// 0700; a PostgreSQL database's tables and keyring).
    pub(crate) fn open(&self) -> Result<Store, CliError> {
        self.open_now(Opening::Create)?
            .ok_or_else(|| CliError::failed("the store could not be created"))
    }

    /// Opens the store if it exists (see [`Opening::Existing`]).
    pub(crate) fn open_existing(&self) -> Result<Option<Store>, CliError> {
        self.open_now(Opening::Existing)
    }

    /// [`StoreAccess::open`] for a server or a worker.
    pub(crate) fn open_for_server(&self) -> Result<Store, CliError> {
        self.open_now(Opening::Server)?
            .ok_or_else(|| CliError::failed("the store could not be created"))
    }

    /// Opens the store on the runtime of this process's store calls ([`wait`]), which
    /// outlives it: a PostgreSQL store's connections and listener run there.
    fn open_now(&self, opening: Opening) -> Result<Option<Store>, CliError> {
        wait(self.open_as(opening))?
    }

    async fn open_as(&self, opening: Opening) -> Result<Option<Store>, CliError> {
        match &self.database {
            Database::Sqlite(file) => self.open_sqlite(file, opening),
            Database::Postgres(url) => {
                let loaded = self.master_key()?;
                connect_postgres(url, loaded.key, self.postgres.clone())
                    .await
                    .map(Some)
                    .map_err(|error| match error {
                        StoreError::WrongMasterKey(_) => self.open_error(error, &loaded.origin),
                        // The URL is in the message, its password hidden.
                        other => CliError::failed(format!("cannot open {}: {other}", self.shown())),
                    })
            }
        }
    }

    fn open_sqlite(&self, file: &Path, opening: Opening) -> Result<Option<Store>, CliError> {
        // An error other than "absent" (a directory that cannot be searched) is left for the
        // opening to report.
        if opening == Opening::Existing && matches!(file.try_exists(), Ok(false)) {
            return Ok(None);
        }
        let options = StoreOptions {
            max_value_size: self.max_value_size,
            // A server writes steadily: checkpoints off the request path.
            background_checkpoint: (opening == Opening::Server).then_some(Duration::from_secs(1)),
            ..StoreOptions::default()
        };
        let loaded = self.master_key()?;
        if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let store = SqliteStore::open_file(file, loaded.key, options)
            .map_err(|error| self.open_error(error, &loaded.origin))?;
        Ok(Some(Arc::new(store)))
    }

    /// A failure to open the store: a wrong master key names where the key came from.
    fn open_error(&self, error: StoreError, origin: &KeyOrigin) -> CliError {
        match error {
            StoreError::WrongMasterKey(_) => CliError::usage(format!(
                "cannot open {}: {error} (the key given came from {})",
                self.shown(),
                origin_shown(origin)
            )),
            other => store_error(other),
        }
    }
}

/// Connects to the PostgreSQL database at `url`; must run on the runtime that outlives the
/// store (its connections and its listener run there).
async fn connect_postgres(
    url: &str,
    master_key: MasterKey,
    options: PgOptions,
) -> Result<Store, StoreError> {
    let store = PgStore::connect(url, master_key, options).await?;
    Ok(Arc::new(store))
}

fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| {
            CliError::usage(format!("cannot create the directory {}", dir.display()))
                .caused_by(error)
        })
}

fn origin_shown(origin: &KeyOrigin) -> String {
    match origin {
        KeyOrigin::Environment => "KESTREL_MASTER_KEY".into(),
        KeyOrigin::EnvironmentFile(path) => {
            format!("KESTREL_MASTER_KEY_FILE, {}", path.display())
        }
        KeyOrigin::DefaultFile { path, .. } => format!("the key file {}", path.display()),
    }
}

/// A store failure as the command line reports it: a bad name or a value over
/// `secret.max-size` is a usage error (exit 2), anything else a failure (exit 1). Store errors never hold a value.
pub(crate) fn store_error(error: StoreError) -> CliError {
    match error {
        StoreError::InvalidKey(_)
        | StoreError::InvalidNamespace(_)
        | StoreError::InvalidTenant(_)
        | StoreError::WrongMasterKey(_)
        | StoreError::ReadOnly { .. }
        | StoreError::Unsupported { .. } => CliError::usage(error.to_string()),
        other if kestrel_store::value_too_large(&other).is_some() => {
            CliError::usage(other.to_string())
        }
        other => CliError::failed(other.to_string()),
    }
}

/// The operator running this command, as the reader of what it reads: `cli:<OS user name>`.
pub(crate) fn operator(env: &Environment) -> Reader {
    Reader::Operator(os_user(env))
}

/// The name of the user running kestrel: `USER`, else `LOGNAME`, else the name
/// `/etc/passwd` gives this process's user id, else `uid-N`.
fn os_user(env: &Environment) -> String {
    let non_empty = |name: &str| env.text(name).ok().flatten().filter(|v| !v.is_empty());
    if let Some(name) = non_empty("USER").or_else(|| non_empty("LOGNAME")) {
        return name.to_owned();
    }
    // Not the owner of /proc/self: a non-dumpable process's entries belong to root.
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| user_named_in(&passwd, uid))
        .unwrap_or_else(|| format!("uid-{uid}"))
}

/// The name of user `uid` in a passwd file (`name:password:uid:...`).
fn user_named_in(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The store as `run` and `render` reach it: opened at the first lookup, and only if it exists
/// (it is looked for again at each lookup until it does). Its calls run on the runtime of this
/// process's store calls, whichever thread or runtime asks.
pub(crate) struct LazyStore {
    access: StoreAccess,
    opened: tokio::sync::Mutex<Option<Store>>,
}

impl std::fmt::Debug for LazyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyStore")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl LazyStore {
    pub(crate) fn new(access: StoreAccess) -> Self {
        Self {
            access,
            opened: tokio::sync::Mutex::new(None),
        }
    }

    /// The store behind the audited backend, opened if need be.
    async fn backend(&self) -> Result<Option<AuditedBackend>, BackendError> {
        let mut opened = self.opened.lock().await;
        if opened.is_none() {
            let access = self.access.clone();
            let opening = offload(async move { access.open_as(Opening::Existing).await });
            *opened = opening
                .await
                .map_err(backend_error)?
                .map_err(backend_error)?;
        }
        Ok(opened.clone().map(|store| {
            let store: Arc<dyn SecretStore> = store;
            AuditedBackend::new(store)
        }))
    }
}

/// The lazily opened store as a secret backend: each value it hands out is recorded as read by
/// the reader that asked (an execution, the operator).
#[derive(Debug)]
pub(crate) struct LazyBackend(pub(crate) Arc<LazyStore>);

#[async_trait]
impl SecretBackend for LazyBackend {
    fn name(&self) -> &str {
        "embedded"
    }

    async fn get(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<SecretValue>, BackendError> {
        let Some(backend) = self.0.backend().await? else {
            return Ok(None);
        };
        let (reader, tenant, namespace, key) = owned(reader, tenant, namespace, key);
        offloaded(async move { backend.get(&reader, &tenant, &namespace, &key).await }).await
    }

    async fn record_refusal(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<(), BackendError> {
        let Some(backend) = self.0.backend().await? else {
            return Ok(());
        };
        let (reader, tenant, namespace, key) = owned(reader, tenant, namespace, key);
        offloaded(async move {
            backend
                .record_refusal(&reader, &tenant, &namespace, &key)
                .await
        })
        .await
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, BackendError> {
        let Some(backend) = self.0.backend().await? else {
            return Ok(Vec::new());
        };
        let (tenant, namespace) = (tenant.to_owned(), namespace.to_owned());
        offloaded(async move { backend.list(&tenant, &namespace).await }).await
    }
}

/// A lookup's arguments, owned, to be moved to the store's runtime.
fn owned(
    reader: &Reader,
    tenant: &str,
    namespace: &str,
    key: &str,
) -> (Reader, String, String, String) {
    (
        reader.clone(),
        tenant.to_owned(),
        namespace.to_owned(),
        key.to_owned(),
    )
}

/// [`offload`] for a backend call.
async fn offloaded<T: Send + 'static>(
    call: impl Future<Output = Result<T, BackendError>> + Send + 'static,
) -> Result<T, BackendError> {
    offload(call).await.map_err(backend_error)?
}

/// A failure of the command line's as a secret backend reports it.
fn backend_error(error: CliError) -> BackendError {
    BackendError(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_name_is_found_by_id_in_passwd() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# comment\nada:x:1000:1000::/home/ada:/bin/sh\n";
        assert_eq!(user_named_in(passwd, 1000).as_deref(), Some("ada"));
        assert_eq!(user_named_in(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_named_in(passwd, 7), None);
        assert_eq!(user_named_in("broken", 0), None);
    }

    #[test]
    fn the_cli_actor_names_the_os_user() {
        let access = |pairs: &[(&str, &str)]| StoreAccess {
            database: Database::Sqlite(PathBuf::from("/d/kestrel.db")),
            data_dir: PathBuf::from("/d"),
            env: Arc::new(Environment::from_pairs(
                pairs
                    .iter()
                    .map(|(name, value)| (name.into(), value.into())),
            )),
            max_value_size: kestrel_store::DEFAULT_MAX_VALUE_SIZE,
            mask_min_length: 4,
            allow_readable_key_file: false,
            postgres: PgOptions::default(),
        };
        let actor = access(&[("USER", "ada")]).actor();
        assert_eq!(actor.kind(), "system");
        assert_eq!(actor.id(), "cli:ada");
        assert_eq!(access(&[("LOGNAME", "bob")]).actor().id(), "cli:bob");
        // Without either, the name of this process's user id.
        let actor = access(&[]).actor();
        assert!(actor.id().len() > "cli:".len(), "{actor}");
    }

    #[test]
    fn bad_names_are_usage_errors_and_absent_secrets_failures() {
        let invalid = store_error(StoreError::InvalidKey("a b".into()));
        assert_eq!(invalid.code(), 2);
        let absent = kestrel_store::SecretId::main("a", "K")
            .unwrap()
            .not_found(None);
        assert_eq!(store_error(absent).code(), 1);
    }

    #[test]
    fn the_origin_of_a_key_is_named_for_a_wrong_key() {
        let origin = KeyOrigin::EnvironmentFile(PathBuf::from("/k/master.key"));
        assert_eq!(
            origin_shown(&origin),
            "KESTREL_MASTER_KEY_FILE, /k/master.key"
        );
        assert_eq!(origin_shown(&KeyOrigin::Environment), "KESTREL_MASTER_KEY");
    }
}
