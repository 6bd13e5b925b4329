//! The collector's components, in closed enums: the compiler, not a registry, knows them all.

use serde::Deserialize;

use sextant_pipeline::component::{AsSink, AsSource, SinkConfig, SourceConfig};
use sextant_pipeline::sinks::{
    blackhole::BlackholeSinkConfig, console::ConsoleSinkConfig, file::FileSinkConfig,
    otlp::OtlpSinkConfig,
};
use sextant_pipeline::sources::xray_udp::XRayUdpSourceConfig;
use sextant_pipeline::sources::{file::FileSourceConfig, otlp::OtlpSourceConfig};
use sextant_pipeline::topology::Graph;

use crate::sinks::aws_cloudwatch_logs::CloudWatchLogsConfig;
use crate::sinks::aws_cloudwatch_metrics::CloudWatchMetricsConfig;
use crate::sinks::aws_xray::XRayConfig;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CollectorSource {
    Otlp(OtlpSourceConfig),
    XrayUdp(XRayUdpSourceConfig),
    File(FileSourceConfig),
}

// Parsed once per (re)load and kept in a map: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CollectorSink {
    AwsCloudwatchLogs(CloudWatchLogsConfig),
    AwsCloudwatchMetrics(CloudWatchMetricsConfig),
    AwsXray(XRayConfig),
    Otlp(OtlpSinkConfig),
    File(FileSinkConfig),
    Console(ConsoleSinkConfig),
    Blackhole(BlackholeSinkConfig),
}

impl AsSource for CollectorSource {
    fn source(&self) -> &dyn SourceConfig {
        match self {
            CollectorSource::Otlp(c) => c,
            CollectorSource::XrayUdp(c) => c,
            CollectorSource::File(c) => c,
        }
    }
}

impl AsSink for CollectorSink {
    fn sink(&self) -> &dyn SinkConfig {
        match self {
            CollectorSink::AwsCloudwatchLogs(c) => c,
            CollectorSink::AwsCloudwatchMetrics(c) => c,
            CollectorSink::AwsXray(c) => c,
            CollectorSink::Otlp(c) => c,
            CollectorSink::File(c) => c,
            CollectorSink::Console(c) => c,
            CollectorSink::Blackhole(c) => c,
        }
    }
}

/// The collector's `sources:` and `sinks:`.
pub type CollectorGraph = Graph<CollectorSource, CollectorSink>;
