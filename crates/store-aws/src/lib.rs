//! AWS Secrets Manager as a kestrel secret manager: values, versions and tags live at AWS,
//! reached over its JSON protocol with requests signed by AWS's own `aws-sigv4`.
//!
//! This crate owns [`AwsManager`], the [`kestrel_store::SecretManager`] for the
//! `aws-secret-manager` backend, and its [`AwsSettings`] (region, endpoint override, fixed
//! keys or the standard credential chain of `aws-config`, name prefix). Secrets are named
//! `<prefix>/<tenant>/<namespace>/<key>` and tagged `tenant`, `namespace`, `key`; values are
//! `SecretString`s (JSON ones reach their fields with `secret('K', subkey='f')`); versions
//! are AWS's own, each with its `VersionId` and stages. [`signed_headers`] is the signing step,
//! public so a test can compare it with botocore's for a fixed time. With the `testing`
//! feature, `testing::DevAws` runs moto's server on 127.0.0.1 for tests, optionally checking
//! signatures and keys as AWS does (`DevAws::start_checking_signatures`), and
//! `testing::dev_aws_or_skip` gives a test one or says why there is none.
//!
//! Each `get` costs two requests (the value, then the version list that numbers it), a `set`
//! three, a `list` one per page plus one per secret listed (eight at a time): the read-through
//! cache in front of external managers keeps executions from paying them.
//!
//! ```
//! use kestrel_store_aws::{AwsManager, AwsSettings};
//! let settings = AwsSettings {
//!     endpoint_override: Some("http://127.0.0.1:5000".into()),
//!     ..AwsSettings::default()
//! };
//! assert!(!format!("{settings:?}").contains("secret_access_key: Some"));
//! let manager = AwsManager::new(&settings).unwrap(); // sends nothing yet
//! # drop(manager);
//! ```

mod api;
mod client;
mod credentials;
mod manager;
mod names;
mod settings;
mod signing;
#[cfg(feature = "testing")]
pub mod testing;

pub use aws_credential_types::Credentials;
pub use client::AwsError;
pub use manager::{AwsManager, BACKEND};
pub use settings::{AwsSettings, DEFAULT_PREFIX, DEFAULT_REGION};
pub use signing::{CONTENT_TYPE, Unsigned, signed_headers};
