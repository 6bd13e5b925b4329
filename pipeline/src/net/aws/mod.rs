//! What every part that calls AWS shares (the collector's sinks, the agent's X-Ray sampling
//! proxy): the `aws:` settings (region, endpoint override), the SDK configuration from the
//! default credential chain (environment, profile, IRSA web identity, EKS Pod Identity, instance
//! metadata), and SigV4 signing ([`sigv4`]) with an independent verifier for tests
//! ([`sigv4_check`]). The SDK's own retries are off: Sextant's send path retries.

pub mod sigv4;
pub mod sigv4_check;

use serde::Deserialize;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    /// Region; unset: from the environment (`AWS_REGION`) or the instance.
    pub region: Option<String>,
    /// Endpoint override, for VPC endpoints and tests.
    pub endpoint: Option<String>,
}

/// Loads the SDK configuration (async: the credential chain may ask the network lazily).
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    loader.load().await
}
