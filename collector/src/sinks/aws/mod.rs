//! Plumbing every AWS sink shares: the `aws:` settings (region, endpoint override), the SDK
//! configuration from the default credential chain (environment, profile, IRSA web identity, EKS
//! Pod Identity, instance metadata), and a description of SDK errors that each sink's `retry.rs`
//! classifies, and [`OnFirstUse`], which makes an [`AwsApi`] client the service a sink sends
//! through. The SDK's own retries are turned off: Sextant's send path retries, so that retries
//! are counted and honour shutdown.

pub(crate) mod retry;
pub use sextant_pipeline::net::aws::{sdk_config, sigv4, sigv4_check, AwsSettings};

use std::future::Future;
use std::pin::Pin;

use tokio::sync::OnceCell;

use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{Accepted, Request, Service};

/// One AWS API a sink calls: its request, the call, a cheap check, and what its errors mean.
pub(crate) trait AwsApi: Send + Sync + 'static {
    type Request: Request;
    type Response: Accepted;
    /// The service's name in logs.
    const BACKEND: &'static str;

    fn put(
        &self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<Self::Response, AwsError>> + Send;

    /// A cheap read that proves credentials, endpoint and permission.
    fn healthcheck(&self) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// The sink's `retry.rs`.
    fn classify(error: &AwsError) -> Retry;
}

type Connect<A> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = A> + Send>> + Send + Sync>;

/// An AWS API client made on first use, the [`Service`] a sink sends through: loading the SDK
/// configuration may ask the network for credentials, which building the sink must not wait
/// for.
pub(crate) struct OnFirstUse<A> {
    client: OnceCell<A>,
    connect: Connect<A>,
}

impl<A: AwsApi> OnFirstUse<A> {
    pub(crate) fn new<F, Fut>(connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
    {
        Self {
            client: OnceCell::new(),
            connect: Box::new(move || Box::pin(connect())),
        }
    }

    async fn client(&self) -> &A {
        self.client.get_or_init(|| (self.connect)()).await
    }
}

impl<A: AwsApi> Service for OnFirstUse<A> {
    type Request = A::Request;
    type Response = A::Response;
    type Error = AwsError;
    const BACKEND: &'static str = A::BACKEND;

    async fn call(&self, request: &A::Request) -> Result<A::Response, AwsError> {
        self.client().await.put(request).await
    }

    fn classify(&self, error: &AwsError) -> Retry {
        A::classify(error)
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.client()
            .await
            .healthcheck()
            .await
            .map_err(|e| e.to_string())
    }
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
