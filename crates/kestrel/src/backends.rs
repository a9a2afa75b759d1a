//! The backends a configuration names, each built once: the embedded store itself, and each
//! external manager (`secret.vault`, `secret.aws-secret-manager`, or a namespace's own section)
//! behind its cache and joined to the embedded store (see `kestrel_store::External`).

use crate::config::{CacheConfig, NamespaceSecret, SecretType};
use crate::error::CliError;
use crate::output::warn;
use crate::settings::Settings;
use crate::sources::wait;
use crate::store::store_error;
use kestrel_store::{CacheSettings, Cached, External, Limited, SecretManager, SecretStore};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The backends of one configuration.
pub(crate) struct Backends<'a> {
    settings: &'a Settings,
    home: Arc<dyn SecretStore>,
    /// The external backends of the `secret` section, shared by every namespace using them.
    shared: RefCell<HashMap<&'static str, Arc<dyn SecretStore>>>,
}

impl<'a> Backends<'a> {
    /// The backends of `settings`, joined to the embedded store `home`.
    pub(crate) fn new(settings: &'a Settings, home: Arc<dyn SecretStore>) -> Self {
        Self {
            settings,
            home,
            shared: RefCell::new(HashMap::new()),
        }
    }

    /// The store of backend `kind`, configured by the namespace section `own` when it has one
    /// for that kind, else by the `secret` section.
    pub(crate) fn store(
        &self,
        kind: SecretType,
        own: Option<&NamespaceSecret>,
    ) -> Result<Arc<dyn SecretStore>, CliError> {
        let name = match kind {
            SecretType::Embedded => return Ok(Arc::clone(&self.home)),
            SecretType::Vault => "vault",
            SecretType::AwsSecretManager => "aws-secret-manager",
        };
        if let Some(manager) = self.own_manager(kind, own)? {
            return self.external(manager);
        }
        if let Some(store) = self.shared.borrow().get(name) {
            return Ok(Arc::clone(store));
        }
        let store = self.external(self.manager(kind)?)?;
        self.shared.borrow_mut().insert(name, Arc::clone(&store));
        Ok(store)
    }

    /// The manager a namespace section configures for itself, if it does.
    fn own_manager(
        &self,
        kind: SecretType,
        own: Option<&NamespaceSecret>,
    ) -> Result<Option<Arc<dyn SecretManager>>, CliError> {
        let Some(own) = own else { return Ok(None) };
        match kind {
            SecretType::Vault => own
                .vault
                .as_ref()
                .map(|vault| crate::vault::manager(vault, &self.settings.env))
                .transpose(),
            SecretType::AwsSecretManager => own
                .aws_secret_manager
                .as_ref()
                .map(crate::aws::manager)
                .transpose(),
            SecretType::Embedded => Ok(None),
        }
    }

    /// The manager the `secret` section configures.
    fn manager(&self, kind: SecretType) -> Result<Arc<dyn SecretManager>, CliError> {
        let secret = &self.settings.config.secret;
        match kind {
            SecretType::Vault => crate::vault::manager(&secret.vault, &self.settings.env),
            SecretType::AwsSecretManager => crate::aws::manager(&secret.aws_secret_manager),
            SecretType::Embedded => unreachable_embedded(),
        }
    }

    fn external(&self, manager: Arc<dyn SecretManager>) -> Result<Arc<dyn SecretStore>, CliError> {
        let config = &self.settings.config.secret.cache;
        let limited = Limited::new(manager, config.rate_limit.0).map_err(store_error)?;
        let cache = cache_settings(config)?;
        let cached = Arc::new(Cached::new(Arc::new(limited), cache, Arc::new(warn)));
        let max = self.settings.config.secret.max_size.0.0;
        let external =
            wait(External::new(cached, Arc::clone(&self.home), max))?.map_err(store_error)?;
        Ok(Arc::new(external))
    }
}

/// The embedded store is the home store, never built as a manager.
fn unreachable_embedded() -> Result<Arc<dyn SecretManager>, CliError> {
    Err(CliError::failed(
        "the embedded store is not an external manager",
    ))
}

/// `secret.cache`: `enabled: false` or `ttl: 0s` keeps nothing.
fn cache_settings(cache: &CacheConfig) -> Result<CacheSettings, CliError> {
    let duration = |key: &str, text: &str| {
        kestrel_server::parse_duration(text).map_err(|_| {
            CliError::usage(format!(
                "secret.cache.{key}: not a duration: write a number and a unit (ms, s, m, h), \
                 e.g. 60s"
            ))
        })
    };
    let ttl = duration("ttl", &cache.ttl.0)?;
    Ok(CacheSettings {
        ttl: if cache.enabled.0 { ttl } else { Duration::ZERO },
        maximum_size: usize::try_from(cache.maximum_size.0).unwrap_or(usize::MAX),
        stale_for: duration("stale-for", &cache.stale_for.0)?,
    })
}
