//! Where the manager is and who kestrel is there: `secret.aws-secret-manager` of the
//! configuration.

use std::fmt;
use zeroize::Zeroizing;

/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The first part of every secret's name when none is configured.
pub const DEFAULT_PREFIX: &str = "kestrel";

/// How to reach AWS Secrets Manager. Without `access_key_id` and `secret_access_key`,
/// credentials come from the standard chain (environment, profile files, web identity, EC2
/// instance metadata). `Debug` shows the key id and never the secret key or the token.
#[derive(Clone)]
pub struct AwsSettings {
    /// The region signed for and, without `endpoint_override`, the endpoint's
    /// (`secretsmanager.<region>.amazonaws.com`).
    pub region: String,
    /// Another endpoint (`http://127.0.0.1:5000` for an emulator, a VPC endpoint).
    pub endpoint_override: Option<String>,
    /// A fixed access key id; the chain is used when this or the secret key is unset.
    pub access_key_id: Option<String>,
    /// The fixed access key id's secret key.
    pub secret_access_key: Option<Zeroizing<String>>,
    /// A session token for temporary fixed credentials.
    pub session_token: Option<Zeroizing<String>>,
    /// The first part of every name: `<prefix>/<tenant>/<namespace>/<key>`.
    pub prefix: String,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: DEFAULT_REGION.to_owned(),
            endpoint_override: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl AwsSettings {
    /// The URL requests go to.
    pub fn endpoint(&self) -> String {
        match &self.endpoint_override {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://secretsmanager.{}.amazonaws.com", self.region),
        }
    }
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { "<hidden>" } else { "<unset>" };
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint_override", &self.endpoint_override)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &hidden(self.secret_access_key.is_some()),
            )
            .field("session_token", &hidden(self.session_token.is_some()))
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_follows_the_region_unless_overridden() {
        let mut settings = AwsSettings {
            region: "eu-west-3".into(),
            ..AwsSettings::default()
        };
        assert_eq!(
            settings.endpoint(),
            "https://secretsmanager.eu-west-3.amazonaws.com"
        );
        settings.endpoint_override = Some("http://127.0.0.1:5000/".into());
        assert_eq!(settings.endpoint(), "http://127.0.0.1:5000");
    }
}
