//! Source `prometheus_scrape` (agent): scrapes Prometheus endpoints and sends what they expose
//! as OTLP metrics, through the same pipeline and hop as logs.
//!
//! Jobs use Prometheus's `scrape_configs` names and semantics: `static_configs` and this node's
//! pods (`kubernetes_sd_configs`, [`discovery`]), target
//! relabelling (`relabel_configs`), `metric_relabel_configs`, `honor_labels`,
//! `honor_timestamps`, limits (body size, samples, labels) that fail a scrape as Prometheus's
//! do. Each target is scraped on its own stable offset within its interval ([`target`]); the
//! body is read by the exposition parser into the target's series cache ([`series`]), which
//! turns it into OTLP points (counters keep their start time; histograms and summaries become
//! OTLP's) and marks series that go — and every series of a failed scrape — stale. Prometheus's
//! `up` and `scrape_*` series come with every scrape.
//!
//! Mapping: the target's `job` and `instance` are the resource's `service.name` and
//! `service.instance.id` (as OpenTelemetry's Prometheus compatibility says), with
//! `server.address`, `server.port` and `url.scheme`; every other label is a point attribute.
//! A metric relabelling may test `__name__` but not rename a metric.
//!
//! A scrape that fails (connection, timeout, HTTP status, body too large, malformed body,
//! limits) is counted by reason (`sextant_component_errors_total`), logged at a rate limit,
//! and reported as `up` 0; other targets are not delayed. Samples dropped on their own
//! (duplicate series, histograms without `+Inf` or with buckets that go down, gauge
//! histograms) are counted in `sextant_events_discarded_total` by reason.

pub mod client;
pub mod config;
pub mod discovery;
pub mod relabel;
pub mod series;
mod shared_text;
pub mod target;

use std::sync::Arc;

use sextant_pipeline::component::{BuildError, SourceContext, Task};
use sextant_pipeline::flow::event::Text;
use sextant_pipeline::telemetry::LogLimiter;

pub use config::PrometheusScrapeConfig;
use target::{LoopContext, Target};

fn validate(config: &PrometheusScrapeConfig, name: &str) -> Result<(), BuildError> {
    config.jobs(name).map(|_| ())
}

sextant_pipeline::source_config!(
    PrometheusScrapeConfig,
    "prometheus_scrape",
    sextant_pipeline::flow::event::Signals::METRICS,
    build,
    validate
);

/// The targets of `static_configs`, after relabelling.
fn static_targets(job: &Arc<config::Job>) -> Vec<Target> {
    let mut out = Vec::new();
    for sc in &job.config.static_configs {
        for address in &sc.targets {
            let mut labels: Vec<(Text, Text)> = sc
                .labels
                .iter()
                .map(|(n, v)| (Text::from(n.as_str()), Text::from(v.as_str())))
                .collect();
            labels.push((Text::from("__address__"), Text::from(address.as_str())));
            if let Some(t) = Target::resolve(job, &labels) {
                out.push(t);
            }
        }
    }
    out
}

/// This node's pods, when some job discovers them.
type NodePods = (
    discovery::NodeSettings,
    Arc<crate::kubernetes::node_pods::NodePods>,
);

fn node_pods(
    config: &PrometheusScrapeConfig,
    cx: &SourceContext,
) -> Result<Option<NodePods>, BuildError> {
    if config
        .scrape_configs
        .iter()
        .all(|j| j.kubernetes_sd_configs.is_empty())
    {
        return Ok(None);
    }
    let settings = &config.kubernetes;
    let (node, pods) = crate::kubernetes::this_node_pods(
        settings.kubeconfig.as_ref(),
        settings.node_name.as_deref(),
        "kubernetes_sd_configs",
        &cx.metrics,
    )?;
    let node = discovery::NodeSettings {
        name: node,
        kubelet_port: settings.kubelet_port.unwrap_or(discovery::KUBELET_PORT),
    };
    Ok(Some((node, pods)))
}

pub fn build(config: &PrometheusScrapeConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let jobs = config.jobs(&cx.name)?;
    let pods = node_pods(config, &cx)?;
    let mut loops = Vec::new();
    let mut discovered = Vec::new();
    for job in jobs {
        let job = Arc::new(job);
        let client =
            client::ScrapeClient::new(&job.config.tls_config, job.config.bearer_token_file.clone())
                .map_err(|e| {
                    BuildError::at(
                        &cx.name,
                        &format!("scrape_configs.{}.tls_config", job.name),
                        e,
                    )
                })?;
        for target in static_targets(&job) {
            loops.push((target, client.clone()));
        }
        if !job.config.kubernetes_sd_configs.is_empty() {
            discovered.push((job.clone(), client.clone()));
        }
    }
    Ok(Box::pin(async move {
        let lcx = LoopContext {
            component: cx.name.clone(),
            out: cx.out.clone(),
            metrics: cx.metrics.clone(),
            shutdown: cx.shutdown.clone(),
            failures: Arc::new(LogLimiter::default()),
        };
        cx.metrics.set_up(true);
        tracing::info!(component = %cx.name, targets = loops.len(), "scraping Prometheus targets");
        let never = sextant_pipeline::shutdown::Shutdown::never();
        let mut tasks = tokio::task::JoinSet::new();
        for (target, client) in loops {
            tasks.spawn(target::run(target, client, lcx.clone(), never.clone()));
        }
        if let Some((node, pods)) = pods {
            tasks.spawn(discovery::run(discovered, node, pods, lcx.clone()));
        }
        while tasks.join_next().await.is_some() {}
        cx.metrics.set_up(false);
    }))
}

#[cfg(test)]
mod discovery_tests;
