//! The embedded store as the command line uses it: where its file is, the master key that
//! opens it (README, "Commands"), who the audit trail records, and the lazy opening `run` and `render`
//! use so that a flow that reads no stored secret costs no database and creates no file.

use crate::environment::{Environment, NotText};
use crate::error::CliError;
use crate::output::warn;
use crate::settings::Settings;
use async_trait::async_trait;
use kestrel_crypto::{KeyOrigin, LoadedMasterKey, MasterKeySources, default_key_file};
use kestrel_secrets::{BackendError, Reader, SecretBackend, SecretValue};
use kestrel_store::{Actor, StoreError};
use kestrel_store_sqlite::{SqliteStore, StoreOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Where the store's file is, where its master key comes from, and who is using it.
#[derive(Debug, Clone)]
pub(crate) struct StoreAccess {
    file: PathBuf,
    data_dir: PathBuf,
    env: Arc<Environment>,
    /// `secret.max-size`, which the store enforces on every write.
    max_value_size: usize,
    /// `master-key.allow-readable-key-file`.
    allow_readable_key_file: bool,
}

impl StoreAccess {
    /// The store of `settings`; exit 2 for a database kestrel cannot use yet.
    pub(crate) fn new(settings: &Settings) -> Result<Self, CliError> {
        Ok(Self {
            file: settings.database_file()?,
            data_dir: settings.data_dir.clone(),
            env: Arc::clone(&settings.env),
            max_value_size: settings.config.secret.max_size.0.0,
            allow_readable_key_file: settings.config.master_key.allow_readable_key_file.0,
        })
    }

    /// Who the audit trail records for a command of this process: `cli:<OS user name>`.
    pub(crate) fn actor(&self) -> Actor {
        kestrel_store::actor_of(&operator(&self.env))
    }

    /// The database file.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Refuses a value over `secret.max-size` before anything is stored (exit 2, naming
    /// `what` holds it, never the value).
    pub(crate) fn check_value_size(&self, what: &str, value: &SecretValue) -> Result<(), CliError> {
        kestrel_store::validate_value_size(value.expose_secret().len(), self.max_value_size)
            .map_err(|too_large| CliError::usage(format!("{what}: {too_large}")))
    }

    /// Whether a key file group or others can read is used all the same.
    pub(crate) fn allow_readable_key_file(&self) -> bool {
        self.allow_readable_key_file
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
        let missing = |path: &Path| matches!(path.try_exists(), Ok(false));
        match key_file {
            Some(key_file) if missing(key_file) && !missing(&self.file) => {
                Err(CliError::usage(format!(
                    "{} exists but its master key file {} does not: set KESTREL_MASTER_KEY or \
                     KESTREL_MASTER_KEY_FILE, or put back the key file this store was created \
                     with (a new key would not open it)",
                    self.file.display(),
                    key_file.display()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Opens the store, creating its file (and its directory, mode 0700) the first time.
    pub(crate) fn open(&self) -> Result<SqliteStore, CliError> {
        self.open_with(StoreOptions::default())
    }

    /// [`StoreAccess::open`] with `options` (the server's: checkpoints in the background).
    pub(crate) fn open_with(&self, options: StoreOptions) -> Result<SqliteStore, CliError> {
        let options = StoreOptions {
            max_value_size: self.max_value_size,
            ..options
        };
        let loaded = self.master_key()?;
        if let Some(dir) = self.file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        SqliteStore::open_file(&self.file, loaded.key, options).map_err(|error| match error {
            StoreError::WrongMasterKey(_) => CliError::usage(format!(
                "cannot open {}: {error} (the key given came from {})",
                self.file.display(),
                origin_shown(&loaded.origin)
            )),
            other => store_error(other),
        })
    }

    /// Opens the store if its file exists: a store never written holds nothing, and reading
    /// it need create nothing (no file, no key).
    pub(crate) fn open_existing(&self) -> Result<Option<SqliteStore>, CliError> {
        // An error other than "absent" (a directory that cannot be searched) is left for
        // the opening to report.
        if let Ok(false) = self.file.try_exists() {
            return Ok(None);
        }
        self.open().map(Some)
    }
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

/// The store as `run` and `render` reach it: opened at the first lookup, and only if its file
/// exists (it is looked for again at each lookup until it does).
#[derive(Debug)]
pub(crate) struct LazyStore {
    access: StoreAccess,
    opened: Mutex<Option<SqliteStore>>,
}

impl LazyStore {
    pub(crate) fn new(access: StoreAccess) -> Self {
        Self {
            access,
            opened: Mutex::new(None),
        }
    }

    fn store(&self) -> Result<Option<SqliteStore>, BackendError> {
        // A poisoned lock holds either nothing or a whole store.
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = &*opened {
            return Ok(Some(store.clone()));
        }
        let store = self
            .access
            .open_existing()
            .map_err(|error| BackendError(error.to_string()))?;
        opened.clone_from(&store);
        Ok(store)
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
        match self.0.store()? {
            Some(store) => store.backend().get(reader, tenant, namespace, key).await,
            None => Ok(None),
        }
    }

    async fn record_refusal(
        &self,
        reader: &Reader,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<(), BackendError> {
        match self.0.store()? {
            Some(store) => {
                let backend = store.backend();
                backend.record_refusal(reader, tenant, namespace, key).await
            }
            None => Ok(()),
        }
    }

    async fn list(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, BackendError> {
        match self.0.store()? {
            Some(store) => store.backend().list(tenant, namespace).await,
            None => Ok(Vec::new()),
        }
    }
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
            file: PathBuf::from("/d/kestrel.db"),
            data_dir: PathBuf::from("/d"),
            env: Arc::new(Environment::from_pairs(
                pairs
                    .iter()
                    .map(|(name, value)| (name.into(), value.into())),
            )),
            max_value_size: kestrel_store::DEFAULT_MAX_VALUE_SIZE,
            allow_readable_key_file: false,
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
