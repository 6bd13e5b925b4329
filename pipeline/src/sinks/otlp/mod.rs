//! Sink `otlp`: sends batches to an OTLP/HTTP receiver (protobuf, gzip), retrying what the OTLP
//! specification calls retryable. A batch is acknowledged delivered only on a 2xx answer, which
//! from a Sextant collector means the batch is safe on its side.

pub mod balance;
#[cfg(test)]
mod balance_tests;
pub mod config;
#[cfg(test)]
mod grpc_tests;
pub mod request_builder;
pub mod retry;
pub mod service;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tls_tests;

use std::sync::Arc;

use crate::ack::AckStatus;
use crate::component::{BuildError, SinkContext, Task};
use crate::driver;
use crate::request::{call_with_retry, CallError};
use crate::telemetry::LogLimiter;

pub use config::OtlpSinkConfig;

pub fn build(config: &OtlpSinkConfig, cx: SinkContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let headers = config
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                http::HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    let urls = config.urls();
    if config.healthcheck {
        let check_urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        crate::healthcheck::spawn(cx.metrics.clone(), cx.shutdown.clone(), move || {
            Box::pin(crate::healthcheck::connect_all(check_urls.clone()))
        });
    }
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
        urls,
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
    let service = OtlpServiceHandle {
        balancer,
        compression: config.compression,
        protocol: config.protocol,
        request: config.request.clone(),
        gate: Arc::new(crate::request::RequestGate::for_settings(
            &config.request,
            &cx.metrics,
        )),
        metrics: cx.metrics.clone(),
        shutdown: cx.shutdown.clone(),
        refusals: Arc::new(LogLimiter::default()),
    };
    let batch = config.batch.clone();
    let concurrency = config.request.concurrency;
    let process = move |events| {
        let s = service.clone();
        async move { s.process(events).await }
    };
    Ok(match config.ordering {
        config::Ordering::PerResource => Box::pin(crate::lanes::drive_in_lanes(
            cx,
            batch,
            concurrency,
            process,
        )),
        config::Ordering::None => Box::pin(driver::drive(cx, batch, concurrency, process)),
    })
}

#[derive(Clone)]
struct OtlpServiceHandle {
    balancer: Arc<balance::Balancer>,
    compression: config::Compression,
    protocol: config::Protocol,
    request: crate::request::RequestSettings,
    gate: Arc<crate::request::RequestGate>,
    metrics: crate::telemetry::ComponentMetrics,
    shutdown: crate::shutdown::Shutdown,
    refusals: Arc<LogLimiter>,
}

impl OtlpServiceHandle {
    async fn process(&self, events: crate::event::Events) -> AckStatus {
        let (compression, protocol) = (self.compression, self.protocol);
        let built = tokio::task::spawn_blocking(move || {
            let built = request_builder::build(events, compression, protocol);
            // A blocking-pool thread never parks as a worker does: under memory pressure it
            // gives what the encoding freed back here.
            crate::memory::give_back_while_pressed();
            built
        })
        .await;
        let req = match built {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.metrics.error("encode");
                tracing::error!(component = %self.metrics.name, error = %e, "cannot encode batch");
                return AckStatus::Failed;
            }
            Err(e) => {
                tracing::error!(component = %self.metrics.name, error = %e, "encoder task failed");
                return AckStatus::Failed;
            }
        };
        let result = call_with_retry(
            &self.request,
            &self.gate,
            &self.metrics,
            &self.shutdown,
            retry::classify,
            || self.balancer.send(&req),
        )
        .await;
        match result {
            Ok(()) => {
                self.metrics.sent_bytes.inc_by(req.body.len() as u64);
                AckStatus::Delivered
            }
            Err(CallError::Permanent(e)) => {
                if let Some(suppressed) = self.refusals.allow() {
                    tracing::error!(component = %self.metrics.name, error = %e, suppressed, "receiver refused a batch for good; dropping it");
                }
                AckStatus::Rejected
            }
            Err(e) => {
                tracing::warn!(component = %self.metrics.name, error = %e, "batch not delivered; its source will send it again");
                AckStatus::Failed
            }
        }
    }
}
