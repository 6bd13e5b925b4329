//! Sink `aws_cloudwatch_logs`: log events to CloudWatch Logs, group and stream names templated
//! from event metadata, created on first use.
//!
//! Each merged batch becomes PutLogEvents requests ([`request_builder`], at AWS's limits); the
//! requests of one stream go one at a time, in time order, and different streams go in parallel
//! (up to `request.concurrency`). The batch is acknowledged delivered when every request was
//! accepted. Events the service refuses inside an accepted request (too old, too new, expired)
//! are counted as dropped; a request refused for good (a validation error) is counted and the
//! batch is acknowledged rejected. Either way the refused events go to the dead-letter file when
//! one is configured.

pub mod config;
pub mod encoding;
pub mod request_builder;
pub mod retry;
pub mod service;
pub mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use sextant_pipeline::ack::AckStatus;
use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::dead_letter::DeadLetter;
use sextant_pipeline::driver;
use sextant_pipeline::event::Events;
use sextant_pipeline::request::{call_with_retry, CallError, RequestGate, RequestSettings};
use sextant_pipeline::shutdown::Shutdown;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

pub use config::CloudWatchLogsConfig;
use request_builder::{Builder, PutRequest, StreamKey};
use service::CloudWatchLogsService;
use template::Template;

/// Writes log events to CloudWatch Logs; the sink's whole job, also used by the metrics sink's
/// EMF mode.
pub(crate) struct Writer {
    config: CloudWatchLogsConfig,
    group: Template,
    stream: Template,
    service: OnceCell<CloudWatchLogsService>,
    request: RequestSettings,
    gate: Arc<RequestGate>,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    refusals: LogLimiter,
    dead_letter: Option<Arc<DeadLetter>>,
}

pub fn build(config: &CloudWatchLogsConfig, cx: SinkContext) -> Result<Task, BuildError> {
    let sink = Writer::new(config, &cx)?;
    if config.healthcheck {
        sink.spawn_healthcheck(&cx);
    }
    // One batch at a time keeps each stream's requests in order; streams run in parallel inside.
    Ok(Box::pin(driver::drive(
        cx,
        config.batch.clone(),
        1,
        move |events| {
            let sink = sink.clone();
            async move { sink.process(events).await }
        },
    )))
}

impl Writer {
    pub(crate) fn new(
        config: &CloudWatchLogsConfig,
        cx: &SinkContext,
    ) -> Result<Arc<Self>, BuildError> {
        config.validate(&cx.name)?;
        let (group, stream) = config.templates(&cx.name)?;
        Ok(Arc::new(Writer {
            config: config.clone(),
            group,
            stream,
            service: OnceCell::new(),
            request: config.request.clone(),
            gate: Arc::new(RequestGate::for_settings(&config.request, &cx.metrics)),
            metrics: cx.metrics.clone(),
            shutdown: cx.shutdown.clone(),
            refusals: LogLimiter::default(),
            dead_letter: config
                .dead_letter
                .as_ref()
                .map(|d| DeadLetter::open(d, cx.metrics.clone()))
                .transpose()?,
        }))
    }

    /// Checks CloudWatch Logs in the background (see `sextant_pipeline::healthcheck`).
    pub(crate) fn spawn_healthcheck(self: &Arc<Self>, cx: &SinkContext) {
        let writer = self.clone();
        sextant_pipeline::healthcheck::spawn(cx.metrics.clone(), cx.shutdown.clone(), move || {
            let writer = writer.clone();
            Box::pin(async move {
                writer
                    .service()
                    .await
                    .healthcheck()
                    .await
                    .map_err(|e| e.to_string())
            })
        });
    }

    async fn service(&self) -> &CloudWatchLogsService {
        self.service
            .get_or_init(|| {
                CloudWatchLogsService::new(
                    &self.config.aws,
                    self.config.create_missing,
                    self.config.retention_days,
                )
            })
            .await
    }

    pub(crate) async fn process(self: Arc<Self>, events: Events) -> AckStatus {
        let Events::Logs(logs) = events else {
            self.metrics.dropped("not_logs", events.len() as u64);
            return AckStatus::Rejected;
        };
        let this = self.clone();
        let built = tokio::task::spawn_blocking(move || {
            Builder {
                group: &this.group,
                stream: &this.stream,
                missing: &this.config.missing_value,
                encoding: &this.config.encoding,
            }
            .build(logs)
        })
        .await;
        let Ok((requests, stats)) = built else {
            return AckStatus::Failed;
        };
        if stats.truncated > 0 {
            self.metrics
                .discarded("truncated_over_1mb", stats.truncated);
        }
        if stats.names_fixed > 0 {
            self.metrics.error("name_sanitized");
        }
        let mut by_stream: BTreeMap<StreamKey, Vec<PutRequest>> = BTreeMap::new();
        for r in requests {
            by_stream.entry(r.key.clone()).or_default().push(r);
        }
        // Streams in parallel; each stream's requests one after the other.
        driver::settle_all(self.request.concurrency, by_stream.into_values(), |reqs| {
            let sink = self.clone();
            async move {
                let mut status = AckStatus::Delivered;
                for r in &reqs {
                    status = status.max(sink.send(r).await);
                    if status == AckStatus::Failed {
                        break;
                    }
                }
                status
            }
        })
        .await
    }

    async fn send(&self, r: &PutRequest) -> AckStatus {
        let service = self.service().await;
        match call_with_retry(
            &self.request,
            &self.gate,
            &self.metrics,
            &self.shutdown,
            retry::classify,
            || service.put(r),
        )
        .await
        {
            Ok(rejected) => {
                self.metrics.sent_bytes.inc_by(r.bytes as u64);
                let n = r.events.len();
                // Indices are into the request's time-sorted events: too old and expired ones
                // lead, too new ones trail.
                let old = (rejected.too_old.max(rejected.expired) as usize).min(n);
                let new = (rejected.too_new as usize).min(n - old);
                for (reason, count) in [
                    ("too_old", rejected.too_old),
                    ("too_new", rejected.too_new),
                    ("expired", rejected.expired),
                ] {
                    if count > 0 {
                        self.metrics.dropped(reason, count);
                        if let Some(suppressed) = self.refusals.allow() {
                            tracing::warn!(component = %self.metrics.name, group = %r.key.group, stream = %r.key.stream, reason, events = count, suppressed, "CloudWatch Logs refused events");
                        }
                    }
                }
                self.dead_letter(
                    if rejected.too_old > 0 {
                        "too_old"
                    } else {
                        "expired"
                    },
                    r,
                    0..old,
                )
                .await;
                self.dead_letter("too_new", r, n - new..n).await;
                AckStatus::Delivered
            }
            Err(CallError::Permanent(e)) => {
                self.metrics.dropped("refused", r.events.len() as u64);
                if let Some(suppressed) = self.refusals.allow() {
                    tracing::error!(component = %self.metrics.name, group = %r.key.group, stream = %r.key.stream, error = %e, suppressed, "CloudWatch Logs refused a request for good");
                }
                self.dead_letter("refused", r, 0..r.events.len()).await;
                AckStatus::Rejected
            }
            Err(e) => {
                tracing::warn!(component = %self.metrics.name, error = %e, "request not delivered; it will be sent again");
                AckStatus::Failed
            }
        }
    }

    /// Keeps `r.events[range]` in the dead-letter file, if there is one.
    async fn dead_letter(
        &self,
        reason: &'static str,
        r: &PutRequest,
        range: std::ops::Range<usize>,
    ) {
        let (Some(dl), Some(events)) = (&self.dead_letter, r.events.get(range)) else {
            return;
        };
        let records = events
            .iter()
            .map(|e| serde_json::json!({"log_group": r.key.group, "log_stream": r.key.stream, "timestamp": e.timestamp_ms, "message": e.message}))
            .collect();
        dl.write(reason, records).await;
    }
}
