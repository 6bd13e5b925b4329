//! Sink `aws_xray`: spans to X-Ray as segment documents ([`segment`]), PutTraceSegments in
//! requests of at most 50 documents of at most 64 kB ([`request_builder`]), sent in parallel up
//! to `request.concurrency`.
//!
//! Documents X-Ray returns as UnprocessedTraceSegments are sent again, alone, with the request's
//! backoff; after 5 such rounds the ones still refused are dropped and counted
//! (`reason="unprocessed"`) with X-Ray's error code logged, so one document X-Ray will never
//! take cannot hold the queue. A request refused for good is counted and the batch rejected.

pub mod annotations;
pub mod config;
pub mod ids;
pub mod request_builder;
pub mod retry;
pub mod segment;
pub mod service;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use sextant_pipeline::ack::AckStatus;
use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::driver;
use sextant_pipeline::event::Events;
use sextant_pipeline::request::{call_with_retry, CallError, RequestGate, RequestSettings};
use sextant_pipeline::shutdown::Shutdown;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

use crate::sinks::aws::{AwsError, AwsErrorKind};
pub use config::XRayConfig;
use request_builder::{BuildStats, Document};
use segment::Indexing;
use service::{Unprocessed, XRayService};

/// Rounds of resending unprocessed documents before they are given up.
pub const MAX_UNPROCESSED_ROUNDS: u32 = 5;

struct Sink {
    config: XRayConfig,
    indexing: Arc<Indexing>,
    service: OnceCell<XRayService>,
    request: RequestSettings,
    gate: Arc<RequestGate>,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    refusals: LogLimiter,
}

pub fn build(config: &XRayConfig, cx: SinkContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let indexing = if config.index_all_attributes {
        Indexing::All
    } else if config.indexed_attributes.is_empty() {
        Indexing::None
    } else {
        Indexing::Keys(config.indexed_attributes.clone())
    };
    let sink = Arc::new(Sink {
        config: config.clone(),
        indexing: Arc::new(indexing),
        service: OnceCell::new(),
        request: config.request.clone(),
        gate: Arc::new(RequestGate::for_settings(&config.request, &cx.metrics)),
        metrics: cx.metrics.clone(),
        shutdown: cx.shutdown.clone(),
        refusals: LogLimiter::default(),
    });
    if config.healthcheck {
        let checked = sink.clone();
        sextant_pipeline::healthcheck::spawn(cx.metrics.clone(), cx.shutdown.clone(), move || {
            let sink = checked.clone();
            Box::pin(async move {
                let service = sink
                    .service
                    .get_or_init(|| XRayService::new(&sink.config.aws))
                    .await;
                service.healthcheck().await.map_err(|e| e.to_string())
            })
        });
    }
    // Segments are independent documents: batches may go in parallel.
    let concurrency = config.request.concurrency.max(1);
    Ok(Box::pin(driver::drive(
        cx,
        config.batch.clone(),
        concurrency,
        move |events| {
            let sink = sink.clone();
            async move { sink.process(events).await }
        },
    )))
}

impl Sink {
    fn count(&self, stats: &BuildStats) {
        if stats.too_large > 0 {
            self.metrics.dropped("too_large", stats.too_large);
        }
        if stats.trimmed > 0 {
            self.metrics.discarded("document_trimmed", stats.trimmed);
        }
        if stats.annotations.demoted > 0 {
            self.metrics
                .discarded("annotation_to_metadata", stats.annotations.demoted);
        }
        if stats.annotations.fixed > 0 {
            self.metrics.error("name_sanitized");
        }
    }

    async fn process(self: Arc<Self>, events: Events) -> AckStatus {
        let Events::Spans(spans) = events else {
            self.metrics.dropped("not_spans", events.len() as u64);
            return AckStatus::Rejected;
        };
        let indexing = self.indexing.clone();
        let built = tokio::task::spawn_blocking(move || {
            let mut stats = BuildStats::default();
            let requests = request_builder::build(&spans, &indexing, &mut stats);
            (requests, stats)
        })
        .await;
        let Ok((requests, stats)) = built else {
            return AckStatus::Failed;
        };
        self.count(&stats);
        driver::settle_all(self.request.concurrency, requests, |docs| {
            let sink = self.clone();
            async move { sink.send(docs).await }
        })
        .await
    }

    async fn send(&self, docs: Vec<Document>) -> AckStatus {
        let service = self
            .service
            .get_or_init(|| XRayService::new(&self.config.aws))
            .await;
        let bytes: usize = docs.iter().map(|d| d.json.len()).sum();
        let count = docs.len();
        let pending = Mutex::new(docs);
        let rounds = AtomicU32::new(0);
        let attempt = || async {
            let batch = pending.lock().map(|p| p.clone()).unwrap_or_default();
            let unprocessed = service.put(&batch).await?;
            if unprocessed.is_empty() {
                return Ok(Vec::new());
            }
            if rounds.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_UNPROCESSED_ROUNDS {
                return Ok(unprocessed);
            }
            let ids: HashSet<&str> = unprocessed.iter().map(|u| u.id.as_str()).collect();
            if let Ok(mut p) = pending.lock() {
                p.retain(|d| ids.contains(d.id.as_str()));
            }
            Err(unprocessed_error(&unprocessed))
        };
        match call_with_retry(
            &self.request,
            &self.gate,
            &self.metrics,
            &self.shutdown,
            retry::classify,
            attempt,
        )
        .await
        {
            Ok(given_up) => {
                self.metrics.sent_bytes.inc_by(bytes as u64);
                if !given_up.is_empty() {
                    self.metrics.dropped("unprocessed", given_up.len() as u64);
                    if let Some(suppressed) = self.refusals.allow() {
                        let first = &given_up[0];
                        tracing::error!(component = %self.metrics.name, segments = given_up.len(), code = %first.error_code, message = %first.message, suppressed, "X-Ray did not process segments after {MAX_UNPROCESSED_ROUNDS} rounds; dropped");
                    }
                }
                AckStatus::Delivered
            }
            Err(CallError::Permanent(e)) => {
                self.metrics.dropped("refused", count as u64);
                if let Some(suppressed) = self.refusals.allow() {
                    tracing::error!(component = %self.metrics.name, error = %e, suppressed, "X-Ray refused a request for good");
                }
                AckStatus::Rejected
            }
            Err(e) => {
                tracing::warn!(component = %self.metrics.name, error = %e, "request not delivered; it will be sent again");
                AckStatus::Failed
            }
        }
    }
}

fn unprocessed_error(unprocessed: &[Unprocessed]) -> AwsError {
    let first = &unprocessed[0];
    AwsError {
        kind: AwsErrorKind::Service,
        code: Some(retry::UNPROCESSED.into()),
        status: None,
        message: format!(
            "{} segments unprocessed (first: {} {})",
            unprocessed.len(),
            first.error_code,
            first.message
        ),
    }
}
