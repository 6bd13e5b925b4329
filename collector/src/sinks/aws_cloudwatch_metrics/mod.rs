//! Sink `aws_cloudwatch_metrics`: metrics to CloudWatch, through PutMetricData or as Embedded
//! Metric Format documents through CloudWatch Logs.
//!
//! Each merged batch is converted ([`convert`]: deltas of cumulative series, histograms as
//! values with counts, units, dimension rollups, values CloudWatch refuses dropped and counted),
//! then split into requests at AWS's limits ([`request_builder`]) sent in parallel up to
//! `request.concurrency`, or into EMF documents ([`emf`]) written by the CloudWatch Logs writer.
//! Batches are converted one at a time, in order, because deltas depend on the order of points.
//! The batch is acknowledged delivered when every request was accepted; a request refused for
//! good is counted (`sextant_component_dropped_events_total{reason="refused"}`, in datums) and
//! the batch acknowledged rejected.

pub mod config;
pub mod convert;
pub mod datum;
pub mod deltas;
pub mod dimensions;
pub mod emf;
pub mod histogram;
pub mod limits;
pub mod request_builder;
pub mod retry;
pub mod service;
#[cfg(test)]
mod tests;
pub mod units;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;

use sextant_pipeline::ack::AckStatus;
use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::driver;
use sextant_pipeline::event::Events;
use sextant_pipeline::request::{call_with_retry, CallError, RequestGate, RequestSettings};
use sextant_pipeline::shutdown::Shutdown;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

use crate::sinks::aws_cloudwatch_logs::{CloudWatchLogsConfig, Writer as LogsWriter};
pub use config::CloudWatchMetricsConfig;
use config::Mode;
use convert::{ConvertStats, Converter};
use datum::Datum;
use request_builder::PutRequest;
use service::CloudWatchMetricsService;

enum Output {
    PutMetricData(OnceCell<CloudWatchMetricsService>),
    Emf(Arc<LogsWriter>),
}

struct Sink {
    config: CloudWatchMetricsConfig,
    converter: Mutex<Converter>,
    output: Output,
    request: RequestSettings,
    gate: Arc<RequestGate>,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    refusals: LogLimiter,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn build(config: &CloudWatchMetricsConfig, cx: SinkContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let plan = dimensions::Plan::new(config.dimensions.as_deref(), &config.dimension_names);
    let converter = Converter::new(
        plan,
        config.histograms,
        config.max_series,
        config.series_ttl.0.as_millis() as i64,
        now_ns(),
    );
    let output = match (&config.mode, &config.emf) {
        (Mode::Emf, Some(emf)) => Output::Emf(LogsWriter::new(
            &CloudWatchLogsConfig {
                inputs: config.inputs.clone(),
                log_group: emf.log_group.clone(),
                log_stream: emf.log_stream.clone(),
                missing_value: "unknown".into(),
                create_missing: emf.create_missing,
                healthcheck: config.healthcheck,
                // The documents are the messages, as they are.
                encoding: crate::sinks::aws_cloudwatch_logs::encoding::EncodingSettings {
                    codec: crate::sinks::aws_cloudwatch_logs::encoding::Codec::Text,
                    ..Default::default()
                },
                retention_days: emf.retention_days,
                aws: config.aws.clone(),
                dead_letter: None,
                batch: config.batch.clone(),
                request: config.request.clone(),
                queue: config.queue.clone(),
            },
            &cx,
        )?),
        _ => Output::PutMetricData(OnceCell::new()),
    };
    let sink = Arc::new(Sink {
        config: config.clone(),
        converter: Mutex::new(converter),
        output,
        request: config.request.clone(),
        gate: Arc::new(RequestGate::for_settings(&config.request, &cx.metrics)),
        metrics: cx.metrics.clone(),
        shutdown: cx.shutdown.clone(),
        refusals: LogLimiter::default(),
    });
    if config.healthcheck {
        match &sink.output {
            Output::Emf(writer) => writer.spawn_healthcheck(&cx),
            Output::PutMetricData(_) => {
                let checked = sink.clone();
                sextant_pipeline::healthcheck::spawn(
                    cx.metrics.clone(),
                    cx.shutdown.clone(),
                    move || {
                        let sink = checked.clone();
                        Box::pin(async move {
                            match sink.service().await {
                                Some(service) => {
                                    service.healthcheck().await.map_err(|e| e.to_string())
                                }
                                None => Ok(()),
                            }
                        })
                    },
                );
            }
        }
    }
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

impl Sink {
    fn count(&self, stats: &ConvertStats) {
        for (reason, n) in stats.dropped() {
            if n > 0 {
                self.metrics.dropped(reason, n);
            }
        }
        if stats.dimensions_over_limit > 0 {
            self.metrics
                .discarded("dimensions_over_limit", stats.dimensions_over_limit);
        }
        if stats.names_fixed > 0 {
            self.metrics.error("name_sanitized");
        }
    }

    async fn process(self: Arc<Self>, events: Events) -> AckStatus {
        let Events::Metrics(metrics) = events else {
            self.metrics.dropped("not_metrics", events.len() as u64);
            return AckStatus::Rejected;
        };
        let this = self.clone();
        let converted = tokio::task::spawn_blocking(move || {
            let now_ms = (now_ns() / 1_000_000) as i64;
            let mut datums = Vec::new();
            let stats = match this.converter.lock() {
                Ok(mut c) => c.convert(&metrics, now_ms, &mut datums),
                Err(_) => return None,
            };
            Some((datums, stats))
        })
        .await;
        let Ok(Some((datums, stats))) = converted else {
            return AckStatus::Failed;
        };
        self.count(&stats);
        if datums.is_empty() {
            return AckStatus::Delivered;
        }
        match &self.output {
            Output::PutMetricData(_) => self.put_metric_data(datums).await,
            Output::Emf(writer) => {
                let mut emf_stats = emf::EmfStats::default();
                let docs = emf::documents(
                    &self.config.namespace,
                    self.config.storage_resolution,
                    &datums,
                    &mut emf_stats,
                );
                if emf_stats.values_over_limit > 0 {
                    self.metrics
                        .dropped("emf_values_over_limit", emf_stats.values_over_limit);
                }
                if emf_stats.name_collisions > 0 {
                    self.metrics
                        .dropped("emf_name_collision", emf_stats.name_collisions);
                }
                writer.clone().process(Events::Logs(docs)).await
            }
        }
    }

    async fn put_metric_data(self: &Arc<Self>, datums: Vec<Datum>) -> AckStatus {
        let requests = request_builder::build(&self.config.namespace, datums);
        driver::settle_all(self.request.concurrency, requests, |r| {
            let sink = self.clone();
            async move { sink.send(&r).await }
        })
        .await
    }

    async fn service(&self) -> Option<&CloudWatchMetricsService> {
        let Output::PutMetricData(cell) = &self.output else {
            return None;
        };
        Some(
            cell.get_or_init(|| {
                CloudWatchMetricsService::new(
                    &self.config.aws,
                    self.config.namespace.clone(),
                    self.config.storage_resolution,
                )
            })
            .await,
        )
    }

    async fn send(&self, r: &PutRequest) -> AckStatus {
        let Some(service) = self.service().await else {
            return AckStatus::Failed;
        };
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
            Ok(()) => {
                self.metrics.sent_bytes.inc_by(r.bytes as u64);
                AckStatus::Delivered
            }
            Err(CallError::Permanent(e)) => {
                self.metrics.dropped("refused", r.datums.len() as u64);
                if let Some(suppressed) = self.refusals.allow() {
                    tracing::error!(component = %self.metrics.name, error = %e, datums = r.datums.len(), suppressed, "CloudWatch refused a PutMetricData request for good");
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
