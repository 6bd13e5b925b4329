//! `type: aws_cloudwatch_logs` settings.

use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::batcher::BatchSettings;
use sextant_pipeline::sink::request::RequestSettings;

use super::encoding::EncodingSettings;
use super::template::Template;
use crate::sinks::aws::AwsSettings;

/// Retention values CloudWatch Logs accepts.
const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchLogsConfig {
    pub inputs: Vec<String>,
    /// Log group name; `{attribute}` is replaced by the event's attribute or its resource's
    /// (for example `/eks/{k8s.cluster.name}/{k8s.namespace.name}`).
    pub log_group: String,
    /// Log stream name, templated the same way (for example `{k8s.pod.name}/{k8s.container.name}`).
    pub log_stream: String,
    /// What a placeholder becomes when the event has no such attribute.
    #[serde(default = "default_missing")]
    pub missing_value: String,
    /// Create groups and streams on first use.
    #[serde(default = "default_true")]
    pub create_missing: bool,
    /// What each record becomes as a message (see [`super::encoding`]).
    #[serde(default)]
    pub encoding: EncodingSettings,
    /// Retention set on groups Sextant creates.
    #[serde(default)]
    pub retention_days: Option<i32>,
    #[serde(default)]
    pub aws: AwsSettings,
    /// Where events CloudWatch Logs refused for good are kept (else they are only counted).
    #[serde(default)]
    pub dead_letter: Option<sextant_pipeline::sink::dead_letter::DeadLetterConfig>,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    #[serde(default)]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
    /// Check the backend at start (see [`sextant_pipeline::sink::healthcheck`]); `false` skips it.
    #[serde(default = "default_true")]
    pub healthcheck: bool,
}

fn default_missing() -> String {
    "unknown".into()
}

fn default_true() -> bool {
    true
}

fn default_batch() -> BatchSettings {
    BatchSettings {
        max_events: 10_000,
        max_bytes: ByteSizeValue(1024 * 1024),
        timeout: DurationValue(Duration::from_secs(1)),
    }
}

impl CloudWatchLogsConfig {
    fn templates(&self, key: &str) -> Result<(Template, Template), BuildError> {
        let group =
            Template::parse(&self.log_group).map_err(|e| BuildError::at(key, "log_group", e))?;
        let stream =
            Template::parse(&self.log_stream).map_err(|e| BuildError::at(key, "log_stream", e))?;
        Ok((group, stream))
    }

    /// Checks the settings and compiles the templates the sink runs with.
    pub fn prepare(&self, key: &str) -> Result<super::PreparedLogs, BuildError> {
        let (group, stream) = self.templates(key)?;
        self.encoding.validate(key)?;
        check_retention(key, "retention_days", self.retention_days)?;
        Ok(super::PreparedLogs {
            config: self.clone(),
            encoder: super::LogsEncoder {
                group,
                stream,
                missing: self.missing_value.clone(),
                encoding: self.encoding.clone(),
            },
        })
    }
}

/// Whether CloudWatch Logs accepts `days` as a retention (`key.field`).
pub(crate) fn check_retention(key: &str, field: &str, days: Option<i32>) -> Result<(), BuildError> {
    match days {
        Some(days) if !RETENTION_DAYS.contains(&days) => Err(BuildError::at(
            key,
            field,
            format!("{days} is not one CloudWatch Logs accepts ({RETENTION_DAYS:?})"),
        )),
        _ => Ok(()),
    }
}

sextant_pipeline::sink_config!(
    CloudWatchLogsConfig,
    "aws_cloudwatch_logs",
    sextant_pipeline::flow::event::Signals::LOGS,
    prepare = CloudWatchLogsConfig::prepare,
    build = super::build
);
