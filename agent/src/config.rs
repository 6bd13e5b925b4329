//! The agent's components, in closed enums.

use serde::Deserialize;

use sextant_pipeline::component::{AsSink, AsSource, SinkConfig, SourceConfig};
use sextant_pipeline::sinks::{
    blackhole::BlackholeSinkConfig, console::ConsoleSinkConfig, file::FileSinkConfig,
    otlp::OtlpSinkConfig,
};
use sextant_pipeline::sources::xray_udp::XRayUdpSourceConfig;
use sextant_pipeline::sources::{file::FileSourceConfig, otlp::OtlpSourceConfig};
use sextant_pipeline::topology::Graph;

use crate::sources::kubernetes_logs::KubernetesLogsConfig;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentSource {
    KubernetesLogs(KubernetesLogsConfig),
    File(FileSourceConfig),
    Otlp(OtlpSourceConfig),
    XrayUdp(XRayUdpSourceConfig),
}

// Parsed once per (re)load and kept in a map: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentSink {
    Otlp(OtlpSinkConfig),
    File(FileSinkConfig),
    Console(ConsoleSinkConfig),
    Blackhole(BlackholeSinkConfig),
}

impl AsSource for AgentSource {
    fn source(&self) -> &dyn SourceConfig {
        match self {
            AgentSource::KubernetesLogs(c) => c,
            AgentSource::File(c) => c,
            AgentSource::Otlp(c) => c,
            AgentSource::XrayUdp(c) => c,
        }
    }
}

impl AsSink for AgentSink {
    fn sink(&self) -> &dyn SinkConfig {
        match self {
            AgentSink::Otlp(c) => c,
            AgentSink::File(c) => c,
            AgentSink::Console(c) => c,
            AgentSink::Blackhole(c) => c,
        }
    }
}

/// The agent's `sources:` and `sinks:`.
pub type AgentGraph = Graph<AgentSource, AgentSink>;
