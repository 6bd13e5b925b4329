//! `type: aws_xray` settings.

use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::batcher::BatchSettings;
use sextant_pipeline::sink::request::RequestSettings;

use super::segment::Indexing;
use crate::sinks::aws::AwsSettings;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XRayConfig {
    pub inputs: Vec<String>,
    /// Span attributes published as annotations (indexed, searchable in filter expressions);
    /// the other attributes become metadata.
    #[serde(default)]
    pub indexed_attributes: Vec<String>,
    /// Publish every span attribute of an annotation type as an annotation (up to 50 a document).
    #[serde(default)]
    pub index_all_attributes: bool,
    #[serde(default)]
    pub aws: AwsSettings,
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
    BatchSettings {
        max_events: 5_000,
        max_bytes: ByteSizeValue(4 * 1024 * 1024),
        timeout: DurationValue(Duration::from_secs(1)),
    }
}

impl XRayConfig {
    /// Checks the settings and decides which attributes become annotations.
    pub fn prepare(&self, key: &str) -> Result<super::PreparedXRay, BuildError> {
        let indexing = match (
            self.index_all_attributes,
            self.indexed_attributes.is_empty(),
        ) {
            (true, false) => {
                return Err(BuildError::at(
                    key,
                    "indexed_attributes",
                    "give indexed_attributes or index_all_attributes, not both",
                ))
            }
            (true, true) => Indexing::All,
            (false, true) => Indexing::None,
            (false, false) => Indexing::Keys(self.indexed_attributes.clone()),
        };
        Ok(super::PreparedXRay {
            config: self.clone(),
            indexing,
        })
    }
}

sextant_pipeline::sink_config!(
    XRayConfig,
    "aws_xray",
    sextant_pipeline::flow::event::Signals::TRACES,
    prepare = XRayConfig::prepare,
    build = super::build
);
