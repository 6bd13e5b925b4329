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

pub(crate) mod config;
pub mod encoding;
pub mod request_builder;
pub(crate) mod retry;
pub(crate) mod service;
pub mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::{Events, LogEvent};
use sextant_pipeline::sink::dead_letter::DeadLetter;
use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{self, Drive, Encoder, Groups, Sender};
use sextant_pipeline::telemetry::ComponentMetrics;

use crate::sinks::aws::{AwsApi, AwsError, AwsSettings, OnFirstUse};
pub use config::CloudWatchLogsConfig;
use encoding::EncodingSettings;
use request_builder::{Builder, PutRequest, StreamKey};
use service::{CloudWatchLogsService, Rejected};
use template::Template;

/// Checked settings and compiled templates.
pub struct PreparedLogs {
    config: CloudWatchLogsConfig,
    encoder: LogsEncoder,
}

pub(crate) fn build(prepared: &PreparedLogs, cx: SinkContext) -> Result<Task, BuildError> {
    let (config, encoder) = (&prepared.config, prepared.encoder.clone());
    let dead_letter = config
        .dead_letter
        .as_ref()
        .map(|d| DeadLetter::open(d, cx.metrics.clone()))
        .transpose()?;
    let service = cloudwatch_logs(&config.aws, config.create_missing, config.retention_days);
    let sender = Sender::new(service, &config.request, &cx).with_dead_letter(dead_letter);
    // One batch at a time keeps each stream's requests in order; streams run in parallel inside.
    Ok(sender::run(
        cx,
        config.batch.clone(),
        Drive::Batches(1),
        config.healthcheck,
        encoder,
        sender,
    ))
}

/// Log events into PutLogEvents requests, one group of requests per stream.
#[derive(Clone)]
pub(crate) struct LogsEncoder {
    pub group: Template,
    pub stream: Template,
    pub missing: String,
    pub encoding: EncodingSettings,
}

impl LogsEncoder {
    /// `logs` as requests, grouped by stream (a stream's in time order), counting what was
    /// changed to fit.
    pub(crate) fn requests(
        &self,
        logs: Vec<LogEvent>,
        metrics: &ComponentMetrics,
    ) -> Groups<PutRequest> {
        let (requests, stats) = Builder {
            group: &self.group,
            stream: &self.stream,
            missing: &self.missing,
            encoding: &self.encoding,
        }
        .build(logs);
        if stats.truncated > 0 {
            metrics.discarded("truncated_over_1mb", stats.truncated);
        }
        if stats.names_fixed > 0 {
            metrics.error("name_sanitized");
        }
        let mut by_stream: BTreeMap<StreamKey, Vec<PutRequest>> = BTreeMap::new();
        for r in requests {
            by_stream.entry(r.key.clone()).or_default().push(r);
        }
        by_stream.into_values().collect()
    }
}

impl Encoder for LogsEncoder {
    type Request = PutRequest;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<PutRequest>, AckStatus> {
        let Events::Logs(logs) = events else {
            metrics.dropped("not_logs", events.len() as u64);
            return Err(AckStatus::Rejected);
        };
        Ok(self.requests(logs, metrics))
    }
}

impl AwsApi for CloudWatchLogsService {
    type Request = PutRequest;
    type Response = Rejected;
    const BACKEND: &'static str = "CloudWatch Logs";

    async fn put(&self, request: &PutRequest) -> Result<Rejected, AwsError> {
        CloudWatchLogsService::put(self, request).await
    }

    async fn healthcheck(&self) -> Result<(), AwsError> {
        CloudWatchLogsService::healthcheck(self).await
    }

    fn classify(error: &AwsError) -> Retry {
        retry::classify(error)
    }
}

/// CloudWatch Logs as a sink's service, its client made on first use.
pub(crate) fn cloudwatch_logs(
    aws: &AwsSettings,
    create_missing: bool,
    retention_days: Option<i32>,
) -> OnFirstUse<CloudWatchLogsService> {
    let aws = aws.clone();
    OnFirstUse::new(move || {
        let aws = aws.clone();
        async move { CloudWatchLogsService::new(&aws, create_missing, retention_days).await }
    })
}
