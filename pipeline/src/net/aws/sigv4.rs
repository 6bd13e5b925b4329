//! AWS Signature Version 4 for the sinks that speak HTTP to AWS services without an SDK
//! client: remote write to Amazon Managed Prometheus (`aps`), bulk to Amazon OpenSearch
//! Service (`es`) and Serverless (`aoss`).
//!
//! Signing is the AWS SDK's own (`aws-sigv4`), with credentials from the same default chain the
//! SDK clients use (environment, profile, IRSA web identity, EKS Pod Identity, instance
//! metadata), cached until five minutes before they expire. Every request carries
//! `x-amz-content-sha256` (OpenSearch Serverless requires it; the others accept it). Each
//! attempt is signed again, so a retry never carries a stale date.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use tokio::sync::Mutex;

use super::{sdk_config, AwsSettings};

/// Credentials this close to expiring are fetched again.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Signs requests for one service in one region.
pub struct SigV4 {
    service: String,
    region: String,
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
}

impl SigV4 {
    /// Loads the default credential chain; the region is `aws.region` or the environment's.
    pub async fn new(aws: &AwsSettings, service: &str) -> Result<Self, String> {
        let config = sdk_config(aws).await;
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or("no AWS region: set the sink's region or AWS_REGION")?;
        let provider = config
            .credentials_provider()
            .ok_or("no AWS credential provider")?;
        Ok(Self {
            service: service.to_owned(),
            region,
            provider,
            cached: Mutex::new(None),
        })
    }

    /// The region it signs for.
    pub fn region(&self) -> &str {
        &self.region
    }

    async fn credentials(&self) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|at| at > SystemTime::now() + REFRESH_BEFORE);
            if fresh {
                return Ok(c.clone());
            }
        }
        let fetched = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| format!("AWS credentials: {e}"))?;
        *cached = Some(fetched.clone());
        Ok(fetched)
    }

    /// Adds the signature headers to `request`, whose body is `body`.
    pub async fn sign<B>(&self, request: &mut http::Request<B>, body: &[u8]) -> Result<(), String> {
        let credentials = self.credentials().await?;
        sign_request(
            request,
            body,
            &credentials,
            &self.region,
            &self.service,
            SystemTime::now(),
        )
    }
}

/// Signs `request` at `time`: the pure part, which tests run with a fixed clock.
pub fn sign_request<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
