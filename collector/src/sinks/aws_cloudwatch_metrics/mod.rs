//! Sink `aws_cloudwatch_metrics`: metrics to CloudWatch, through PutMetricData or as Embedded
//! Metric Format documents through CloudWatch Logs.
//!
//! Each merged batch is converted ([`convert`]: deltas of cumulative series, histograms as
//! values with counts, units, dimension rollups, values CloudWatch refuses dropped and counted),
//! then split into requests at AWS's limits ([`request_builder`]) sent in parallel up to
//! `request.concurrency`, or into EMF documents ([`emf`]) written by the CloudWatch Logs writer.
//! Batches are converted one at a time, in order, because deltas depend on the order of points.
//! Sending, counting and acknowledging are [`sextant_pipeline::sink::sender`]'s; this sink's requests
//! count datums (PutMetricData) or documents (EMF), so `sent_events` and
//! `dropped_events_total{reason="refused"}` are in those units.

pub mod config;
pub mod convert;
pub(crate) mod datum;
pub(crate) mod deltas;
pub mod dimensions;
pub(crate) mod emf;
pub(crate) mod histogram;
pub(crate) mod limits;
pub mod request_builder;
pub(crate) mod retry;
pub mod service;
#[cfg(test)]
mod tests;
pub(crate) mod units;

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::Events;
use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{self, Drive, Encoder, Groups, Sender};
use sextant_pipeline::telemetry::ComponentMetrics;

use crate::sinks::aws::{AwsApi, AwsError, OnFirstUse};
use crate::sinks::aws_cloudwatch_logs::template::Template;
use crate::sinks::aws_cloudwatch_logs::{cloudwatch_logs, LogsEncoder};
pub use config::CloudWatchMetricsConfig;
use convert::Converter;
use datum::Datum;
use request_builder::PutRequest;
use service::CloudWatchMetricsService;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Checked settings, the dimension plan, and for `mode: emf` where the documents go.
pub struct PreparedMetrics {
    config: CloudWatchMetricsConfig,
    plan: dimensions::Plan,
    emf: Option<(config::EmfSettings, Template, Template)>,
}

pub(crate) fn build(prepared: &PreparedMetrics, cx: SinkContext) -> Result<Task, BuildError> {
    let config = &prepared.config;
    let conversion = Conversion {
        converter: Mutex::new(Converter::new(
            prepared.plan.clone(),
            config.histograms,
            config.max_series,
            config.series_ttl.0.as_millis() as i64,
            now_ns(),
        )),
        namespace: config.namespace.clone(),
        storage_resolution: config.storage_resolution,
    };
    // Batches one at a time, in order: deltas depend on the order of points.
    let (batch, drive) = (config.batch.clone(), Drive::Batches(1));
    if let Some((emf, group, stream)) = &prepared.emf {
        let encoder = EmfEncoder {
            conversion,
            // The documents are the messages, as they are.
            logs: LogsEncoder {
                group: group.clone(),
                stream: stream.clone(),
                missing: "unknown".into(),
                encoding: crate::sinks::aws_cloudwatch_logs::encoding::EncodingSettings {
                    codec: crate::sinks::aws_cloudwatch_logs::encoding::Codec::Text,
                    ..Default::default()
                },
            },
        };
        let service = cloudwatch_logs(&config.aws, emf.create_missing, emf.retention_days);
        let sender = Sender::new(service, &config.request, &cx);
        return Ok(sender::run(
            cx,
            batch,
            drive,
            config.healthcheck,
            encoder,
            sender,
        ));
    }
    let (aws, namespace, resolution) = (
        config.aws.clone(),
        config.namespace.clone(),
        config.storage_resolution,
    );
    let service = OnFirstUse::new(move || {
        let (aws, namespace) = (aws.clone(), namespace.clone());
        async move { CloudWatchMetricsService::new(&aws, namespace, resolution).await }
    });
    let sender = Sender::new(service, &config.request, &cx);
    Ok(sender::run(
        cx,
        batch,
        drive,
        config.healthcheck,
        PutMetricDataEncoder(conversion),
        sender,
    ))
}

/// Metric points into CloudWatch datums, keeping the state deltas need.
struct Conversion {
    converter: Mutex<Converter>,
    namespace: String,
    storage_resolution: i32,
}

impl Conversion {
    /// The batch's datums, counting what CloudWatch could not take.
    fn datums(&self, events: Events, metrics: &ComponentMetrics) -> Result<Vec<Datum>, AckStatus> {
        let Events::Metrics(points) = events else {
            metrics.dropped("not_metrics", events.len() as u64);
            return Err(AckStatus::Rejected);
        };
        let now_ms = (now_ns() / 1_000_000) as i64;
        let mut datums = Vec::new();
        let stats = match self.converter.lock() {
            Ok(mut c) => c.convert(&points, now_ms, &mut datums),
            Err(_) => return Err(AckStatus::Failed),
        };
        for (reason, n) in stats.dropped() {
            if n > 0 {
                metrics.dropped(reason, n);
            }
        }
        if stats.dimensions_over_limit > 0 {
            metrics.discarded("dimensions_over_limit", stats.dimensions_over_limit);
        }
        if stats.names_fixed > 0 {
            metrics.error("name_sanitized");
        }
        Ok(datums)
    }
}

/// `mode: put_metric_data`: datums into PutMetricData requests, sent in parallel.
struct PutMetricDataEncoder(Conversion);

impl Encoder for PutMetricDataEncoder {
    type Request = PutRequest;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<PutRequest>, AckStatus> {
        let datums = self.0.datums(events, metrics)?;
        Ok(request_builder::build(&self.0.namespace, datums)
            .into_iter()
            .map(|r| vec![r])
            .collect())
    }
}

/// `mode: emf`: datums into Embedded Metric Format documents, written as log events.
struct EmfEncoder {
    conversion: Conversion,
    logs: LogsEncoder,
}

impl Encoder for EmfEncoder {
    type Request = crate::sinks::aws_cloudwatch_logs::request_builder::PutRequest;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<Self::Request>, AckStatus> {
        let datums = self.conversion.datums(events, metrics)?;
        let mut stats = emf::EmfStats::default();
        let docs = emf::documents(
            &self.conversion.namespace,
            self.conversion.storage_resolution,
            &datums,
            &mut stats,
        );
        if stats.values_over_limit > 0 {
            metrics.dropped("emf_values_over_limit", stats.values_over_limit);
        }
        if stats.name_collisions > 0 {
            metrics.dropped("emf_name_collision", stats.name_collisions);
        }
        Ok(self.logs.requests(docs, metrics))
    }
}

impl AwsApi for CloudWatchMetricsService {
    type Request = PutRequest;
    type Response = ();
    const BACKEND: &'static str = "CloudWatch";

    async fn put(&self, request: &PutRequest) -> Result<(), AwsError> {
        CloudWatchMetricsService::put(self, request).await
    }

    async fn healthcheck(&self) -> Result<(), AwsError> {
        CloudWatchMetricsService::healthcheck(self).await
    }

    fn classify(error: &AwsError) -> Retry {
        retry::classify(error)
    }
}
