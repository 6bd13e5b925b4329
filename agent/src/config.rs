//! The agent's components, in closed enums: the ones every role has (see
//! [`sextant_pipeline::role_sources!`]) and the agent's own.

use sextant_pipeline::runtime::topology::Graph;

use crate::sources::container_insights::ContainerInsightsConfig;
use crate::sources::host_metrics::HostMetricsConfig;
use crate::sources::kubernetes_logs::KubernetesLogsConfig;
use crate::sources::prometheus_scrape::PrometheusScrapeConfig;

sextant_pipeline::role_sources!(
    pub enum AgentSource {
        KubernetesLogs(KubernetesLogsConfig),
        PrometheusScrape(PrometheusScrapeConfig),
        HostMetrics(HostMetricsConfig),
        ContainerInsights(ContainerInsightsConfig),
    }
);

sextant_pipeline::role_sinks!(
    pub enum AgentSink {}
);

/// The agent's `sources:` and `sinks:`.
pub type AgentGraph = Graph<AgentSource, AgentSink>;
