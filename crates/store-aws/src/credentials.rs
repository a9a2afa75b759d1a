//! Who kestrel is at AWS: fixed keys from the configuration, or the standard chain
//! (`aws-config`'s: environment, profile files, web identity, ECS, EC2 instance metadata),
//! read again before what it gave expires.

use crate::{AwsError, AwsSettings};
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_smithy_http_client::tls;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Mutex, OnceCell};

/// Credentials are read again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Credentials without an expiry (environment, profile) are read again after this long, so
/// a rotated profile is picked up, as the SDK's cache does.
const REREAD_WITHOUT_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Where credentials come from, cached until they are about to expire.
pub(crate) struct CredentialSource {
    fixed: Option<Credentials>,
    region: String,
    chain: OnceCell<DefaultCredentialsChain>,
    cached: Mutex<Option<(Credentials, Instant)>>,
}

impl CredentialSource {
    /// Fixed keys when the settings have both parts, else the chain (built on first use).
    pub(crate) fn new(settings: &AwsSettings) -> Self {
        let fixed = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => Some(Credentials::new(
                id.as_str(),
                secret.as_str(),
                settings
                    .session_token
                    .as_ref()
                    .map(|t| t.as_str().to_owned()),
                None,
                "kestrel-configuration",
            )),
            _ => None,
        };
        Self {
            fixed,
            region: settings.region.clone(),
            chain: OnceCell::new(),
            cached: Mutex::new(None),
        }
    }

    /// Credentials valid for a while yet; one caller at a time reads the chain.
    pub(crate) async fn current(&self) -> Result<Credentials, AwsError> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let mut cached = self.cached.lock().await;
        if let Some((credentials, read_at)) = cached.as_ref()
            && still_fresh(credentials, *read_at)
        {
            return Ok(credentials.clone());
        }
        let chain = self.chain.get_or_init(|| build_chain(&self.region)).await;
        let credentials = chain
            .provide_credentials()
            .await
            .map_err(|e| AwsError::Credentials(error_chain(&e)))?;
        *cached = Some((credentials.clone(), Instant::now()));
        Ok(credentials)
    }

    /// Forgets cached credentials AWS called expired, so the next call reads the chain.
    pub(crate) async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

fn still_fresh(credentials: &Credentials, read_at: Instant) -> bool {
    match credentials.expiry() {
        Some(expiry) => SystemTime::now() + REFRESH_BEFORE_EXPIRY < expiry,
        None => read_at.elapsed() < REREAD_WITHOUT_EXPIRY,
    }
}

/// The standard chain, its HTTP calls (STS, instance metadata) on rustls with ring.
async fn build_chain(region: &str) -> DefaultCredentialsChain {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    DefaultCredentialsChain::builder()
        .region(aws_config::Region::new(region.to_owned()))
        .configure(ProviderConfig::default().with_http_client(http))
        .build()
        .await
}

/// An error and its causes on one line (the chain's errors say little at the top).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring_in(seconds: u64) -> Credentials {
        let expiry = SystemTime::now() + Duration::from_secs(seconds);
        Credentials::new("AKID", "secret", Some("token".into()), Some(expiry), "test")
    }

    #[test]
    fn credentials_are_read_again_five_minutes_before_they_expire() {
        let now = Instant::now();
        assert!(still_fresh(&expiring_in(3600), now));
        assert!(!still_fresh(&expiring_in(240), now));
        assert!(!still_fresh(&expiring_in(0), now));
    }

    #[test]
    fn credentials_without_expiry_are_read_again_after_fifteen_minutes() {
        let fixed = Credentials::new("AKID", "secret", None, None, "test");
        assert!(still_fresh(&fixed, Instant::now()));
        if let Some(long_ago) = Instant::now().checked_sub(REREAD_WITHOUT_EXPIRY) {
            assert!(!still_fresh(&fixed, long_ago));
        }
    }

    #[test]
    fn fixed_keys_in_the_settings_are_used_as_they_are() {
        let settings = AwsSettings {
            access_key_id: Some("AKIDFIXED".into()),
            secret_access_key: Some(zeroize::Zeroizing::new("fixed-secret".into())),
            ..AwsSettings::default()
        };
        let source = CredentialSource::new(&settings);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let credentials = runtime.block_on(source.current()).unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDFIXED");
        assert_eq!(credentials.session_token(), None);
    }
}
