//! `type: aws_sns` settings.

use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::batcher::BatchSettings;
use sextant_pipeline::sink::request::RequestSettings;

use crate::sinks::aws::AwsSettings;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    pub inputs: Vec<String>,
    /// The topic for records without an `sns.topic_arn` attribute; unset, such records are
    /// dropped and counted (`no_topic`).
    #[serde(default)]
    pub topic_arn: Option<String>,
    #[serde(default)]
    pub aws: AwsSettings,
    /// Where messages SNS refuses for good (no such topic, not authorized, invalid) are
    /// written, one JSON line each with topic, subject, message and attributes.
    #[serde(default)]
    pub dead_letter: Option<sextant_pipeline::sink::dead_letter::DeadLetterConfig>,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    #[serde(default)]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
    /// Check the backend at start (see [`sextant_pipeline::sink::healthcheck`]); `false` skips it.
    #[serde(default = "sextant_pipeline::config::default_true")]
    pub healthcheck: bool,
}

fn default_batch() -> BatchSettings {
    // A record is a Publish of its own anyway; batches of one keep each record's answer its
    // own (a notification delivered is never reported refused because a neighbour in its
    // batch was), and notifications are few and must not wait.
    BatchSettings {
        max_events: 1,
        max_bytes: ByteSizeValue(4 * 1024 * 1024),
        timeout: DurationValue(Duration::from_millis(10)),
    }
}

impl SnsConfig {
    pub fn prepare(&self, key: &str) -> Result<SnsConfig, BuildError> {
        if let Some(arn) = &self.topic_arn {
            if !is_topic_arn(arn) {
                return Err(BuildError::at(
                    key,
                    "topic_arn",
                    format!("{arn:?} is not a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
                ));
            }
        }
        Ok(self.clone())
    }
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
pub fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty()
}

sextant_pipeline::sink_config!(
    SnsConfig,
    "aws_sns",
    sextant_pipeline::flow::event::Signals::LOGS,
    prepare = SnsConfig::prepare,
    build = super::build
);
