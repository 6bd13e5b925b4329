//! The collector's components, in closed enums: the ones every role has (see
//! [`sextant_pipeline::role_sinks!`]) and the collector's own. The compiler, not a registry,
//! knows them all.

use sextant_pipeline::runtime::topology::Graph;

use crate::sinks::aws_cloudwatch_logs::CloudWatchLogsConfig;
use crate::sinks::aws_cloudwatch_metrics::CloudWatchMetricsConfig;
use crate::sinks::aws_sns::SnsConfig;
use crate::sinks::aws_xray::XRayConfig;
use crate::sinks::opensearch::OpenSearchConfig;
use crate::sinks::prometheus_exporter::ExporterConfig;
use crate::sinks::prometheus_remote_write::RemoteWriteConfig;
use crate::sources::prometheus_rules::PrometheusRulesConfig;

sextant_pipeline::role_sources!(
    pub enum CollectorSource {
        PrometheusRules(PrometheusRulesConfig),
    }
);

sextant_pipeline::role_sinks!(
    pub enum CollectorSink {
        AwsCloudwatchLogs(CloudWatchLogsConfig),
        AwsCloudwatchMetrics(CloudWatchMetricsConfig),
        AwsSns(SnsConfig),
        AwsXray(XRayConfig),
        Opensearch(OpenSearchConfig),
        PrometheusExporter(ExporterConfig),
        PrometheusRemoteWrite(RemoteWriteConfig),
    }
);

/// The collector's `sources:` and `sinks:`.
pub type CollectorGraph = Graph<CollectorSource, CollectorSink>;
