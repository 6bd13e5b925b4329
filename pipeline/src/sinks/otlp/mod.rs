//! Sink `otlp`: sends batches to an OTLP/HTTP receiver (protobuf, gzip), retrying what the OTLP
//! specification calls retryable. A batch is acknowledged delivered only on a 2xx answer, which
//! from a Sextant collector means the batch is safe on its side.

pub(crate) mod balance;
#[cfg(test)]
mod balance_tests;
pub(crate) mod config;
#[cfg(test)]
mod grpc_tests;
pub(crate) mod request_builder;
pub(crate) mod retry;
pub(crate) mod service;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tls_tests;

use std::sync::Arc;

use crate::component::{BuildError, SinkContext, Task};
use crate::flow::ack::AckStatus;
use crate::flow::event::Events;
use crate::sink::request::Retry;
use crate::sink::sender::{Drive, Encoder, Groups, Sender, Service};
use crate::telemetry::ComponentMetrics;

pub use config::OtlpSinkConfig;
use request_builder::OtlpRequest;
use retry::OtlpError;

/// Checked settings and parsed headers.
pub struct PreparedOtlp {
    config: OtlpSinkConfig,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

pub(crate) fn build(prepared: &PreparedOtlp, cx: SinkContext) -> Result<Task, BuildError> {
    let config = &prepared.config;
    let headers = prepared.headers.clone();
    let urls = config.urls();
    let tls = if urls.iter().any(|u| u.starts_with("https://")) {
        let client = config
            .tls
            .clone()
            .unwrap_or_default()
            .client_config()
            .map_err(|e| BuildError::invalid(&cx.name, format!("tls: {e}")))?;
        Some(client)
    } else {
        None
    };
    let balancer = Arc::new(balance::Balancer::new(
        urls.clone(),
        balance::ClientSettings {
            headers,
            tls,
            protocol: config.protocol,
        },
        config.balance.eject_after,
        cx.metrics.clone(),
    ));
    // Collectors come and go: resolve their names again and again until shutdown.
    let (resolver, interval, stop) = (
        balancer.clone(),
        config.balance.resolve_interval.0,
        cx.shutdown.clone(),
    );
    tokio::spawn(async move {
        loop {
            resolver.resolve().await;
            tokio::select! {
                () = stop.stopped() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    });
    let encoder = OtlpEncoder {
        compression: config.compression,
        protocol: config.protocol,
    };
    let service = Otlp {
        balancer,
        urls: urls.iter().map(|u| u.to_string()).collect(),
    };
    let sender = Sender::new(service, &config.request, &cx);
    let concurrency = config.request.concurrency;
    let drive = match config.ordering {
        config::Ordering::PerResource => Drive::Lanes(concurrency),
        config::Ordering::None => Drive::Batches(concurrency),
    };
    Ok(crate::sink::sender::run(
        cx,
        config.batch.clone(),
        drive,
        config.healthcheck,
        encoder,
        sender,
    ))
}

/// A batch as one OTLP request.
struct OtlpEncoder {
    compression: config::Compression,
    protocol: config::Protocol,
}

impl Encoder for OtlpEncoder {
    type Request = OtlpRequest;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<OtlpRequest>, AckStatus> {
        match request_builder::build(events, self.compression, self.protocol) {
            Ok(request) => Ok(vec![vec![request]]),
            Err(e) => {
                metrics.error("encode");
                tracing::error!(component = %metrics.name, error = %e, "cannot encode batch");
                Err(AckStatus::Failed)
            }
        }
    }
}

/// The receivers, balanced.
struct Otlp {
    balancer: Arc<balance::Balancer>,
    urls: Vec<String>,
}

impl Service for Otlp {
    type Request = OtlpRequest;
    type Response = ();
    type Error = OtlpError;
    const BACKEND: &'static str = "the OTLP receiver";

    async fn call(&self, request: &OtlpRequest) -> Result<(), OtlpError> {
        self.balancer.send(request).await
    }

    fn classify(&self, error: &OtlpError) -> Retry {
        retry::classify(error)
    }

    async fn healthcheck(&self) -> Result<(), String> {
        crate::sink::healthcheck::connect_all(self.urls.clone()).await
    }
}
