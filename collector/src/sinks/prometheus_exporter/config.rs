//! `type: prometheus_exporter` settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::flow::batcher::BatchSettings;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    pub inputs: Vec<String>,
    /// Where Prometheus scrapes (`0.0.0.0:9464`).
    pub address: SocketAddr,
    /// The page's path.
    #[serde(default = "default_path")]
    pub path: String,
    /// A series not updated for this long is no longer exposed.
    #[serde(default = "default_expire_after")]
    pub expire_after: DurationValue,
    /// Most series held; past it the tenth updated longest ago are dropped (counted as
    /// `sextant_component_discarded_events_total{reason="series_limit"}`).
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    #[serde(default)]
    pub batch: BatchSettings,
    #[serde(default)]
    pub queue: QueueSettings,
}

fn default_path() -> String {
    "/metrics".into()
}

fn default_expire_after() -> DurationValue {
    DurationValue(Duration::from_secs(300))
}

fn default_max_series() -> usize {
    1_000_000
}

impl ExporterConfig {
    pub fn prepare(&self, key: &str) -> Result<Self, BuildError> {
        if !self.path.starts_with('/') {
            return Err(BuildError::at(key, "path", "must start with /"));
        }
        if self.max_series == 0 {
            return Err(BuildError::at(key, "max_series", "must be at least 1"));
        }
        Ok(self.clone())
    }
}

sextant_pipeline::sink_config!(
    ExporterConfig,
    "prometheus_exporter",
    sextant_pipeline::flow::event::Signals::METRICS,
    prepare = ExporterConfig::prepare,
    build = super::build
);
