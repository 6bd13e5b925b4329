//! Plumbing every AWS sink shares: the `aws:` settings (region, endpoint override), the SDK
//! configuration from the default credential chain (environment, profile, IRSA web identity, EKS
//! Pod Identity, instance metadata), and a description of SDK errors that each sink's `retry.rs`
//! classifies. The SDK's own retries are turned off: Sextant's request wrapper retries, so that
//! retries are counted and honour shutdown.

pub(crate) mod retry;

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

/// What went wrong with an AWS call, without the SDK's types.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}{}{}: {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(), status.map(|s| format!(" (http {s})")).unwrap_or_default())]
pub struct AwsError {
    pub kind: AwsErrorKind,
    /// The service's error code, like `ThrottlingException`.
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The request could not be built (a bug or bad input).
    Construction,
    /// No connection, DNS, TLS.
    Dispatch,
    Timeout,
    /// The service answered with an error.
    Service,
}

impl AwsError {
    /// Describes any SDK error.
    pub fn from_sdk<E>(
        e: &aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        let kind = match e {
            SdkError::ConstructionFailure(_) => AwsErrorKind::Construction,
            SdkError::DispatchFailure(_) => AwsErrorKind::Dispatch,
            SdkError::TimeoutError(_) => AwsErrorKind::Timeout,
            _ => AwsErrorKind::Service,
        };
        let message = e.message().map(str::to_owned).unwrap_or_else(|| {
            aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
        });
        AwsError {
            kind,
            code: e.code().map(str::to_owned),
            status: e.raw_response().map(|r| r.status().as_u16()),
            message,
        }
    }
}
