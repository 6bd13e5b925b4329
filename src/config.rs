//! The one config file: global settings plus an `agent:` and/or a `collector:` graph. `sextant
//! agent` runs the first, `sextant collector` the second, `sextant run` both.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use sextant_agent::config::AgentGraph;
use sextant_collector::config::CollectorGraph;
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::runtime::admin::AdminConfig;

/// Used when no `--config` is given: tails the sample logs in `examples/logs`, ships them
/// agent -> collector over OTLP on localhost, writes them to `./sextant-data/out`.
pub const DEFAULT_CONFIG: &str = include_str!("default.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where checkpoints, buffers and local output live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub admin: AdminConfig,
    /// How long shutdown waits for queues to drain before aborting what is left (it is resent
    /// after restart).
    #[serde(default = "default_drain_deadline")]
    pub drain_deadline: DurationValue,
    /// The process's memory budget (see `sextant_pipeline::memory`).
    #[serde(default)]
    pub memory: sextant_pipeline::memory::MemorySettings,
    pub agent: Option<AgentGraph>,
    pub collector: Option<CollectorGraph>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./sextant-data")
}

fn default_drain_deadline() -> DurationValue {
    DurationValue(Duration::from_secs(30))
}
